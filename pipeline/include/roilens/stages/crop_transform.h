// The exact, invertible map between processed-frame pixels and (possibly zoomed) crop pixels.
#pragma once

#include <opencv2/core.hpp>

namespace roilens {

/// Maps between frame pixels and crop pixels (the crop may be zoomed). Exact and invertible:
/// ToFrame(ToCrop(p)) == p up to floating-point rounding. Uses the pixel-area convention
/// (pixel centres at +0.5), the same one cv::resize uses, so a point on a pixel's centre in the
/// frame maps onto the matching position in the resized crop.
struct CropTransform {
  cv::Rect frame_rect;  ///< region of the processed frame the crop covers (= RoiInstance::rect)
  double zoom = 1;      ///< crop pixels per frame pixel
  cv::Size crop_size;   ///< = round(frame_rect.size() * zoom)

  /// Builds a transform with crop_size = round(rect.size() * zoom) (at least 1x1).
  static CropTransform Make(const cv::Rect& frame_rect, double zoom);

  /// Horizontal/vertical scale actually used (crop_size / frame_rect.size()); equals zoom
  /// except for rounding of crop_size.
  double ScaleX() const;
  double ScaleY() const;

  cv::Point2d ToCrop(cv::Point2d frame_point) const;
  cv::Point2d ToFrame(cv::Point2d crop_point) const;
  /// Frame rect covering a crop rect (rounded outward, clipped to frame_rect).
  cv::Rect ToFrame(const cv::Rect& crop_rect) const;
  /// Resamples an image returned by the model (any size; assumed to cover the whole crop) back
  /// to frame_rect.size() so it can be pasted at frame_rect. Grey/BGRA inputs are converted to
  /// BGR; an empty input gives an empty Mat.
  cv::Mat ImageToFrame(const cv::Mat& returned) const;
};

}  // namespace roilens
