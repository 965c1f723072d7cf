// The one-line progress display of `roilens run` on a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace roilens::cli {

struct ProgressSnapshot {
  std::int64_t frames_done = 0;
  std::int64_t frames_total = -1;  ///< -1 when unknown (camera, stream)
  std::int64_t in_flight = 0;      ///< model requests on the wire
  std::int64_t calls = 0, cache_hits = 0, errors = 0;
};

/// Rewrites a single line ("\r...\x1b[K") at most a few times a second. Enabled only when the
/// output is a terminal and not --quiet, so logs and pipes stay clean. Not thread-safe.
class Progress {
 public:
  /// `out` is where the line goes (stdout); `enabled` false makes every call a no-op.
  Progress(std::FILE* out, bool enabled);
  /// True when stdout is a terminal.
  static bool StdoutIsTerminal();

  void Update(const ProgressSnapshot& snapshot, bool force = false);
  /// Prints the last state and ends the line.
  void Finish(const ProgressSnapshot& snapshot);
  /// The line itself (for tests): "frames 120/300  14.2 fps  in flight 3  calls 12  cached 240
  /// errors 0  ETA 13s".
  static std::string Format(const ProgressSnapshot& snapshot, double elapsed_s, double fps);

 private:
  using Clock = std::chrono::steady_clock;
  std::FILE* out_;
  bool enabled_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_print_{};
};

}  // namespace roilens::cli
