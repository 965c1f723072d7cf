// Gauge calibration from a reference frame (see calibrate.h): ink map against a local background,
// polar scan around a centre estimate, tick ring = the radius where many short radial ink runs
// end, refined by fitting a circle to the ticks' outer ends until the centre settles (the pivot).
#include "roilens/config/calibrate.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <opencv2/imgproc.hpp>

#include "roilens/stages/rois.h"

namespace roilens {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kAngleBins = 720;  ///< polar scan rows: 0.5 degree each
/// How far (degrees) a found scale end may lie from the config's: the config's angles need only
/// be rough (a user reading them off the dial by eye), but not wrong by a tick group.
constexpr double kMaxHintDisagreementDeg = 40;

double Wrap360(double a) {
  a = std::fmod(a, 360.0);
  return a < 0 ? a + 360.0 : a;
}

/// A dial-sized blob of ink: pixels that differ from the local background in the ink's
/// direction (dark ink on a light face or light ink on a dark face).
/// `needle_mask` (when given) also takes fainter ink and strongly coloured pixels: needles are
/// often red or orange, of less grey contrast than the printed ticks.
cv::Mat InkMask(const cv::Mat& image, const cv::Mat& grey, cv::Point2d centre, double radius,
                cv::Mat* needle_mask = nullptr) {
  int k = std::max(5, int(std::lround(radius * 0.12)) | 1);
  cv::Mat background;
  cv::medianBlur(grey, background, std::min(k, 255));
  cv::Mat diff;
  cv::subtract(grey, background, diff, cv::noArray(), CV_16S);
  cv::Mat disc = cv::Mat::zeros(grey.size(), CV_8U);
  cv::circle(disc, cv::Point(int(std::lround(centre.x)), int(std::lround(centre.y))),
             int(std::lround(radius * 0.95)), cv::Scalar(255), -1);
  // The ink is the side with the larger strong deviations inside the face.
  std::vector<int> dark, light;
  for (int y = 0; y < diff.rows; ++y) {
    const short* d = diff.ptr<short>(y);
    const uchar* m = disc.ptr<uchar>(y);
    for (int x = 0; x < diff.cols; ++x) {
      if (!m[x]) continue;
      if (d[x] < 0) dark.push_back(-d[x]);
      if (d[x] > 0) light.push_back(d[x]);
    }
  }
  auto percentile = [](std::vector<int>& v, double p) {
    if (v.empty()) return 0;
    auto it = v.begin() + std::ptrdiff_t((v.size() - 1) * p);
    std::nth_element(v.begin(), it, v.end());
    return *it;
  };
  const std::size_t n = std::max<std::size_t>(1, std::size_t(cv::countNonZero(disc)));
  // strength of a polarity: how far its top 2% of the face's pixels reach
  auto strength = [&](std::vector<int>& v) {
    if (v.size() < n / 50) return 0;
    return percentile(v, 1.0 - double(n) / 50.0 / double(v.size()));
  };
  const int dark_strength = strength(dark), light_strength = strength(light);
  const bool ink_dark = dark_strength >= light_strength;
  const double threshold = std::max(12.0, 0.45 * std::max(dark_strength, light_strength));
  cv::Mat signed_diff = ink_dark ? cv::Mat(-diff) : diff;
  cv::Mat mask = signed_diff > threshold;
  if (needle_mask) {
    *needle_mask = signed_diff > std::max(10.0, 0.2 * std::max(dark_strength, light_strength));
    if (image.channels() == 3) {
      // colour far from the local background (a red needle on a blue face has little grey
      // contrast)
      cv::Mat colour_background, distance;
      cv::medianBlur(image, colour_background, std::min(k, 255));
      cv::Mat diff3;
      cv::absdiff(image, colour_background, diff3);
      diff3.convertTo(diff3, CV_32F);
      diff3 = diff3.mul(diff3);
      cv::transform(diff3, distance, cv::Matx13f(1, 1, 1));
      *needle_mask |= distance > 80.0 * 80.0;
    }
  }
  return mask;
}

struct Run {
  double r_in, r_out;
};

/// Radial ink runs per angle row of a polar scan of `mask` around `centre` (rows: angle in image
/// coordinates, 0.5 degree each; columns: radius, 1 pixel each up to max_r).
std::vector<std::vector<Run>> RadialRuns(const cv::Mat& mask, cv::Point2d centre, double max_r,
                                         cv::Mat* polar_out = nullptr) {
  cv::Mat polar;
  const int cols = std::max(8, int(std::lround(max_r)));
  cv::warpPolar(mask, polar, cv::Size(cols, kAngleBins), cv::Point2f(centre), max_r,
                int(cv::INTER_LINEAR) | int(cv::WARP_POLAR_LINEAR) | int(cv::WARP_FILL_OUTLIERS));
  polar = polar > 127;
  std::vector<std::vector<Run>> runs(kAngleBins);
  const double px = max_r / cols;
  for (int row = 0; row < polar.rows; ++row) {
    const uchar* p = polar.ptr<uchar>(row);
    int start = -1;
    for (int c = 0; c <= polar.cols; ++c) {
      const bool ink = c < polar.cols && p[c];
      if (ink && start < 0) start = c;
      if (!ink && start >= 0) {
        runs[row].push_back({start * px, c * px});
        start = -1;
      }
    }
  }
  if (polar_out) *polar_out = polar;
  return runs;
}

/// Image angle of a polar row (y down) -> gauge angle (0 = 3 o'clock, CCW positive).
double RowToGaugeAngle(double row) { return Wrap360(-row * 360.0 / kAngleBins); }

cv::Point2d Polar(cv::Point2d centre, double r, double gauge_angle_deg) {
  const double a = gauge_angle_deg * kPi / 180.0;
  return {centre.x + r * std::cos(a), centre.y - r * std::sin(a)};
}

/// Algebraic circle fit (Kasa) with one pass of outlier removal. Returns centre, radius, RMS.
bool FitCircle(const std::vector<cv::Point2d>& points, cv::Point2d& centre, double& radius,
               double& rms) {
  std::vector<cv::Point2d> use = points;
  for (int pass = 0; pass < 3; ++pass) {
    if (use.size() < 3) return false;
    cv::Mat A(int(use.size()), 3, CV_64F), b(int(use.size()), 1, CV_64F);
    for (int i = 0; i < int(use.size()); ++i) {
      A.at<double>(i, 0) = use[i].x;
      A.at<double>(i, 1) = use[i].y;
      A.at<double>(i, 2) = 1;
      b.at<double>(i) = -(use[i].x * use[i].x + use[i].y * use[i].y);
    }
    cv::Mat s;
    if (!cv::solve(A, b, s, cv::DECOMP_SVD)) return false;
    centre = {-s.at<double>(0) / 2, -s.at<double>(1) / 2};
    const double r2 = centre.x * centre.x + centre.y * centre.y - s.at<double>(2);
    if (!(r2 > 0)) return false;
    radius = std::sqrt(r2);
    std::vector<double> res;
    for (const auto& p : use) res.push_back(std::abs(cv::norm(p - centre) - radius));
    double sq = 0;
    for (double r : res) sq += r * r;
    rms = std::sqrt(sq / double(res.size()));
    std::vector<double> sorted = res;
    std::nth_element(sorted.begin(), sorted.begin() + std::ptrdiff_t(sorted.size() / 2),
                     sorted.end());
    const double limit = std::max(1.5, 3.0 * sorted[sorted.size() / 2]);
    std::vector<cv::Point2d> kept;
    for (std::size_t i = 0; i < use.size(); ++i)
      if (res[i] <= limit) kept.push_back(use[i]);
    if (kept.size() == use.size()) break;
    use = std::move(kept);
  }
  return true;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
  return v[v.size() / 2];
}

struct RingScan {
  cv::Point2d centre;
  double ring_r = 0;
  std::vector<DetectedTick> ticks;
  int tick_rows = 0;  ///< polar rows covered by the ticks (their angular width, summed)
};

/// Ticks whose outer ends lie within `tolerance` of the ring `ring` (radius, pixels).
RingScan GroupTicks(const std::vector<std::vector<Run>>& runs, cv::Point2d centre, double ring,
                    double tolerance, double min_len, double max_len) {
  RingScan scan;
  scan.centre = centre;
  // Rows with a run ending on the ring; neighbouring rows form one tick.
  std::vector<const Run*> hit(kAngleBins, nullptr);
  for (int row = 0; row < kAngleBins; ++row)
    for (const Run& r : runs[std::size_t(row)]) {
      const double len = r.r_out - r.r_in;
      if (len >= min_len && len <= max_len && std::abs(r.r_out - ring) <= tolerance)
        hit[std::size_t(row)] = &r;
    }
  int first_gap = -1;
  for (int row = 0; row < kAngleBins; ++row)
    if (!hit[std::size_t(row)]) {
      first_gap = row;
      break;
    }
  if (first_gap < 0) return scan;  // ink all round: an arc or a rim, not ticks
  const int max_rows = int(std::lround(8.0 / (360.0 / kAngleBins)));  // a tick is < 8 degrees
  for (int k = 1; k <= kAngleBins; ++k) {
    const int row = (first_gap + k) % kAngleBins;
    if (!hit[std::size_t(row)] || hit[std::size_t((row + kAngleBins - 1) % kAngleBins)]) continue;
    std::vector<double> ins, outs;
    double sum_w = 0, sum_a = 0;
    int n = 0;
    for (int j = row; hit[std::size_t(j % kAngleBins)] && n < kAngleBins; ++j, ++n) {
      const Run& r = *hit[std::size_t(j % kAngleBins)];
      const double w = r.r_out - r.r_in;
      sum_w += w;
      sum_a += w * j;
      ins.push_back(r.r_in);
      outs.push_back(r.r_out);
    }
    if (n > max_rows) continue;
    scan.tick_rows += n;
    DetectedTick t;
    t.angle_deg = RowToGaugeAngle(sum_a / sum_w);
    t.inner_r = Median(ins);
    t.outer_r = Median(outs);
    scan.ticks.push_back(t);
  }
  std::sort(scan.ticks.begin(), scan.ticks.end(),
            [](const DetectedTick& a, const DetectedTick& b) { return a.angle_deg < b.angle_deg; });
  // One tick seen as two (a row lost to noise or a thin gap): pieces much closer than the usual
  // spacing are merged.
  if (scan.ticks.size() >= 4) {
    std::vector<double> spacing;
    for (std::size_t i = 0; i + 1 < scan.ticks.size(); ++i)
      spacing.push_back(scan.ticks[i + 1].angle_deg - scan.ticks[i].angle_deg);
    const double close = std::min(3.0, 0.4 * Median(spacing));
    std::vector<DetectedTick> merged;
    for (const DetectedTick& t : scan.ticks) {
      if (!merged.empty() && t.angle_deg - merged.back().angle_deg < close) {
        DetectedTick& m = merged.back();
        m.angle_deg = (m.angle_deg + t.angle_deg) / 2;
        m.inner_r = std::min(m.inner_r, t.inner_r);
        m.outer_r = std::max(m.outer_r, t.outer_r);
      } else {
        merged.push_back(t);
      }
    }
    scan.ticks = std::move(merged);
  }
  scan.ring_r = ring;
  return scan;
}

/// How much `ticks` (by angle) look like a scale: the number of neighbour spacings within 25%
/// of the median spacing.
double Regularity(const RingScan& scan) {
  const std::vector<DetectedTick>& ticks = scan.ticks;
  if (ticks.size() < 3) return double(ticks.size()) - 3;
  std::vector<double> spacing;
  for (std::size_t i = 0; i + 1 < ticks.size(); ++i)
    spacing.push_back(ticks[i + 1].angle_deg - ticks[i].angle_deg);
  const double median = Median(spacing);
  // Ticks are narrow next to their spacing; marks as wide as the gaps between them are a ring
  // (an arc, the face's edge) broken up by noise.
  const double width_deg = scan.tick_rows * 360.0 / kAngleBins / double(ticks.size());
  if (width_deg > 0.45 * median) return 0;
  return double(std::count_if(spacing.begin(), spacing.end(),
                              [&](double s) { return std::abs(s - median) <= 0.25 * median; }));
}

/// Ticks around `centre`: short radial runs (not reaching the hub) whose outer ends lie on one
/// ring. `tolerance` is how far an outer end may sit from the ring (pixels).
RingScan ScanTicks(const cv::Mat& mask, cv::Point2d centre, double dial_r, double tolerance,
                   double near_ring = 0) {
  RingScan scan;
  scan.centre = centre;
  const double max_r = dial_r * 1.12;
  const auto runs = RadialRuns(mask, centre, max_r);
  const double min_len = std::max(3.0, 0.04 * dial_r), max_len = 0.35 * dial_r;
  // Histogram of the outer ends of tick-like runs: the ring is where most of them stop.
  std::vector<double> hist(std::size_t(std::ceil(max_r)) + 2, 0);
  for (const auto& row : runs)
    for (const Run& r : row) {
      const double len = r.r_out - r.r_in;
      if (len < min_len || len > max_len || r.r_in < 0.35 * dial_r || r.r_out > 1.1 * dial_r)
        continue;
      hist[std::size_t(r.r_out)] += 1;
    }
  const int half = std::max(1, int(std::lround(tolerance / 2)));
  std::vector<double> smooth(hist.size(), 0);
  for (int i = 0; i < int(hist.size()); ++i)
    for (int j = std::max(0, i - half); j <= std::min(int(hist.size()) - 1, i + half); ++j)
      smooth[std::size_t(i)] += hist[std::size_t(j)];
  std::vector<int> peaks;
  std::vector<double> left = smooth;
  for (int p = 0; p < 6; ++p) {
    const int at = int(std::max_element(left.begin(), left.end()) - left.begin());
    if (left[std::size_t(at)] <= 0) break;
    peaks.push_back(at);
    for (int j = std::max(0, at - 3 * half); j <= std::min(int(left.size()) - 1, at + 3 * half);
         ++j)
      left[std::size_t(j)] = 0;
  }
  // Of the strongest radii, the ring is the one whose marks are most regularly spaced: a ring of
  // numerals can gather more ink than thin ticks, but its strokes fall at irregular angles.
  double best_score = -1;
  for (int at : peaks) {
    // Refining around a new centre keeps to the ring already chosen.
    if (near_ring > 0 && std::abs(at + 0.5 - near_ring) > std::max(3 * tolerance, 0.06 * dial_r))
      continue;
    RingScan candidate = GroupTicks(runs, centre, at + 0.5, tolerance, min_len, max_len);
    const double score = Regularity(candidate);
    if (score > best_score) best_score = score, scan = std::move(candidate);
  }
  return scan;
}

/// Splits tick lengths into minor and major (1-D two-means); all major when they hardly differ.
void ClassifyTicks(std::vector<DetectedTick>& ticks) {
  std::vector<double> len;
  for (const auto& t : ticks) len.push_back(t.outer_r - t.inner_r);
  double lo = *std::min_element(len.begin(), len.end());
  double hi = *std::max_element(len.begin(), len.end());
  if (hi < 1.3 * lo) {
    for (auto& t : ticks) t.major = true;
    return;
  }
  for (int it = 0; it < 20; ++it) {
    double s_lo = 0, s_hi = 0;
    int n_lo = 0, n_hi = 0;
    const double mid = (lo + hi) / 2;
    for (double l : len) (l > mid ? (s_hi += l, ++n_hi) : (s_lo += l, ++n_lo));
    if (!n_lo || !n_hi) break;
    lo = s_lo / n_lo;
    hi = s_hi / n_hi;
  }
  const double mid = (lo + hi) / 2;
  const auto n_major = std::count_if(len.begin(), len.end(), [&](double l) { return l > mid; });
  const auto n_minor = std::ptrdiff_t(len.size()) - n_major;
  // A scale has at least about one minor tick per major interval; a few short ones are ticks
  // partly hidden by the needle, not a second class.
  const bool two_classes = hi >= 1.3 * lo && n_minor >= std::max<std::ptrdiff_t>(2, n_major - 2);
  for (std::size_t i = 0; i < ticks.size(); ++i) ticks[i].major = !two_classes || len[i] > mid;
}

/// True when the (descending) major angles sit on an even grid from the first to the last,
/// allowing up to two majors to be missing (hidden by the needle or glare).
bool EvenlySpaced(const std::vector<double>& angles, double tolerance_deg) {
  const int m = int(angles.size());
  const double sweep = angles.front() - angles.back();
  for (int k = m - 1; k <= m + 1; ++k) {
    const double step = sweep / k;
    int previous = -1;
    bool fits = true;
    for (double a : angles) {
      const int j = int(std::lround((angles.front() - a) / step));
      if (j <= previous || std::abs(angles.front() - j * step - a) > tolerance_deg) {
        fits = false;
        break;
      }
      previous = j;
    }
    if (fits) return true;
  }
  return false;
}

/// The needle's angle: the row of the polar scan with the most ink between the hub and the
/// numerals (a long radial run through the inner part of the face).
std::optional<double> FindNeedle(const cv::Mat& mask, cv::Point2d pivot, double ring_r) {
  cv::Mat polar;
  RadialRuns(mask, pivot, ring_r, &polar);
  const int c0 = int(0.15 * polar.cols), c1 = int(0.6 * polar.cols);
  std::vector<double> cover(kAngleBins, 0);
  for (int row = 0; row < kAngleBins; ++row)
    cover[std::size_t(row)] =
        double(cv::countNonZero(polar.row(row).colRange(c0, c1))) / double(c1 - c0);
  // smooth over +-1 degree so a thin needle split across rows still wins
  std::vector<double> smooth(kAngleBins, 0);
  for (int row = 0; row < kAngleBins; ++row)
    for (int d = -2; d <= 2; ++d)
      smooth[std::size_t(row)] += cover[std::size_t((row + d + kAngleBins) % kAngleBins)];
  const int best = int(std::max_element(smooth.begin(), smooth.end()) - smooth.begin());
  if (cover[std::size_t(best)] < 0.6 && smooth[std::size_t(best)] < 5 * 0.6) return std::nullopt;
  double sw = 0, sa = 0;
  for (int d = -6; d <= 6; ++d) {
    const double w = cover[std::size_t((best + d + kAngleBins) % kAngleBins)];
    if (w < 0.5) continue;
    sw += w;
    sa += w * (best + d);
  }
  return RowToGaugeAngle(sw > 0 ? sa / sw : best);
}

}  // namespace

StatusOr<GaugeGeometry> CalibrateGauge(const cv::Mat& crop, const GaugeCalibration& hints,
                                       const CalibrateOptions& options) {
  if (crop.empty() || crop.depth() != CV_8U)
    return InvalidArgumentError("calibrate: the crop must be a non-empty 8-bit image");
  cv::Mat grey;
  if (crop.channels() == 3)
    cv::cvtColor(crop, grey, cv::COLOR_BGR2GRAY);
  else if (crop.channels() == 4)
    cv::cvtColor(crop, grey, cv::COLOR_BGRA2GRAY);
  else
    grey = crop;
  GaugeGeometry g;
  g.crop_size = crop.size();
  const double side = std::min(crop.cols, crop.rows);
  if (side < 48) return InvalidArgumentError("calibrate: the crop is too small (under 48 px)");

  // Candidate dials: Hough face circles (strongest first), then the crop's centre.
  std::vector<cv::Vec3f> dials;
  try {
    dials = FindDials(crop, cv::Rect(0, 0, crop.cols, crop.rows));
  } catch (const cv::Exception&) {
  }
  std::vector<std::pair<cv::Vec3f, bool>> candidates;
  for (const auto& d : dials) candidates.push_back({d, true});
  candidates.push_back(
      {cv::Vec3f(float(crop.cols / 2.0), float(crop.rows / 2.0), float(side * 0.47)), false});
  RingScan best;
  cv::Mat best_mask;
  bool best_found = false;
  cv::Vec3f best_dial;
  double best_rms = 0;
  for (const auto& [dial, found] : candidates) {
    const cv::Point2d face(dial[0], dial[1]);
    const double R = dial[2];
    cv::Mat needle_mask;
    const cv::Mat mask = InkMask(crop, grey, face, R, &needle_mask);
    RingScan scan = ScanTicks(mask, face, R, std::max(2.0, 0.05 * R));
    double rms = 0;
    // Refine: the ring's centre is the pivot; rescan around it until it settles.
    for (int iteration = 0; iteration < 6 && int(scan.ticks.size()) >= 3; ++iteration) {
      std::vector<cv::Point2d> ends;
      for (const auto& t : scan.ticks) ends.push_back(Polar(scan.centre, t.outer_r, t.angle_deg));
      cv::Point2d c;
      double r = 0;
      if (!FitCircle(ends, c, r, rms)) break;
      if (cv::norm(c - face) > 0.35 * R) break;  // not concentric with this face
      const double moved = cv::norm(c - scan.centre);
      RingScan next = ScanTicks(mask, c, R, std::max(2.0, 0.025 * R), scan.ring_r);
      if (next.ticks.size() < scan.ticks.size() * 3 / 4) break;
      scan = std::move(next);
      if (moved < 0.25) break;
    }
    if (scan.ticks.size() > best.ticks.size()) {
      best = std::move(scan);
      best_mask = needle_mask;
      best_found = found;
      best_dial = dial;
      best_rms = rms;
    }
    if (int(best.ticks.size()) >= options.min_ticks && found) break;
  }
  if (best.ticks.empty() && dials.empty())
    return NotFoundError("no dial found (no face circle and no ring of tick marks)");
  if (int(best.ticks.size()) < options.min_ticks)
    return FailedPreconditionError("too few tick marks: found " +
                                   std::to_string(best.ticks.size()) + ", need at least " +
                                   std::to_string(options.min_ticks));

  g.dial_centre = {best_dial[0], best_dial[1]};
  g.dial_radius = best_dial[2];
  g.dial_found = best_found;
  g.ticks = best.ticks;
  // Final ring: circle through the outer ends seen from the settled centre.
  {
    std::vector<cv::Point2d> ends;
    for (const auto& t : g.ticks) ends.push_back(Polar(best.centre, t.outer_r, t.angle_deg));
    cv::Point2d c;
    double r = 0, rms = best_rms;
    if (FitCircle(ends, c, r, rms)) {
      g.pivot = c;
      g.ring_radius = r;
      g.ring_residual_px = rms;
    } else {
      g.pivot = best.centre;
      g.ring_radius = best.ring_r;
    }
  }
  ClassifyTicks(g.ticks);
  g.needle_angle_deg = FindNeedle(best_mask, g.pivot, g.ring_radius);

  // The dead zone is the widest gap between neighbouring ticks; the scale runs clockwise from
  // the tick after it (counter-clockwise end, min) to the tick before it (max).
  const std::size_t n = g.ticks.size();
  std::size_t gap_after = 0;
  double widest = -1;
  for (std::size_t i = 0; i < n; ++i) {
    const double gap = Wrap360(g.ticks[(i + 1) % n].angle_deg - g.ticks[i].angle_deg);
    if (gap > widest) widest = gap, gap_after = i;
  }
  g.dead_zone_deg = widest;
  // Ticks along the scale from the min end (largest unwrapped angle) clockwise.
  std::vector<std::size_t> order;
  for (std::size_t k = 0; k < n; ++k) order.push_back((gap_after + n - k) % n);
  std::vector<double> unwrapped;
  for (std::size_t k = 0; k < n; ++k) {
    const double a = g.ticks[order[k]].angle_deg;
    unwrapped.push_back(k == 0 ? a : unwrapped[0] - Wrap360(unwrapped[0] - a));
  }
  std::vector<std::size_t> majors;
  for (std::size_t k = 0; k < n; ++k)
    if (g.ticks[order[k]].major) majors.push_back(k);
  if (majors.size() < 2) {  // one long tick is an odd one out, not the scale's ends
    majors.clear();
    for (std::size_t k = 0; k < n; ++k) majors.push_back(k), g.ticks[order[k]].major = true;
  }
  const std::size_t first = majors.empty() ? 0 : majors.front();
  const std::size_t last = majors.empty() ? n - 1 : majors.back();
  for (std::size_t k = first; k <= last; ++k) g.ticks[order[k]].on_scale = true;
  g.major_ticks = int(majors.size());
  double min_a = unwrapped[first], max_a = unwrapped[last];
  const double shift = 360.0 * std::round((hints.min_angle_deg - min_a) / 360.0);
  min_a += shift;
  max_a += shift;
  g.min_angle_deg = min_a;
  g.max_angle_deg = max_a;
  // The config's end angles are rough, but a scale found far from them is more likely a wrong
  // ring or a dead zone taken from hidden ticks than a wrong config.
  if (std::abs(min_a - hints.min_angle_deg) > kMaxHintDisagreementDeg ||
      std::abs(max_a - hints.max_angle_deg) > kMaxHintDisagreementDeg)
    return FailedPreconditionError("the scale found (" + std::to_string(int(std::lround(min_a))) +
                                   " to " + std::to_string(int(std::lround(max_a))) +
                                   " degrees) is more than " +
                                   std::to_string(int(kMaxHintDisagreementDeg)) +
                                   " degrees from the config's min_angle_deg/max_angle_deg (" +
                                   std::to_string(int(std::lround(hints.min_angle_deg))) + ", " +
                                   std::to_string(int(std::lround(hints.max_angle_deg))) +
                                   "); give them roughly, or check the ROI");
  if (!(min_a - max_a > 10))
    return FailedPreconditionError("the ticks found do not form a scale (sweep " +
                                   std::to_string(int(min_a - max_a)) + " degrees)");

  // A scale's ticks are spread along it: no gap much wider than the usual spacing (a tick or
  // two hidden by the needle is fine). Text and stray marks picked up as ticks are not.
  {
    std::vector<double> gaps;
    for (std::size_t k = first; k < last; ++k) gaps.push_back(unwrapped[k] - unwrapped[k + 1]);
    const double widest_in_scale = gaps.empty() ? 0 : *std::max_element(gaps.begin(), gaps.end());
    if (gaps.size() < 3 || widest_in_scale > std::max(30.0, 3.5 * Median(gaps)))
      return FailedPreconditionError("the tick marks found do not form a regular scale (" +
                                     std::to_string(n) + " marks, widest gap " +
                                     std::to_string(int(widest_in_scale)) + " degrees)");
  }

  // Non-linear: majors evenly spaced in value (as labelled) but not in angle.
  if (majors.size() >= 3) {
    const double m = double(majors.size() - 1);
    std::vector<double> major_angles;
    for (std::size_t k : majors) major_angles.push_back(unwrapped[k] + shift);
    if (!EvenlySpaced(major_angles, options.nonlinear_tolerance_deg)) {
      const bool keep_values = hints.scale.size() == majors.size();
      for (std::size_t i = 0; i < majors.size(); ++i) {
        ScalePoint p;
        p.value = keep_values
                      ? hints.scale[i].value
                      : hints.min_value + (hints.max_value - hints.min_value) * double(i) / m;
        p.angle_deg = unwrapped[majors[i]] + shift;
        g.scale.push_back(p);
      }
      if (!keep_values && !hints.scale.empty())
        g.warnings.push_back("the config's scale has " + std::to_string(hints.scale.size()) +
                             " points but " + std::to_string(majors.size()) +
                             " major ticks were found: values interpolated from min to max");
    }
  }

  const double hint_sweep = hints.min_angle_deg - hints.max_angle_deg;
  if (std::abs(min_a - hints.min_angle_deg) > 15 || std::abs(max_a - hints.max_angle_deg) > 15)
    g.warnings.push_back("end angles differ from the config's (" +
                         std::to_string(hints.min_angle_deg) + ", " +
                         std::to_string(hints.max_angle_deg) + ") by more than 15 degrees");
  if (hint_sweep <= 0) g.warnings.push_back("the config's scale is not clockwise");

  g.calibration = hints;
  g.calibration.pivot = cv::Point2d(std::clamp(g.pivot.x / crop.cols, 0.0, 1.0),
                                    std::clamp(g.pivot.y / crop.rows, 0.0, 1.0));
  g.calibration.radius = std::clamp(g.ring_radius / side, 1e-3, 1.0);
  g.calibration.scale = g.scale;
  if (g.scale.empty()) {
    g.calibration.min_angle_deg = min_a;
    g.calibration.max_angle_deg = max_a;
  } else {
    g.calibration.min_value = g.scale.front().value;
    g.calibration.max_value = g.scale.back().value;
    g.calibration.min_angle_deg = GaugeAngleForValue(g.calibration, g.calibration.min_value);
    g.calibration.max_angle_deg = GaugeAngleForValue(g.calibration, g.calibration.max_value);
  }
  return g;
}

std::optional<double> CalibratedReading(const GaugeGeometry& geometry) {
  if (!geometry.needle_angle_deg) return std::nullopt;
  return GaugeValueForAngle(geometry.calibration, *geometry.needle_angle_deg);
}

cv::Mat DrawCalibrationOverlay(const cv::Mat& crop, const GaugeGeometry& g) {
  cv::Mat img;
  if (crop.channels() == 1)
    cv::cvtColor(crop, img, cv::COLOR_GRAY2BGR);
  else if (crop.channels() == 4)
    cv::cvtColor(crop, img, cv::COLOR_BGRA2BGR);
  else
    img = crop.clone();
  const double k = std::max(1.0, 480.0 / std::max(1, std::min(img.cols, img.rows)));
  if (k > 1) cv::resize(img, img, cv::Size(), k, k, cv::INTER_CUBIC);
  // Dim the picture so the marks stand out.
  img = img * 0.6 + cv::Scalar::all(40);
  constexpr int kShift = 4;
  auto fixed = [&](cv::Point2d p) {
    return cv::Point(int(std::lround(p.x * k * (1 << kShift))),
                     int(std::lround(p.y * k * (1 << kShift))));
  };
  auto at = [&](cv::Point2d p) { return cv::Point(int(p.x * k), int(p.y * k)); };
  const int thick = std::max(1, int(std::lround(k)));
  const cv::Scalar green(60, 220, 60), major(0, 200, 255), minor(255, 200, 0), red(60, 60, 255),
      magenta(255, 60, 255), white(255, 255, 255);
  // face circle (thin) and the scale arc
  cv::circle(img, fixed(g.dial_centre), int(std::lround(g.dial_radius * k * (1 << kShift))),
             cv::Scalar(160, 160, 160), 1, cv::LINE_AA, kShift);
  cv::ellipse(img, fixed(g.pivot),
              cv::Size(int(std::lround(g.ring_radius * k * (1 << kShift))),
                       int(std::lround(g.ring_radius * k * (1 << kShift)))),
              0, -g.min_angle_deg, -g.max_angle_deg, green, 2 * thick, cv::LINE_AA, kShift);
  for (const auto& t : g.ticks) {
    cv::line(img, fixed(Polar(g.pivot, t.inner_r, t.angle_deg)),
             fixed(Polar(g.pivot, t.outer_r, t.angle_deg)),
             t.on_scale ? (t.major ? major : minor) : red, t.major ? 2 * thick : thick, cv::LINE_AA,
             kShift);
  }
  auto label = [&](std::string text, cv::Point2d p, const cv::Scalar& colour) {
    // Hershey fonts are ASCII only: "°C" is shown as "C"
    std::erase_if(text, [](char ch) { return static_cast<unsigned char>(ch) >= 0x80; });
    int base = 0;
    const double scale = 0.5 * std::max(1.0, k * 0.8);
    const cv::Size ts = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, thick, &base);
    cv::Point o = at(p) - cv::Point(ts.width / 2, -ts.height / 2);
    o.x = std::clamp(o.x, 2, std::max(2, img.cols - ts.width - 2));
    o.y = std::clamp(o.y, ts.height + 2, std::max(ts.height + 2, img.rows - 4));
    cv::putText(img, text, o, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(0, 0, 0), thick + 2,
                cv::LINE_AA);
    cv::putText(img, text, o, cv::FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv::LINE_AA);
  };
  auto number = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", std::round(v * 1000) / 1000);
    return std::string(buf);
  };
  const GaugeCalibration& c = g.calibration;
  label("min " + number(c.min_value), Polar(g.pivot, g.ring_radius * 1.12, g.min_angle_deg), green);
  label("max " + number(c.max_value), Polar(g.pivot, g.ring_radius * 1.12, g.max_angle_deg), green);
  for (const ScalePoint& p : g.scale)
    cv::circle(img, fixed(Polar(g.pivot, g.ring_radius, p.angle_deg)), 4 * thick * (1 << kShift),
               green, thick, cv::LINE_AA, kShift);
  if (g.needle_angle_deg) {
    cv::line(img, fixed(g.pivot), fixed(Polar(g.pivot, g.ring_radius * 0.9, *g.needle_angle_deg)),
             magenta, 2 * thick, cv::LINE_AA, kShift);
    const auto reading = CalibratedReading(g);
    label("reading " + number(*reading) + (c.unit.empty() ? "" : " " + c.unit),
          Polar(g.pivot, g.ring_radius * 0.45, *g.needle_angle_deg + 180), magenta);
  }
  const cv::Point p = at(g.pivot);
  cv::drawMarker(img, p, white, cv::MARKER_CROSS, 14 * thick, 3 * thick, cv::LINE_AA);
  cv::drawMarker(img, p, red, cv::MARKER_CROSS, 14 * thick, thick, cv::LINE_AA);
  return img;
}

void WriteCalibration(const GaugeGeometry& g, nlohmann::json& gauge) {
  if (!gauge.is_object()) gauge = nlohmann::json::object();
  auto round = [](double v, double q) { return std::round(v / q) * q; };
  const GaugeCalibration& c = g.calibration;
  gauge["pivot"] = {round(c.pivot->x, 1e-4), round(c.pivot->y, 1e-4)};
  gauge["radius"] = round(*c.radius, 1e-4);
  if (g.scale.empty()) {
    gauge.erase("scale");
    gauge["min_angle_deg"] = round(c.min_angle_deg, 0.01);
    gauge["max_angle_deg"] = round(c.max_angle_deg, 0.01);
  } else {
    gauge.erase("min_angle_deg");
    gauge.erase("max_angle_deg");
    nlohmann::json scale = nlohmann::json::array();
    for (const ScalePoint& p : g.scale) scale.push_back({p.value, round(p.angle_deg, 0.01)});
    gauge["scale"] = scale;
  }
}

}  // namespace roilens
