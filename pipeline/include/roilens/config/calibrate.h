// Gauge calibration from a reference frame (`roilens calibrate`): finds the dial, the tick ring
// and its centre (the needle's pivot), the tick marks and the scale's end angles in an ROI crop,
// and turns them into the ROI's `gauge` geometry (pivot, radius, end angles or a `scale`).
#pragma once

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "roilens/client/status.h"
#include "roilens/config/config.h"

namespace roilens {

/// Options of CalibrateGauge; the defaults suit dials whose face fills most of the crop.
struct CalibrateOptions {
  int min_ticks = 5;  ///< fewer tick marks found: no calibration (kFailedPrecondition)
  /// Major ticks whose angles deviate from even spacing by more than this (degrees) make the
  /// scale non-linear: a `scale` list is written instead of min/max angles.
  double nonlinear_tolerance_deg = 1.5;
};

/// One tick mark, in crop pixels.
struct DetectedTick {
  double angle_deg = 0;   ///< seen from the pivot; 0 = 3 o'clock, CCW positive, in [0, 360)
  double inner_r = 0;     ///< distance of its inner end from the pivot, pixels
  double outer_r = 0;     ///< distance of its outer end from the pivot, pixels
  bool major = false;     ///< longer than the minor ticks (all true when lengths do not differ)
  bool on_scale = false;  ///< between the end ticks (false: outside the scale's ends)
};

/// What CalibrateGauge found, in pixels of the crop it was given.
struct GaugeGeometry {
  cv::Size crop_size;
  cv::Point2d dial_centre;      ///< centre of the dial face (Hough circle; the crop centre if none)
  double dial_radius = 0;       ///< face radius, pixels
  bool dial_found = false;      ///< a face circle was found (else the crop's centre was assumed)
  cv::Point2d pivot;            ///< centre of the tick ring: where the needle turns
  double ring_radius = 0;       ///< radius of the tick ring (the ticks' outer ends), pixels
  double ring_residual_px = 0;  ///< RMS distance of the ticks' outer ends from the fitted ring
  std::vector<DetectedTick> ticks;  ///< by angle, ascending
  int major_ticks = 0;              ///< on the scale
  /// The scale's ends (degrees, unwrapped, min_angle_deg > max_angle_deg: clockwise), placed
  /// at the representation nearest to the hints' min angle.
  double min_angle_deg = 0, max_angle_deg = 0;
  double dead_zone_deg = 0;  ///< largest angular gap between neighbouring ticks
  /// Non-empty when the major ticks are evenly spaced in value but not in angle.
  std::vector<ScalePoint> scale;
  std::optional<double> needle_angle_deg;  ///< the needle on this frame, when one was seen
  /// The hints with the detected geometry: pivot and radius as fractions, end angles or scale.
  GaugeCalibration calibration;
  std::vector<std::string> warnings;  ///< disagreements with the hints, for the person to check
};

/// Finds the dial geometry in `crop` (BGR or grey, 8-bit). `hints` supplies min/max values and
/// the approximate end angles, used to unwrap the detected ones; a `scale` in the hints with as
/// many points as major ticks keeps its values. Errors name what is missing: kNotFound (no dial:
/// no tick ring anywhere), kFailedPrecondition (too few ticks, ticks that do not form a regular
/// scale, or ends more than 40 degrees from the hints' angles). Thread-safe (pure function).
StatusOr<GaugeGeometry> CalibrateGauge(const cv::Mat& crop, const GaugeCalibration& hints,
                                       const CalibrateOptions& options = {});

/// The value the needle shows in `geometry` (nullopt when no needle was seen).
std::optional<double> CalibratedReading(const GaugeGeometry& geometry);

/// A picture for a person to confirm the calibration: pivot, ticks (major long, minor short),
/// the scale arc with its end labels, and the needle with its reading. At least 480 px on the
/// shorter side (small crops are enlarged).
cv::Mat DrawCalibrationOverlay(const cv::Mat& crop, const GaugeGeometry& geometry);

/// Writes the geometry into a ROI's `gauge` JSON object: pivot, radius and either
/// min_angle_deg/max_angle_deg or scale (the other form is removed: the user's old end angles would
/// contradict a measured scale). Other keys (unit, min/max values) are kept.
void WriteCalibration(const GaugeGeometry& geometry, nlohmann::json& gauge);

}  // namespace roilens
