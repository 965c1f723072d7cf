// Merge: draws an ROI's returned image (replace / blend / inset) and a readable status label onto
// the output frame. Everything is clipped to the frame; bad inputs draw less, never crash.
#include "roilens/stages/merge.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <opencv2/imgproc.hpp>

namespace roilens {
namespace {

constexpr std::size_t kMaxLabelTextChars = 40;

bool IsError(const RoiAnswer& a) { return a.status == "error"; }

/// Mask (frame-sized region `rect`) that is 255 inside the ROI polygon, or all 255 for rects.
cv::Mat RegionMask(const RoiInstance& roi, const cv::Rect& rect) {
  cv::Mat mask(rect.size(), CV_8U, cv::Scalar(255));
  if (roi.polygon.empty()) return mask;
  mask.setTo(0);
  std::vector<cv::Point> local;
  for (const cv::Point& p : roi.polygon) local.push_back(p - rect.tl());
  cv::fillPoly(mask, std::vector<std::vector<cv::Point>>{local}, cv::Scalar(255));
  return mask;
}

void PasteOrBlend(cv::Mat& frame, const RoiInstance& roi, const CropTransform& transform,
                  const cv::Mat& returned, double alpha) {
  const cv::Rect bounds(0, 0, frame.cols, frame.rows);
  const cv::Rect target = transform.frame_rect & bounds;
  if (target.empty()) return;
  const cv::Mat mapped = transform.ImageToFrame(returned);
  if (mapped.empty() || mapped.size() != transform.frame_rect.size()) return;
  const cv::Mat source = mapped(target - transform.frame_rect.tl());
  cv::Mat destination = frame(target);
  const cv::Mat mask = RegionMask(roi, target);
  if (alpha >= 1.0) {
    source.copyTo(destination, mask);
    return;
  }
  cv::Mat blended;
  cv::addWeighted(source, alpha, destination, 1.0 - alpha, 0.0, blended);
  blended.copyTo(destination, mask);
}

void DrawInset(cv::Mat& frame, const RoiInstance& roi, const cv::Mat& returned,
               const cv::Scalar& colour) {
  CropTransform whole = CropTransform::Make(cv::Rect(0, 0, returned.cols, returned.rows), 1.0);
  cv::Mat bgr = whole.ImageToFrame(returned);  // normalises depth/channels
  if (bgr.empty()) return;
  // Half the ROI's size (so it reads as "the model's view of this ROI"), at least 48 px, at most
  // a third of the frame so insets of several ROIs do not cover the scene.
  const double roi_side = std::max(roi.rect.width, roi.rect.height);
  const double max_side = std::max(8.0, std::min(frame.cols, frame.rows) / 3.0);
  const double side = std::clamp(roi_side / 2.0, std::min(48.0, max_side), max_side);
  const double scale = side / std::max(bgr.cols, bgr.rows);
  const cv::Size size(std::max(1, static_cast<int>(std::lround(bgr.cols * scale))),
                      std::max(1, static_cast<int>(std::lround(bgr.rows * scale))));
  if (size.width > frame.cols || size.height > frame.rows) return;
  cv::Mat small;
  cv::resize(bgr, small, size, 0, 0, scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  constexpr int kGap = 4;
  int x = roi.rect.x + roi.rect.width + kGap;                           // right of the ROI
  if (x + size.width > frame.cols) x = roi.rect.x - kGap - size.width;  // else left of it
  if (x < 0) x = frame.cols - size.width;                               // else at the frame's edge
  const int y = std::clamp(roi.rect.y, 0, frame.rows - size.height);
  const cv::Rect place(x, y, size.width, size.height);
  small.copyTo(frame(place));
  cv::rectangle(frame, place, colour, 1);
}

}  // namespace

// Hershey fonts draw ASCII only: UTF-8 such as the degree sign would come out as "??".
std::string HersheyText(const std::string& utf8) {
  std::string out;
  for (std::size_t i = 0; i < utf8.size(); ++i) {
    const auto c = static_cast<unsigned char>(utf8[i]);
    if (c < 0x80) {
      out += utf8[i];
    } else if (c == 0xC2 && i + 1 < utf8.size() &&
               static_cast<unsigned char>(utf8[i + 1]) == 0xB0) {
      out += "deg";
      ++i;
    } else if ((c & 0xC0) != 0x80) {
      out += '?';  // one mark per non-ASCII character, not per byte
    }
  }
  return out;
}

namespace {

void DrawLabel(cv::Mat& frame, const cv::Rect& roi_rect, const std::string& utf8_text,
               const cv::Scalar& colour) {
  const std::string text = HersheyText(utf8_text);
  // Scale with the frame so labels stay readable on 360p and 4K alike.
  const double font_scale = std::clamp(frame.rows / 720.0 * 0.6, 0.35, 1.6);
  const int thickness = std::max(1, static_cast<int>(std::lround(font_scale * 1.5)));
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  int baseline = 0;
  const cv::Size text_size = cv::getTextSize(text, font, font_scale, thickness, &baseline);
  const int pad = std::max(2, thickness * 2);
  const cv::Size box(text_size.width + 2 * pad, text_size.height + baseline + 2 * pad);
  // Above the ROI when there is room, else just inside its top edge; always inside the frame.
  int y = roi_rect.y - box.height;
  if (y < 0) y = roi_rect.y;
  y = std::clamp(y, 0, std::max(0, frame.rows - box.height));
  const int x = std::clamp(roi_rect.x, 0, std::max(0, frame.cols - box.width));
  cv::rectangle(frame, cv::Rect(x, y, box.width, box.height), colour, cv::FILLED);
  // Dark text on light backgrounds (green, grey, orange, amber), white on red.
  const double luminance = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2];
  const cv::Scalar ink = luminance > 100 ? cv::Scalar(0, 0, 0) : cv::Scalar(255, 255, 255);
  cv::putText(frame, text, cv::Point(x + pad, y + pad + text_size.height), font, font_scale, ink,
              thickness, cv::LINE_AA);
}

std::string FormatValue(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.4g", v);
  return buffer;
}

}  // namespace

std::string LabelText(const RoiInstance& roi, const RoiAnswer& answer,
                      std::optional<double> age_s) {
  std::string text = roi.name + ": ";
  if (IsError(answer)) {
    text += "error";
  } else if (answer.value) {
    text += FormatValue(*answer.value);
    if (!answer.unit.empty()) text += " " + answer.unit;
  } else if (answer.count) {
    text += std::to_string(*answer.count);
  } else if (!answer.text.empty()) {
    std::string t = answer.text;
    std::replace(t.begin(), t.end(), '\n', ' ');
    if (t.size() > kMaxLabelTextChars) t = t.substr(0, kMaxLabelTextChars - 3) + "...";
    text += t;
  } else {
    text += answer.status;
  }
  // The reading is shown, but marked as one not to act on (kept short: labels share the frame;
  // the confidence is in results.jsonl and the report).
  if (answer.status == "uncertain") text += "? uncertain";
  if (answer.alarm == "low") text += " LOW";
  if (answer.alarm == "high") text += " HIGH";
  if (age_s) text += " +" + std::to_string(std::lround(std::max(0.0, *age_s))) + "s";
  return text;
}

cv::Scalar StatusColour(const RoiAnswer& answer) {
  if (IsError(answer)) return {0, 0, 230};                 // red
  if (answer.status == "uncertain") return {0, 210, 255};  // amber (never in alarm)
  if (!answer.alarm.empty()) return {0, 140, 255};         // orange
  if (answer.status == "ok") return {0, 200, 0};           // green
  return {170, 170, 170};                                  // grey: cached, skipped
}

void MergeAnswer(cv::Mat& frame, const RoiInstance& roi, const CropTransform& transform,
                 const RoiAnswer& answer, const MergeConfig& config, std::optional<double> age_s) {
  if (frame.empty() || frame.type() != CV_8UC3) return;
  const cv::Scalar colour = StatusColour(answer);
  try {
    if (HasResult(answer) && !answer.image.empty()) {
      switch (config.mode) {
        case MergeMode::kReplace:
          PasteOrBlend(frame, roi, transform, answer.image, 1.0);
          break;
        case MergeMode::kBlend:
          PasteOrBlend(frame, roi, transform, answer.image,
                       std::clamp(config.blend_alpha, 0.0, 1.0));
          break;
        case MergeMode::kInset:
          DrawInset(frame, roi, answer.image, colour);
          break;
        case MergeMode::kNone:
          break;
      }
    }
    if (!config.labels) return;
    const int thickness = frame.rows >= 720 ? 2 : 1;
    if (!roi.polygon.empty()) {
      cv::polylines(frame, roi.polygon, /*isClosed=*/true, colour, thickness);
    } else if (!roi.rect.empty()) {
      cv::rectangle(frame, roi.rect, colour, thickness);
    }
    DrawLabel(frame, roi.rect, LabelText(roi, answer, age_s), colour);
  } catch (const cv::Exception&) {
    // Drawing is best effort: a frame with a missing overlay beats a dropped frame. Inputs are
    // clipped above, so this only guards against OpenCV rejecting an unusual returned image.
  }
}

}  // namespace roilens
