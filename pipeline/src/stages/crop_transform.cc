// CropTransform: frame <-> crop coordinates in the pixel-edge convention that cv::resize uses, so
// points, rects and resampled images all agree.
#include "roilens/stages/crop_transform.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

namespace roilens {

CropTransform CropTransform::Make(const cv::Rect& frame_rect, double zoom) {
  CropTransform t;
  t.frame_rect = frame_rect;
  t.zoom = zoom;
  t.crop_size = cv::Size(std::max(1, static_cast<int>(std::lround(frame_rect.width * zoom))),
                         std::max(1, static_cast<int>(std::lround(frame_rect.height * zoom))));
  return t;
}

double CropTransform::ScaleX() const {
  return frame_rect.width > 0 ? static_cast<double>(crop_size.width) / frame_rect.width : zoom;
}

double CropTransform::ScaleY() const {
  return frame_rect.height > 0 ? static_cast<double>(crop_size.height) / frame_rect.height : zoom;
}

cv::Point2d CropTransform::ToCrop(cv::Point2d frame_point) const {
  return {(frame_point.x - frame_rect.x) * ScaleX(), (frame_point.y - frame_rect.y) * ScaleY()};
}

cv::Point2d CropTransform::ToFrame(cv::Point2d crop_point) const {
  return {crop_point.x / ScaleX() + frame_rect.x, crop_point.y / ScaleY() + frame_rect.y};
}

cv::Rect CropTransform::ToFrame(const cv::Rect& crop_rect) const {
  const cv::Point2d tl = ToFrame(cv::Point2d(crop_rect.x, crop_rect.y));
  const cv::Point2d br =
      ToFrame(cv::Point2d(crop_rect.x + crop_rect.width, crop_rect.y + crop_rect.height));
  constexpr double kEps = 1e-6;  // 99.9999999 from an exact scale must not grow the rect
  const int x0 = static_cast<int>(std::floor(tl.x + kEps));
  const int y0 = static_cast<int>(std::floor(tl.y + kEps));
  const int x1 = static_cast<int>(std::ceil(br.x - kEps));
  const int y1 = static_cast<int>(std::ceil(br.y - kEps));
  return cv::Rect(x0, y0, std::max(0, x1 - x0), std::max(0, y1 - y0)) & frame_rect;
}

cv::Mat CropTransform::ImageToFrame(const cv::Mat& returned) const {
  if (returned.empty() || frame_rect.width <= 0 || frame_rect.height <= 0) return {};
  cv::Mat bgr;
  if (returned.depth() != CV_8U) {
    // 16-bit PNGs and float images: scale into 8 bits the way imwrite/imshow would.
    const double scale = returned.depth() == CV_16U                                 ? 1.0 / 257.0
                         : returned.depth() == CV_32F || returned.depth() == CV_64F ? 255.0
                                                                                    : 1.0;
    returned.convertTo(bgr, CV_8U, scale);
  } else {
    bgr = returned;
  }
  if (bgr.channels() == 1) {
    cv::cvtColor(bgr, bgr, cv::COLOR_GRAY2BGR);
  } else if (bgr.channels() == 4) {
    cv::cvtColor(bgr, bgr, cv::COLOR_BGRA2BGR);
  } else if (bgr.channels() != 3) {
    return {};
  }
  if (bgr.size() == frame_rect.size()) return bgr;
  cv::Mat out;
  // Shrinking (the usual case: zoomed crops come back larger) wants INTER_AREA, which is the
  // exact inverse sampling of the zoom; growing wants a smooth interpolator.
  const bool shrinking = bgr.cols >= frame_rect.width && bgr.rows >= frame_rect.height;
  cv::resize(bgr, out, frame_rect.size(), 0, 0, shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

}  // namespace roilens
