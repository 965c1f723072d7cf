// Turning an interaction into one ROI's validated answer, and into a results.jsonl line.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <optional>
#include <string>

#include "roilens/config.h"
#include "roilens/interactions.h"
#include "roilens/rois.h"
#include "roilens/status.h"

namespace roilens {

/// One ROI's answer on one frame; the fields of a results.jsonl line.
struct RoiAnswer {
  std::string status = "ok";  ///< ok | cached | error | skipped
  std::optional<double> value;
  std::string unit;
  std::optional<std::int64_t> count;
  std::string text;
  std::optional<double> confidence;
  std::string alarm;  ///< "" | "low" | "high"
  std::string error;  ///< one line, names the ROI; never contains an API key
  int attempts = 0;   ///< code executions seen in the interaction
  double latency_ms = 0;
  std::string interaction_id;
  nlohmann::json usage;      ///< null or the usage object
  cv::Mat image;             ///< last output image (crop coordinates), may be empty
  double answered_at_s = 0;  ///< pipeline clock when the answer arrived (for age in live mode)
};

/// Parses + validates (value inside calibrated range with 5% slack, count >= 0, JSON line present)
/// and applies the alarm thresholds. Errors become status "error" with a clear message naming
/// the ROI. latency_ms and answered_at_s are left for the caller to fill.
RoiAnswer ParseRoiAnswer(const RoiConfig& roi, const StatusOr<wire::Interaction>& interaction);

/// "low" / "high" / "" for `value` against the ROI's alarm thresholds.
std::string AlarmFor(const RoiConfig& roi, double value);

/// The results.jsonl object: frame, source, time_s, roi, task, rect [x,y,w,h], status, value,
/// unit, count, text, confidence, alarm, error, attempts, latency_ms, interaction_id, usage
/// (absent values as null) — exactly these keys. rect is roi.frame_rect (original pixels).
nlohmann::json ResultLine(std::int64_t frame, const std::string& source, double time_s,
                          const RoiInstance& roi, const RoiConfig& config, const RoiAnswer& answer);

}  // namespace roilens
