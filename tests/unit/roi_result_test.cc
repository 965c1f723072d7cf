// RoiResult <-> results.jsonl object: every key always written, values round-trip exactly, and
// malformed lines are refused naming the key.
#include "roilens/stages/roi_result.h"

#include <gtest/gtest.h>

#include "roilens/outputs/coco.h"

namespace roilens {
namespace {

using nlohmann::json;

RoiResult CountResult() {
  RoiResult r;
  r.frame = 12;
  r.time_s = 1.2;
  r.roi = "tray";
  r.task = "count";
  r.rect = cv::Rect(400, 200, 160, 120);
  r.status = "ok";
  r.count = 2;
  r.objects = {{cv::Rect2d(410, 205, 20, 18), 0.9}, {cv::Rect2d(450, 230, 22, 19), std::nullopt}};
  r.confidence = 0.8;
  r.attempts = 1;
  r.latency_ms = 35.5;
  r.interaction_id = "int-1";
  r.usage = RoiUsage{100, 20, 5, 125, json{{"input_tokens_by_modality", json::array()}}};
  return r;
}

TEST(RoiResultTest, JsonHasEveryKeyWithNullsForAbsentValues) {
  RoiResult r;
  r.roi = "boiler";
  r.task = "read_gauge";
  r.status = "error";
  r.error = "boiler: timed out";
  const json j = ToJson(r);
  for (const char* key : {"frame", "source", "time_s",   "roi",        "task",
                          "rect",  "status", "value",    "raw_value",  "implausible_jump",
                          "unit",  "count",  "objects",  "text",       "confidence",
                          "alarm", "error",  "attempts", "latency_ms", "interaction_id",
                          "usage"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j.size(), 21u);
  EXPECT_TRUE(j["value"].is_null());
  EXPECT_TRUE(j["source"].is_null());
  EXPECT_TRUE(j["objects"].is_null());  // not a count
  EXPECT_TRUE(j["usage"].is_null());
  EXPECT_EQ(j["error"], "boiler: timed out");
}

TEST(RoiResultTest, CountRoundTripsAndKeepsIntegerBoxes) {
  const RoiResult r = CountResult();
  const json j = ToJson(r);
  EXPECT_EQ(j["objects"][0].dump(), R"({"box":[410,205,20,18],"score":0.9})");
  EXPECT_TRUE(j["objects"][1]["score"].is_null());
  EXPECT_EQ(j["usage"]["total_tool_use_tokens"], 5);
  EXPECT_TRUE(j["usage"].contains("input_tokens_by_modality"));
  auto back = RoiResultFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
  EXPECT_EQ(ToJson(*back).dump(), j.dump());
}

TEST(RoiResultTest, CountWithoutObjectsIsAnEmptyList) {
  RoiResult r = CountResult();
  r.objects.clear();
  EXPECT_EQ(ToJson(r)["objects"], json::array());
}

TEST(RoiResultTest, FractionalBoxesStayFractional) {
  RoiResult r = CountResult();
  r.objects = {{cv::Rect2d(1.5, 2, 3.25, 4), 0.5}};
  const json j = ToJson(r);
  EXPECT_EQ(j["objects"][0]["box"].dump(), "[1.5,2,3.25,4]");
  auto back = RoiResultFromJson(j);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->objects, r.objects);
}

TEST(RoiResultTest, MalformedLinesNameTheKey) {
  const json good = ToJson(CountResult());
  struct Case {
    const char* key;
    json value;
  } cases[] = {{"frame", "x"},
               {"frame", nullptr},
               {"roi", 3},
               {"rect", {1, 2, 3}},
               {"rect", {1.5, 2, 3, 4}},
               {"value", "high"},
               {"count", 2.5},
               {"objects", 1},
               {"objects", json::array({json{{"box", json::array({1, 2})}}})},
               {"usage", "lots"},
               {"alarm", true},
               {"status", nullptr}};
  for (const Case& c : cases) {
    json bad = good;
    bad[c.key] = c.value;
    auto parsed = RoiResultFromJson(bad);
    ASSERT_FALSE(parsed.ok()) << c.key << " = " << c.value.dump();
    EXPECT_NE(parsed.status().message().find(c.key), std::string::npos) << parsed.status();
  }
  EXPECT_FALSE(RoiResultFromJson(json::array()).ok());
}

TEST(CocoTest, ImagesCategoriesAndAnnotationsFromCountObjects) {
  RoiResult gauge;
  gauge.frame = 12;
  gauge.roi = "boiler";
  gauge.task = "read_gauge";
  gauge.value = 3;
  RoiResult next = CountResult();
  next.frame = 13;
  next.source = "img_13.png";
  next.objects = {{cv::Rect2d(1, 2, 3, 4), std::nullopt}};
  CocoOptions options;
  options.frame_size = cv::Size(640, 360);
  options.object_kinds = {{"tray", "bolt"}};
  const json coco = CocoFromResults({gauge, CountResult(), next}, options);
  ASSERT_EQ(coco["images"].size(), 2u);  // frames 12 and 13, once each
  EXPECT_EQ(coco["images"][0]["id"], 12);
  EXPECT_EQ(coco["images"][0]["file_name"], "frame_000012.png");
  EXPECT_EQ(coco["images"][1]["file_name"], "img_13.png");
  EXPECT_EQ(coco["images"][1]["width"], 640);
  EXPECT_EQ(coco["images"][1]["height"], 360);
  ASSERT_EQ(coco["categories"].size(), 1u);
  EXPECT_EQ(coco["categories"][0]["name"], "bolt");
  EXPECT_EQ(coco["categories"][0]["id"], 1);
  const json& a = coco["annotations"];
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0]["id"], 1);
  EXPECT_EQ(a[0]["image_id"], 12);
  EXPECT_EQ(a[0]["category_id"], 1);
  EXPECT_EQ(a[0]["bbox"], json({410, 205, 20, 18}));
  EXPECT_EQ(a[0]["area"], 360);
  EXPECT_EQ(a[0]["score"], 0.9);
  EXPECT_FALSE(a[1].contains("score"));  // the model gave none
  EXPECT_EQ(a[2]["image_id"], 13);
}

}  // namespace
}  // namespace roilens
