// Outputs that roll over by size or time, so a station that runs for months writes a series of
// bounded files (results-000001-20261202T043600Z.jsonl, ...) instead of one giant file.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "roilens/client/status.h"
#include "roilens/config/config.h"
#include "roilens/outputs/sinks.h"

namespace roilens {

using WallClock = std::function<std::chrono::system_clock::time_point()>;

/// When a file is due to roll over (from output.rotate; both 0 = never).
class RotationPolicy {
 public:
  RotationPolicy(RotateConfig config, WallClock clock);
  bool enabled() const { return config_.max_bytes > 0 || config_.max_seconds > 0; }
  /// True when a file of `bytes` opened at started() has reached max_bytes or max_seconds.
  /// An empty file is never due.
  bool Due(std::uint64_t bytes) const;
  /// The current file was rolled over: the next one starts now.
  void Restart();
  std::chrono::system_clock::time_point started() const { return started_; }
  std::chrono::system_clock::time_point now() const { return clock_(); }

 private:
  RotateConfig config_;
  WallClock clock_;
  std::chrono::system_clock::time_point started_;
};

/// "dir/results.jsonl", 3, t -> "dir/results-000003-20261202T043600Z.jsonl" (t in UTC: when the
/// file's span began). Names sort by sequence.
std::string RotatedName(const std::string& path, int sequence,
                        std::chrono::system_clock::time_point began);

/// True when `name` is a rotated name of `base` ("results-000003-20261202T043600Z.jsonl" of
/// "results.jsonl"), for --overwrite.
bool IsRotatedName(const std::string& name, const std::string& base);

/// results.jsonl with rollover: the active file keeps the configured name; when it is due, it is
/// synced and renamed to RotatedName(path, n, its start) before the next frame is written (a
/// frame's lines never span two files). Not thread-safe.
class RotatingResultsWriter {
 public:
  /// `keep_bytes`: as ResultsWriter::Open (resume of a run that does not rotate).
  static StatusOr<std::unique_ptr<RotatingResultsWriter>> Open(const std::string& path,
                                                               RotateConfig config,
                                                               WallClock clock = {},
                                                               std::uint64_t keep_bytes = 0);
  /// Rolls over first when due, then appends the frame's lines (or a record: one line).
  Status WriteFrame(const std::vector<nlohmann::json>& lines);
  /// The same for typed results (one ToJson line each).
  Status WriteFrame(const std::vector<RoiResult>& results);
  Status Sync() { return writer_->Sync(); }
  /// Bytes in the active file.
  std::uint64_t bytes() const { return writer_->bytes(); }
  /// Files rolled over so far, oldest first.
  const std::vector<std::string>& rotated() const { return rotated_; }

 private:
  RotatingResultsWriter(std::string path, RotationPolicy policy,
                        std::unique_ptr<ResultsWriter> writer)
      : path_(std::move(path)), policy_(std::move(policy)), writer_(std::move(writer)) {}
  std::string path_;
  RotationPolicy policy_;
  std::unique_ptr<ResultsWriter> writer_;
  std::vector<std::string> rotated_;
};

/// Those of `paths` that exist (SegmentedVideoWriter::Segments names every number so far, rolled
/// ones included).
std::vector<std::string> ExistingFiles(const std::vector<std::string>& paths);

/// The annotated video's rollover: the closed segments so far become one file,
/// RotatedName(video_path, n, start), and are deleted. Call after SegmentedVideoWriter::
/// CloseSegment; rolls only when the policy says the segments (their total size) are due.
/// Not thread-safe.
class VideoRotator {
 public:
  VideoRotator(std::string video_path, double fps, RotateConfig config, WallClock clock = {});
  /// Returns the file written, or "" when not due.
  StatusOr<std::string> MaybeRoll(const std::vector<std::string>& closed_segments);
  const std::vector<std::string>& rotated() const { return rotated_; }

 private:
  std::string video_path_;
  double fps_;
  RotationPolicy policy_;
  std::vector<std::string> rotated_;
};

}  // namespace roilens
