// ChangeGate: reuse an ROI's last answer while its crop stays (nearly) the same.
#include "roilens/stages/change_gate.h"

#include <opencv2/imgproc.hpp>

namespace roilens {

cv::Mat ChangeGate::Thumbnail(const cv::Mat& crop) {
  if (crop.empty()) return {};
  cv::Mat grey;
  if (crop.channels() == 3) {
    cv::cvtColor(crop, grey, cv::COLOR_BGR2GRAY);
  } else if (crop.channels() == 4) {
    cv::cvtColor(crop, grey, cv::COLOR_BGRA2GRAY);
  } else {
    grey = crop;
  }
  // INTER_AREA averages every source pixel into the thumbnail, so sensor noise cancels out and a
  // moved needle still shifts the mean of the cells it crosses.
  cv::Mat small;
  cv::resize(grey, small, cv::Size(kThumbnailSide, kThumbnailSide), 0, 0, cv::INTER_AREA);
  cv::Mat thumbnail;
  const double scale = crop.depth() == CV_16U ? 1.0 / 65535.0 : 1.0 / 255.0;
  small.convertTo(thumbnail, CV_32F, scale);
  return thumbnail;
}

double ChangeGate::Difference(const cv::Mat& a, const cv::Mat& b) {
  if (a.empty() || b.empty() || a.size() != b.size() || a.type() != b.type()) return 1.0;
  cv::Mat diff;
  cv::absdiff(a, b, diff);
  // The mean over the whole crop hides a thin needle that moved: it changes a few percent of the
  // pixels, as much as sensor noise changes all of them. The mean over each cell of a
  // kCells x kCells grid keeps noise averaged out yet sees a local change at full strength, so
  // the largest cell mean is the measure.
  cv::Mat cells;
  cv::resize(diff, cells, cv::Size(kCells, kCells), 0, 0, cv::INTER_AREA);
  double largest = 0;
  cv::minMaxLoc(cells, nullptr, &largest);
  return largest;
}

std::optional<RoiAnswer> ChangeGate::Lookup(const std::string& roi_key, const cv::Mat& thumbnail,
                                            double now_s, double threshold,
                                            double max_age_s) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(roi_key);
  if (it == entries_.end()) return std::nullopt;
  const Entry& entry = it->second;
  if (now_s - entry.stored_at_s > max_age_s) return std::nullopt;
  if (Difference(entry.thumbnail, thumbnail) >= threshold) return std::nullopt;
  RoiAnswer cached = entry.answer;
  cached.status = "cached";
  return cached;
}

void ChangeGate::Store(const std::string& roi_key, const cv::Mat& thumbnail,
                       const RoiAnswer& answer, double now_s) {
  // Only fresh, trusted answers: storing an error would suppress its retry, storing an uncertain
  // reading would keep it (and its missing alarm) for as long as the crop stays the same, and
  // re-storing a cached one would reset its age so it would never be refreshed.
  if (answer.status != "ok" || thumbnail.empty()) return;
  Entry entry{thumbnail.clone(), answer, now_s};
  entry.answer.image = answer.image.clone();  // the caller may draw on its copy later
  std::lock_guard<std::mutex> lock(mu_);
  // Frames finish out of order under parallel workers: an answer for an older frame must not
  // replace the one for a newer frame, or the newer frames would see a stale, aged-out entry.
  auto it = entries_.find(roi_key);
  if (it != entries_.end() && it->second.stored_at_s > now_s) return;
  entries_[roi_key] = std::move(entry);
}

}  // namespace roilens
