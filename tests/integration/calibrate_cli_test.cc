// `roilens calibrate` as a user runs it: the sample station's first frame, a calibrated config
// that loads and keeps the rest of the station, --in-place on a commented config, the overlay,
// and clear refusals naming the file and ROI; and `roilens accuracy --real` on a tiny labelled set.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>

#include "roilens/config/config.h"
#include "roilens/samples.h"
#include "testing/cli_runner.h"
#include "testing/paths.h"

namespace roilens {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileText;
using testing::RunCli;

/// The sample station (a few frames) in a fresh directory.
fs::path Samples(const std::string& name) {
  const fs::path dir = testing::ScratchDir(name);
  SampleOptions options;
  options.frames = 3;
  auto manifest = WriteSamples(dir.string(), options);
  EXPECT_TRUE(manifest.ok()) << manifest.status();
  return dir;
}

TEST(CalibrateCliTest, WritesACalibratedConfigAndAnOverlay) {
  const fs::path dir = Samples("calibrate");
  const std::string config = (dir / "station.json").string();
  const std::string before = ReadFileText(config);
  auto r = RunCli({"calibrate", (dir / "station.mp4").string(), "--config", config, "--roi",
                   "coolant", "--overlay", (dir / "overlay.png").string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("pivot"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("residual"), std::string::npos) << r.out;
  EXPECT_EQ(ReadFileText(config), before);  // a new file by default
  auto calibrated = LoadStationConfig((dir / "station.calibrated.json").string());
  ASSERT_TRUE(calibrated.ok()) << calibrated.status();
  auto original = LoadStationConfig(config);
  ASSERT_TRUE(original.ok());
  ASSERT_EQ(calibrated->rois.size(), original->rois.size());
  // The coolant dial (0-120 over 210..-30 degrees) is centred in its square ROI.
  const GaugeCalibration& g = calibrated->rois[1].gauge;
  ASSERT_TRUE(g.pivot && g.radius);
  EXPECT_NEAR(g.pivot->x, 0.5, 0.02);
  EXPECT_NEAR(g.pivot->y, 0.5, 0.02);
  EXPECT_NEAR(*g.radius, 0.95 * 0.42, 0.02);
  EXPECT_NEAR(g.min_angle_deg, 210, 2);
  EXPECT_NEAR(g.max_angle_deg, -30, 2);
  EXPECT_EQ(g.unit, original->rois[1].gauge.unit);
  // Everything else is as it was.
  EXPECT_FALSE(calibrated->rois[0].gauge.pivot.has_value());
  EXPECT_EQ(calibrated->rois[0].rect, original->rois[0].rect);
  EXPECT_EQ(calibrated->rois[2].object, original->rois[2].object);
  EXPECT_EQ(calibrated->rois[1].alarm.high, original->rois[1].alarm.high);
  const cv::Mat overlay = cv::imread((dir / "overlay.png").string());
  ASSERT_FALSE(overlay.empty());
  EXPECT_GE(overlay.cols, 480);
}

TEST(CalibrateCliTest, InPlaceRewritesTheConfigAndSaysCommentsAreLost) {
  const fs::path dir = Samples("calibrate-in-place");
  const std::string config = (dir / "station.json").string();
  const std::string text = "// station with a comment\n" + ReadFileText(config);
  std::ofstream(config, std::ios::trunc) << text;
  auto r = RunCli({"calibrate", (dir / "station.mp4").string(), "--config", config, "--roi",
                   "boiler", "--in-place"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("comments are not kept"), std::string::npos) << r.out;
  auto calibrated = LoadStationConfig(config);
  ASSERT_TRUE(calibrated.ok()) << calibrated.status();
  ASSERT_TRUE(calibrated->rois[0].gauge.pivot.has_value());
  EXPECT_NEAR(calibrated->rois[0].gauge.min_angle_deg, 225, 2);
  EXPECT_NEAR(calibrated->rois[0].gauge.max_angle_deg, -45, 2);
  EXPECT_FALSE(fs::exists(dir / "station.calibrated.json"));
}

TEST(CalibrateCliTest, RefusesWithAMessageNamingTheFileAndRoi) {
  const fs::path dir = Samples("calibrate-refusals");
  const std::string config = (dir / "station.json").string();
  const std::string blank = (dir / "blank.png").string();
  cv::imwrite(blank, cv::Mat(360, 640, CV_8UC3, cv::Scalar(90, 90, 90)));
  auto r = RunCli({"calibrate", blank, "--config", config, "--roi", "boiler", "--out",
                   (dir / "out.json").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("blank.png"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'boiler'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no dial"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "out.json"));

  auto tray =
      RunCli({"calibrate", (dir / "station.mp4").string(), "--config", config, "--roi", "tray"});
  EXPECT_EQ(tray.exit_code, 2);
  EXPECT_NE(tray.err.find("read_gauge"), std::string::npos) << tray.err;
  auto missing =
      RunCli({"calibrate", (dir / "station.mp4").string(), "--config", config, "--roi", "nope"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("'nope'"), std::string::npos) << missing.err;
}

TEST(AccuracyRealCliTest, PrintsFiguresAndTheReliabilityGoals) {
  const fs::path dir = testing::ScratchDir("accuracy-real");
  cv::RNG rng(21);
  cv::imwrite((dir / "g.png").string(), RenderGauge(GaugeStyle{}, 7.5, rng));
  std::ofstream(dir / "truth.json") << R"({"images": [{"file": "g.png", "task": "read_gauge",
      "gauge": {"min_value": 0, "max_value": 10, "min_angle_deg": 225, "max_angle_deg": -45},
      "truth": 7.5}]})";
  auto r = RunCli({"accuracy", "--real", dir.string(), "-v", "--workers", "1"});
  ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 1) << r.out << r.err;
  EXPECT_NE(r.out.find("g.png: truth 7.5 read"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("real set " + dir.string() + ": 1 gauges, 0 counts"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("(target <= 1%)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("confidence >= 0.8: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("share of readings with confidence >= 0.8: "), std::string::npos) << r.out;

  auto missing = RunCli({"accuracy", "--real", (dir / "nope").string()});
  EXPECT_EQ(missing.exit_code, 4);
  EXPECT_NE(missing.err.find("truth.json"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace roilens
