// Task prompts (DESIGN.md "Task prompt contract"): a plain-language instruction any capable model
// follows, the machine-readable task spec in a ```json fence, and the final-JSON-line rule.
#include "roilens/stages/prompt.h"

#include <opencv2/imgcodecs.hpp>

namespace roilens {
namespace {

/// Crops up to this many pixels are sent as PNG (lossless: thin needles and tick marks survive
/// exactly, and a 256x256 PNG is still only ~100 KB). Larger crops go as JPEG quality 92: PNG of
/// camera content is 3-5x larger than JPEG at that size, and q92 keeps edges clean enough for the
/// model's own OpenCV code (Hough lines, thresholds).
constexpr int kMaxPngPixels = 256 * 256;
constexpr int kJpegQuality = 92;

std::string Instruction(const RoiConfig& roi) {
  switch (roi.task) {
    case TaskKind::kReadGauge:
      return "Read the analog gauge in this image. Find the dial and its needle, measure the "
             "needle's angle and convert it to a value with the calibration in the task spec. "
             "Angles: degrees, 0 = 3 o'clock, counter-clockwise positive; min_angle_deg is where "
             "min_value sits, max_angle_deg where max_value sits; the scale runs clockwise from "
             "min to max. When the calibration has a \"scale\" (a list of [value, angle_deg] "
             "points of a non-linear scale), interpolate linearly between its points instead "
             "(extrapolate from the end segments); \"pivot\" [fx, fy] (fractions of the image "
             "width and height) is where the needle turns and \"radius\" (fraction of the "
             "shorter side) the radius of the tick ring, measured on a reference frame. Write and "
             "run Python code (OpenCV and NumPy are available) to locate the "
             "dial and the needle rather than estimating by eye; draw the detected needle on the "
             "image and show it.";
    case TaskKind::kCount:
      return "Count the " + roi.object +
             " in this image. Write and run Python code (OpenCV and NumPy are available) to "
             "segment them and count the separate objects; draw a box or circle around each one "
             "you counted and show the annotated image.";
    case TaskKind::kZoom:
      return "Zoom into this image and describe what it shows in detail. Write and run Python "
             "code (OpenCV and NumPy are available) to upscale and sharpen it by the zoom factor "
             "in the task spec, and show the result." +
             (roi.prompt.empty() ? std::string() : " Focus on: " + roi.prompt);
    case TaskKind::kAnnotate:
      return "Annotate this image. Write and run Python code (OpenCV and NumPy are available) "
             "that draws on the image what the instruction asks for, then show the annotated "
             "image. Instruction: " +
             (roi.prompt.empty() ? std::string("mark the notable objects.") : roi.prompt);
    case TaskKind::kAsk:
      return "Answer the question about this image. You may write and run Python code (OpenCV "
             "and NumPy are available) to inspect it. Question: " +
             roi.prompt;
  }
  return {};
}

std::string FinalLineRule(TaskKind task) {
  switch (task) {
    case TaskKind::kReadGauge:
      return "End your answer with one JSON line: {\"value\": number, \"unit\": str, "
             "\"confidence\": 0..1}";
    case TaskKind::kCount:
      return "End your answer with one JSON line: {\"count\": int, \"confidence\": 0..1, "
             "\"objects\": [{\"box\": [x, y, w, h], \"score\": 0..1}, ...]} with one object per "
             "counted part, boxes in pixels of this image";
    case TaskKind::kZoom:
    case TaskKind::kAnnotate:
    case TaskKind::kAsk:
      return "End your answer with one JSON line: {\"text\": str}";
  }
  return {};
}

}  // namespace

nlohmann::json TaskSpec(const RoiConfig& roi) {
  nlohmann::json spec = {{"task", TaskName(roi.task)}};
  if (roi.task == TaskKind::kReadGauge) {
    spec["calibration"] = {{"min_value", roi.gauge.min_value},
                           {"max_value", roi.gauge.max_value},
                           {"min_angle_deg", roi.gauge.min_angle_deg},
                           {"max_angle_deg", roi.gauge.max_angle_deg},
                           {"unit", roi.gauge.unit}};
    nlohmann::json& c = spec["calibration"];
    if (!roi.gauge.scale.empty()) {
      c["scale"] = nlohmann::json::array();
      for (const ScalePoint& p : roi.gauge.scale) c["scale"].push_back({p.value, p.angle_deg});
    }
    if (roi.gauge.pivot) c["pivot"] = {roi.gauge.pivot->x, roi.gauge.pivot->y};
    if (roi.gauge.radius) c["radius"] = *roi.gauge.radius;
  }
  if (roi.task == TaskKind::kCount) spec["object"] = roi.object;
  spec["zoom"] = roi.zoom;
  if (!roi.prompt.empty()) spec["prompt"] = roi.prompt;
  return spec;
}

std::string RenderTaskPrompt(const RoiConfig& roi) {
  return Instruction(roi) + "\n\nTask spec:\n```json\n" + TaskSpec(roi).dump() + "\n```\n\n" +
         FinalLineRule(roi.task) + "\n";
}

std::vector<std::uint8_t> EncodeCropImage(const cv::Mat& crop, std::string* mime_type) {
  std::vector<std::uint8_t> bytes;
  if (crop.empty()) {
    if (mime_type) mime_type->clear();
    return bytes;
  }
  if (crop.total() <= static_cast<std::size_t>(kMaxPngPixels)) {
    cv::imencode(".png", crop, bytes);
    if (mime_type) *mime_type = "image/png";
  } else {
    cv::imencode(".jpg", crop, bytes, {cv::IMWRITE_JPEG_QUALITY, kJpegQuality});
    if (mime_type) *mime_type = "image/jpeg";
  }
  return bytes;
}

wire::InteractionRequest BuildRoiRequest(const RoiConfig& roi, const cv::Mat& crop,
                                         const std::string& model) {
  wire::InteractionRequest request;
  request.model = model;
  std::string mime_type;
  const std::vector<std::uint8_t> bytes = EncodeCropImage(crop, &mime_type);
  std::vector<wire::ContentBlock> blocks;
  blocks.push_back(wire::ContentBlock::Text(RenderTaskPrompt(roi)));
  if (!bytes.empty()) blocks.push_back(wire::ContentBlock::ImageBytes(bytes, mime_type));
  request.input = std::move(blocks);
  request.tools.push_back({{"type", "code_execution"}});
  request.store = false;  // each ROI call stands alone; nothing to continue later
  return request;
}

}  // namespace roilens
