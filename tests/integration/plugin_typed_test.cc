// Plugin API 2: typed results read through the C table (roi_count / roi_result / roi_object) and
// the C++ facade's Frame::results agree field by field with the frame's results JSON, on the
// sample station through the embedded backend; misuse of the new calls is refused cleanly.
#include <gtest/gtest.h>

#include <cstddef>
#include <nlohmann/json.hpp>
#include <opencv2/videoio.hpp>
#include <string>
#include <vector>

#include "roilens/samples.h"
#include "roilens_plugin/roilens_plugin.hpp"
#include "testing/plugin_paths.h"
#include "testing/plugin_support.h"

namespace roilens::testing {
namespace {

using nlohmann::json;

std::string StrOrEmpty(const json& j) { return j.is_string() ? j.get<std::string>() : ""; }

TEST(PluginTyped, TableIsApi2AndAppendsToApi1) {
  const roilens_plugin_api* api = PluginApi();
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->api_version, 2);
  EXPECT_EQ(api->size, sizeof(roilens_plugin_api));
  // API 1 members keep their offsets: the new ones come after last_error.
  EXPECT_GT(offsetof(roilens_plugin_api, roi_count), offsetof(roilens_plugin_api, last_error));
  EXPECT_NE(api->roi_count, nullptr);
  EXPECT_NE(api->roi_result, nullptr);
  EXPECT_NE(api->roi_object, nullptr);
}

TEST(PluginTyped, FacadeResultsMatchTheJsonOnTheSampleStation) {
  TempDir dir("roilens_plugin_typed");
  SampleOptions options;
  options.frames = 8;
  options.stills = 0;
  auto manifest = WriteSamples(dir.path(), options);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  json config = json::parse(ReadTextFile(dir.path() + "/station.json"));
  for (auto& roi : config.at("rois")) roi["change_threshold"] = 0.0;  // every frame answered

  plugin::Library library(GetPluginPaths().plugin);
  EXPECT_EQ(library.api_version(), 2);
  plugin::Session session(library, config.dump());
  cv::VideoCapture video(dir.path() + "/station.mp4");
  ASSERT_TRUE(video.isOpened());
  cv::Mat frame;
  std::vector<plugin::Frame> frames;
  for (int i = 0; video.read(frame); ++i) {
    session.Submit(frame, i, i / 10.0);
    while (auto out = session.TryTake()) frames.push_back(std::move(*out));
  }
  session.Flush();
  while (auto out = session.Take()) frames.push_back(std::move(*out));
  ASSERT_EQ(frames.size(), 8u);

  int objects_seen = 0, values_seen = 0;
  for (const plugin::Frame& f : frames) {
    const json lines = json::parse(f.results_json);
    ASSERT_EQ(f.results.size(), lines.size()) << f.results_json;
    for (std::size_t r = 0; r < lines.size(); ++r) {
      const json& line = lines[r];
      const plugin::RoiResult& typed = f.results[r];
      SCOPED_TRACE(line.dump());
      EXPECT_EQ(typed.roi, line.at("roi"));
      EXPECT_EQ(typed.task, line.at("task"));
      EXPECT_EQ(typed.status, line.at("status"));
      EXPECT_EQ(typed.rect,
                cv::Rect(line["rect"][0], line["rect"][1], line["rect"][2], line["rect"][3]));
      EXPECT_EQ(typed.value.has_value(), line["value"].is_number());
      if (typed.value) {
        EXPECT_EQ(*typed.value, line["value"].get<double>());
      }
      EXPECT_EQ(typed.unit, StrOrEmpty(line["unit"]));
      EXPECT_EQ(typed.count.has_value(), line["count"].is_number());
      if (typed.count) {
        EXPECT_EQ(*typed.count, line["count"].get<std::int64_t>());
      }
      EXPECT_EQ(typed.confidence.has_value(), line["confidence"].is_number());
      if (typed.confidence) {
        EXPECT_EQ(*typed.confidence, line["confidence"].get<double>());
      }
      EXPECT_EQ(typed.alarm, StrOrEmpty(line["alarm"]));
      EXPECT_EQ(typed.error, StrOrEmpty(line["error"]));
      EXPECT_EQ(typed.text, StrOrEmpty(line["text"]));
      EXPECT_EQ(typed.attempts, line.at("attempts").get<int>());
      EXPECT_EQ(typed.latency_ms, line.at("latency_ms").get<double>());
      EXPECT_EQ(typed.interaction_id, StrOrEmpty(line["interaction_id"]));
      const std::size_t objects = line["objects"].is_array() ? line["objects"].size() : 0;
      ASSERT_EQ(typed.objects.size(), objects);
      for (std::size_t k = 0; k < objects; ++k) {
        const json& o = line["objects"][k];
        EXPECT_EQ(typed.objects[k].box,
                  cv::Rect2d(o["box"][0], o["box"][1], o["box"][2], o["box"][3]));
        EXPECT_EQ(typed.objects[k].score.has_value(), o["score"].is_number());
        if (typed.objects[k].score) {
          EXPECT_EQ(*typed.objects[k].score, o["score"].get<double>());
        }
      }
      objects_seen += static_cast<int>(objects);
      values_seen += typed.value.has_value();
    }
  }
  // The station has gauges and a parts tray: both kinds of field were really compared.
  EXPECT_GT(values_seen, 0);
  EXPECT_GT(objects_seen, 0);
}

TEST(PluginTyped, MisuseOfTheNewCallsIsRefused) {
  const roilens_plugin_api* api = PluginApi();
  ASSERT_NE(api, nullptr);
  roilens_handle* h = nullptr;
  ASSERT_EQ(api->create(EchoStationConfig(2).c_str(), "{\"coder\": \"echo\"}", &h), ROILENS_OK)
      << api->last_error();
  std::vector<std::uint8_t> pixels(640 * 360 * 3, 90);
  ASSERT_EQ(api->submit(h, pixels.data(), 640, 360, 640 * 3, 0, 0.0), ROILENS_OK);
  ASSERT_EQ(api->flush(h), ROILENS_OK);
  roilens_frame_out out{};
  ASSERT_EQ(api->take(h, -1, &out), ROILENS_OK);

  std::int32_t count = -1;
  ASSERT_EQ(api->roi_count(&out, &count), ROILENS_OK);
  EXPECT_EQ(count, 2);
  roilens_roi_result r{};
  r.size = sizeof(r);
  ASSERT_EQ(api->roi_result(&out, 1, &r), ROILENS_OK) << api->last_error();
  EXPECT_STREQ(r.roi, "roi1");
  EXPECT_STREQ(r.task, "count");
  EXPECT_EQ(r.frame_index, 0);
  EXPECT_EQ(r.has_count, 1);
  EXPECT_EQ(r.has_value, 0);
  EXPECT_STREQ(r.unit, "");  // absent strings are "", never NULL
  EXPECT_STREQ(r.error, "");

  EXPECT_EQ(api->roi_result(&out, 2, &r), ROILENS_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(api->last_error()).find("out of range"), std::string::npos);
  EXPECT_EQ(api->roi_result(&out, -1, &r), ROILENS_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(api->roi_object(&out, 1, 0, nullptr), ROILENS_ERROR_INVALID_ARGUMENT);
  roilens_roi_object o{};
  o.size = sizeof(o);
  EXPECT_EQ(api->roi_object(&out, 1, r.object_count, &o), ROILENS_ERROR_INVALID_ARGUMENT);
  roilens_roi_result small{};
  small.size = offsetof(roilens_roi_result, unit);  // a size no API ever had
  EXPECT_EQ(api->roi_result(&out, 0, &small), ROILENS_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(api->last_error()).find("size"), std::string::npos);
  EXPECT_EQ(api->roi_count(nullptr, &count), ROILENS_ERROR_INVALID_ARGUMENT);

  roilens_frame_out copy = out;  // the same frame, seen through a copy after release
  api->frame_release(&out);
  EXPECT_EQ(api->roi_count(&copy, &count), ROILENS_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(count, 0);
  EXPECT_EQ(api->roi_result(&copy, 0, &r), ROILENS_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(api->destroy(h), ROILENS_OK);
}

}  // namespace
}  // namespace roilens::testing
