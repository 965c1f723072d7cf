// Synthetic gauges, parts trays and the sample station (video, configs, ground truth).
#include "roilens/samples.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <sstream>

namespace roilens {
namespace {

using nlohmann::json;
constexpr double kPi = 3.14159265358979323846;
constexpr int kShift = 4;  // sub-pixel bits for anti-aliased drawing
constexpr double kOne = 1 << kShift;

cv::Point Fixed(cv::Point2d p) {
  return {static_cast<int>(std::lround(p.x * kOne)), static_cast<int>(std::lround(p.y * kOne))};
}

/// Point at `radius` from `centre` in direction `deg` (CCW positive, 0 = 3 o'clock).
cv::Point2d Polar(cv::Point2d centre, double radius, double deg) {
  const double t = deg * kPi / 180.0;
  return {centre.x + radius * std::cos(t), centre.y - radius * std::sin(t)};
}

double Sweep(const GaugeStyle& s) {
  double sweep = std::fmod(s.min_angle_deg - s.max_angle_deg, 360.0);
  if (sweep <= 0) sweep += 360.0;
  return sweep;
}

double ValueToAngle(const GaugeStyle& s, double value) {
  const double v =
      std::clamp(value, std::min(s.min_value, s.max_value), std::max(s.min_value, s.max_value));
  if (s.scale.size() >= 2) {  // piecewise-linear between the calibration points
    std::size_t i = 1;
    while (i + 1 < s.scale.size() && v > s.scale[i].first) ++i;
    const auto& [v0, a0] = s.scale[i - 1];
    const auto& [v1, a1] = s.scale[i];
    return a0 + (v - v0) / (v1 - v0) * (a1 - a0);
  }
  return s.min_angle_deg - (v - s.min_value) / (s.max_value - s.min_value) * Sweep(s);
}

/// A round step (1, 2 or 5 x 10^k) that splits `span` into about `parts` intervals.
double NiceStep(double span, int parts) {
  const double raw = std::abs(span) / std::max(1, parts);
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw) return m * p;
  return 10 * p;
}

std::string FormatTick(double v, double span) {
  char buf[32];
  if (span <= 2.0 + 1e-9)
    std::snprintf(buf, sizeof buf, "%.1f", v);
  else
    std::snprintf(buf, sizeof buf, "%.0f", v);
  std::string s = buf;
  if (s == "-0" || s == "-0.0") s = s.substr(1);
  return s;
}

void FillPolygon(cv::Mat& canvas, const std::vector<cv::Point2d>& pts, const cv::Scalar& colour) {
  std::vector<cv::Point> fixed;
  for (const auto& p : pts) fixed.push_back(Fixed(p));
  cv::fillConvexPoly(canvas, fixed, colour, cv::LINE_AA, kShift);
}

void Disc(cv::Mat& canvas, cv::Point2d c, double r, const cv::Scalar& colour, int thickness = -1) {
  cv::circle(canvas, Fixed(c), static_cast<int>(std::lround(r * kOne)), colour, thickness,
             cv::LINE_AA, kShift);
}

void Line(cv::Mat& canvas, cv::Point2d a, cv::Point2d b, const cv::Scalar& colour, double width) {
  cv::line(canvas, Fixed(a), Fixed(b), colour, std::max(1, static_cast<int>(std::lround(width))),
           cv::LINE_AA, kShift);
}

cv::Scalar Jitter(cv::RNG& rng, cv::Scalar c, double amount) {
  for (int i = 0; i < 3; ++i) c[i] = std::clamp(c[i] + rng.uniform(-amount, amount), 0.0, 255.0);
  return c;
}

/// Adds noise, glare, blur, JPEG loss and a mild homography to `img`, in camera order.
void Degrade(cv::Mat& img, double perspective, bool glare, double blur_sigma, double noise_sigma,
             int jpeg_quality, cv::RNG& rng) {
  const cv::Size size = img.size();
  if (perspective > 0) {
    std::vector<cv::Point2f> src = {{0, 0},
                                    {float(size.width), 0},
                                    {float(size.width), float(size.height)},
                                    {0, float(size.height)}};
    std::vector<cv::Point2f> dst = src;
    const double d = perspective * std::min(size.width, size.height);
    for (auto& p : dst) {
      p.x += static_cast<float>(rng.uniform(-d, d));
      p.y += static_cast<float>(rng.uniform(-d, d));
    }
    cv::Mat h = cv::getPerspectiveTransform(src, dst);
    cv::warpPerspective(img, img, h, size, cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  }
  if (glare) {
    cv::Mat layer(size, CV_32F, cv::Scalar(0));
    // Draws are sequenced one per statement (the last coordinate first, the order these scenes
    // were first generated in): arguments of one call are evaluated in an unspecified order, so
    // a seed would give other scenes under another compiler.
    const int centre_y = rng.uniform(size.height / 5, size.height * 4 / 5);
    const int centre_x = rng.uniform(size.width / 5, size.width * 4 / 5);
    const cv::Point centre(centre_x, centre_y);
    const int axis_h = rng.uniform(size.height / 14, size.height / 6);
    const int axis_w = rng.uniform(size.width / 10, size.width / 4);
    const cv::Size axes(axis_w, axis_h);
    cv::ellipse(layer, centre, axes, rng.uniform(0.0, 180.0), 0, 360, cv::Scalar(1), -1,
                cv::LINE_AA);
    cv::GaussianBlur(layer, layer, cv::Size(), std::max(2.0, axes.height * 0.5));
    const double strength = rng.uniform(0.35, 0.7);
    cv::Mat f;
    img.convertTo(f, CV_32FC3);
    std::vector<cv::Mat> ch;
    cv::split(f, ch);
    for (auto& c : ch) c = c + (255.0 - c).mul(layer) * strength;
    cv::merge(ch, f);
    f.convertTo(img, CV_8UC3);
  }
  if (blur_sigma > 0) cv::GaussianBlur(img, img, cv::Size(), blur_sigma);
  if (noise_sigma > 0) {
    cv::Mat noise(size, CV_16SC3);
    rng.fill(noise, cv::RNG::NORMAL, 0, noise_sigma);
    cv::Mat sum;
    img.convertTo(sum, CV_16SC3);
    sum += noise;
    sum.convertTo(img, CV_8UC3);
  }
  if (jpeg_quality > 0) {
    std::vector<std::uint8_t> buf;
    cv::imencode(".jpg", img, buf, {cv::IMWRITE_JPEG_QUALITY, jpeg_quality});
    img = cv::imdecode(buf, cv::IMREAD_COLOR);
  }
}

// ---- parts trays ----

struct Part {
  int kind = 0;  // 0 bolt, 1 nut, 2 washer
  cv::Point2d centre;
  double size = 20;   // nominal diameter of a nut / washer, pixels
  double angle = 0;   // degrees
  double reach = 10;  // bounding-circle radius
  cv::Scalar colour;
  int group = -1;       // cluster index; -1 = a free part
  bool counted = true;  // false: cut off by the border with less than half visible
};

double Reach(int kind, double size) { return kind == 0 ? 1.25 * size : 0.55 * size; }

/// Textured tray background: base colour, two scales of blurred noise, a few scratches and a
/// soft vignette.
cv::Mat TrayBackground(cv::Size size, const TrayStyle& style, cv::RNG& rng) {
  cv::Mat bg(size, CV_8UC3, style.tray);
  if (style.texture <= 0) return bg;
  cv::Mat f;
  bg.convertTo(f, CV_32FC3);
  for (double scale : {1.0, 6.0}) {
    cv::Mat n(size, CV_32F);
    rng.fill(n, cv::RNG::NORMAL, 0, 1);
    cv::GaussianBlur(n, n, cv::Size(), scale);
    double mn, mx;
    cv::minMaxLoc(n, &mn, &mx);
    n = (n - mn) / std::max(1e-6, mx - mn) - 0.5;
    cv::Mat n3;
    cv::merge(std::vector<cv::Mat>{n, n, n}, n3);
    f += n3 * (style.texture * (scale > 1 ? 1.2 : 0.8));
  }
  for (int i = 0; i < 6; ++i) {
    // One draw per statement, last coordinate first (see Degrade's glare).
    const int ay = rng.uniform(0, size.height);
    const int ax = rng.uniform(0, size.width);
    const cv::Point a(ax, ay);
    const int dy = rng.uniform(-20, 20);
    const int dx = rng.uniform(-60, 60);
    const cv::Point b = a + cv::Point(dx, dy);
    const double d = rng.uniform(-style.texture, style.texture);
    cv::line(f, a, b, cv::Scalar(style.tray[0] + d, style.tray[1] + d, style.tray[2] + d), 1,
             cv::LINE_AA);
  }
  f.convertTo(bg, CV_8UC3);
  return bg;
}

/// The part's anti-aliased silhouette (255 inside) on a canvas of `size`, shifted by `offset`.
cv::Mat Silhouette(const Part& p, cv::Size size, cv::Point2d offset = {0, 0}) {
  const double s = p.size;
  const double t = p.angle;
  const cv::Point2d centre = p.centre + offset;
  auto hexagon = [&](cv::Point2d c, double r) {
    std::vector<cv::Point2d> pts;
    for (int k = 0; k < 6; ++k) pts.push_back(Polar(c, r, t + 60.0 * k));
    return pts;
  };
  cv::Mat m(size, CV_8U, cv::Scalar(0));
  if (p.kind == 0) {  // bolt: hex head + shaft
    const cv::Point2d head = Polar(centre, 0.75 * s, t);
    const cv::Point2d tail = Polar(centre, 1.15 * s, t + 180);
    const double hw = 0.2 * s;
    const cv::Point2d n = Polar({0, 0}, hw, t + 90) - cv::Point2d(0, 0);
    FillPolygon(m, {head + n, head - n, tail - n, tail + n}, cv::Scalar(255));
    FillPolygon(m, hexagon(head, 0.42 * s), cv::Scalar(255));
  } else if (p.kind == 1) {  // nut: hexagon with a hole
    FillPolygon(m, hexagon(centre, 0.5 * s), cv::Scalar(255));
    Disc(m, centre, 0.22 * s, cv::Scalar(0));
  } else {  // washer: ring
    Disc(m, centre, 0.5 * s, cv::Scalar(255));
    Disc(m, centre, 0.24 * s, cv::Scalar(0));
  }
  return m;
}

/// The part's silhouette (255 inside) and shading drawn into `mask` / `colour` (same size).
void DrawPart(const Part& p, cv::Mat& mask, cv::Mat& colour) {
  const double s = p.size;
  const double t = p.angle;
  const cv::Mat m = Silhouette(p, mask.size());
  // shading: a linear gradient across the part plus a highlight band
  cv::Rect box = cv::boundingRect(m) & cv::Rect(0, 0, m.cols, m.rows);
  if (box.empty()) return;
  const double ux = std::cos((t + 45) * kPi / 180.0), uy = -std::sin((t + 45) * kPi / 180.0);
  for (int y = box.y; y < box.y + box.height; ++y) {
    const std::uint8_t* mr = m.ptr<std::uint8_t>(y);
    std::uint8_t* out = mask.ptr<std::uint8_t>(y);
    cv::Vec3b* cr = colour.ptr<cv::Vec3b>(y);
    for (int x = box.x; x < box.x + box.width; ++x) {
      if (!mr[x]) continue;
      const double u = ((x - p.centre.x) * ux + (y - p.centre.y) * uy) / (s + 1e-6);
      const double gain = 1.0 + 0.22 * u + 0.25 * std::exp(-std::pow((u + 0.15) * 5, 2));
      for (int k = 0; k < 3; ++k)
        cr[x][k] = cv::saturate_cast<std::uint8_t>(p.colour[k] * gain * (mr[x] / 255.0) +
                                                   cr[x][k] * (1 - mr[x] / 255.0));
      out[x] = std::max(out[x], mr[x]);
    }
  }
}

/// Sizes of the style's touching clusters (2-5 parts each, at most `count` parts in all).
std::vector<int> ClusterSizes(int count, const TrayStyle& style, cv::RNG& rng) {
  std::vector<int> sizes;
  int left = count;
  for (int c = 0; c < style.clusters && left >= 2; ++c) {
    const int n = std::min(left, rng.uniform(2, 6));
    sizes.push_back(n);
    left -= n;
  }
  return sizes;
}

/// Moves `p` toward `q` along direction `deg` (from q) until its silhouette first touches
/// `group_mask` (the union of its cluster so far); false when it never does.
bool TouchGroup(Part& p, const Part& q, double deg, const cv::Mat& group_mask) {
  for (double d = q.reach + p.reach + 2; d > 0; d -= 0.5) {
    p.centre = Polar(q.centre, d, deg);
    cv::Mat m = Silhouette(p, group_mask.size());
    cv::Mat both;
    cv::bitwise_and(m > 128, group_mask > 128, both);
    // the first contact; a start that already overlaps another member is no touch
    if (cv::countNonZero(both) > 0) return d < q.reach + p.reach + 2;
  }
  return false;
}

/// Places `count` parts without overlap (gap >= 3 px, or just touching when touch_chance says
/// so; parts of a cluster touch their cluster), then the style's border parts. Shrinks the parts
/// until they fit.
std::vector<Part> PlaceParts(int count, cv::Size size, const TrayStyle& style,
                             const std::vector<cv::Scalar>& palette, cv::RNG& rng) {
  double nominal = std::sqrt(double(size.area()) / (std::max(count, 1) * 7.5));
  nominal = std::clamp(nominal, 12.0, 34.0) * style.part_scale;
  const std::vector<int> cluster_sizes = ClusterSizes(count, style, rng);
  std::vector<int> group_of;  // group of the i-th part, -1 = free
  for (std::size_t g = 0; g < cluster_sizes.size(); ++g)
    group_of.insert(group_of.end(), std::size_t(cluster_sizes[g]), int(g));
  group_of.resize(std::size_t(std::max(count, 0)), -1);
  for (int round = 0; round < 40; ++round, nominal *= 0.93) {
    std::vector<Part> parts;
    bool ok = true;
    // Free distance from every part outside `p`'s own cluster.
    auto clear_of_others = [&](const Part& p) {
      return std::all_of(parts.begin(), parts.end(), [&](const Part& q) {
        return (p.group >= 0 && q.group == p.group) ||
               cv::norm(p.centre - q.centre) - p.reach - q.reach >= 4.0;
      });
    };
    for (int i = 0; i < count && ok; ++i) {
      Part p;
      p.kind = style.kind == 3 ? rng.uniform(0, 3) : style.kind;
      p.size = nominal * rng.uniform(0.85, 1.15) * (p.kind == 0 ? 0.9 : 1.0);
      if (style.size_mix > 0)
        p.size *= rng.uniform(0, 2) ? 1.0 + style.size_mix : 1.0 - style.size_mix;
      p.angle = rng.uniform(0.0, 360.0);
      p.reach = Reach(p.kind, p.size);
      p.colour =
          Jitter(rng, palette[static_cast<std::size_t>(rng.uniform(0, int(palette.size())))], 12);
      p.group = group_of[std::size_t(i)];
      const double margin = p.reach + 3;
      bool placed = false;
      if (p.group >= 0 && i > 0 && parts.back().group == p.group) {
        // a later member of a cluster: slide in until it touches the cluster
        cv::Mat group_mask(size, CV_8U, cv::Scalar(0));
        std::vector<const Part*> members;
        for (const Part& q : parts)
          if (q.group == p.group) {
            members.push_back(&q);
            cv::max(group_mask, Silhouette(q, size), group_mask);
          }
        for (int tries = 0; tries < 60 && !placed; ++tries) {
          const Part& q = *members[std::size_t(rng.uniform(0, int(members.size())))];
          if (!TouchGroup(p, q, rng.uniform(0.0, 360.0), group_mask)) continue;
          placed = p.centre.x >= margin && p.centre.y >= margin &&
                   p.centre.x <= size.width - margin && p.centre.y <= size.height - margin &&
                   clear_of_others(p);
        }
        if (placed)
          parts.push_back(p);
        else
          ok = false;
        continue;
      }
      const bool touch = !parts.empty() && rng.uniform(0.0, 1.0) < style.touch_chance;
      for (int tries = 0; tries < 400 && !placed; ++tries) {
        if (size.width <= 2 * margin || size.height <= 2 * margin) break;
        if (touch) {
          const Part& q = parts[static_cast<std::size_t>(rng.uniform(0, int(parts.size())))];
          // washers and nuts are round enough to touch at their reach
          if (p.kind == 0 || q.kind == 0) continue;
          const double a = rng.uniform(0.0, 360.0);
          p.centre = Polar(q.centre, q.reach + p.reach - 1.0, a);
          if (p.centre.x < margin || p.centre.y < margin || p.centre.x > size.width - margin ||
              p.centre.y > size.height - margin)
            continue;
        } else {
          p.centre = {rng.uniform(margin, size.width - margin),
                      rng.uniform(margin, size.height - margin)};
        }
        placed = true;
        for (const Part& q : parts) {
          const double gap = cv::norm(p.centre - q.centre) - p.reach - q.reach;
          if (gap < (touch ? -1.5 : 4.0)) {
            if (!touch || gap < -1.5) placed = false;
          }
          if (!placed) break;
        }
        // a cluster's first part keeps its distance from everything else
        if (placed && p.group >= 0) placed = clear_of_others(p);
      }
      if (!placed && touch) {  // touching did not fit: place freely instead
        for (int tries = 0; tries < 400 && !placed; ++tries) {
          p.centre = {rng.uniform(margin, size.width - margin),
                      rng.uniform(margin, size.height - margin)};
          placed = std::all_of(parts.begin(), parts.end(), [&](const Part& q) {
            return cv::norm(p.centre - q.centre) - p.reach - q.reach >= 4.0;
          });
        }
      }
      if (placed)
        parts.push_back(p);
      else
        ok = false;
    }
    if (!ok) continue;
    // Border parts: clearly in (65-85% of the area visible, counted) or clearly out (15-35%).
    for (int i = 0; i < style.border_parts; ++i) {
      Part p;
      p.kind = style.kind == 3 ? rng.uniform(0, 3) : style.kind;
      p.size = nominal * rng.uniform(0.85, 1.15) * (p.kind == 0 ? 0.9 : 1.0);
      p.angle = rng.uniform(0.0, 360.0);
      p.reach = Reach(p.kind, p.size);
      p.colour =
          Jitter(rng, palette[static_cast<std::size_t>(rng.uniform(0, int(palette.size())))], 12);
      p.counted = rng.uniform(0, 2) == 1;
      const double target = p.counted ? rng.uniform(0.65, 0.85) : rng.uniform(0.15, 0.35);
      const int side = rng.uniform(0, 4);  // 0 left, 1 top, 2 right, 3 bottom
      const int pad = int(std::ceil(p.reach)) + 2;
      const cv::Rect inside(pad, pad, size.width, size.height);
      const cv::Size padded(size.width + 2 * pad, size.height + 2 * pad);
      for (int tries = 0; tries < 20; ++tries) {
        const double along =
            rng.uniform(p.reach, double(side % 2 ? size.width : size.height) - p.reach);
        double best_err = 1, best_t = 0;
        for (double depth = -p.reach; depth <= p.reach; depth += 0.5) {  // centre's depth inside
          p.centre = side == 0   ? cv::Point2d(depth, along)
                     : side == 1 ? cv::Point2d(along, depth)
                     : side == 2 ? cv::Point2d(size.width - depth, along)
                                 : cv::Point2d(along, size.height - depth);
          const cv::Mat m = Silhouette(p, padded, {double(pad), double(pad)});
          const double all = cv::countNonZero(m > 128);
          if (all <= 0) continue;
          const double err = std::abs(cv::countNonZero(m(inside) > 128) / all - target);
          if (err < best_err) best_err = err, best_t = depth;
        }
        const double depth = best_t;
        p.centre = side == 0   ? cv::Point2d(depth, along)
                   : side == 1 ? cv::Point2d(along, depth)
                   : side == 2 ? cv::Point2d(size.width - depth, along)
                               : cv::Point2d(along, size.height - depth);
        if (best_err < 0.05 && clear_of_others(p)) {
          parts.push_back(p);
          break;
        }
      }
    }
    return parts;
  }
  return {};
}

/// Draws parts with a soft shadow onto `canvas`; fills `boxes` with each part's bounding box.
void DrawParts(cv::Mat& canvas, const std::vector<Part>& parts, std::vector<cv::Rect>* boxes) {
  cv::Mat shadow(canvas.size(), CV_8U, cv::Scalar(0));
  std::vector<cv::Mat> masks;
  cv::Mat colour = canvas.clone();
  cv::Mat all(canvas.size(), CV_8U, cv::Scalar(0));
  for (const Part& p : parts) {
    cv::Mat m(canvas.size(), CV_8U, cv::Scalar(0));
    DrawPart(p, m, colour);
    if (boxes && p.counted) boxes->push_back(cv::boundingRect(m));
    cv::max(all, m, all);
  }
  cv::Mat sh;
  cv::warpAffine(all, sh, cv::Mat_<double>({2, 3}, {1, 0, 2, 0, 1, 2}), all.size());
  cv::GaussianBlur(sh, sh, cv::Size(), 1.5);
  cv::Mat f, c;
  canvas.convertTo(f, CV_32FC3);
  colour.convertTo(c, CV_32FC3);
  cv::Mat a, s;
  all.convertTo(a, CV_32F, 1 / 255.0);
  sh.convertTo(s, CV_32F, 0.22 / 255.0);
  cv::Mat a3, s3;
  cv::merge(std::vector<cv::Mat>{a, a, a}, a3);
  cv::merge(std::vector<cv::Mat>{s, s, s}, s3);
  f = f.mul(cv::Scalar::all(1) - s3);
  f = f.mul(cv::Scalar::all(1) - a3) + c.mul(a3);
  f.convertTo(canvas, CV_8UC3);
}

struct PaletteSet {
  std::vector<cv::Scalar> parts;
  cv::Scalar tray;
};

/// Part colours and a tray colour that contrasts with all of them.
PaletteSet TrayPalette(cv::RNG& rng) {
  static const std::vector<cv::Scalar> kMetals = {
      {185, 185, 180}, {200, 200, 205}, {70, 150, 195}, {60, 190, 215}, {60, 60, 65}};
  static const std::vector<cv::Scalar> kTrays = {{120, 60, 20},   {40, 110, 40},   {35, 35, 35},
                                                 {150, 170, 190}, {110, 110, 110}, {30, 60, 120},
                                                 {170, 120, 60},  {90, 40, 40}};
  for (int tries = 0; tries < 100; ++tries) {
    PaletteSet set;
    const int n = rng.uniform(1, 3);
    for (int i = 0; i < n; ++i)
      set.parts.push_back(kMetals[static_cast<std::size_t>(rng.uniform(0, int(kMetals.size())))]);
    set.tray = kTrays[static_cast<std::size_t>(rng.uniform(0, int(kTrays.size())))];
    bool contrast = true;
    for (const auto& p : set.parts) {
      cv::Mat a(1, 2, CV_8UC3);
      a.at<cv::Vec3b>(0, 0) = cv::Vec3b(p[0], p[1], p[2]);
      a.at<cv::Vec3b>(0, 1) = cv::Vec3b(set.tray[0], set.tray[1], set.tray[2]);
      cv::Mat lab;
      cv::cvtColor(a, lab, cv::COLOR_BGR2Lab);
      const cv::Vec3b x = lab.at<cv::Vec3b>(0, 0), y = lab.at<cv::Vec3b>(0, 1);
      if (cv::norm(cv::Vec3d(x) - cv::Vec3d(y)) < 60) contrast = false;
    }
    if (contrast) return set;
  }
  return {{{200, 200, 205}}, {120, 60, 20}};
}

/// Colours for the style's tone and contrast: a palette set (kPalette) or dark parts on a light
/// tray / light parts on a dark one; contrast < 1 pulls every part colour toward the tray's.
PaletteSet TonedPalette(const TrayStyle& style, cv::RNG& rng) {
  PaletteSet set;
  if (style.tone == TrayTone::kPalette) {
    set = TrayPalette(rng);
  } else {
    static const std::vector<cv::Scalar> kLight = {
        {205, 205, 200}, {220, 228, 232}, {175, 195, 210}, {235, 235, 235}, {190, 210, 190}};
    static const std::vector<cv::Scalar> kDark = {
        {40, 40, 45}, {25, 30, 35}, {70, 50, 40}, {30, 45, 80}, {60, 60, 60}};
    const auto& trays = style.tone == TrayTone::kDarkOnLight ? kLight : kDark;
    const auto& parts = style.tone == TrayTone::kDarkOnLight ? kDark : kLight;
    set.tray = trays[std::size_t(rng.uniform(0, int(trays.size())))];
    const int n = rng.uniform(1, 3);
    for (int i = 0; i < n; ++i) set.parts.push_back(parts[std::size_t(rng.uniform(0, 5))]);
  }
  if (style.contrast < 1.0)
    for (auto& c : set.parts) c = set.tray + (c - set.tray) * std::max(0.0, style.contrast);
  return set;
}

/// Uneven light over the whole scene (tray and parts alike): a linear ramp, a vignette and soft
/// specular spots about `part_size` across, as a camera sees them.
void ApplyLight(cv::Mat& img, const TrayStyle& style, double part_size, cv::RNG& rng) {
  if (!style.UnevenLight()) return;
  const cv::Size size = img.size();
  cv::Mat gain(size, CV_32F, cv::Scalar(1));
  const double half_diag = 0.5 * std::hypot(size.width, size.height);
  const double cx = size.width / 2.0, cy = size.height / 2.0;
  if (style.light_gradient > 0) {
    const double a = rng.uniform(0.0, 2 * kPi);
    for (int y = 0; y < size.height; ++y)
      for (int x = 0; x < size.width; ++x)
        gain.at<float>(y, x) *=
            float(1.0 + style.light_gradient * ((x - cx) * std::cos(a) + (y - cy) * std::sin(a)) /
                            half_diag);
  }
  if (style.vignette > 0) {
    const double ox = cx + rng.uniform(-0.15, 0.15) * size.width;
    const double oy = cy + rng.uniform(-0.15, 0.15) * size.height;
    for (int y = 0; y < size.height; ++y)
      for (int x = 0; x < size.width; ++x) {
        const double r = std::hypot(x - ox, y - oy) / half_diag;
        gain.at<float>(y, x) *= float(1.0 - style.vignette * std::min(1.0, r * r));
      }
  }
  cv::Mat f;
  img.convertTo(f, CV_32FC3);
  cv::Mat g3;
  cv::merge(std::vector<cv::Mat>{gain, gain, gain}, g3);
  f = f.mul(g3);
  for (int i = 0; i < style.glare_spots; ++i) {
    cv::Mat layer(size, CV_32F, cv::Scalar(0));
    const double cy = rng.uniform(0.0, double(size.height));  // one draw per statement
    const double cx = rng.uniform(0.0, double(size.width));
    const cv::Point2d c(cx, cy);
    const double r = part_size * rng.uniform(0.3, 0.7);
    Disc(layer, c, r, cv::Scalar(1));
    cv::GaussianBlur(layer, layer, cv::Size(), std::max(1.5, r * 0.6));
    const double strength = rng.uniform(0.3, 0.6);
    std::vector<cv::Mat> ch;
    cv::split(f, ch);
    for (auto& k : ch) k = k + (255.0 - k).mul(layer) * strength;
    cv::merge(ch, f);
  }
  f.convertTo(img, CV_8UC3);
}

// ---- station ----

json Rect(cv::Rect r) { return json::array({r.x, r.y, r.width, r.height}); }

json GaugeJson(const GaugeStyle& s, const std::string& unit) {
  return {{"min_value", s.min_value},
          {"max_value", s.max_value},
          {"min_angle_deg", s.min_angle_deg},
          {"max_angle_deg", s.max_angle_deg},
          {"unit", unit}};
}

Status WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) return InternalError("cannot write " + path.string());
  return OkStatus();
}

/// Value of a step schedule at fraction `f` of the video.
double Step(const std::vector<std::pair<double, double>>& schedule, double f) {
  double v = schedule.front().second;
  for (const auto& [at, value] : schedule)
    if (f >= at) v = value;
  return v;
}

}  // namespace

GaugeStyle RandomGaugeStyle(cv::RNG& rng) {
  struct Range {
    double lo, hi;
    const char* unit;
  };
  static const Range kRanges[] = {{0, 10, "bar"},  {0, 100, "%"},  {-1, 1, "bar"},
                                  {0, 250, "psi"}, {0, 16, "bar"}, {0, 120, "C"},
                                  {0, 6, "bar"},   {-30, 50, "C"}, {0, 400, "kPa"}};
  static const double kSpans[] = {180, 240, 270, 270, 300};
  GaugeStyle s;
  const Range& r = kRanges[rng.uniform(0, int(std::size(kRanges)))];
  s.min_value = r.lo;
  s.max_value = r.hi;
  s.unit = r.unit;
  const double span = kSpans[rng.uniform(0, int(std::size(kSpans)))];
  const double tilt = rng.uniform(0.0, 1.0) < 0.2 ? rng.uniform(-20.0, 20.0) : 0.0;
  s.min_angle_deg = 90 + span / 2 + tilt;
  s.max_angle_deg = 90 - span / 2 + tilt;
  s.size = rng.uniform(200, 321);
  s.radius_fraction = rng.uniform(0.36, 0.44);
  s.centre_offset = {rng.uniform(-0.04, 0.04), rng.uniform(-0.04, 0.04)};
  s.bezel_fraction = rng.uniform(0.04, 0.1);

  static const cv::Scalar kLightFaces[] = {{240, 240, 240}, {215, 235, 245}, {200, 200, 200}};
  static const cv::Scalar kDarkFaces[] = {{25, 25, 25}, {80, 40, 20}, {50, 50, 50}};
  const bool dark = rng.uniform(0.0, 1.0) < 0.3;
  s.face = Jitter(rng, dark ? kDarkFaces[rng.uniform(0, 3)] : kLightFaces[rng.uniform(0, 3)], 8);
  s.ink = dark ? Jitter(rng, {235, 235, 235}, 15) : Jitter(rng, {25, 25, 25}, 15);
  static const cv::Scalar kBezels[] = {{150, 150, 150}, {30, 30, 30}, {60, 140, 180}, {90, 90, 90}};
  s.bezel = Jitter(rng, kBezels[rng.uniform(0, 4)], 10);
  static const cv::Scalar kBackgrounds[] = {
      {70, 70, 70}, {120, 140, 150}, {90, 60, 40}, {40, 80, 60}, {170, 170, 160}};
  s.background = Jitter(rng, kBackgrounds[rng.uniform(0, 5)], 15);
  const std::vector<cv::Scalar> needles =
      dark ? std::vector<cv::Scalar>{{0, 0, 230}, {240, 240, 240}, {0, 140, 255}, {0, 220, 240}}
           : std::vector<cv::Scalar>{{0, 0, 200}, {20, 20, 20}, {150, 40, 0}, {0, 100, 230}};
  s.needle_colour = needles[static_cast<std::size_t>(rng.uniform(0, int(needles.size())))];
  s.major_ticks = std::vector<int>{5, 6, 9, 11}[static_cast<std::size_t>(rng.uniform(0, 4))];
  s.minor_per_major = rng.uniform(0, 6);
  s.numerals = rng.uniform(0.0, 1.0) < 0.85;
  s.arc_line = rng.uniform(0.0, 1.0) < 0.4;
  s.needle = static_cast<NeedleShape>(rng.uniform(0, 4));
  s.needle_length_fraction = rng.uniform(0.72, 0.9);
  s.needle_width_fraction = rng.uniform(0.035, 0.07);
  s.blur_sigma = rng.uniform(0.0, 1.0) < 0.5 ? rng.uniform(0.5, 1.8) : 0.0;
  s.noise_sigma = rng.uniform(0.0, 1.0) < 0.6 ? rng.uniform(2.0, 9.0) : 0.0;
  s.glare = rng.uniform(0.0, 1.0) < 0.3;
  s.jpeg_quality = rng.uniform(0.0, 1.0) < 0.4 ? rng.uniform(35, 86) : 0;
  s.perspective = rng.uniform(0.0, 1.0) < 0.5 ? rng.uniform(0.01, 0.05) : 0.0;
  // What real dials add: a scale compressed near zero, a pivot off the face centre, a second
  // scale in other units, a red zone, a maker's name and logo.
  if (rng.uniform(0.0, 1.0) < 0.3) {
    const double gamma = rng.uniform(1.2, 1.7);
    const int n = std::max(2, s.major_ticks);
    for (int i = 0; i < n; ++i) {
      const double f = double(i) / (n - 1);
      s.scale.emplace_back(s.min_value + f * (s.max_value - s.min_value),
                           s.min_angle_deg - std::pow(f, gamma) * span);
    }
  }
  if (rng.uniform(0.0, 1.0) < 0.35) {
    const double a = rng.uniform(0.0, 2 * kPi), m = rng.uniform(0.04, 0.15);
    s.pivot_offset = {m * std::cos(a), m * std::sin(a)};
  }
  if (rng.uniform(0.0, 1.0) < 0.3) {
    s.inner_factor =
        std::vector<double>{14.5, 2.0, 0.1}[static_cast<std::size_t>(rng.uniform(0, 3))];
    s.inner_colour = rng.uniform(0.0, 1.0) < 0.5 ? cv::Scalar(30, 30, 200) : s.ink;
  }
  if (rng.uniform(0.0, 1.0) < 0.3) {
    s.zone_fraction = rng.uniform(0.1, 0.3);
    static const cv::Scalar kZones[] = {{40, 40, 220}, {40, 200, 230}, {60, 170, 40}};
    s.zone_colour = kZones[rng.uniform(0, 3)];
  }
  if (rng.uniform(0.0, 1.0) < 0.4) {
    static const char* const kTexts[] = {"ROILENS", "MANOMETER", "EN 837-1", "CL 1.6"};
    s.face_text = kTexts[rng.uniform(0, 4)];
    s.logo = rng.uniform(0.0, 1.0) < 0.6;
    static const cv::Scalar kLogos[] = {{160, 80, 20}, {30, 30, 180}, {20, 20, 20}};
    s.logo_colour = kLogos[rng.uniform(0, 3)];
  }
  return s;
}

void DrawGauge(cv::Mat& canvas, cv::Point2d centre, double radius, const GaugeStyle& s,
               double value) {
  Disc(canvas, centre, radius * (1 + s.bezel_fraction), s.bezel);
  Disc(canvas, centre, radius * (1 + s.bezel_fraction * 0.35), s.bezel * 0.7);
  Disc(canvas, centre, radius, s.face);
  // The scale and the needle turn about the pivot; the scale shrinks to stay on the face.
  const double off = std::hypot(s.pivot_offset.x, s.pivot_offset.y);
  const double R = radius * (1 - off);
  centre += s.pivot_offset * radius;
  const double sweep = Sweep(s);
  const double span = s.max_value - s.min_value;
  const int majors = std::max(2, s.major_ticks);
  if (s.zone_fraction > 0) {
    const double from = ValueToAngle(s, s.max_value - s.zone_fraction * span);
    const int thick = std::max(2, int(std::lround(0.08 * R)));
    cv::ellipse(canvas, Fixed(centre),
                cv::Size(int(std::lround(0.91 * R * kOne)), int(std::lround(0.91 * R * kOne))), 0,
                -from, -s.max_angle_deg, s.zone_colour, thick, cv::LINE_AA, kShift);
  }
  if (s.arc_line) {
    cv::ellipse(canvas, Fixed(centre),
                cv::Size(int(std::lround(0.95 * R * kOne)), int(std::lround(0.95 * R * kOne))), 0,
                -s.min_angle_deg, -s.min_angle_deg + sweep, s.ink,
                std::max(1, int(std::lround(0.012 * R))), cv::LINE_AA, kShift);
  }
  const int minors = (majors - 1) * (s.minor_per_major + 1);
  for (int i = 0; i <= minors; ++i) {
    const bool major = i % (s.minor_per_major + 1) == 0;
    const double a = ValueToAngle(s, s.min_value + span * i / minors);
    Line(canvas, Polar(centre, (major ? 0.8 : 0.87) * R, a), Polar(centre, 0.95 * R, a), s.ink,
         (major ? 0.025 : 0.012) * R);
  }
  if (s.numerals) {
    const double scale = std::max(0.3, R / 190.0);
    const int thick = std::max(1, int(std::lround(R / 90.0)));
    for (int i = 0; i < majors; ++i) {
      const double v = s.min_value + span * i / (majors - 1);
      const double a = ValueToAngle(s, v);
      const std::string text = FormatTick(v, span);
      int base = 0;
      const cv::Size ts = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, thick, &base);
      const cv::Point2d c = Polar(centre, 0.66 * R, a);
      cv::putText(canvas, text, cv::Point(int(c.x - ts.width / 2.0), int(c.y + ts.height / 2.0)),
                  cv::FONT_HERSHEY_SIMPLEX, scale, s.ink, thick, cv::LINE_AA);
    }
  }
  if (s.inner_factor > 0) {  // the inner scale: ticks pointing inwards, small numerals inside
    const double lo = s.min_value * s.inner_factor, hi = s.max_value * s.inner_factor;
    const double step = NiceStep(hi - lo, 6);
    const double scale = std::max(0.25, R / 260.0);
    const int thick = std::max(1, int(std::lround(R / 120.0)));
    for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + 1e-9; v += step / 2) {
      const bool major = std::abs(std::remainder(v, step)) < 1e-6 * step;
      const double a = ValueToAngle(s, v / s.inner_factor);
      Line(canvas, Polar(centre, 0.5 * R, a), Polar(centre, (major ? 0.57 : 0.54) * R, a),
           s.inner_colour, 0.015 * R);
      if (!major) continue;
      const std::string text = FormatTick(v, hi - lo);
      int base = 0;
      const cv::Size ts = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, thick, &base);
      const cv::Point2d c = Polar(centre, 0.42 * R, a);
      cv::putText(canvas, text, cv::Point(int(c.x - ts.width / 2.0), int(c.y + ts.height / 2.0)),
                  cv::FONT_HERSHEY_SIMPLEX, scale, s.inner_colour, thick, cv::LINE_AA);
    }
  }
  if (!s.unit.empty()) {
    // the unit sits in the middle of the dead zone, where no needle goes
    const double dead_mid = s.max_angle_deg - (360.0 - sweep) / 2.0;
    const double scale = std::max(0.3, R / 160.0);
    const int thick = std::max(1, int(std::lround(R / 80.0)));
    int base = 0;
    const cv::Size ts = cv::getTextSize(s.unit, cv::FONT_HERSHEY_SIMPLEX, scale, thick, &base);
    const cv::Point2d c = Polar(centre, sweep > 200 ? 0.45 * R : 0.35 * R, dead_mid);
    cv::putText(canvas, s.unit, cv::Point(int(c.x - ts.width / 2.0), int(c.y + ts.height / 2.0)),
                cv::FONT_HERSHEY_SIMPLEX, scale, s.ink, thick, cv::LINE_AA);
  }
  if (!s.face_text.empty()) {  // the maker's name above the pivot, where the needle passes
    const double scale = std::max(0.25, R / 220.0);
    const int thick = std::max(1, int(std::lround(R / 100.0)));
    int base = 0;
    const cv::Size ts = cv::getTextSize(s.face_text, cv::FONT_HERSHEY_SIMPLEX, scale, thick, &base);
    const cv::Point2d c = Polar(centre, 0.3 * R, 90);
    cv::putText(canvas, s.face_text,
                cv::Point(int(c.x - ts.width / 2.0), int(c.y + ts.height / 2.0)),
                cv::FONT_HERSHEY_SIMPLEX, scale, s.ink, thick, cv::LINE_AA);
    if (s.logo) {
      const cv::Point2d l = c + cv::Point2d(0, -0.16 * R);
      const double k = 0.07 * R;
      FillPolygon(
          canvas,
          {l + cv::Point2d(0, -k), l + cv::Point2d(k, k * 0.7), l + cv::Point2d(-k, k * 0.7)},
          s.logo_colour);
    }
  }
  // needle
  const double a = ValueToAngle(s, value);
  const double len = s.needle_length_fraction * R;
  const double w = s.needle_width_fraction * R;
  const cv::Point2d tip = Polar(centre, len, a);
  const cv::Point2d side = Polar({0, 0}, w / 2, a + 90);
  switch (s.needle) {
    case NeedleShape::kLine:
      Line(canvas, Polar(centre, 0.12 * R, a + 180), tip, s.needle_colour, std::max(2.0, 0.6 * w));
      break;
    case NeedleShape::kTapered:
      FillPolygon(canvas, {centre + side, tip, centre - side}, s.needle_colour);
      break;
    case NeedleShape::kTaperedCounterweight: {
      FillPolygon(canvas, {centre + side, tip, centre - side}, s.needle_colour);
      const cv::Point2d tail = Polar(centre, 0.25 * R, a + 180);
      FillPolygon(canvas,
                  {centre + side * 1.4, tail + side * 1.4, tail - side * 1.4, centre - side * 1.4},
                  s.needle_colour);
      break;
    }
    case NeedleShape::kArrow: {
      const cv::Point2d neck = Polar(centre, len - 2.2 * w, a);
      Line(canvas, centre, neck, s.needle_colour, std::max(2.0, 0.45 * w));
      FillPolygon(canvas, {neck + side * 1.6, tip, neck - side * 1.6}, s.needle_colour);
      break;
    }
  }
  Disc(canvas, centre, std::max(3.0, 0.08 * R), s.needle_colour * 0.6);
  Disc(canvas, centre, std::max(1.5, 0.03 * R), cv::Scalar(200, 200, 200));
}

cv::Mat RenderGauge(const GaugeStyle& style, double value, cv::RNG& rng) {
  const int n = std::max(32, style.size);
  cv::Mat img(n, n, CV_8UC3, style.background);
  // a soft vertical gradient so the background is not flat
  for (int y = 0; y < n; ++y) img.row(y) += cv::Scalar::all(18.0 * (double(y) / n - 0.5) + 9.0);
  const cv::Point2d centre(n / 2.0 + style.centre_offset.x * n,
                           n / 2.0 + style.centre_offset.y * n);
  DrawGauge(img, centre, style.radius_fraction * n, style, value);
  Degrade(img, style.perspective, style.glare, style.blur_sigma, style.noise_sigma,
          style.jpeg_quality, rng);
  return img;
}

TrayStyle RandomTrayStyle(cv::RNG& rng) {
  TrayStyle s;
  const int height = rng.uniform(220, 300);  // one draw per statement, height first
  s.size = cv::Size(rng.uniform(280, 400), height);
  s.texture = rng.uniform(4.0, 16.0);
  s.kind = rng.uniform(0, 4);
  s.part_scale = rng.uniform(0.8, 1.1);
  s.touch_chance = rng.uniform(0.0, 1.0) < 0.3 ? 0.15 : 0.0;
  s.blur_sigma = rng.uniform(0.0, 1.0) < 0.4 ? rng.uniform(0.5, 1.5) : 0.0;
  s.noise_sigma = rng.uniform(0.0, 1.0) < 0.6 ? rng.uniform(2.0, 7.0) : 0.0;
  s.jpeg_quality = rng.uniform(0.0, 1.0) < 0.4 ? rng.uniform(45, 90) : 0;
  // Conditions, drawn after the above so a seed's basic style does not change.
  if (rng.uniform(0.0, 1.0) < 0.5) {
    s.light_gradient = rng.uniform(0.0, 1.0) < 0.7 ? rng.uniform(0.15, 0.45) : 0.0;
    s.vignette = rng.uniform(0.0, 1.0) < 0.5 ? rng.uniform(0.2, 0.5) : 0.0;
    s.glare_spots = rng.uniform(0.0, 1.0) < 0.4 ? rng.uniform(1, 4) : 0;
    if (!s.UnevenLight()) s.light_gradient = 0.3;
  }
  s.contrast = rng.uniform(0.0, 1.0) < 0.25 ? rng.uniform(0.45, 0.7) : 1.0;
  const double tone = rng.uniform(0.0, 1.0);
  s.tone = tone < 0.5 ? TrayTone::kPalette
                      : (tone < 0.75 ? TrayTone::kDarkOnLight : TrayTone::kLightOnDark);
  s.clusters = rng.uniform(0.0, 1.0) < 0.35 ? rng.uniform(1, 4) : 0;
  s.size_mix = s.kind == 3 && rng.uniform(0.0, 1.0) < 0.4 ? rng.uniform(0.15, 0.3) : 0.0;
  s.border_parts = rng.uniform(0.0, 1.0) < 0.25 ? rng.uniform(1, 4) : 0;
  return s;
}

TraySurround RandomTraySurround(cv::RNG& rng) {
  TraySurround s;
  for (int* m : {&s.left, &s.top, &s.right, &s.bottom})
    *m = rng.uniform(0, 4) == 0 ? 0 : rng.uniform(8, 80);
  if (s.left + s.top + s.right + s.bottom < 60) {
    int* sides[] = {&s.left, &s.top, &s.right, &s.bottom};
    *sides[rng.uniform(0, 4)] = 70;
  }
  const int table = rng.uniform(0, 4);
  auto colour_in = [&](int low, int high) {   // each channel in [low, high)
    const double a = rng.uniform(low, high);  // one draw per statement: order is fixed
    const double b = rng.uniform(low, high);
    return cv::Scalar(a, b, rng.uniform(low, high));
  };
  if (table == 0) {
    s.table = colour_in(195, 235);  // light
  } else if (table == 1) {
    s.table = colour_in(15, 50);  // dark
  } else if (table == 2) {
    const double b = rng.uniform(40, 80);  // wood
    const double g = rng.uniform(80, 120);
    s.table = cv::Scalar(b, g, rng.uniform(120, 170));
    s.grain = 8;
  } else {
    s.table = cv::Scalar::all(rng.uniform(90, 140));  // grey
  }
  s.shadow = rng.uniform(0, 2) == 1;
  return s;
}

namespace {

/// `tray` placed on the surround's table (with its cast shadow); boxes move with it.
cv::Mat PlaceOnTable(const cv::Mat& tray, const TraySurround& s, std::vector<cv::Rect>* boxes) {
  cv::Mat img(tray.rows + s.top + s.bottom, tray.cols + s.left + s.right, CV_8UC3, s.table);
  if (s.grain > 0) {
    for (int y = 0; y < img.rows; ++y)
      img.row(y) += cv::Scalar::all(s.grain * std::sin(y * 0.35 + 3 * std::sin(y * 0.05)));
  }
  if (s.shadow) {
    cv::Mat layer = img.clone();
    cv::rectangle(layer, cv::Rect(s.left + 6, s.top + 6, tray.cols, tray.rows), s.table * 0.55,
                  cv::FILLED);
    cv::GaussianBlur(layer, img, cv::Size(), 5);
  }
  tray.copyTo(img(cv::Rect(s.left, s.top, tray.cols, tray.rows)));
  if (boxes)
    for (cv::Rect& b : *boxes) b += cv::Point(s.left, s.top);
  return img;
}

}  // namespace

cv::Mat RenderTray(int count, const TrayStyle& style, cv::RNG& rng, std::vector<cv::Rect>* boxes) {
  count = std::clamp(count, 0, 40);
  const PaletteSet palette = TonedPalette(style, rng);
  TrayStyle s = style;
  s.tray = palette.tray;
  cv::Mat img = TrayBackground(s.size, s, rng);
  const std::vector<Part> parts = PlaceParts(count, s.size, s, palette.parts, rng);
  if (boxes) boxes->clear();
  DrawParts(img, parts, boxes);
  double part_size = 0;
  for (const Part& p : parts) part_size += p.size / double(parts.size());
  ApplyLight(img, s, parts.empty() ? 20.0 : part_size, rng);
  if (s.surround.Any()) img = PlaceOnTable(img, s.surround, boxes);
  Degrade(img, 0, false, s.blur_sigma, s.noise_sigma, s.jpeg_quality, rng);
  return img;
}

StatusOr<SampleManifest> WriteSamples(const std::string& dir, const SampleOptions& options) {
  namespace fs = std::filesystem;
  if (options.frames < 1) return InvalidArgumentError("samples: frames must be >= 1");
  if (options.fps <= 0) return InvalidArgumentError("samples: fps must be > 0");
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "stills", ec);
  if (ec) return InternalError("samples: cannot create " + dir + ": " + ec.message());
  cv::RNG rng(options.seed);
  SampleManifest manifest;
  const cv::Size fs_size = options.frame_size;
  if (fs_size.width < 320 || fs_size.height < 180)
    return InvalidArgumentError("samples: frame_size must be at least 320x180");
  // Layout scales with the frame (designed for 640x360).
  const double k = std::min(fs_size.width / 640.0, fs_size.height / 360.0);
  auto scaled = [&](int x, int y, int w, int h) {
    return cv::Rect(int(x * k), int(y * k), int(w * k), int(h * k));
  };
  const cv::Rect boiler_rect = scaled(25, 40, 190, 190), coolant_rect = scaled(235, 40, 190, 190);
  const cv::Rect tray_rect = scaled(445, 30, 180, 300);

  GaugeStyle boiler;  // white face, red tapered needle, 0-10 bar over 270 deg
  boiler.face = {238, 238, 238};
  boiler.ink = {25, 25, 25};
  boiler.bezel = {160, 160, 160};
  boiler.needle_colour = {0, 0, 210};
  boiler.needle = NeedleShape::kTapered;
  boiler.unit = "bar";
  GaugeStyle coolant;  // black face, orange needle with counterweight, 0-120 C over 240 deg
  coolant.min_value = 0;
  coolant.max_value = 120;
  coolant.min_angle_deg = 210;
  coolant.max_angle_deg = -30;
  coolant.unit = "C";
  coolant.face = {30, 30, 30};
  coolant.ink = {235, 235, 235};
  coolant.bezel = {60, 140, 180};
  coolant.needle_colour = {0, 140, 255};
  coolant.needle = NeedleShape::kTaperedCounterweight;
  coolant.major_ticks = 7;
  coolant.minor_per_major = 3;

  // Step schedules (fraction of the video -> value): the needles hold still for long stretches.
  const std::vector<std::pair<double, double>> boiler_steps = {
      {0.0, 4.2}, {0.25, 5.6}, {0.5, 8.6}, {0.75, 6.8}};
  const std::vector<std::pair<double, double>> coolant_steps = {{0.0, 64}, {0.4, 78}, {0.85, 92}};
  const std::vector<std::pair<double, double>> tray_steps = {{0.0, 7}, {0.33, 9}, {0.7, 6}};

  // Static scene: panel background, labels, tray texture and the nine parts.
  cv::Mat panel(fs_size, CV_8UC3, cv::Scalar(96, 92, 88));
  for (int y = 0; y < panel.rows; ++y) panel.row(y) += cv::Scalar::all(30.0 * y / panel.rows);
  cv::rectangle(panel, scaled(0, 300, 440, 60), cv::Scalar(60, 70, 80), -1);
  cv::putText(panel, "BOILER", cv::Point(int(80 * k), int(262 * k)), cv::FONT_HERSHEY_SIMPLEX,
              0.6 * k, cv::Scalar(20, 20, 20), std::max(1, int(2 * k)), cv::LINE_AA);
  cv::putText(panel, "COOLANT", cv::Point(int(280 * k), int(262 * k)), cv::FONT_HERSHEY_SIMPLEX,
              0.6 * k, cv::Scalar(20, 20, 20), std::max(1, int(2 * k)), cv::LINE_AA);
  TrayStyle tray_style;
  tray_style.size = tray_rect.size();
  tray_style.kind = 3;
  tray_style.texture = 8;
  cv::RNG tray_rng(options.seed * 7919 + 13);
  const PaletteSet palette{{{190, 190, 185}, {70, 150, 195}}, {120, 60, 20}};
  tray_style.tray = palette.tray;
  const cv::Mat tray_bg = TrayBackground(tray_rect.size(), tray_style, tray_rng);
  const std::vector<Part> all_parts =
      PlaceParts(9, tray_rect.size(), tray_style, palette.parts, tray_rng);
  if (all_parts.size() != 9) return InternalError("samples: could not place the tray parts");

  auto render_state = [&](double b, double c, int n) {
    cv::Mat frame = panel.clone();
    const double gr = 0.42 * boiler_rect.width;
    DrawGauge(frame, (cv::Point2d(boiler_rect.tl()) + cv::Point2d(boiler_rect.br())) / 2, gr,
              boiler, b);
    DrawGauge(frame, (cv::Point2d(coolant_rect.tl()) + cv::Point2d(coolant_rect.br())) / 2, gr,
              coolant, c);
    cv::Mat tray = tray_bg.clone();
    DrawParts(tray, std::vector<Part>(all_parts.begin(), all_parts.begin() + n), nullptr);
    tray.copyTo(frame(tray_rect));
    cv::GaussianBlur(frame, frame, cv::Size(), 0.6);
    return frame;
  };

  const fs::path root(dir);
  const std::string video_name = "station.mp4";
  cv::VideoWriter writer;
  for (const char* fourcc : {"avc1", "mp4v"}) {
    writer.open((root / video_name).string(),
                cv::VideoWriter::fourcc(fourcc[0], fourcc[1], fourcc[2], fourcc[3]), options.fps,
                fs_size);
    if (writer.isOpened()) {
      manifest.fourcc = fourcc;
      break;
    }
  }
  if (!writer.isOpened())
    return UnavailableError("samples: cannot open a video writer for " +
                            (root / video_name).string() + " (tried avc1 and mp4v)");

  std::ostringstream truth;
  cv::Mat cached;
  double last_b = -1, last_c = -1;
  int last_n = -1;
  cv::RNG noise_rng(options.seed * 104729 + 7);
  for (int i = 0; i < options.frames; ++i) {
    const double f = double(i) / options.frames;
    const double t = i / options.fps;
    const double b = Step(boiler_steps, f), c = Step(coolant_steps, f);
    const int n = int(Step(tray_steps, f));
    if (b != last_b || c != last_c || n != last_n) {
      cached = render_state(b, c, n);
      last_b = b, last_c = c, last_n = n;
    }
    cv::Mat frame = cached.clone();
    cv::Mat noise(fs_size, CV_16SC3);
    noise_rng.fill(noise, cv::RNG::NORMAL, 0, 2.0);  // mild sensor noise: no two frames alike
    cv::Mat sum;
    frame.convertTo(sum, CV_16SC3);
    sum += noise;
    sum.convertTo(frame, CV_8UC3);
    writer.write(frame);
    truth << json{{"frame", i}, {"time_s", t}, {"roi", "boiler"}, {"value", b}, {"unit", "bar"}}
                 .dump()
          << "\n"
          << json{{"frame", i}, {"time_s", t}, {"roi", "coolant"}, {"value", c}, {"unit", "°C"}}
                 .dump()
          << "\n"
          << json{{"frame", i}, {"time_s", t}, {"roi", "tray"}, {"count", n}}.dump() << "\n";
  }
  writer.release();
  manifest.frames = options.frames;
  manifest.rois = 3;
  manifest.files.push_back(video_name);

  const double max_age = std::max(60.0, 2.0 * options.frames / options.fps);
  json station = {
      {"backend",
       {{"endpoint", "local"}, {"model", "gemini-3-flash-preview"}, {"max_in_flight", 16}}},
      {"pipeline", {{"mode", "batch"}, {"every_n_frames", 1}}},
      {"rois", json::array({{{"name", "boiler"},
                             {"rect", Rect(boiler_rect)},
                             {"task", "read_gauge"},
                             {"zoom", 2},
                             {"gauge", GaugeJson(boiler, "bar")},
                             {"alarm", {{"low", 1}, {"high", 8}}},
                             {"change_threshold", 0.02},
                             {"max_age_s", max_age}},
                            {{"name", "coolant"},
                             {"rect", Rect(coolant_rect)},
                             {"task", "read_gauge"},
                             {"zoom", 2},
                             {"gauge", GaugeJson(coolant, "°C")},
                             {"alarm", {{"high", 90}}},
                             {"change_threshold", 0.02},
                             {"max_age_s", max_age}},
                            {{"name", "tray"},
                             {"rect", Rect(tray_rect)},
                             {"task", "count"},
                             {"object", "parts"},
                             {"change_threshold", 0.02},
                             {"max_age_s", max_age}}})},
      {"merge", {{"mode", "replace"}, {"labels", true}}},
      {"output",
       {{"video", "annotated.mp4"},
        {"results", "results.jsonl"},
        {"summary", "summary.json"},
        {"report", "report.html"}}}};
  if (Status s = WriteText(root / "station.json", station.dump(2) + "\n"); !s.ok()) return s;
  if (Status s = WriteText(root / "ground_truth.jsonl", truth.str()); !s.ok()) return s;
  manifest.files.push_back("station.json");
  manifest.files.push_back("ground_truth.jsonl");

  // Stills: a gauge close-up (left, shared 0-10 bar calibration, varied style) beside a tray.
  const int side = 320;
  GaugeStyle still_cal;  // the calibration every still gauge shares
  json still_truth = json::object();
  for (int i = 0; i < options.stills; ++i) {
    GaugeStyle g = RandomGaugeStyle(rng);
    g.min_value = still_cal.min_value;
    g.max_value = still_cal.max_value;
    g.min_angle_deg = still_cal.min_angle_deg;
    g.max_angle_deg = still_cal.max_angle_deg;
    g.unit = "bar";
    g.scale.clear();
    g.size = side;
    g.jpeg_quality = 0;
    const double value = std::round(rng.uniform(0.3, 9.7) * 10) / 10;
    cv::Mat still(side, 2 * side, CV_8UC3);
    RenderGauge(g, value, rng).copyTo(still(cv::Rect(0, 0, side, side)));
    TrayStyle ts = RandomTrayStyle(rng);
    ts.size = cv::Size(side, side);
    ts.jpeg_quality = 0;
    const int count = rng.uniform(1, 26);
    RenderTray(count, ts, rng).copyTo(still(cv::Rect(side, 0, side, side)));
    char name[32];
    std::snprintf(name, sizeof name, "still_%02d.png", i);
    if (!cv::imwrite((root / "stills" / name).string(), still))
      return InternalError("samples: cannot write " + (root / "stills" / name).string());
    still_truth[name] = {{"gauge", {{"value", value}, {"unit", "bar"}}},
                         {"tray", {{"count", count}}}};
    manifest.files.push_back(std::string("stills/") + name);
  }
  if (Status s = WriteText(root / "stills" / "truth.json", still_truth.dump(2) + "\n"); !s.ok())
    return s;
  manifest.files.push_back("stills/truth.json");
  json stills = station;
  stills["rois"] = json::array({{{"name", "gauge"},
                                 {"rect", json::array({0, 0, side, side})},
                                 {"task", "read_gauge"},
                                 {"gauge", GaugeJson(still_cal, "bar")},
                                 {"alarm", {{"low", 1}, {"high", 8}}}},
                                {{"name", "tray"},
                                 {"rect", json::array({side, 0, side, side})},
                                 {"task", "count"},
                                 {"object", "parts"}}});
  stills["output"] = {{"video", ""},
                      {"results", "results.jsonl"},
                      {"summary", "summary.json"},
                      {"report", "report.html"}};
  if (Status s = WriteText(root / "stills.json", stills.dump(2) + "\n"); !s.ok()) return s;
  manifest.files.push_back("stills.json");
  return manifest;
}

}  // namespace roilens
