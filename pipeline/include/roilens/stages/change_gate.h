// Skips model calls for ROIs whose crop has not changed since the last answer.
#pragma once

#include <map>
#include <mutex>
#include <opencv2/core.hpp>
#include <optional>
#include <string>

#include "roilens/stages/answer.h"

namespace roilens {

/// Per-ROI-instance memory of the last answered crop. Thread-safe: every member may be called
/// concurrently (one mutex; the work under it is a 32x32 comparison).
class ChangeGate {
 public:
  /// Thumbnail side in pixels.
  static constexpr int kThumbnailSide = 32;
  /// Difference() compares kCells x kCells cells of 4x4 thumbnail pixels each.
  static constexpr int kCells = 8;

  /// A small grey thumbnail (32x32, CV_32F in 0..1) of the crop; empty for an empty crop.
  static cv::Mat Thumbnail(const cv::Mat& crop);
  /// Largest mean absolute difference (0..1) over a kCells x kCells grid of thumbnail cells: a
  /// local change (a moved needle) counts fully, sensor noise averages out. 1 when either is
  /// empty or they differ in size.
  static double Difference(const cv::Mat& a, const cv::Mat& b);
  /// The cached answer (a copy, status "cached") when the crop changed less than threshold and
  /// the answer is younger than max_age_s (now_s - stored_at <= max_age_s).
  std::optional<RoiAnswer> Lookup(const std::string& roi_key, const cv::Mat& thumbnail,
                                  double now_s, double threshold, double max_age_s) const;
  /// Remembers `answer` for roi_key, replacing an entry stored at the same or an earlier time; an
  /// answer older than the stored one is dropped (frames finish out of order). Only "ok" answers
  /// are stored; others are ignored so an error is retried on the next frame, and an uncertain
  /// reading is asked again rather than frozen in place while the crop stays the same.
  void Store(const std::string& roi_key, const cv::Mat& thumbnail, const RoiAnswer& answer,
             double now_s);

 private:
  struct Entry {
    cv::Mat thumbnail;
    RoiAnswer answer;
    double stored_at_s = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

}  // namespace roilens
