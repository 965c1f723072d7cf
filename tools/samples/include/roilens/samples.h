// Synthetic sample data: gauge dials and parts trays drawn with OpenCV, with known ground truth,
// and the sample station (video + configs + truth) that `roilens samples DIR` writes.
// Everything is deterministic for a given seed, so tests and accuracy figures are reproducible.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <string>
#include <utility>
#include <vector>

#include "roilens/client/status.h"

namespace roilens {

/// How the needle is drawn.
enum class NeedleShape {
  kLine,                  ///< a plain thick line from the hub
  kTapered,               ///< a triangle, wide at the hub, pointed at the tip
  kTaperedCounterweight,  ///< a tapered needle with a short tail behind the hub
  kArrow,                 ///< a line with an arrow head near the tip
};

/// Everything that makes one dial look different from another. The calibration fields are the
/// truth the renderer uses; a reader only ever gets them through the task spec.
struct GaugeStyle {
  int size = 240;  ///< output image side, pixels (square)
  // Calibration (degrees: 0 = 3 o'clock, counter-clockwise positive; scale runs clockwise).
  double min_value = 0, max_value = 10;
  double min_angle_deg = 225, max_angle_deg = -45;
  std::string unit = "bar";
  /// Non-linear calibration: (value, angle_deg) pairs, values increasing, angles decreasing
  /// (clockwise), ends equal to min/max above. Empty = linear. Ticks, numerals and the needle
  /// follow it piecewise-linearly, as the `scale` key of a gauge config reads it.
  std::vector<std::pair<double, double>> scale;
  // Geometry, as fractions of `size`.
  double radius_fraction = 0.42;    ///< dial face radius
  cv::Point2d centre_offset{0, 0};  ///< dial centre offset from the image centre
  double bezel_fraction = 0.05;     ///< bezel ring width relative to the radius
  /// Needle pivot offset from the face centre, fraction of the face radius. The scale (ticks,
  /// numerals, zones) is concentric with the pivot, as on real dials; its radius shrinks so it
  /// stays on the face.
  cv::Point2d pivot_offset{0, 0};
  // Colours (BGR).
  cv::Scalar background{60, 60, 60};
  cv::Scalar face{235, 235, 235};
  cv::Scalar ink{20, 20, 20};  ///< ticks and numerals
  cv::Scalar bezel{90, 90, 90};
  cv::Scalar needle_colour{0, 0, 200};
  // Scale.
  int major_ticks = 11;  ///< count of major ticks including both ends (>= 2)
  int minor_per_major = 4;
  bool numerals = true;
  bool arc_line = false;  ///< a thin arc joining the ticks
  /// A second, inner scale (other units: `inner_factor` x value) with its own ticks and
  /// numerals in `inner_colour`; 0 = none.
  double inner_factor = 0;
  cv::Scalar inner_colour{30, 30, 200};
  /// A coloured zone arc along the tick ring over the top `zone_fraction` of the sweep (a red
  /// zone); 0 = none.
  double zone_fraction = 0;
  cv::Scalar zone_colour{40, 40, 220};
  /// Printed text (a maker's name) on the face, and a filled logo mark beside it.
  std::string face_text;
  bool logo = false;
  cv::Scalar logo_colour{160, 80, 20};
  // Needle.
  NeedleShape needle = NeedleShape::kTapered;
  double needle_length_fraction = 0.85;  ///< of the dial radius
  double needle_width_fraction = 0.05;   ///< widest part, of the dial radius
  // Degradations.
  double blur_sigma = 0;   ///< Gaussian blur, pixels (0 = none)
  double noise_sigma = 0;  ///< additive Gaussian noise, grey levels
  bool glare = false;      ///< a soft bright ellipse over part of the face
  int jpeg_quality = 0;    ///< 0 = lossless; otherwise re-encoded as JPEG at this quality
  double perspective = 0;  ///< max corner displacement of a homography, fraction of size
};

/// A random but plausible style: ranges (0-10, 0-100, -1..1, 0-250, ...), spans (180-300 deg),
/// faces, needles and degradations. Draws from `rng` only, so a seed fixes it.
GaugeStyle RandomGaugeStyle(cv::RNG& rng);

/// Renders a square BGR image (style.size x style.size) of the dial showing `value` (clamped to
/// the calibrated range), with the style's degradations applied. `rng` drives noise and glare.
cv::Mat RenderGauge(const GaugeStyle& style, double value, cv::RNG& rng);

/// Draws the dial (without degradations) into `canvas` with the given centre and face radius.
/// Used by RenderGauge and by the sample station video.
void DrawGauge(cv::Mat& canvas, cv::Point2d centre, double radius, const GaugeStyle& style,
               double value);

/// How part and tray brightness relate.
enum class TrayTone {
  kPalette,      ///< metal parts on a tray colour that contrasts with them
  kDarkOnLight,  ///< dark parts on a light tray
  kLightOnDark,  ///< light parts on a dark tray
};

/// The view around a tray photographed through a wider frame: the table it stands on shows on
/// some sides (margins in px; 0 = the tray reaches that edge of the image), maybe with the
/// shadow the tray casts on it. None by default: the image is the tray.
struct TraySurround {
  int left = 0, top = 0, right = 0, bottom = 0;
  /// The table's colour (BGR); `grain` > 0 adds a soft wood grain of that amplitude.
  cv::Scalar table{128, 128, 128};
  double grain = 0;
  bool shadow = false;  ///< the tray's cast shadow, offset down and right, soft
  bool Any() const { return left > 0 || top > 0 || right > 0 || bottom > 0; }
};

/// A random surround: a light, dark, wooden or grey table on at least two sides (60 px in all
/// at least; 8-80 px each where it shows), a cast shadow half the time. Draws from `rng` only.
TraySurround RandomTraySurround(cv::RNG& rng);

/// What a parts tray looks like. The defaults are an evenly lit tray of separate parts; the
/// fields under "conditions" make it harder the way real stations are hard.
struct TrayStyle {
  cv::Size size{320, 240};
  cv::Scalar tray{150, 150, 150};  ///< base colour (BGR); a texture is added on top
  double texture = 10;             ///< amplitude of the tray texture, grey levels
  /// 0 = bolts, 1 = nuts, 2 = washers, 3 = mixed.
  int kind = 3;
  double part_scale = 1.0;    ///< part size multiplier (1 = ~28 px across at 320x240)
  double touch_chance = 0.0;  ///< chance that a part is placed just touching another
  double blur_sigma = 0;
  double noise_sigma = 0;
  int jpeg_quality = 0;
  // Conditions (all off by default).
  double light_gradient = 0;  ///< linear light ramp: gain 1 -+ this at the two far ends
  double vignette = 0;        ///< corners darker than the centre by this fraction
  int glare_spots = 0;        ///< soft specular highlights, about one to two parts across
  double contrast = 1.0;      ///< 1 = palette colours; < 1 pulls parts toward the tray colour
  TrayTone tone = TrayTone::kPalette;
  int clusters = 0;      ///< groups of 2-5 parts touching each other (each part counts)
  double size_mix = 0;   ///< two part sizes: nominal x (1 - this) and x (1 + this)
  int border_parts = 0;  ///< extra parts cut off by the image border (see RenderTray)
  /// The tray seen with the table around it (a wider view); `size` stays the tray's own.
  TraySurround surround;

  /// Tags for per-condition figures.
  bool UnevenLight() const { return light_gradient > 0 || vignette > 0 || glare_spots > 0; }
  bool Clustered() const { return clusters > 0; }
};

/// A random but plausible tray style, including the conditions above; draws from `rng` only.
TrayStyle RandomTrayStyle(cv::RNG& rng);

/// Renders a tray (style.size) holding `count` parts (1..25 typical; at most 40), placed without
/// overlap (parts of a cluster just touch). When `boxes` is given it receives each counted part's
/// bounding box (the truth; boxes.size() is the true count). Those `count` parts lie fully inside
/// the image. The style's `border_parts` add parts cut off by the border: one counts (and gets a
/// box, clipped to the image) when at least half of its area is visible; the renderer draws them
/// only clearly in (65-85% visible) or clearly out (15-35%), so the truth is never a coin toss.
/// With a `surround` the image is larger than `size` by its margins (the boxes are in the
/// image's pixels) and blur, noise and JPEG loss apply to the whole view.
cv::Mat RenderTray(int count, const TrayStyle& style, cv::RNG& rng,
                   std::vector<cv::Rect>* boxes = nullptr);

/// Options of the sample station.
struct SampleOptions {
  int frames = 300;  ///< video length; 10 fps
  std::uint64_t seed = 1;
  double fps = 10;
  cv::Size frame_size{640, 360};
  int stills = 6;  ///< gauge close-ups and trays written under stills/
};

/// What WriteSamples wrote (paths relative to the directory).
struct SampleManifest {
  std::vector<std::string> files;
  std::string fourcc;  ///< "avc1" or the fallback that opened
  int frames = 0;
  int rois = 0;
};

/// Writes the sample station into `dir` (created if missing): station.mp4 (two gauges whose
/// needles move in a few steps and a parts tray whose count changes twice, mild sensor noise on
/// every frame), station.json (config for it), ground_truth.jsonl (one line per frame and ROI),
/// stills/*.png with stills/truth.json, and stills.json (config for the stills folder).
StatusOr<SampleManifest> WriteSamples(const std::string& dir, const SampleOptions& options);

}  // namespace roilens
