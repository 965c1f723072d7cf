// Turning an interaction into one ROI's validated answer, and into a results.jsonl line.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "roilens/client/interactions.h"
#include "roilens/client/status.h"
#include "roilens/config/config.h"
#include "roilens/stages/roi_result.h"
#include "roilens/stages/rois.h"

namespace roilens {

/// One object a count answer found: its box in the pixels of the image the model was sent (the
/// ROI crop after zoom), and the model's score for it.
struct CountedObject {
  cv::Rect2d box;               ///< crop pixels, pixel-edge convention; width and height > 0
  std::optional<double> score;  ///< 0..1 (clamped); absent when the model gave none
};

/// A count answer keeps at most this many objects (the first ones the model listed); the count
/// itself is not capped.
inline constexpr std::size_t kMaxCountedObjects = 1000;

/// One ROI's answer on one frame; the fields of a results.jsonl line.
struct RoiAnswer {
  /// ok | uncertain | cached | error | skipped. "uncertain": a read_gauge/count answer whose
  /// confidence is below the ROI's min_confidence; value/count are given, alarm is always "".
  /// A reused copy of an uncertain answer stays "uncertain" (only "ok" becomes "cached").
  std::string status = "ok";
  std::optional<double> value;
  std::string unit;
  std::optional<std::int64_t> count;
  /// count: the objects the model listed (valid entries only, at most kMaxCountedObjects), in
  /// crop pixels; ResultLine maps them to frame pixels.
  std::vector<CountedObject> objects;
  std::string text;
  std::optional<double> confidence;
  /// "" | "low" | "high": this single reading against the thresholds (AlarmFor), for the frame's
  /// label and the audit record; always "" when status is "uncertain". Not the results line's
  /// `alarm`: that is the ROI's alarm state, owned by ReadingMonitor.
  std::string alarm;
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
/// the ROI. A read_gauge/count answer whose confidence is below the ROI's min_confidence (see
/// RoiConfig::min_confidence for a missing confidence) becomes "uncertain" and raises no alarm.
/// count: "objects" entries that are not {"box": [x, y, w, h] (finite, w and h > 0), "score":
/// number (optional)} are ignored, as are those past kMaxCountedObjects.
/// latency_ms and answered_at_s are left for the caller to fill.
RoiAnswer ParseRoiAnswer(const RoiConfig& roi, const StatusOr<wire::Interaction>& interaction);

/// "low" / "high" / "" for `value` against the ROI's alarm thresholds.
std::string AlarmFor(const RoiConfig& roi, double value);

/// Whether `answer` carries a reading or text to show (status ok, uncertain or cached).
bool HasResult(const RoiAnswer& answer);

/// The typed result for the results.jsonl object: frame, source, time_s, roi, task, rect [x,y,w,h],
/// status, value, unit, count, objects, text, confidence, alarm, error, attempts, latency_ms,
/// interaction_id, usage (absent values as null) — exactly these keys. alarm is left "" (null):
/// ReadingMonitor::Process sets it from the ROI's alarm state. rect is roi.frame_rect
/// (original pixels). objects: for count lines a list (empty when none) of {"box": [x, y, w, h],
/// "score": s|null}, each box mapped from crop pixels through the crop's zoom
/// (CropTransform::Make(roi.rect, config.zoom)) and roi.image_to_frame into ORIGINAL frame pixels
/// like rect (rounded outward, clipped to rect; boxes entirely outside it are dropped); null for
/// other tasks.
RoiResult MakeRoiResult(std::int64_t frame, const std::string& source, double time_s,
                        const RoiInstance& roi, const RoiConfig& config, const RoiAnswer& answer);
/// ToJson(MakeRoiResult(...)).
nlohmann::json ResultLine(std::int64_t frame, const std::string& source, double time_s,
                          const RoiInstance& roi, const RoiConfig& config, const RoiAnswer& answer);

}  // namespace roilens
