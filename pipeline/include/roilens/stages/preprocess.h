// Per-frame preprocessing (resize, CLAHE, denoise, rotation) with the exact affine maps between
// original-frame and processed-image coordinates.
#pragma once

#include <opencv2/core.hpp>

#include "roilens/client/status.h"
#include "roilens/config/config.h"

namespace roilens {

/// Frame after preprocessing plus the affine map original-frame -> processed-frame coordinates
/// (and its exact inverse). Both are identity when preprocessing is a no-op.
struct PreprocessedFrame {
  cv::Mat image;  ///< BGR, 8-bit; shares the input's buffer when preprocessing is a no-op
  cv::Matx23d frame_to_image = cv::Matx23d(1, 0, 0, 0, 1, 0);
  cv::Matx23d image_to_frame = cv::Matx23d(1, 0, 0, 0, 1, 0);
  cv::Size frame_size;  ///< size of the ORIGINAL frame (image_to_frame's target)
};

/// Coordinates everywhere are continuous pixel-edge coordinates: pixel (i, j) covers
/// [i, i+1) x [j, j+1), so a rect [x, y, w, h] maps by its corners and resizing is a pure scale
/// (the convention cv::resize uses). warpAffine works on pixel centres; Preprocess converts.
///
/// Applies `config` to a BGR (or grey, converted to BGR) 8-bit frame. ROI rects in the config are
/// in ORIGINAL frame pixels; crops are cut from the processed image through frame_to_image;
/// results/merge map back through image_to_frame. An identity config returns the input without
/// copying. Thread-safe (pure function). Errors: empty frame, unsupported depth/channels.
StatusOr<PreprocessedFrame> Preprocess(const cv::Mat& bgr, const PreprocessConfig& config);

/// Applies a 2x3 affine map to a point.
cv::Point2d ApplyAffine(const cv::Matx23d& m, cv::Point2d p);
/// The axis-aligned bounding rect (rounded outward) of `rect` mapped through `m`.
cv::Rect MapRect(const cv::Matx23d& m, const cv::Rect& rect);
/// True when `m` is the identity map (exactly).
bool IsIdentityAffine(const cv::Matx23d& m);

}  // namespace roilens
