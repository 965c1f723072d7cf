// `roilens run`: INPUT through the station pipeline into DIR (shared with `roilens bench`).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace roilens::cli {

struct RunFlags {
  std::string input;
  std::string config_path;
  std::string out_dir;
  std::string endpoint;  ///< overrides config backend.endpoint
  std::string model;
  std::string mode;  ///< "" | "batch" | "live"
  std::optional<int> max_in_flight;
  std::optional<int> every_n_frames;
  bool resume = false;
  /// Write into a non-empty --out, first removing a previous run's outputs (only those).
  bool overwrite = false;
  bool quiet = false;
  std::string coder = "cv";     ///< embedded backend only
  int latency_ms = 0;           ///< embedded backend only
  std::int64_t max_frames = 0;  ///< stop after this many frames (0: whole input)
  int segment_frames = 0;       ///< frames per resume checkpoint (0: ~10 s of video)
  /// Overrides every ROI's change_threshold (bench: 0 disables the change gate).
  std::optional<double> change_threshold;
  /// Serve Prometheus text at /metrics and /healthz on this port (0: a free one, logged).
  std::optional<int> metrics_port;
  /// http(s):// input (batch mode): the largest file downloaded, in MiB.
  std::int64_t max_download_mb = 4096;
};

struct RunOutcome {
  int exit_code = 0;
  nlohmann::json summary;  ///< what summary.json holds (null if the run did not get that far)
};

/// Runs the whole job; prints one-line messages to stderr on failure.
RunOutcome RunStation(const RunFlags& flags);

}  // namespace roilens::cli
