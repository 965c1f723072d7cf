// Pipeline: frames in, annotated frames + one result line per ROI out, in frame order.
// A oneTBB flow graph underneath; the model calls go through InteractionsClient's I/O thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "roilens/client/status.h"
#include "roilens/config/config.h"
#include "roilens/stages/roi_result.h"

namespace roilens {

struct FrameInput {
  std::int64_t index = 0;  ///< frame number in the source (strictly increasing per Submit)
  double time_s = 0;
  std::string source;  ///< file name for image inputs, "" otherwise
  cv::Mat bgr;         ///< CV_8UC3; empty = unreadable frame (every ROI gets an error line)
  /// Why `bgr` is empty, for those error lines (e.g. "input 'a.png' is 20000x20000 pixels, ...");
  /// "" = the frame could not be decoded.
  std::string error;
};

struct FrameOutput {
  std::int64_t index = 0;
  double time_s = 0;
  std::string source;
  cv::Mat annotated;  ///< the merged frame (a copy of the input when merge=none)
  /// One result per ROI, config order; ToJson(result) is its results.jsonl line.
  std::vector<RoiResult> results;
  /// Alarm raise/clear events this frame caused (ReadingMonitor::Process), for alarms.jsonl;
  /// already handed to output.mqtt / output.webhook when configured.
  std::vector<nlohmann::json> alarms;
  /// ReadingMonitor::Save() right after this frame (fusion windows and alarm states), when
  /// PipelineOptions::snapshot_monitor; null otherwise. A resume journal records it with the
  /// checkpoint after this frame.
  nlohmann::json monitor_state;
};

/// Counters over a run (summary.json is built from these).
struct PipelineSummary {
  std::int64_t frames = 0, roi_results = 0, calls = 0, cache_hits = 0, errors = 0, skipped = 0;
  /// Result lines with status "uncertain" (fresh or reused): readings below min_confidence.
  std::int64_t uncertain = 0;
  double latency_p50_ms = 0, latency_p95_ms = 0;
  std::int64_t input_tokens = 0, output_tokens = 0, total_tokens = 0;
  /// Why the run stopped calling the model (the API key is missing or was rejected); "" when it
  /// did not. ToJson writes it as "fatal_error" (null when empty).
  std::string fatal_error;
  nlohmann::json ToJson() const;
};

struct PipelineOptions {
  /// Base URL of the Interactions endpoint; overrides backend.endpoint. Required when the config
  /// says "local": start a roilens::backend::LocalBackend and pass its base_url() (the CLI and
  /// the plugin do). Pipeline::Create refuses "local" without it: it never guesses a host.
  std::string base_url;
  /// Explicit API key; otherwise the config's api_key_env is read.
  std::optional<std::string> api_key;
  /// The embedded backend's coder ("cv", "echo") when the caller started one; written into
  /// output.audit records only ("" = unknown).
  std::string coder;
  /// Fusion and alarm state to start from (ReadingMonitor::Save, e.g. a resume checkpoint's);
  /// null: a fresh start. Create fails with kInvalidArgument when it does not fit the config.
  nlohmann::json monitor_state;
  /// Fill FrameOutput::monitor_state on every frame (one ReadingMonitor::Save each: a few numbers
  /// per read_gauge/count ROI), for callers that checkpoint and resume.
  bool snapshot_monitor = false;
};

/// Thread-safety: Submit from one thread; TakeReady/Take from one thread (may differ from the
/// submitting thread); Flush and summary from any thread.
///
/// Failures: a call that fails after the client's retries on transient errors only is sent
/// again (twice at most) while the backend answers other calls; if it still fails, the frame that
/// made it gets an `error` line and frames that were waiting for it (change gate) make their own
/// calls: a failed answer is never reused. Until the backend has answered once, one call is on
/// the wire; when an answer says the API key is missing or rejected (IsKeyRejected) no further
/// call is made: every later frame x ROI gets an `error` line naming the cause, and
/// summary().fatal_error says it.
class Pipeline {
 public:
  static StatusOr<std::unique_ptr<Pipeline>> Create(StationConfig config, PipelineOptions options);
  virtual ~Pipeline() = default;

  /// Queues a frame. In batch mode blocks while max_frames_in_flight frames are unfinished
  /// (memory stays flat); in live mode never waits on the model.
  virtual Status Submit(FrameInput frame) = 0;
  /// Finished frames in submission order, without blocking (empty when none is ready).
  virtual std::vector<FrameOutput> TakeReady() = 0;
  /// Blocks until the next frame in order is finished; nullopt after Flush() drained everything.
  virtual std::optional<FrameOutput> Take() = 0;
  /// No more frames: waits until every submitted frame is finished (still to be taken).
  virtual void Flush() = 0;
  /// Stops promptly (Ctrl-C): model calls in flight or queued are cancelled, CPU stages skip
  /// their work, and every frame not yet delivered is dropped, never delivered: what Take
  /// returns stays a gap-free prefix of the submitted frames, each complete. A blocked Submit
  /// returns and later ones fail with kCancelled. Call Flush() after it to let the graph drain
  /// (quick: nothing waits on the network any more). Thread-safe and idempotent.
  virtual void Cancel() = 0;
  virtual PipelineSummary summary() const = 0;
  virtual std::int64_t requests_in_flight() const = 0;
  /// How many frames Submit lets in before it blocks (batch mode): max_frames_in_flight, raised
  /// where needed so the frames waiting for answers can keep max_in_flight requests busy.
  virtual int frames_in_flight_limit() const = 0;
  /// Why backend.budget stopped the calls ("max_calls (3) reached"), "" while it has not. Once
  /// set no further call is made: each frame x ROI that needed one gets an `error` line whose
  /// error contains kBudgetNotCalled. Thread-safe.
  virtual std::string budget_spent() const { return ""; }
};

/// In the error of a result line whose call backend.budget did not allow (see budget_spent()).
inline constexpr const char* kBudgetNotCalled = "not called: backend.budget is spent";

}  // namespace roilens
