// ROIs on one frame: static rects and polygons mapped into the processed image, dials found with
// a circle finder, grid tiles; and cutting (masked, zoomed) crops.
#include "roilens/stages/rois.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

namespace roilens {
namespace {

std::string RectText(const cv::Rect& r) {
  return "[" + std::to_string(r.x) + "," + std::to_string(r.y) + "," + std::to_string(r.width) +
         "," + std::to_string(r.height) + "]";
}

/// The original frame's bounds; derived from the image when a caller built the frame by hand.
cv::Rect FrameBounds(const PreprocessedFrame& frame) {
  if (!frame.frame_size.empty()) return {0, 0, frame.frame_size.width, frame.frame_size.height};
  return MapRect(frame.image_to_frame, cv::Rect(0, 0, frame.image.cols, frame.image.rows));
}

/// Fills rect (processed pixels, clipped) and frame_rect (original pixels, clipped) for a region
/// given in processed-image pixels.
RoiInstance InstanceFromImageRect(int roi_index, std::string name, const cv::Rect& image_rect,
                                  const PreprocessedFrame& frame) {
  RoiInstance instance;
  instance.roi_index = roi_index;
  instance.name = std::move(name);
  instance.rect = image_rect & cv::Rect(0, 0, frame.image.cols, frame.image.rows);
  instance.frame_rect = MapRect(frame.image_to_frame, instance.rect) & FrameBounds(frame);
  instance.image_to_frame = frame.image_to_frame;
  return instance;
}

/// Splits [begin, begin + length) into n nearly equal integer parts that cover it exactly.
int Boundary(int begin, int length, int i, int n) {
  return begin + static_cast<int>(static_cast<std::int64_t>(length) * i / n);
}

}  // namespace

std::vector<cv::Vec3f> FindDials(const cv::Mat& image, const cv::Rect& area) {
  const cv::Rect clipped = area & cv::Rect(0, 0, image.cols, image.rows);
  if (clipped.width < 16 || clipped.height < 16) return {};
  cv::Mat grey;
  if (image.channels() == 3) {
    cv::cvtColor(image(clipped), grey, cv::COLOR_BGR2GRAY);
  } else if (image.channels() == 4) {
    cv::cvtColor(image(clipped), grey, cv::COLOR_BGRA2GRAY);
  } else {
    grey = image(clipped).clone();
  }
  // A light blur keeps the Canny stage from seeing sensor noise and tick marks as edges.
  cv::GaussianBlur(grey, grey, cv::Size(5, 5), 1.5);
  const int min_side = std::min(clipped.width, clipped.height);
  const int min_radius = std::max(4, static_cast<int>(std::lround(min_side * 0.2)));
  const int max_radius = std::max(min_radius + 1, static_cast<int>(std::lround(min_side * 0.5)));
  std::vector<cv::Vec3f> circles;
  // HOUGH_GRADIENT_ALT scores how complete each circle is (param2 = 0.85: most of the rim must
  // be there), which rejects the partial arcs of the scale and needle hub that the classic
  // accumulator threshold lets through. Two dials cannot be closer than two minimal radii.
  cv::HoughCircles(grey, circles, cv::HOUGH_GRADIENT_ALT, /*dp=*/1.5,
                   /*minDist=*/2.0 * min_radius, /*param1=*/300, /*param2=*/0.85, min_radius,
                   max_radius);
  for (cv::Vec3f& c : circles) {
    c[0] += static_cast<float>(clipped.x);
    c[1] += static_cast<float>(clipped.y);
  }
  // Drop circles that overlap a stronger one (the ALT detector returns them strongest first):
  // concentric rims (bezel and face) of one dial must yield one instance.
  std::vector<cv::Vec3f> kept;
  for (const cv::Vec3f& c : circles) {
    const bool overlaps = std::any_of(kept.begin(), kept.end(), [&](const cv::Vec3f& k) {
      return std::hypot(c[0] - k[0], c[1] - k[1]) < std::max(c[2], k[2]);
    });
    if (!overlaps) kept.push_back(c);
  }
  // Left-to-right by column, top-to-bottom within a column. Circles whose centres are closer in x
  // than the smaller radius share a column, so the order does not flip when detection jitters by
  // a pixel (instance names must stay stable across frames for the change gate).
  std::sort(kept.begin(), kept.end(),
            [](const cv::Vec3f& a, const cv::Vec3f& b) { return a[0] < b[0]; });
  std::vector<std::vector<cv::Vec3f>> columns;
  for (const cv::Vec3f& c : kept) {
    if (!columns.empty() &&
        std::abs(c[0] - columns.back().front()[0]) < std::min(c[2], columns.back().front()[2])) {
      columns.back().push_back(c);
    } else {
      columns.push_back({c});
    }
  }
  std::vector<cv::Vec3f> sorted;
  for (auto& column : columns) {
    std::sort(column.begin(), column.end(),
              [](const cv::Vec3f& a, const cv::Vec3f& b) { return a[1] < b[1]; });
    sorted.insert(sorted.end(), column.begin(), column.end());
  }
  return sorted;
}

StatusOr<std::vector<RoiInstance>> FindRois(const StationConfig& config,
                                            const PreprocessedFrame& frame) {
  if (frame.image.empty()) return InvalidArgumentError("find rois: the frame is empty");
  const cv::Rect image_bounds(0, 0, frame.image.cols, frame.image.rows);
  std::vector<RoiInstance> out;
  try {
    for (std::size_t i = 0; i < config.rois.size(); ++i) {
      const RoiConfig& roi = config.rois[i];
      const int index = static_cast<int>(i);
      if (roi.find.empty() && !roi.polygon.empty()) {
        RoiInstance instance;
        instance.roi_index = index;
        instance.name = roi.name;
        for (const cv::Point& p : roi.polygon) {
          const cv::Point2d q = ApplyAffine(frame.frame_to_image, cv::Point2d(p.x, p.y));
          instance.polygon.emplace_back(static_cast<int>(std::lround(q.x)),
                                        static_cast<int>(std::lround(q.y)));
        }
        instance.rect = cv::boundingRect(instance.polygon) & image_bounds;
        instance.frame_rect = cv::boundingRect(roi.polygon) & FrameBounds(frame);
        instance.image_to_frame = frame.image_to_frame;
        if (instance.rect.empty()) {
          return InvalidArgumentError("roi '" + roi.name +
                                      "': polygon lies outside the processed frame");
        }
        out.push_back(std::move(instance));
        continue;
      }
      // Search area / static rect, in processed pixels.
      cv::Rect area = image_bounds;
      if (roi.rect) {
        area = MapRect(frame.frame_to_image, *roi.rect) & image_bounds;
        if (area.empty()) {
          return InvalidArgumentError("roi '" + roi.name + "': rect " + RectText(*roi.rect) +
                                      " lies outside the " + std::to_string(frame.image.cols) +
                                      "x" + std::to_string(frame.image.rows) + " processed frame");
        }
      }
      if (roi.find.empty()) {
        RoiInstance instance = InstanceFromImageRect(index, roi.name, area, frame);
        if (IsIdentityAffine(frame.frame_to_image)) instance.frame_rect = *roi.rect;
        out.push_back(std::move(instance));
      } else if (roi.find == "grid") {
        int k = 0;
        for (int r = 0; r < roi.grid_rows; ++r) {
          for (int c = 0; c < roi.grid_cols; ++c, ++k) {
            const int x0 = Boundary(area.x, area.width, c, roi.grid_cols);
            const int x1 = Boundary(area.x, area.width, c + 1, roi.grid_cols);
            const int y0 = Boundary(area.y, area.height, r, roi.grid_rows);
            const int y1 = Boundary(area.y, area.height, r + 1, roi.grid_rows);
            if (x1 <= x0 || y1 <= y0) continue;  // more tiles than pixels
            out.push_back(InstanceFromImageRect(index, roi.name + "#" + std::to_string(k),
                                                cv::Rect(x0, y0, x1 - x0, y1 - y0), frame));
          }
        }
      } else if (roi.find == "gauges") {
        const std::vector<cv::Vec3f> dials = FindDials(frame.image, area);
        for (std::size_t k = 0; k < dials.size(); ++k) {
          // A square around the dial with a 10% margin: the model sees the whole bezel.
          const double half = dials[k][2] * 1.1;
          const int x0 = static_cast<int>(std::floor(dials[k][0] - half));
          const int y0 = static_cast<int>(std::floor(dials[k][1] - half));
          const int side = static_cast<int>(std::ceil(2 * half));
          RoiInstance instance = InstanceFromImageRect(index, roi.name + "#" + std::to_string(k),
                                                       cv::Rect(x0, y0, side, side), frame);
          if (!instance.rect.empty()) out.push_back(std::move(instance));
        }
      } else {
        return InvalidArgumentError("roi '" + roi.name + "': unknown find \"" + roi.find + "\"");
      }
    }
  } catch (const cv::Exception& e) {
    return InternalError("find rois: " + std::string(e.what()));
  }
  return out;
}

StatusOr<Crop> MakeCrop(const cv::Mat& processed_image, const RoiInstance& roi, double zoom) {
  if (!(zoom > 0 && zoom <= 8)) {
    return InvalidArgumentError("roi '" + roi.name + "': zoom must be in (0, 8], got " +
                                std::to_string(zoom));
  }
  const cv::Rect bounds(0, 0, processed_image.cols, processed_image.rows);
  if (roi.rect.empty() || (roi.rect & bounds) != roi.rect) {
    return InvalidArgumentError("roi '" + roi.name + "': rect " + RectText(roi.rect) +
                                " is empty or outside the " + std::to_string(bounds.width) + "x" +
                                std::to_string(bounds.height) + " image");
  }
  try {
    Crop crop;
    crop.transform = CropTransform::Make(roi.rect, zoom);
    cv::Mat region = processed_image(roi.rect).clone();
    if (!roi.polygon.empty()) {
      cv::Mat mask = cv::Mat::zeros(region.size(), CV_8U);
      std::vector<cv::Point> local;
      local.reserve(roi.polygon.size());
      for (const cv::Point& p : roi.polygon) local.push_back(p - roi.rect.tl());
      cv::fillPoly(mask, std::vector<std::vector<cv::Point>>{local}, cv::Scalar(255));
      region.setTo(cv::Scalar::all(0), mask == 0);
    }
    if (crop.transform.crop_size == region.size()) {
      crop.image = region;
    } else {
      // Upscaling: bicubic keeps needle edges crisp for the model; downscaling: area averaging.
      const bool up = crop.transform.crop_size.width > region.cols;
      cv::resize(region, crop.image, crop.transform.crop_size, 0, 0,
                 up ? cv::INTER_CUBIC : cv::INTER_AREA);
    }
    return crop;
  } catch (const cv::Exception& e) {
    return InternalError("roi '" + roi.name + "': cannot cut the crop: " + e.what());
  }
}

}  // namespace roilens
