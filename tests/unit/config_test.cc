// Station config: every field reachable from JSON, comments allowed, and every bad config
// rejected with the file name and the JSON path of the bad field.
#include "roilens/config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "testing/paths.h"

namespace roilens {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr const char* kFullConfig = R"({
  // every field, with non-default values
  "backend": {"endpoint": "http://127.0.0.1:9000", "model": "m-1", "api_key_env": "MY_KEY",
              "max_in_flight": 3, "request_timeout_s": 7.5, "max_retries": 2,
              "requests_per_minute": 60},
  "pipeline": {"mode": "live", "every_n_frames": 5, "max_frames_in_flight": 4,
               "max_input_pixels": 1e6, "decoder": "opencv",
               "preprocess": {"max_width": 640, "clahe": true, "denoise": true, "rotate_deg": -3}},
  "rois": [
    {"name": "boiler", "rect": [10, 20, 100, 90], "task": "read_gauge", "zoom": 2,
     "gauge": {"min_value": 0, "max_value": 10, "min_angle_deg": 225, "max_angle_deg": -45,
               "unit": "bar"},
     "alarm": {"low": 1, "high": 8}, "min_confidence": 0.8, "change_threshold": 0.05,
     "max_age_s": 30},
    /* block comments too */
    {"name": "tray", "polygon": [[0, 0], [50, 0], [50, 40]], "task": "count", "object": "bolts",
     "min_confidence": 0},
    {"name": "dials", "find": "gauges", "rect": [0, 0, 300, 200], "task": "read_gauge",
     "gauge": {"min_value": -1, "max_value": 1}},
    {"name": "tiles", "find": "grid", "grid": [3, 4], "task": "annotate", "prompt": "Circle it"},
    {"name": "q", "rect": [1, 1, 2, 2], "task": "ask", "prompt": "What colour?"},
    {"name": "z", "rect": [1, 1, 2, 2], "task": "zoom", "zoom": 8}
  ],
  "merge": {"mode": "inset", "labels": false, "blend_alpha": 0.25},
  "output": {"video": "v.mp4", "results": "r.jsonl", "summary": "s.json", "report": "x.html"}
})";

TEST(ConfigTest, ParsesEveryField) {
  auto parsed = ParseStationConfig(kFullConfig, "full.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const StationConfig& c = *parsed;
  EXPECT_EQ(c.source_path, "full.json");
  EXPECT_EQ(c.backend.endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(c.backend.model, "m-1");
  EXPECT_EQ(c.backend.api_key_env, "MY_KEY");
  EXPECT_EQ(c.backend.max_in_flight, 3);
  EXPECT_DOUBLE_EQ(c.backend.request_timeout_s, 7.5);
  EXPECT_EQ(c.backend.max_retries, 2);
  EXPECT_DOUBLE_EQ(c.backend.requests_per_minute, 60);
  EXPECT_EQ(c.pipeline.mode, PipelineMode::kLive);
  EXPECT_EQ(c.pipeline.every_n_frames, 5);
  EXPECT_EQ(c.pipeline.max_frames_in_flight, 4);
  EXPECT_EQ(c.pipeline.max_input_pixels, 1000000);
  EXPECT_EQ(c.pipeline.decoder, "opencv");
  EXPECT_EQ(c.pipeline.preprocess.max_width, 640);
  EXPECT_TRUE(c.pipeline.preprocess.clahe);
  EXPECT_TRUE(c.pipeline.preprocess.denoise);
  EXPECT_DOUBLE_EQ(c.pipeline.preprocess.rotate_deg, -3);
  ASSERT_EQ(c.rois.size(), 6u);
  const RoiConfig& boiler = c.rois[0];
  EXPECT_EQ(boiler.name, "boiler");
  EXPECT_EQ(boiler.task, TaskKind::kReadGauge);
  ASSERT_TRUE(boiler.rect.has_value());
  EXPECT_EQ(*boiler.rect, cv::Rect(10, 20, 100, 90));
  EXPECT_DOUBLE_EQ(boiler.zoom, 2);
  EXPECT_DOUBLE_EQ(boiler.gauge.min_value, 0);
  EXPECT_DOUBLE_EQ(boiler.gauge.max_value, 10);
  EXPECT_DOUBLE_EQ(boiler.gauge.min_angle_deg, 225);
  EXPECT_DOUBLE_EQ(boiler.gauge.max_angle_deg, -45);
  EXPECT_EQ(boiler.gauge.unit, "bar");
  EXPECT_EQ(boiler.alarm.low, 1.0);
  EXPECT_EQ(boiler.alarm.high, 8.0);
  EXPECT_DOUBLE_EQ(boiler.change_threshold, 0.05);
  EXPECT_DOUBLE_EQ(boiler.max_age_s, 30);
  EXPECT_EQ(boiler.min_confidence, 0.8);
  EXPECT_EQ(c.rois[1].task, TaskKind::kCount);
  EXPECT_EQ(c.rois[1].min_confidence, 0.0);
  EXPECT_FALSE(c.rois[2].min_confidence.has_value()) << "unset: the default bar applies";
  EXPECT_EQ(c.rois[1].object, "bolts");
  EXPECT_EQ(c.rois[1].polygon,
            (std::vector<cv::Point>{cv::Point(0, 0), cv::Point(50, 0), cv::Point(50, 40)}));
  EXPECT_FALSE(c.rois[1].rect.has_value());
  EXPECT_EQ(c.rois[2].find, "gauges");
  EXPECT_EQ(*c.rois[2].rect, cv::Rect(0, 0, 300, 200));
  EXPECT_EQ(c.rois[3].find, "grid");
  EXPECT_EQ(c.rois[3].grid_rows, 3);
  EXPECT_EQ(c.rois[3].grid_cols, 4);
  EXPECT_EQ(c.rois[3].task, TaskKind::kAnnotate);
  EXPECT_EQ(c.rois[3].prompt, "Circle it");
  EXPECT_EQ(c.rois[4].task, TaskKind::kAsk);
  EXPECT_EQ(c.rois[5].task, TaskKind::kZoom);
  EXPECT_DOUBLE_EQ(c.rois[5].zoom, 8);
  EXPECT_EQ(c.merge.mode, MergeMode::kInset);
  EXPECT_FALSE(c.merge.labels);
  EXPECT_DOUBLE_EQ(c.merge.blend_alpha, 0.25);
  EXPECT_EQ(c.output.video, "v.mp4");
  EXPECT_EQ(c.output.results, "r.jsonl");
  EXPECT_EQ(c.output.summary, "s.json");
  EXPECT_EQ(c.output.report, "x.html");
}

TEST(ConfigTest, MinimalConfigGetsDefaults) {
  auto parsed =
      ParseStationConfig(R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "zoom"}]})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const StationConfig defaults;
  EXPECT_EQ(parsed->backend.endpoint, "local");
  EXPECT_EQ(parsed->backend.model, defaults.backend.model);
  EXPECT_EQ(parsed->pipeline.mode, PipelineMode::kBatch);
  EXPECT_EQ(parsed->pipeline.every_n_frames, 1);
  EXPECT_EQ(parsed->pipeline.max_input_pixels, 64 * 1024 * 1024);
  EXPECT_EQ(parsed->pipeline.decoder, "auto");
  EXPECT_EQ(parsed->merge.mode, MergeMode::kReplace);
  EXPECT_TRUE(parsed->merge.labels);
  EXPECT_EQ(parsed->output.results, "results.jsonl");
  EXPECT_EQ(parsed->source_path, "<string>");
  EXPECT_DOUBLE_EQ(parsed->rois[0].zoom, 1);
  EXPECT_DOUBLE_EQ(parsed->rois[0].change_threshold, 0.02);
}

TEST(ConfigTest, TaskNames) {
  EXPECT_EQ(TaskName(TaskKind::kReadGauge), "read_gauge");
  EXPECT_EQ(TaskName(TaskKind::kCount), "count");
  EXPECT_EQ(TaskName(TaskKind::kZoom), "zoom");
  EXPECT_EQ(TaskName(TaskKind::kAnnotate), "annotate");
  EXPECT_EQ(TaskName(TaskKind::kAsk), "ask");
}

struct BadConfig {
  const char* label;
  std::string json;
  std::string expected;  ///< substring of the message after "bad.json: "
};

/// A valid ROI list to splice into configs that are bad elsewhere.
const std::string kRois = R"("rois": [{"name": "a", "rect": [0,0,4,4], "task": "zoom"}])";
/// A read_gauge ROI with `extra` fields appended to its object.
std::string Gauge(const std::string& gauge, const std::string& extra = "") {
  return R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "zoom"}, {"name": "boiler", "rect": [0,0,4,4],
    "task": "read_gauge", "gauge": )" +
         gauge + extra + "}]}";
}

TEST(ConfigTest, GaugeScalePivotAndRadius) {
  // A dial compressed near zero: 0..1 takes 60 degrees, 1..10 the remaining 210.
  auto parsed = ParseStationConfig(Gauge(
      R"({"scale": [[0, 225], [1, 165], [4, 95], [10, -45]], "pivot": [0.5, 0.55], "radius": 0.4,
          "unit": "bar"})"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const GaugeCalibration& g = parsed->rois[1].gauge;
  ASSERT_EQ(g.scale.size(), 4u);
  EXPECT_DOUBLE_EQ(g.min_value, 0);  // the ends come from the scale
  EXPECT_DOUBLE_EQ(g.max_value, 10);
  EXPECT_DOUBLE_EQ(g.min_angle_deg, 225);
  EXPECT_DOUBLE_EQ(g.max_angle_deg, -45);
  ASSERT_TRUE(g.pivot.has_value());
  EXPECT_DOUBLE_EQ(g.pivot->y, 0.55);
  EXPECT_DOUBLE_EQ(g.radius.value_or(0), 0.4);

  EXPECT_DOUBLE_EQ(GaugeAngleForValue(g, 0.5), 195);  // inside the first segment
  EXPECT_DOUBLE_EQ(GaugeAngleForValue(g, 7), 25);
  EXPECT_DOUBLE_EQ(GaugeAngleForValue(g, 11), -45 - 140.0 / 6);  // extrapolated from the last
  EXPECT_DOUBLE_EQ(GaugeValueForAngle(g, 195), 0.5);
  EXPECT_DOUBLE_EQ(GaugeValueForAngle(g, 25), 7);
  EXPECT_DOUBLE_EQ(GaugeValueForAngle(g, 25 + 360), 7);               // any turn of the same angle
  EXPECT_DOUBLE_EQ(GaugeValueForAngle(g, 300), 10 + 15.0 * 6 / 140);  // = -60, past the end
  for (double v = -0.5; v <= 10.5; v += 0.25) {
    EXPECT_NEAR(GaugeValueForAngle(g, GaugeAngleForValue(g, v)), v, 1e-9) << v;
  }

  // Without a scale the mapping is the linear one, extrapolated the same way.
  GaugeCalibration linear;  // 0..100 from 225 to -45 degrees
  linear.max_value = 100;
  EXPECT_DOUBLE_EQ(GaugeAngleForValue(linear, 50), 90);
  EXPECT_DOUBLE_EQ(GaugeValueForAngle(linear, 90), 50);
  EXPECT_DOUBLE_EQ(GaugeValueForAngle(linear, 300), 100 + 15.0 / 270 * 100);

  // A counter-clockwise scale (angles increasing) is allowed with `scale`.
  auto ccw = ParseStationConfig(Gauge(R"({"scale": [[0, -45], [5, 90], [10, 225]]})"));
  ASSERT_TRUE(ccw.ok()) << ccw.status();
  EXPECT_DOUBLE_EQ(GaugeValueForAngle(ccw->rois[1].gauge, 157.5), 7.5);
  // End angles that repeat the scale's are accepted.
  EXPECT_TRUE(ParseStationConfig(Gauge(R"({"scale": [[0, 225], [10, -45]], "min_angle_deg": 225,
                                           "max_angle_deg": -45.2})"))
                  .ok());
  // min/max narrower than the scale keep the scale's mapping.
  auto narrow = ParseStationConfig(Gauge(R"({"scale": [[0, 225], [10, -45]], "max_value": 8})"));
  ASSERT_TRUE(narrow.ok()) << narrow.status();
  EXPECT_DOUBLE_EQ(narrow->rois[1].gauge.max_angle_deg, 225 - 0.8 * 270);
}

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, NamesFileAndPath) {
  const BadConfig& c = GetParam();
  auto parsed = ParseStationConfig(c.json, "bad.json");
  ASSERT_FALSE(parsed.ok()) << c.label;
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(parsed.status().message(), StartsWith("bad.json"));
  EXPECT_THAT(parsed.status().message(), HasSubstr(c.expected)) << c.label;
  EXPECT_EQ(parsed.status().message().find('\n'), std::string::npos);
}

// clang-format off
INSTANTIATE_TEST_SUITE_P(
    Config, BadConfigTest,
    ::testing::Values(
        BadConfig{"not json", "{\n  \"rois\": [\n    {\"name\": }\n  ]\n}", "bad.json:3:"},
        BadConfig{"trailing garbage", "{" + kRois + "} x", "invalid JSON"},
        BadConfig{"top-level array", "[]", "must be an object"},
        BadConfig{"unknown top key", "{" + kRois + ", \"outptu\": {}}", "outptu: unknown key (did you mean 'output'?)"},
        BadConfig{"unknown backend key", "{" + kRois + ", \"backend\": {\"modle\": \"x\"}}", "backend.modle: unknown key"},
        BadConfig{"allowed keys listed", "{" + kRois + ", \"merge\": {\"zzz\": 1}}", "allowed keys: mode, labels, blend_alpha"},
        BadConfig{"endpoint not url", "{" + kRois + ", \"backend\": {\"endpoint\": \"ftp://x\"}}", "backend.endpoint: must be \"local\" or an http(s)://"},
        BadConfig{"max_in_flight 0", "{" + kRois + ", \"backend\": {\"max_in_flight\": 0}}", "backend.max_in_flight: must be in [1, 4096], got 0"},
        BadConfig{"max_in_flight float", "{" + kRois + ", \"backend\": {\"max_in_flight\": 1.5}}", "backend.max_in_flight: must be an integer"},
        BadConfig{"timeout 0", "{" + kRois + ", \"backend\": {\"request_timeout_s\": 0}}", "backend.request_timeout_s: must be in (0"},
        BadConfig{"retries negative", "{" + kRois + ", \"backend\": {\"max_retries\": -1}}", "backend.max_retries:"},
        BadConfig{"rpm negative", "{" + kRois + ", \"backend\": {\"requests_per_minute\": -5}}", "backend.requests_per_minute:"},
        BadConfig{"model type", "{" + kRois + ", \"backend\": {\"model\": 3}}", "backend.model: must be a string, got number"},
        BadConfig{"mode", "{" + kRois + ", \"pipeline\": {\"mode\": \"fast\"}}", "pipeline.mode: must be \"batch\" or \"live\""},
        BadConfig{"every_n_frames 0", "{" + kRois + ", \"pipeline\": {\"every_n_frames\": 0}}", "pipeline.every_n_frames: must be in [1"},
        BadConfig{"frames in flight", "{" + kRois + ", \"pipeline\": {\"max_frames_in_flight\": 0}}", "pipeline.max_frames_in_flight:"},
        BadConfig{"no pixels", "{" + kRois + ", \"pipeline\": {\"max_input_pixels\": 0}}", "pipeline.max_input_pixels: must be in [1, 1073741824], got 0"},
        BadConfig{"pixels past OpenCV's limit", "{" + kRois + ", \"pipeline\": {\"max_input_pixels\": 5e9}}", "pipeline.max_input_pixels: must be in [1, 1073741824]"},
        BadConfig{"fractional pixels", "{" + kRois + ", \"pipeline\": {\"max_input_pixels\": 1000.5}}", "pipeline.max_input_pixels: must be an integer"},
        BadConfig{"pixels as text", "{" + kRois + ", \"pipeline\": {\"max_input_pixels\": \"64MP\"}}", "pipeline.max_input_pixels: must be a number"},
        BadConfig{"decoder", "{" + kRois + ", \"pipeline\": {\"decoder\": \"gstreamer\"}}", "pipeline.decoder: must be \"auto\", \"ffmpeg\" or \"opencv\", got \"gstreamer\""},
        BadConfig{"max_width tiny", "{" + kRois + ", \"pipeline\": {\"preprocess\": {\"max_width\": 3}}}", "pipeline.preprocess.max_width:"},
        BadConfig{"clahe type", "{" + kRois + ", \"pipeline\": {\"preprocess\": {\"clahe\": 1}}}", "pipeline.preprocess.clahe: must be true or false"},
        BadConfig{"rotate", "{" + kRois + ", \"pipeline\": {\"preprocess\": {\"rotate_deg\": 400}}}", "pipeline.preprocess.rotate_deg:"},
        BadConfig{"preprocess typo", "{" + kRois + ", \"pipeline\": {\"preprocess\": {\"denoize\": true}}}", "pipeline.preprocess.denoize: unknown key (did you mean 'denoise'?)"},
        BadConfig{"no rois", "{}", "rois: is required"},
        BadConfig{"empty rois", R"({"rois": []})", "rois: must list at least one ROI"},
        BadConfig{"rois object", R"({"rois": {}})", "rois: must be a list"},
        BadConfig{"roi not object", R"({"rois": [3]})", "rois[0]: must be an object"},
        BadConfig{"missing name", R"({"rois": [{"rect": [0,0,4,4], "task": "zoom"}]})", "rois[0].name: is required"},
        BadConfig{"empty name", R"({"rois": [{"name": "", "rect": [0,0,4,4], "task": "zoom"}]})", "rois[0].name: must not be empty"},
        BadConfig{"hash in name", R"({"rois": [{"name": "a#1", "rect": [0,0,4,4], "task": "zoom"}]})", "rois[0].name: must not contain '#'"},
        BadConfig{"duplicate name", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "zoom"}, {"name": "a", "rect": [0,0,4,4], "task": "zoom"}]})", "rois[1].name: \"a\" is already used"},
        BadConfig{"missing task", R"({"rois": [{"name": "a", "rect": [0,0,4,4]}]})", "rois[0].task: is required"},
        BadConfig{"bad task", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "read"}]})", "rois[0].task: must be one of read_gauge"},
        BadConfig{"rect short", R"({"rois": [{"name": "a", "rect": [0,0,4], "task": "zoom"}]})", "rois[0].rect: must be [x, y, width, height]"},
        BadConfig{"rect zero width", R"({"rois": [{"name": "a", "rect": [0,0,0,4], "task": "zoom"}]})", "rois[0].rect: width and height must be > 0"},
        BadConfig{"rect negative", R"({"rois": [{"name": "a", "rect": [-1,0,3,4], "task": "zoom"}]})", "rois[0].rect: x and y must be >= 0"},
        BadConfig{"rect element type", R"({"rois": [{"name": "a", "rect": [0,"0",3,4], "task": "zoom"}]})", "rois[0].rect[1]: must be an integer, got string"},
        BadConfig{"no region", R"({"rois": [{"name": "a", "task": "zoom"}]})", "rois[0]: needs one of rect, polygon or find"},
        BadConfig{"rect and polygon", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "polygon": [[0,0],[4,0],[4,4]], "task": "zoom"}]})", "rois[0].polygon: give exactly one of rect, polygon or find"},
        BadConfig{"polygon and find", R"({"rois": [{"name": "a", "find": "grid", "polygon": [[0,0],[4,0],[4,4]], "task": "zoom"}]})", "rois[0].polygon: give exactly one"},
        BadConfig{"polygon 2 points", R"({"rois": [{"name": "a", "polygon": [[0,0],[4,0]], "task": "zoom"}]})", "rois[0].polygon: must be a list of at least 3"},
        BadConfig{"polygon point", R"({"rois": [{"name": "a", "polygon": [[0,0],[4,0],[4]], "task": "zoom"}]})", "rois[0].polygon[2]: must be [x, y]"},
        BadConfig{"polygon flat", R"({"rois": [{"name": "a", "polygon": [[0,0],[4,0],[8,0]], "task": "zoom"}]})", "rois[0].polygon: encloses no area"},
        BadConfig{"find value", R"({"rois": [{"name": "a", "find": "dials", "task": "zoom"}]})", "rois[0].find: must be \"gauges\" or \"grid\""},
        BadConfig{"grid without find", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "grid": [2,2], "task": "zoom"}]})", "rois[0].grid: only applies with \"find\": \"grid\""},
        BadConfig{"grid zero", R"({"rois": [{"name": "a", "find": "grid", "grid": [0,2], "task": "zoom"}]})", "rois[0].grid[0]: must be in [1, 64]"},
        BadConfig{"zoom 0", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "zoom", "zoom": 0}]})", "rois[0].zoom: must be in (0, 8], got 0"},
        BadConfig{"zoom 9", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "zoom", "zoom": 9}]})", "rois[0].zoom: must be in (0, 8], got 9"},
        BadConfig{"gauge missing", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "read_gauge"}]})", "rois[0].gauge: is required for task read_gauge"},
        BadConfig{"gauge max <= min", Gauge(R"({"min_value": 10, "max_value": 10})"), "rois[1].gauge.max_value: must be greater than min_value"},
        BadConfig{"gauge max < min", Gauge(R"({"min_value": 5, "max_value": 1})"), "rois[1].gauge.max_value: must be greater than min_value (5), got 1"},
        BadConfig{"gauge min missing", Gauge(R"({"max_value": 10})"), "rois[1].gauge.min_value: is required"},
        BadConfig{"gauge typo", Gauge(R"({"min_value": 0, "max_valeu": 10})"), "rois[1].gauge.max_valeu: unknown key (did you mean 'max_value'?)"},
        BadConfig{"gauge angles equal", Gauge(R"({"min_value": 0, "max_value": 10, "min_angle_deg": 90, "max_angle_deg": 90})"), "rois[1].gauge.max_angle_deg: must be clockwise of min_angle_deg"},
        BadConfig{"gauge angles ccw", Gauge(R"({"min_value": 0, "max_value": 10, "min_angle_deg": -45, "max_angle_deg": 225})"), "rois[1].gauge.max_angle_deg:"},
        BadConfig{"scale one point", Gauge(R"({"scale": [[0, 225]]})"), "rois[1].gauge.scale: needs at least 2 [value, angle_deg] pairs, got 1"},
        BadConfig{"scale not pairs", Gauge(R"({"scale": [[0, 225], [5]]})"), "rois[1].gauge.scale[1]: must be a [value, angle_deg] pair"},
        BadConfig{"scale value type", Gauge(R"({"scale": [[0, 225], ["5", 90]]})"), "rois[1].gauge.scale[1][0]: must be a number"},
        BadConfig{"scale values", Gauge(R"({"scale": [[0, 225], [5, 90], [5, 0]]})"), "rois[1].gauge.scale[2]: values must increase strictly, got 5 after 5"},
        BadConfig{"scale angles", Gauge(R"({"scale": [[0, 225], [5, 90], [10, 120]]})"), "rois[1].gauge.scale[2]: angles must be strictly monotonic"},
        BadConfig{"scale too wide", Gauge(R"({"scale": [[0, 225], [10, -180]]})"), "rois[1].gauge.scale: spans more than 360 degrees"},
        BadConfig{"scale and angle", Gauge(R"({"scale": [[0, 225], [10, -45]], "min_angle_deg": 200})"), "rois[1].gauge.min_angle_deg: contradicts scale, which puts it at 225 degrees, got 200"},
        BadConfig{"pivot shape", Gauge(R"({"min_value": 0, "max_value": 10, "pivot": [0.5]})"), "rois[1].gauge.pivot: must be [fx, fy]"},
        BadConfig{"pivot range", Gauge(R"({"min_value": 0, "max_value": 10, "pivot": [0.5, 1.5]})"), "rois[1].gauge.pivot[1]: must be in [0, 1], got 1.5"},
        BadConfig{"radius range", Gauge(R"({"min_value": 0, "max_value": 10, "radius": 0})"), "rois[1].gauge.radius: must be a fraction of the crop's shorter side in (0, 1], got 0"},
        BadConfig{"gauge unit type", Gauge(R"({"min_value": 0, "max_value": 10, "unit": 5})"), "rois[1].gauge.unit: must be a string"},
        BadConfig{"gauge on count", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "count", "object": "x", "gauge": {"min_value": 0, "max_value": 1}}]})", "rois[0].gauge: only applies to task read_gauge"},
        BadConfig{"alarm order", Gauge(R"({"min_value": 0, "max_value": 10})", R"(, "alarm": {"low": 8, "high": 2})"), "rois[1].alarm.high: must be greater than low"},
        BadConfig{"alarm typo", Gauge(R"({"min_value": 0, "max_value": 10})", R"(, "alarm": {"hi": 2})"), "rois[1].alarm.hi: unknown key"},
        BadConfig{"alarm on zoom", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "zoom", "alarm": {"low": 1}}]})", "rois[0].alarm: only applies to tasks read_gauge and count"},
        BadConfig{"min_confidence above 1", Gauge(R"({"min_value": 0, "max_value": 10})", R"(, "min_confidence": 1.5)"), "rois[1].min_confidence: must be in [0, 1], got 1.5"},
        BadConfig{"min_confidence negative", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "count", "object": "x", "min_confidence": -0.1}]})", "rois[0].min_confidence: must be in [0, 1], got -0.1"},
        BadConfig{"min_confidence type", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "count", "object": "x", "min_confidence": "high"}]})", "rois[0].min_confidence: must be a number, got string"},
        BadConfig{"min_confidence on ask", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "ask", "prompt": "?", "min_confidence": 0.5}]})", "rois[0].min_confidence: only applies to tasks read_gauge and count"},
        BadConfig{"min_confidence typo", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "count", "object": "x", "min_confidense": 0.5}]})", "rois[0].min_confidense: unknown key (did you mean 'min_confidence'?)"},
        BadConfig{"count without object", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "count"}]})", "rois[0].object: is required for task count"},
        BadConfig{"object on zoom", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "zoom", "object": "x"}]})", "rois[0].object: only applies to task count"},
        BadConfig{"ask without prompt", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "ask"}]})", "rois[0].prompt: is required for task ask"},
        BadConfig{"threshold", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "zoom", "change_threshold": 1.5}]})", "rois[0].change_threshold: must be in [0, 1]"},
        BadConfig{"max age", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "zoom", "max_age_s": -1}]})", "rois[0].max_age_s:"},
        BadConfig{"roi typo", R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "zoom", "zooom": 2}]})", "rois[0].zooom: unknown key (did you mean 'zoom'?)"},
        BadConfig{"merge mode", "{" + kRois + ", \"merge\": {\"mode\": \"paste\"}}", "merge.mode: must be one of replace, blend, inset, none"},
        BadConfig{"blend alpha", "{" + kRois + ", \"merge\": {\"blend_alpha\": 2}}", "merge.blend_alpha: must be in [0, 1]"},
        BadConfig{"labels type", "{" + kRois + ", \"merge\": {\"labels\": \"yes\"}}", "merge.labels: must be true or false"},
        BadConfig{"output path", "{" + kRois + ", \"output\": {\"video\": \"../v.mp4\"}}", "output.video: must be a file name inside the output directory"},
        BadConfig{"output empty results", "{" + kRois + ", \"output\": {\"results\": \"\"}}", "output.results: must not be empty"},
        BadConfig{"output typo", "{" + kRois + ", \"output\": {\"summery\": \"s.json\"}}", "output.summery: unknown key (did you mean 'summary'?)"},
        BadConfig{"reconnect delay 0", "{" + kRois + ", \"pipeline\": {\"reconnect\": {\"initial_delay_s\": 0}}}", "pipeline.reconnect.initial_delay_s: must be in (0, 3600], got 0"},
        BadConfig{"reconnect cap below first", "{" + kRois + ", \"pipeline\": {\"reconnect\": {\"initial_delay_s\": 5, \"max_delay_s\": 2}}}", "pipeline.reconnect.max_delay_s: must be at least initial_delay_s (5), got 2"},
        BadConfig{"reconnect typo", "{" + kRois + ", \"pipeline\": {\"reconnect\": {\"max_delay\": 2}}}", "pipeline.reconnect.max_delay: unknown key (did you mean 'max_delay_s'?)"},
        BadConfig{"audit without dir", "{" + kRois + ", \"output\": {\"audit\": {\"max_mb\": 10}}}", "output.audit.dir: is required"},
        BadConfig{"audit as string", "{" + kRois + ", \"output\": {\"audit\": \"audit\"}}", "output.audit: must be an object"},
        BadConfig{"audit size 0", "{" + kRois + ", \"output\": {\"audit\": {\"dir\": \"a\", \"max_mb\": 0}}}", "output.audit.max_mb: must be in (0"},
        BadConfig{"audit typo", "{" + kRois + ", \"output\": {\"audit\": {\"dir\": \"a\", \"max_mbytes\": 5}}}", "output.audit.max_mbytes: unknown key"}),
    [](const ::testing::TestParamInfo<BadConfig>& info) {
      std::string name = info.param.label;
      for (char& ch : name) if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return name;
    });
// clang-format on

TEST(ConfigTest, VideoBackendAndEncoderOptions) {
  const std::string rois =
      R"("rois": [{"name": "a", "rect": [0, 0, 4, 4], "task": "ask", "prompt": "Which?"}])";
  auto defaults = ParseStationConfig("{" + rois + "}");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->output.video_backend, "ffmpeg");
  EXPECT_EQ(defaults->output.video_encoder.preset, "veryfast");
  EXPECT_EQ(defaults->output.video_encoder.crf, 23);
  EXPECT_TRUE(defaults->output.audit.dir.empty());  // audit is off unless configured
  EXPECT_DOUBLE_EQ(defaults->pipeline.reconnect.initial_delay_s, 0.5);
  EXPECT_DOUBLE_EQ(defaults->pipeline.reconnect.max_delay_s, 30);
  auto reconnect = ParseStationConfig(
      "{" + rois + R"(, "pipeline": {"reconnect": {"initial_delay_s": 2, "max_delay_s": 120}}})");
  ASSERT_TRUE(reconnect.ok()) << reconnect.status();
  EXPECT_DOUBLE_EQ(reconnect->pipeline.reconnect.initial_delay_s, 2);
  EXPECT_DOUBLE_EQ(reconnect->pipeline.reconnect.max_delay_s, 120);

  auto audited =
      ParseStationConfig("{" + rois + R"(, "output": {"audit": {"dir": "trail", "max_mb": 0.5}}})");
  ASSERT_TRUE(audited.ok()) << audited.status();
  EXPECT_EQ(audited->output.audit.dir, "trail");
  EXPECT_DOUBLE_EQ(audited->output.audit.max_mb, 0.5);

  auto tuned = ParseStationConfig("{" + rois + R"(, "output": {"video_backend": "opencv",
      "video_encoder": {"codec": "libx264", "preset": "slow", "crf": 18, "bitrate_kbps": 0,
                        "tune": "film", "threads": 2, "gop": 50, "pix_fmt": "yuv420p"}}})");
  ASSERT_TRUE(tuned.ok()) << tuned.status();
  EXPECT_EQ(tuned->output.video_backend, "opencv");
  EXPECT_EQ(tuned->output.video_encoder.preset, "slow");
  EXPECT_EQ(tuned->output.video_encoder.crf, 18);
  EXPECT_EQ(tuned->output.video_encoder.tune, "film");
  EXPECT_EQ(tuned->output.video_encoder.threads, 2);
  EXPECT_EQ(tuned->output.video_encoder.gop, 50);

  for (const auto& [output, path] : std::vector<std::pair<std::string, std::string>>{
           {R"({"video_backend": "gstreamer"})", "output.video_backend"},
           {R"({"video_encoder": {"crf": 60}})", "output.video_encoder.crf"},
           {R"({"video_encoder": {"presett": "fast"}})", "output.video_encoder.presett"},
           {R"({"video_encoder": {"codec": ""}})", "output.video_encoder.codec"}}) {
    auto bad = ParseStationConfig("{" + rois + ", \"output\": " + output + "}");
    ASSERT_FALSE(bad.ok()) << output;
    EXPECT_THAT(bad.status().message(), HasSubstr(path)) << output;
  }
}

TEST(ConfigTest, JsonErrorGivesLineAndColumn) {
  // Line 3, column 14 is the '}' after the missing value.
  auto parsed = ParseStationConfig("{\n  \"rois\": [\n    {\"name\": }\n  ]\n}", "s.json");
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.status().message(), StartsWith("s.json:3:14: invalid JSON: "));
  EXPECT_THAT(parsed.status().message(), Not(HasSubstr("[json.exception")));
}

TEST(ConfigTest, LoadsFromFileAndNamesIt) {
  const auto dir = testing::ScratchDir("config");
  const std::string good = (dir / "station.json").string();
  std::ofstream(good) << kFullConfig;
  auto loaded = LoadStationConfig(good);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->source_path, good);
  EXPECT_EQ(loaded->rois.size(), 6u);

  const std::string bad = (dir / "bad.json").string();
  std::ofstream(bad) << Gauge(R"({"min_value": 10, "max_value": 0})");
  auto failed = LoadStationConfig(bad);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().message(),
            bad + ": rois[1].gauge.max_value: must be greater than min_value (10), got 0");

  auto missing = LoadStationConfig((dir / "nope.json").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("nope.json"));
  std::filesystem::remove_all(dir);
}

TEST(ConfigTest, RoiOutsideFrameIsNamed) {
  auto parsed = ParseStationConfig(R"({"rois": [
      {"name": "ok", "rect": [0, 0, 640, 360], "task": "zoom"},
      {"name": "boiler", "rect": [600, 10, 100, 100], "task": "zoom"}]})",
                                   "station.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  Status s = ValidateRoisForFrame(*parsed, cv::Size(640, 360));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "station.json: roi 'boiler' rect [600,10,100,100] extends outside the 640x360 frame");
  EXPECT_TRUE(ValidateRoisForFrame(*parsed, cv::Size(700, 360)).ok());
}

TEST(ConfigTest, PolygonOutsideFrameIsNamed) {
  auto parsed = ParseStationConfig(
      R"({"rois": [{"name": "tray", "polygon": [[0,0],[100,0],[100,400]], "task": "zoom"}]})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  Status s = ValidateRoisForFrame(*parsed, cv::Size(640, 360));
  EXPECT_THAT(s.message(),
              HasSubstr("roi 'tray' polygon point [100,400] lies outside the 640x360"));
  // A vertex on the right/bottom edge (pixel-edge coordinates) is inside.
  EXPECT_TRUE(ValidateRoisForFrame(*parsed, cv::Size(100, 400)).ok());
}

TEST(ConfigTest, FindSearchAreaIsChecked) {
  auto parsed = ParseStationConfig(R"({"rois": [{"name": "dials", "find": "gauges",
      "rect": [0, 0, 800, 100], "task": "read_gauge", "gauge": {"min_value": 0, "max_value": 1}}]})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(ValidateRoisForFrame(*parsed, cv::Size(640, 360)).message(),
              HasSubstr("roi 'dials' rect [0,0,800,100] extends outside"));
}

TEST(ConfigTest, BudgetAndPrices) {
  auto parsed = ParseStationConfig(R"({"backend": {"model": "m-1",
      "budget": {"max_calls": 40, "max_tokens": 5000000000},
      "prices": {"m-1": {"input_per_million": 0.5, "output_per_million": 3}}},
      "rois": [{"name": "a", "rect": [0,0,4,4], "task": "zoom"}]})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->backend.budget.max_calls, 40);
  EXPECT_EQ(parsed->backend.budget.max_tokens, 5000000000);  // past 2^31
  ASSERT_EQ(parsed->backend.prices.size(), 1u);  // the config's table replaces the example
  EXPECT_EQ(parsed->backend.prices.at("m-1").output_per_million, 3);

  auto defaults =
      ParseStationConfig(R"({"rois": [{"name": "a", "rect": [0,0,4,4], "task": "zoom"}]})");
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(defaults->backend.budget.enabled());
  EXPECT_TRUE(defaults->backend.prices.count(defaults->backend.model));  // the example entry

  auto only_tokens = ParseStationConfig(R"({"backend": {"budget": {"max_tokens": 10}},
      "rois": [{"name": "a", "rect": [0,0,4,4], "task": "zoom"}]})");
  ASSERT_TRUE(only_tokens.ok()) << only_tokens.status();
  EXPECT_EQ(only_tokens->backend.budget.max_calls, 0);
  EXPECT_TRUE(only_tokens->backend.budget.enabled());
}

TEST(ConfigTest, BadBudgetsAndPricesNameTheirPath) {
  struct Case {
    const char* backend;
    const char* expected;
  } cases[] = {
      {R"("budget": {"max_calls": 0})", "backend.budget.max_calls: must be in [1, "},
      {R"("budget": {"max_calls": 2.5})", "backend.budget.max_calls: must be an integer"},
      {R"("budget": {"max_tokens": "many"})", "backend.budget.max_tokens: must be an integer"},
      {R"("budget": {"max_call": 3})", "backend.budget.max_call: unknown key (did you mean"},
      {R"("budget": 5)", "backend.budget: must be an object"},
      {R"("prices": {"m": {"input_per_million": -1, "output_per_million": 1}})",
       "backend.prices[\"m\"].input_per_million: must be in [0, "},
      {R"("prices": {"m": {"input_per_million": 1}})",
       "backend.prices[\"m\"].output_per_million: is required"},
      {R"("prices": {"m": {"input_per_million": 1, "output_per_million": 1, "cached": 2}})",
       "backend.prices[\"m\"].cached: unknown key"},
      {R"("prices": [1])", "backend.prices: must be an object"},
  };
  for (const Case& c : cases) {
    const std::string text = std::string(R"({"backend": {)") + c.backend +
                             R"(}, "rois": [{"name": "a", "rect": [0,0,4,4], "task": "zoom"}]})";
    auto parsed = ParseStationConfig(text, "bad.json");
    ASSERT_FALSE(parsed.ok()) << c.backend;
    EXPECT_THAT(parsed.status().message(), HasSubstr(c.expected)) << c.backend;
  }
}

TEST(ConfigTest, EstimateCostUsesTheModelsPricePerMillionTokens) {
  BackendConfig backend;
  backend.prices = {{"m-1", {0.5, 3.0}}};
  auto cost = EstimateCost(backend, "m-1", 2'000'000, 100'000);
  ASSERT_TRUE(cost.has_value());
  EXPECT_DOUBLE_EQ(*cost, 2 * 0.5 + 0.1 * 3.0);
  EXPECT_DOUBLE_EQ(*EstimateCost(backend, "m-1", 0, 0), 0);
  EXPECT_FALSE(EstimateCost(backend, "other-model", 10, 10).has_value());
}

}  // namespace
}  // namespace roilens
