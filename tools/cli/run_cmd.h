// `roilens run`: INPUT through the station pipeline into DIR (shared with `roilens bench`).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace roilens::cli {

/// What a batch has left of backend.budget after its earlier files (RunFlags::budget_left).
struct BudgetLeft {
  std::int64_t calls = 0;   ///< 0: no call limit
  std::int64_t tokens = 0;  ///< 0: no token limit
};

struct RunFlags {
  std::string input;  ///< one input; a folder of videos or a glob pattern makes it a batch
  /// A list file of inputs (a batch): one a line, `#` comments, relative to the list's folder.
  std::string inputs_list;
  /// "K/N": run only shard K (0-based) of N of a batch (else JOB_COMPLETION_INDEX/JOB_COMPLETIONS).
  std::string shard;
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
  /// Print the "using the embedded local backend" line (a batch prints it for its first file).
  bool announce_backend = true;
  std::string coder = "cv";     ///< embedded backend only
  int latency_ms = 0;           ///< embedded backend only
  std::int64_t max_frames = 0;  ///< stop after this many frames (0: whole input)
  int segment_frames = 0;       ///< frames per resume checkpoint (0: ~10 s of video)
  /// Overrides every ROI's change_threshold (bench: 0 disables the change gate).
  std::optional<double> change_threshold;
  /// Serve Prometheus text at /metrics and /healthz on this port (0: a free one, logged).
  std::optional<int> metrics_port;
  /// Set by a batch: the budget this file may spend, replacing backend.budget's limits, so one
  /// invocation spends backend.budget once over all its files.
  std::optional<BudgetLeft> budget_left;
  /// http(s):// input (batch mode): the largest file downloaded, in MiB.
  std::int64_t max_download_mb = 4096;
};

struct RunOutcome {
  int exit_code = 0;
  nlohmann::json summary;  ///< what summary.json holds (null if the run did not get that far)
  std::string error;       ///< the one-line message printed on failure ("" when none)
};

/// Runs the whole job; prints one-line messages to stderr on failure.
RunOutcome RunStation(const RunFlags& flags);

/// True when the flags name many inputs: --inputs, --shard, a glob, or a folder of videos.
bool IsBatchRun(const RunFlags& flags);

/// Runs each input of a batch (this shard's share) through RunStation into its own folder under
/// --out, records per-file failures without stopping, and writes the run-level summary
/// (MergeBatch). Returns the exit code: non-zero when any file failed (named on stderr).
int RunBatch(const RunFlags& flags);

}  // namespace roilens::cli
