// A real `roilens run` of the sample station: its results.jsonl lines round-trip through the
// typed RoiResult byte for byte, load as one flat table (same keys on every line), and
// `roilens export --coco` turns its count objects into COCO detection JSON.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "roilens/samples.h"
#include "roilens/stages/roi_result.h"
#include "testing/cli_runner.h"
#include "testing/paths.h"

namespace roilens {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ReadFileText;
using testing::RunCli;

constexpr int kFrames = 20;

class ExportCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    samples_ = testing::ScratchDir("export_samples");
    SampleOptions options;
    options.frames = kFrames;
    options.stills = 0;
    auto manifest = WriteSamples(samples_.string(), options);
    ASSERT_TRUE(manifest.ok()) << manifest.status();
    run_ = testing::ScratchDir("export_run");
    auto result = RunCli({"run", (samples_ / "station.mp4").string(), "--config",
                          (samples_ / "station.json").string(), "--out", run_.string()});
    ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
    std::ifstream in(run_ / "results.jsonl");
    for (std::string text; std::getline(in, text);) lines_.push_back(text);
  }
  void SetUp() override { ASSERT_EQ(lines_.size(), static_cast<std::size_t>(kFrames * 3)); }

  static fs::path samples_, run_;
  static std::vector<std::string> lines_;
};
fs::path ExportCli::samples_, ExportCli::run_;
std::vector<std::string> ExportCli::lines_;

TEST_F(ExportCli, ResultsLinesRoundTripThroughRoiResultUnchanged) {
  int with_objects = 0, with_usage = 0;
  for (const std::string& text : lines_) {
    const json line = json::parse(text);
    auto typed = RoiResultFromJson(line);
    ASSERT_TRUE(typed.ok()) << typed.status() << "\n" << text;
    EXPECT_EQ(ToJson(*typed).dump(-1, ' ', false, json::error_handler_t::replace), text);
    auto again = RoiResultFromJson(ToJson(*typed));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *typed);
    with_objects += !typed->objects.empty();
    with_usage += typed->usage.has_value();
  }
  // The run exercised the parts that are easy to get wrong: boxes and usage objects.
  EXPECT_GT(with_objects, 0);
  EXPECT_GT(with_usage, 0);
}

TEST_F(ExportCli, EveryLineHasTheSameFlatKeysSoTablesLoadWithoutReshaping) {
  std::set<std::string> first;
  const json front = json::parse(lines_.front());
  for (const auto& [key, value] : front.items()) first.insert(key);
  for (const std::string& text : lines_) {
    std::set<std::string> keys;
    const json line = json::parse(text);  // named: items() of a temporary would dangle
    for (const auto& [key, value] : line.items()) keys.insert(key);
    EXPECT_EQ(keys, first) << text;
  }
}

TEST_F(ExportCli, PandasReadsResultsAsOneRowPerLineWhereInstalled) {
  std::set<std::string> first;
  const json front = json::parse(lines_.front());
  for (const auto& [key, value] : front.items()) first.insert(key);
  // pandas.read_json(lines=True): one row per line, one column per key.
  if (std::system("/usr/bin/python3 -c 'import pandas' 2>/dev/null") != 0) {
    GTEST_SKIP() << "pandas is not installed (the equal-keys test covers the layout)";
  }
  const std::string script =
      "import pandas, sys; d = pandas.read_json(sys.argv[1], lines=True); "
      "assert len(d) == " +
      std::to_string(lines_.size()) +
      ", len(d); assert len(d.columns) == " + std::to_string(first.size()) +
      ", list(d.columns); print(d.dtypes)";
  const std::string cmd =
      "/usr/bin/python3 -c '" + script + "' '" + (run_ / "results.jsonl").string() + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

TEST_F(ExportCli, CocoExportHoldsEveryCountObjectInFrameCoordinates) {
  const fs::path file = run_ / "coco.json";
  auto result = RunCli({"export", "--coco", run_.string(), "-o", file.string()});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  const json coco = json::parse(ReadFileText(file.string()));

  // The sample station's count ROIs and what they count, from its config.
  const json config = json::parse(ReadFileText((samples_ / "station.json").string()));
  std::map<std::string, std::string> kind_of;
  for (const json& roi : config.at("rois"))
    if (roi.value("task", "") == "count") kind_of[roi.at("name")] = roi.at("object");
  ASSERT_FALSE(kind_of.empty());

  // What the annotations must be: every object of every count line.
  std::multiset<std::tuple<std::int64_t, std::string, std::vector<double>>> expected;
  std::map<std::int64_t, cv::Rect> roi_rect;
  for (const std::string& text : lines_) {
    const RoiResult r = *RoiResultFromJson(json::parse(text));
    for (const RoiObject& o : r.objects) {
      expected.insert({r.frame, kind_of.at(r.roi), {o.box.x, o.box.y, o.box.width, o.box.height}});
    }
  }
  ASSERT_FALSE(expected.empty());

  ASSERT_EQ(coco.at("images").size(), static_cast<std::size_t>(kFrames));
  std::map<std::int64_t, json> images;
  for (const json& image : coco["images"]) {
    images[image.at("id")] = image;
    EXPECT_EQ(image.at("width"), 640);
    EXPECT_EQ(image.at("height"), 360);
    EXPECT_TRUE(image.at("file_name").is_string());
  }
  std::map<int, std::string> category;
  for (const json& c : coco.at("categories")) category[c.at("id")] = c.at("name");
  std::set<std::string> kinds;
  for (const auto& [roi, kind] : kind_of) kinds.insert(kind);
  std::set<std::string> names;
  for (const auto& [id, name] : category) names.insert(name);
  EXPECT_EQ(names, kinds);

  std::multiset<std::tuple<std::int64_t, std::string, std::vector<double>>> got;
  std::set<std::int64_t> ids;
  for (const json& a : coco.at("annotations")) {
    EXPECT_TRUE(ids.insert(a.at("id").get<std::int64_t>()).second);
    EXPECT_GE(a["id"].get<std::int64_t>(), 1);
    ASSERT_TRUE(images.count(a.at("image_id"))) << a;
    ASSERT_TRUE(category.count(a.at("category_id"))) << a;
    const std::vector<double> box = a.at("bbox");
    ASSERT_EQ(box.size(), 4u);
    EXPECT_GT(box[2], 0);
    EXPECT_GT(box[3], 0);
    EXPECT_LE(box[0] + box[2], 640);
    EXPECT_LE(box[1] + box[3], 360);
    EXPECT_DOUBLE_EQ(a.at("area").get<double>(), box[2] * box[3]);
    EXPECT_EQ(a.at("iscrowd"), 0);
    got.insert({a["image_id"].get<std::int64_t>(), category[a["category_id"]], box});
  }
  EXPECT_EQ(got, expected);

  // Stdout when no -o; a directory that is not a run is a clear error.
  auto to_stdout = RunCli({"export", "--coco", run_.string()});
  ASSERT_EQ(to_stdout.exit_code, 0) << to_stdout.err;
  EXPECT_EQ(json::parse(to_stdout.out), coco);
  auto missing = RunCli({"export", "--coco", (run_ / "nope").string()});
  EXPECT_EQ(missing.exit_code, 4);
  EXPECT_NE(missing.err.find("summary.json"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace roilens
