// A live source that survives its camera dropping: when the stream ends or fails, it reopens it
// with capped exponential backoff, forever (until Stop), and reports each outage as a SourceGap.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "roilens/client/retry.h"
#include "roilens/client/status.h"
#include "roilens/stages/roi_result.h"
#include "roilens/stages/source.h"

namespace roilens {

/// One outage of a live source: the time between the last frame before it and the first frame
/// after it, and an estimate of the frames the camera would have sent meanwhile.
struct SourceGap {
  std::int64_t after_frame = -1;    ///< index of the last frame before the outage (-1: none)
  double from_time_s = 0;           ///< time_s of that frame (0 when none)
  double to_time_s = 0;             ///< time_s of the first frame after the outage
  std::int64_t missing_frames = 0;  ///< (to - from) * fps - 1, rounded; at least 0
  int reconnect_attempts = 0;       ///< opens tried until one succeeded
  std::string error;                ///< why the stream was lost / the last open failed
  bool ongoing = false;             ///< still down when the source was stopped (TakeOpenGap)
  /// The outage as results.jsonl lines of the ordinary shape (ToJson(RoiResult)), one per ROI of
  /// `rois` (the lines of a frame next to it: their roi, task and rect are taken), so a consumer
  /// reads them like any other line: status kGapStatus; frame after_frame + 1 (the number the
  /// stream went on with) and time_s to_time_s; every reading null; error says what happened
  /// ("stream outage after frame N: no frames from A s to B s (about M missing), back after K
  /// reconnect attempt(s); last error: ...").
  std::vector<RoiResult> ToResults(const std::vector<RoiResult>& rois) const;
  /// The error text of ToResults' lines.
  std::string Describe() const;
};

/// The status of a result line standing for frames a live source missed (SourceGap::ToResults).
inline constexpr const char* kGapStatus = "gap";

struct ReconnectOptions {
  /// First wait before reopening; doubles per failed open (full jitter) up to max_backoff.
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30000};
  /// Log lines ("stream lost ...", "reconnected ..."); default: stderr.
  std::function<void(const std::string&)> log;
};

/// Wraps an opener (usually FrameSource::Open of a stream URL or camera). Frames keep one index
/// sequence and one clock (seconds since Create) across reconnects. Next() blocks while the
/// stream is down and returns nullopt only after Stop().
/// Thread-safety: Next/TakeGap from one thread; Stop, reconnect_attempts and connected from any.
class ReconnectingSource final : public FrameSource {
 public:
  using Opener = std::function<StatusOr<std::unique_ptr<FrameSource>>()>;
  /// Starts from `first` when given (already open), else opens once now: a source that cannot be
  /// opened at start is an error (bad URL, camera absent), not an outage.
  static StatusOr<std::unique_ptr<ReconnectingSource>> Create(
      Opener opener, ReconnectOptions options = {}, std::unique_ptr<FrameSource> first = nullptr);

  const SourceInfo& info() const override { return info_; }
  std::optional<FrameInput> Next() override;
  /// A live stream cannot be skipped: kFailedPrecondition.
  Status Skip(std::int64_t count) override;

  /// The outage that ended before the frame Next() returned last, once (nullopt otherwise).
  std::optional<SourceGap> TakeGap();
  /// After the last Next(): the outage still going on when the source was stopped, ended now
  /// (so a run stopped during an outage still accounts for it); nullopt when connected.
  std::optional<SourceGap> TakeOpenGap();
  /// Ends the source: a Next() waiting to reconnect returns nullopt promptly (a read blocked in
  /// the decoder returns when its own timeout fires). Idempotent.
  void Stop();
  /// Opens that failed since the last loss (0 while connected; an open in progress is not
  /// counted yet); for logs, metrics and tests.
  int reconnect_attempts() const { return attempts_.load(); }
  /// Total outages so far.
  std::int64_t outages() const { return outages_.load(); }
  bool connected() const { return connected_.load(); }

 private:
  ReconnectingSource(Opener opener, ReconnectOptions options, std::unique_ptr<FrameSource> first);
  /// Waits `delay` or until Stop; false when stopped.
  bool Wait(std::chrono::milliseconds delay);
  void Log(const std::string& line) const;

  using Clock = std::chrono::steady_clock;
  Opener opener_;
  ReconnectOptions options_;
  std::unique_ptr<FrameSource> current_;
  SourceInfo info_;
  Clock::time_point start_;
  std::int64_t next_index_ = 0;
  double last_time_s_ = 0;
  std::optional<SourceGap> pending_gap_, ready_gap_;
  std::atomic<int> attempts_{0};
  std::atomic<std::int64_t> outages_{0};
  std::atomic<bool> connected_{true};
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopped_ = false;
};

}  // namespace roilens
