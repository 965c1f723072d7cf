// RoiResult: one ROI's reading on one frame, typed. A results.jsonl line is ToJson of it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "roilens/client/status.h"

namespace roilens {

/// One object a count found, in ORIGINAL frame pixels (like RoiResult::rect).
struct RoiObject {
  cv::Rect2d box;               ///< x, y, width, height; integral for pipeline results
  std::optional<double> score;  ///< 0..1; absent when the model gave none (null in JSON)
  bool operator==(const RoiObject& o) const { return box == o.box && score == o.score; }
};

/// Token usage the backend reported for the interaction behind a result.
struct RoiUsage {
  std::int64_t input_tokens = 0;     ///< "total_input_tokens"
  std::int64_t output_tokens = 0;    ///< "total_output_tokens"
  std::int64_t tool_use_tokens = 0;  ///< "total_tool_use_tokens"
  std::int64_t total_tokens = 0;     ///< "total_tokens"
  /// Every other usage key the backend sent (e.g. *_by_modality), kept so that the JSON
  /// round-trips unchanged.
  nlohmann::json extra = nlohmann::json::object();
  bool operator==(const RoiUsage& o) const {
    return input_tokens == o.input_tokens && output_tokens == o.output_tokens &&
           tool_use_tokens == o.tool_use_tokens && total_tokens == o.total_tokens &&
           extra == o.extra;
  }
};

/// One ROI's result on one frame: exactly the fields of a results.jsonl line. A plain value;
/// copy and share freely (no thread-safety concerns of its own).
struct RoiResult {
  std::int64_t frame = 0;  ///< frame index in the source
  std::string source;      ///< file name for image inputs, "" otherwise (null in JSON)
  double time_s = 0;       ///< frame time, seconds from the start of the source
  std::string roi;         ///< ROI name from the config
  std::string task;        ///< read_gauge | count | ... (the config's task name)
  cv::Rect rect;           ///< the ROI in original frame pixels
  /// ok | cached | skipped | uncertain | error | gap. "uncertain": a reading below the ROI's
  /// min_confidence (value/count are given, alarm is ""). "gap": frames a live source missed
  /// (SourceGap::ToResults; error says why).
  std::string status = "ok";
  /// read_gauge: the reading in `unit`; in live mode the ROI's fused estimate (median over a
  /// short window, see ReadingMonitor), the single reading being raw_value.
  std::optional<double> value;
  std::optional<double> raw_value;  ///< the single reading behind `value` (null when none)
  /// The single reading moved faster than the gauge can (fusion's max_rate): not fused, not
  /// alarmed; `value` keeps the previous estimate.
  bool implausible_jump = false;
  std::string unit;                   ///< "" when none (null in JSON)
  std::optional<std::int64_t> count;  ///< count: how many objects
  /// count: the objects found (at most `count`; the model may list fewer). Always empty for
  /// other tasks: JSON has a list for task "count" and null otherwise.
  std::vector<RoiObject> objects;
  std::string text;                  ///< free-text answer, "" when none
  std::optional<double> confidence;  ///< 0..1 as the model reported it
  std::string alarm;           ///< "" | "low" | "high": which alarm threshold the value crossed
  std::string error;           ///< why, one line: status "error" (names the ROI) or "gap"
  int attempts = 0;            ///< code executions seen in the interaction
  double latency_ms = 0;       ///< model call time, milliseconds (0 for reused answers' copies)
  std::string interaction_id;  ///< the backend's interaction id, "" when none
  std::optional<RoiUsage> usage;

  /// Whether an alarm threshold was crossed (alarm is "low" or "high").
  bool alarmed() const { return !alarm.empty(); }
  bool operator==(const RoiResult& o) const;
  bool operator!=(const RoiResult& o) const { return !(*this == o); }
};

/// The results.jsonl object: every key always present, absent values as null. Coordinates are
/// written as integers when they are integral (as the pipeline's always are).
nlohmann::json ToJson(const RoiResult& result);
nlohmann::json ToJson(const RoiUsage& usage);

/// Parses a results.jsonl object. Required: frame, roi, task, status; every other key may be
/// missing or null. Wrong types are InvalidArgument naming the key. Unknown keys are ignored.
StatusOr<RoiResult> RoiResultFromJson(const nlohmann::json& line);
/// Parses a usage object (the four total_* counters, missing = 0; other keys go to `extra`).
StatusOr<RoiUsage> RoiUsageFromJson(const nlohmann::json& usage);

}  // namespace roilens
