// Alarms that mean something: a threshold must be crossed for min_duration_s before an alarm is
// raised and passed by the hysteresis band before it clears; uncertain readings change nothing.
// ReadingMonitor applies fusion and alarms to a frame's result lines, in frame order.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "roilens/client/status.h"
#include "roilens/config/config.h"
#include "roilens/stages/fusion.h"
#include "roilens/stages/roi_result.h"

namespace roilens {

enum class AlarmSide { kNone, kLow, kHigh };
std::string AlarmSideName(AlarmSide side);  ///< "", "low", "high"

struct AlarmTransition {
  bool raised = false;  ///< true: raised; false: cleared
  AlarmSide side = AlarmSide::kNone;
};

/// The alarm state of one ROI. Pure: no clock, frame time only. Not thread-safe.
class AlarmStateMachine {
 public:
  explicit AlarmStateMachine(AlarmConfig config) : config_(std::move(config)) {}

  /// A certain reading `value` at frame time `time_s` (non-decreasing). Returns what changed:
  /// nothing, a raise, a clear, or a clear followed by a raise (a jump from low to high). An
  /// uncertain or missing reading must not be passed: it neither raises, clears, nor interrupts a
  /// condition that is being timed.
  std::vector<AlarmTransition> Update(double time_s, double value);
  AlarmSide state() const { return state_; }

  /// The state as JSON: {"state": ""|"low"|"high", "pending": ""|"low"|"high",
  /// "pending_since_s": number} (the raised side, and the condition being timed since when).
  nlohmann::json Save() const;
  /// Replaces the state with one Save() wrote; kInvalidArgument (state unchanged) otherwise.
  Status Restore(const nlohmann::json& state);

 private:
  AlarmSide Condition(double value) const;

  AlarmConfig config_;
  AlarmSide state_ = AlarmSide::kNone;
  AlarmSide pending_ = AlarmSide::kNone;  ///< condition held (not yet raised) since pending_since_
  double pending_since_s_ = 0;
};

/// Per ROI instance: fuses read_gauge readings (ReadingFusion) and runs the alarm state machine,
/// rewriting each result line and producing alarm events. Not thread-safe: call Process from the
/// pipeline's serial, in-order delivery stage.
///
/// A line gains `raw_value` (the single reading, null when none) and `implausible_jump`; `value`
/// becomes the fused estimate (a fresh "ok" reading is fused in; a "cached" line shows the current
/// estimate; an "uncertain" one keeps its own reading and is not fused; an implausible jump shows
/// the previous estimate). `alarm` becomes the ROI's alarm state on certain lines (ok, cached) and
/// "" on all others.
class ReadingMonitor {
 public:
  explicit ReadingMonitor(const StationConfig& config);

  /// Rewrites `lines` (one frame's results.jsonl objects) and returns that frame's alarm events:
  /// {"type": "alarm", "event": "raise"|"clear", "roi", "task", "alarm": "low"|"high", "value",
  ///  "unit", "threshold", "time_s", "frame", "source", "rect"}.
  std::vector<nlohmann::json> Process(std::vector<RoiResult>& results);

  /// Everything the frames so far left behind, per ROI instance: the fusion window and the alarm
  /// state (raised side, the condition being timed and since when). A run that stops and resumes
  /// (the resume journal keeps this at each checkpoint) Restores it before the first frame it
  /// redoes, so it fuses, raises and clears exactly as a run that never stopped: no alarm raised
  /// twice, no min_duration_s timer restarted. JSON: {"version": 1, "rois": {"<instance>":
  /// {"fusion": ReadingFusion::Save() (read_gauge only), "alarm": AlarmStateMachine::Save() (with
  /// an alarm configured only), "last_fresh_implausible": bool}}}; numbers round-trip exactly.
  /// Cost: proportional to the read_gauge/count ROIs seen (a few numbers each).
  nlohmann::json Save() const;
  /// Replaces all state with one Save() wrote for the same config. kInvalidArgument, state
  /// unchanged, when `state` is not of that shape or names an ROI the config does not have. A
  /// null `state` is a fresh start (no readings yet).
  Status Restore(const nlohmann::json& state);

 private:
  struct RoiState {
    std::unique_ptr<ReadingFusion> fusion;
    std::unique_ptr<AlarmStateMachine> alarm;
    bool last_fresh_implausible = false;
  };
  RoiState& StateFor(const std::string& instance, const RoiConfig& config);
  RoiState MakeState(const RoiConfig& config) const;

  std::map<std::string, const RoiConfig*> configs_;  ///< by ROI name
  std::map<std::string, RoiState> states_;           ///< by instance name ("gauge#1")
  PipelineMode mode_;
  std::vector<RoiConfig> rois_;
};

}  // namespace roilens
