// Turning the configured ROIs into concrete regions of one preprocessed frame, and cutting crops.
#pragma once

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "roilens/client/status.h"
#include "roilens/config/config.h"
#include "roilens/stages/crop_transform.h"
#include "roilens/stages/preprocess.h"

namespace roilens {

/// One concrete ROI on one frame: a static ROI, or one instance found by `find`.
struct RoiInstance {
  int roi_index = 0;  ///< index into StationConfig::rois
  /// Config name; found instances get "<name>#<k>" (k from 0, left-to-right, top-to-bottom).
  std::string name;
  cv::Rect rect;        ///< PROCESSED-image pixels (what is cropped and merged), clipped
  cv::Rect frame_rect;  ///< the same region in ORIGINAL frame pixels (reported in results)
  std::vector<cv::Point> polygon;  ///< PROCESSED-image pixels; empty for rects
  /// The frame's PROCESSED -> ORIGINAL pixel map (PreprocessedFrame::image_to_frame), so points
  /// found in the crop (count objects) can be reported in original pixels like frame_rect.
  cv::Matx23d image_to_frame = cv::Matx23d(1, 0, 0, 0, 1, 0);
};

/// Every ROI instance of a frame, config order. Errors name the ROI. `find:"gauges"` uses a
/// circle finder (HoughCircles) inside the ROI's rect (or the whole frame if none);
/// `find:"grid"` tiles the rect into grid_rows x grid_cols. Thread-safe (pure function).
StatusOr<std::vector<RoiInstance>> FindRois(const StationConfig& config,
                                            const PreprocessedFrame& frame);

/// Circles (centre x, y, radius, in `image` pixels) that look like dial faces inside `area`,
/// radius 20-50% of the area's smaller side, sorted left-to-right then top-to-bottom.
std::vector<cv::Vec3f> FindDials(const cv::Mat& image, const cv::Rect& area);

/// A crop cut from the processed image and the map back to it.
struct Crop {
  cv::Mat image;  ///< BGR, owns its data (never aliases the frame)
  CropTransform transform;
};

/// Cuts the crop (polygon: outside masked to black) and zooms it (INTER_CUBIC up, INTER_AREA
/// down). Output frames (video) are the processed image; CropTransform::frame_rect is roi.rect.
/// Errors: empty rect, rect outside the image, zoom not in (0, 8].
StatusOr<Crop> MakeCrop(const cv::Mat& processed_image, const RoiInstance& roi, double zoom);

}  // namespace roilens
