// CalibrateGauge against dials with known geometry: generated gauges (RenderGauge), a dial whose
// pivot is off the face centre, a non-linear scale, and dials it must refuse.
#include "roilens/config/calibrate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/imgproc.hpp>

#include "roilens/samples.h"

namespace roilens {
namespace {

constexpr double kPi = 3.14159265358979323846;

cv::Point2d At(cv::Point2d c, double r, double deg) {
  return {c.x + r * std::cos(deg * kPi / 180), c.y - r * std::sin(deg * kPi / 180)};
}

struct Case {
  GaugeStyle style;
  double value;
};

std::vector<Case> Styles() {
  std::vector<Case> cases;
  GaugeStyle a;  // white face, 0-10 bar over 270 degrees
  cases.push_back({a, 4.2});
  GaugeStyle b;  // dark face, light ink, 240 degrees, off-centre in its image
  b.min_value = 0, b.max_value = 120, b.min_angle_deg = 210, b.max_angle_deg = -30;
  b.face = {30, 30, 30}, b.ink = {235, 235, 235}, b.needle_colour = {0, 140, 255};
  b.needle = NeedleShape::kTaperedCounterweight, b.major_ticks = 7, b.minor_per_major = 3;
  b.centre_offset = {0.04, -0.03}, b.radius_fraction = 0.4;
  cases.push_back({b, 64});
  GaugeStyle c;  // 180-degree scale with an arc line, noise and blur, larger image
  c.min_value = -1, c.max_value = 1, c.min_angle_deg = 180, c.max_angle_deg = 0;
  c.arc_line = true, c.noise_sigma = 4, c.blur_sigma = 0.8, c.size = 320;
  c.needle = NeedleShape::kArrow, c.major_ticks = 5, c.minor_per_major = 4;
  cases.push_back({c, 0.3});
  return cases;
}

TEST(CalibrateTest, GeneratedGaugesGivePivotRadiusAndEndAngles) {
  for (const Case& k : Styles()) {
    cv::RNG rng(7);
    const GaugeStyle& s = k.style;
    const cv::Mat img = RenderGauge(s, k.value, rng);
    const double n = img.cols;
    const cv::Point2d centre(n / 2 + s.centre_offset.x * n, n / 2 + s.centre_offset.y * n);
    GaugeCalibration hints;  // the user's rough guess: ends 10 degrees off
    hints.min_value = s.min_value, hints.max_value = s.max_value, hints.unit = s.unit;
    hints.min_angle_deg = s.min_angle_deg + 10, hints.max_angle_deg = s.max_angle_deg - 10;
    auto g = CalibrateGauge(img, hints);
    ASSERT_TRUE(g.ok()) << g.status();
    SCOPED_TRACE("style " + std::to_string(s.min_angle_deg) + " " + std::to_string(s.max_value));
    EXPECT_LT(cv::norm(g->pivot - centre), 0.02 * n);
    ASSERT_TRUE(g->calibration.pivot && g->calibration.radius);
    EXPECT_NEAR(g->calibration.pivot->x, centre.x / n, 0.02);
    EXPECT_NEAR(g->calibration.pivot->y, centre.y / n, 0.02);
    // the tick ring: the ticks' outer ends, 0.95 of the face radius
    EXPECT_NEAR(*g->calibration.radius, 0.95 * s.radius_fraction, 0.02);
    EXPECT_NEAR(g->min_angle_deg, s.min_angle_deg, 2.0);
    EXPECT_NEAR(g->max_angle_deg, s.max_angle_deg, 2.0);
    EXPECT_TRUE(g->scale.empty());  // linear dials stay linear
    EXPECT_EQ(g->major_ticks, s.major_ticks);
    EXPECT_LT(g->ring_residual_px, 0.01 * n);
    const auto reading = CalibratedReading(*g);
    ASSERT_TRUE(reading.has_value());
    EXPECT_NEAR(*reading, k.value, 0.02 * (s.max_value - s.min_value));
    const cv::Mat overlay = DrawCalibrationOverlay(img, *g);
    EXPECT_GE(std::min(overlay.cols, overlay.rows), 480);
  }
}

/// A dial drawn by hand: face circle at `face`, ticks and needle around `pivot` (as on real
/// gauges whose pivot is not at the face's centre), majors at `majors` degrees with three minors
/// between neighbours.
cv::Mat HandDial(cv::Point2d face, cv::Point2d pivot, const std::vector<double>& majors,
                 double needle_deg) {
  cv::Mat img(400, 400, CV_8UC3, cv::Scalar(70, 70, 70));
  cv::circle(img, cv::Point(face), 180, cv::Scalar(120, 120, 120), -1, cv::LINE_AA);
  cv::circle(img, cv::Point(face), 170, cv::Scalar(240, 240, 240), -1, cv::LINE_AA);
  const double ring = 140;
  for (std::size_t i = 0; i < majors.size(); ++i) {
    cv::line(img, At(pivot, ring - 22, majors[i]), At(pivot, ring, majors[i]), cv::Scalar(0, 0, 0),
             4, cv::LINE_AA);
    if (i + 1 == majors.size()) break;
    for (int m = 1; m <= 3; ++m) {
      const double a = majors[i] + (majors[i + 1] - majors[i]) * m / 4;
      cv::line(img, At(pivot, ring - 11, a), At(pivot, ring, a), cv::Scalar(0, 0, 0), 2,
               cv::LINE_AA);
    }
  }
  cv::line(img, pivot, At(pivot, 120, needle_deg), cv::Scalar(0, 0, 210), 5, cv::LINE_AA);
  cv::circle(img, cv::Point(pivot), 9, cv::Scalar(30, 30, 30), -1, cv::LINE_AA);
  return img;
}

TEST(CalibrateTest, PivotIsTheTickRingCentreNotTheFaceCentre) {
  const cv::Point2d face(200, 200), pivot(200, 222);  // pivot 22 px below the face centre
  std::vector<double> majors;
  for (int i = 0; i <= 8; ++i) majors.push_back(225 - 270.0 * i / 8);
  const cv::Mat img = HandDial(face, pivot, majors, 100);
  GaugeCalibration hints;
  auto g = CalibrateGauge(img, hints);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_LT(cv::norm(g->pivot - pivot), 0.02 * 400) << g->pivot;
  EXPECT_GT(cv::norm(g->pivot - g->dial_centre), 10);
  EXPECT_NEAR(g->min_angle_deg, 225, 2);
  EXPECT_NEAR(g->max_angle_deg, -45, 2);
  EXPECT_EQ(g->major_ticks, 9);
  ASSERT_TRUE(CalibratedReading(*g).has_value());
  EXPECT_NEAR(*CalibratedReading(*g), 125.0 / 27.0, 0.2);  // (225 - 100) / 270 * 10
}

TEST(CalibrateTest, UnevenMajorTicksBecomeAScale) {
  // 0..10 with the first steps compressed, as on many real dials
  const std::vector<double> majors = {225, 213, 195, 170, 140, 105, 70, 35, 0, -45};
  const cv::Mat img = HandDial({200, 200}, {200, 200}, majors, 150);
  GaugeCalibration hints;
  hints.min_value = 0, hints.max_value = 9;
  auto g = CalibrateGauge(img, hints);
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->scale.size(), majors.size());
  for (std::size_t i = 0; i < majors.size(); ++i) {
    EXPECT_DOUBLE_EQ(g->scale[i].value, double(i));
    EXPECT_NEAR(g->scale[i].angle_deg, majors[i], 2.0) << i;
  }
  // the needle at 150 degrees sits between 3 (170) and 4 (140): 3 + 20/30
  ASSERT_TRUE(CalibratedReading(*g).has_value());
  EXPECT_NEAR(*CalibratedReading(*g), 3.0 + 20.0 / 30.0, 0.1);

  nlohmann::json gauge = {{"min_value", 0},
                          {"max_value", 9},
                          {"min_angle_deg", 220},
                          {"max_angle_deg", -40},
                          {"unit", "bar"}};
  WriteCalibration(*g, gauge);
  // the old guesses would contradict the measured scale
  EXPECT_FALSE(gauge.contains("min_angle_deg"));
  EXPECT_FALSE(gauge.contains("max_angle_deg"));
  EXPECT_EQ(gauge["unit"], "bar");
  const nlohmann::json station = {
      {"rois",
       {{{"name", "g"}, {"task", "read_gauge"}, {"rect", {0, 0, 400, 400}}, {"gauge", gauge}}}}};
  auto parsed = ParseStationConfig(station.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->rois[0].gauge.scale.size(), majors.size());
  ASSERT_TRUE(parsed->rois[0].gauge.pivot.has_value());
  EXPECT_NEAR(parsed->rois[0].gauge.pivot->x, 0.5, 0.02);
}

TEST(CalibrateTest, LinearGeometryIsWrittenAsEndAngles) {
  cv::RNG rng(3);
  GaugeStyle s;
  const cv::Mat img = RenderGauge(s, 2.0, rng);
  auto g = CalibrateGauge(img, GaugeCalibration{});
  ASSERT_TRUE(g.ok()) << g.status();
  nlohmann::json gauge = {{"min_value", 0}, {"max_value", 10}, {"scale", {{0, 230}, {10, -50}}}};
  WriteCalibration(*g, gauge);
  EXPECT_FALSE(gauge.contains("scale"));
  EXPECT_NEAR(gauge["min_angle_deg"].get<double>(), 225, 2);
  EXPECT_NEAR(gauge["max_angle_deg"].get<double>(), -45, 2);
  EXPECT_NEAR(gauge["radius"].get<double>(), 0.95 * s.radius_fraction, 0.02);
  EXPECT_NEAR(gauge["pivot"][0].get<double>(), 0.5, 0.02);
}

TEST(CalibrateTest, RefusesImagesWithoutADialOrTicks) {
  const cv::Mat blank(300, 300, CV_8UC3, cv::Scalar(128, 128, 128));
  auto none = CalibrateGauge(blank, GaugeCalibration{});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound) << none.status();

  // a plain face with a needle and one mark: not a scale
  cv::Mat sparse = HandDial({200, 200}, {200, 200}, {150}, 45);
  auto few = CalibrateGauge(sparse, GaugeCalibration{});
  ASSERT_FALSE(few.ok());
  EXPECT_EQ(few.status().code(), StatusCode::kFailedPrecondition) << few.status();
  EXPECT_NE(few.status().message().find("tick"), std::string::npos);

  // a config whose end angles are far from the dial's: refused, not silently overridden
  cv::RNG rng(5);
  GaugeCalibration far;
  far.min_angle_deg = 150, far.max_angle_deg = 30;
  auto wrong = CalibrateGauge(RenderGauge(GaugeStyle{}, 3, rng), far);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("min_angle_deg"), std::string::npos) << wrong.status();
}

}  // namespace
}  // namespace roilens
