// ParseRoiAnswer and ResultLine: answers are validated before they are trusted, every failure
// becomes a one-line error naming the ROI, and result lines carry exactly the documented keys.
#include "roilens/stages/answer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include "roilens/stages/preprocess.h"
#include "roilens/stages/rois.h"

namespace roilens {
namespace {

using ::testing::HasSubstr;

RoiConfig GaugeRoi() {
  RoiConfig roi;
  roi.name = "boiler";
  roi.task = TaskKind::kReadGauge;
  roi.gauge.min_value = 0;
  roi.gauge.max_value = 10;
  roi.gauge.min_angle_deg = 225;
  roi.gauge.max_angle_deg = -45;
  roi.gauge.unit = "bar";
  roi.alarm.low = 1;
  roi.alarm.high = 8;
  return roi;
}

RoiConfig CountRoi() {
  RoiConfig roi;
  roi.name = "tray";
  roi.task = TaskKind::kCount;
  roi.object = "bolts";
  return roi;
}

wire::Step Output(const std::string& text, const cv::Mat& image = {}) {
  wire::Step step;
  step.type = "model_output";
  step.content.push_back(wire::ContentBlock::Text(text));
  if (!image.empty()) {
    std::vector<std::uint8_t> png;
    cv::imencode(".png", image, png);
    step.content.push_back(wire::ContentBlock::ImageBytes(png, "image/png"));
  }
  return step;
}

wire::Step Call(const std::string& id) {
  wire::Step step;
  step.type = "code_execution_call";
  step.id = id;
  step.code = "print(1)";
  step.language = "python";
  return step;
}

wire::Step Result(const std::string& call_id, bool is_error) {
  wire::Step step;
  step.type = "code_execution_result";
  step.call_id = call_id;
  step.result = is_error ? "Traceback" : "ok";
  step.is_error = is_error;
  return step;
}

/// A completed interaction: a plan, `calls` code runs (all but the last failing), and a final
/// output with `final_text` and an optional image.
wire::Interaction Completed(const std::string& final_text, int calls = 1,
                            const cv::Mat& image = {}) {
  wire::Interaction it;
  it.id = "int-1";
  it.status = "completed";
  it.object = "interaction";
  it.steps.push_back(Output("I will measure the needle."));
  for (int i = 0; i < calls; ++i) {
    it.steps.push_back(Call("c" + std::to_string(i)));
    it.steps.push_back(Result("c" + std::to_string(i), i + 1 < calls));
  }
  it.steps.push_back(Output(final_text, image));
  wire::Usage usage;
  usage.total_input_tokens = 100;
  usage.total_output_tokens = 20;
  usage.total_tokens = 120;
  it.usage = usage;
  return it;
}

TEST(AnswerTest, GaugeReading) {
  const cv::Mat drawn(30, 40, CV_8UC3, cv::Scalar(1, 2, 3));
  const RoiAnswer a = ParseRoiAnswer(
      GaugeRoi(), Completed("The needle points at 4.2.\n{\"value\": 4.2, \"unit\": \"bar\", "
                            "\"confidence\": 0.9}",
                            3, drawn));
  EXPECT_EQ(a.status, "ok");
  ASSERT_TRUE(a.value.has_value());
  EXPECT_DOUBLE_EQ(*a.value, 4.2);
  EXPECT_EQ(a.unit, "bar");
  EXPECT_EQ(a.confidence, 0.9);
  EXPECT_EQ(a.alarm, "");
  EXPECT_EQ(a.error, "");
  EXPECT_EQ(a.attempts, 3);
  EXPECT_EQ(a.interaction_id, "int-1");
  EXPECT_EQ(a.usage["total_tokens"], 120);
  ASSERT_FALSE(a.image.empty());
  EXPECT_EQ(cv::norm(a.image, drawn, cv::NORM_INF), 0);
  EXPECT_FALSE(a.count.has_value());
}

TEST(AnswerTest, AlarmThresholds) {
  EXPECT_EQ(ParseRoiAnswer(GaugeRoi(), Completed("{\"value\": 0.5}")).alarm, "low");
  EXPECT_EQ(ParseRoiAnswer(GaugeRoi(), Completed("{\"value\": 9}")).alarm, "high");
  EXPECT_EQ(ParseRoiAnswer(GaugeRoi(), Completed("{\"value\": 8}")).alarm, "");
  EXPECT_EQ(ParseRoiAnswer(GaugeRoi(), Completed("{\"value\": 1}")).alarm, "");
  RoiConfig count = CountRoi();
  count.alarm.high = 5;
  EXPECT_EQ(ParseRoiAnswer(count, Completed("{\"count\": 6}")).alarm, "high");
}

TEST(AnswerTest, ValueRangeHasFivePercentSlack) {
  EXPECT_EQ(ParseRoiAnswer(GaugeRoi(), Completed("{\"value\": 10.5}")).status, "ok");
  EXPECT_EQ(ParseRoiAnswer(GaugeRoi(), Completed("{\"value\": -0.5}")).status, "ok");
  const RoiAnswer high = ParseRoiAnswer(GaugeRoi(), Completed("{\"value\": 14.2}"));
  EXPECT_EQ(high.status, "error");
  EXPECT_EQ(high.error, "roi 'boiler': value 14.2 outside calibrated range 0..10 bar");
  EXPECT_FALSE(high.value.has_value());
  EXPECT_EQ(high.alarm, "") << "a rejected reading raises no alarm";
  EXPECT_EQ(high.interaction_id, "int-1") << "diagnostics survive the rejection";
  EXPECT_EQ(ParseRoiAnswer(GaugeRoi(), Completed("{\"value\": -0.6}")).status, "error");
}

TEST(AnswerTest, ModelUnitUsedOnlyWhenNoneConfigured) {
  RoiConfig roi = GaugeRoi();
  EXPECT_EQ(ParseRoiAnswer(roi, Completed("{\"value\": 2, \"unit\": \"psi\"}")).unit, "bar");
  roi.gauge.unit.clear();
  EXPECT_EQ(ParseRoiAnswer(roi, Completed("{\"value\": 2, \"unit\": \"psi\"}")).unit, "psi");
}

TEST(AnswerTest, MalformedAnswersAreErrorsNamingTheRoi) {
  struct Case {
    RoiConfig roi;
    std::string text;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {GaugeRoi(), "about four bar",
       "roi 'boiler': the answer has no JSON line (expected {\"value\""},
      {GaugeRoi(), "{\"value\": \"4.2\"}",
       "roi 'boiler': the answer's JSON line has no numeric \"value\""},
      {GaugeRoi(), "{\"reading\": 4.2}", "no numeric \"value\""},
      {GaugeRoi(), "{\"value\": true}", "no numeric \"value\""},
      {CountRoi(), "{\"count\": -1}", "roi 'tray': count -1 is not a whole number >= 0"},
      {CountRoi(), "{\"count\": 2.5}", "count 2.5 is not a whole number"},
      {CountRoi(), "{\"count\": \"3\"}", "no integer \"count\""},
      {CountRoi(), "three", "no JSON line (expected {\"count\": int"},
  };
  for (const Case& c : cases) {
    const RoiAnswer a = ParseRoiAnswer(c.roi, Completed(c.text));
    EXPECT_EQ(a.status, "error") << c.text;
    EXPECT_THAT(a.error, HasSubstr(c.expected)) << c.text;
    EXPECT_EQ(a.error.find('\n'), std::string::npos);
  }
}

TEST(AnswerTest, CountAndTextTasks) {
  const RoiAnswer count =
      ParseRoiAnswer(CountRoi(), Completed("Found 7.\n{\"count\": 7, \"confidence\": 1.5}"));
  EXPECT_EQ(count.status, "ok");
  EXPECT_EQ(count.count, 7);
  EXPECT_EQ(count.confidence, 1.0) << "clamped into 0..1";
  EXPECT_FALSE(count.value.has_value());
  EXPECT_EQ(ParseRoiAnswer(CountRoi(), Completed("{\"count\": 4.0}")).count, 4);

  RoiConfig ask;
  ask.name = "q";
  ask.task = TaskKind::kAsk;
  ask.prompt = "colour?";
  const RoiAnswer text = ParseRoiAnswer(ask, Completed("{\"text\": \"red\"}", 0));
  EXPECT_EQ(text.status, "ok");
  EXPECT_EQ(text.text, "red");
  EXPECT_EQ(text.attempts, 0);
  EXPECT_EQ(ParseRoiAnswer(ask, Completed("{\"answer\": \"red\"}")).status, "error");
}

TEST(AnswerTest, FailedInteractionAndTransportErrors) {
  wire::Interaction failed = Completed("{\"value\": 4}", 5);
  failed.status = "failed";
  failed.extra["error"] = {{"message", "sandbox timed out"}};
  const RoiAnswer a = ParseRoiAnswer(GaugeRoi(), failed);
  EXPECT_EQ(a.status, "error");
  EXPECT_EQ(a.error,
            "roi 'boiler': interaction int-1 ended with status \"failed\": sandbox timed out");
  EXPECT_EQ(a.attempts, 5);
  EXPECT_FALSE(a.value.has_value());

  const Status transport(StatusCode::kUnavailable, "connection refused\nto 127.0.0.1:1", 0);
  const RoiAnswer b = ParseRoiAnswer(GaugeRoi(), StatusOr<wire::Interaction>(transport));
  EXPECT_EQ(b.status, "error");
  EXPECT_THAT(b.error, HasSubstr("roi 'boiler': "));
  EXPECT_THAT(b.error, HasSubstr("connection refused to 127.0.0.1:1"));
  EXPECT_THAT(b.error, HasSubstr("UNAVAILABLE"));

  const Status http(StatusCode::kResourceExhausted, "quota exceeded", 429);
  const RoiAnswer c = ParseRoiAnswer(GaugeRoi(), StatusOr<wire::Interaction>(http));
  EXPECT_THAT(c.error, HasSubstr("429"));
  EXPECT_THAT(c.error, HasSubstr("quota exceeded"));
}

TEST(AnswerTest, ResultLineHasExactlyTheDocumentedKeys) {
  RoiInstance instance;
  instance.name = "boiler";
  instance.rect = cv::Rect(5, 6, 7, 8);
  instance.frame_rect = cv::Rect(10, 12, 14, 16);
  RoiAnswer a = ParseRoiAnswer(GaugeRoi(), Completed("{\"value\": 9.5, \"confidence\": 0.8}"));
  a.latency_ms = 12.5;
  const nlohmann::json line = ResultLine(42, "cam.mp4", 1.4, instance, GaugeRoi(), a);
  std::vector<std::string> keys;
  for (const auto& [k, v] : line.items()) keys.push_back(k);
  EXPECT_THAT(
      keys, ::testing::UnorderedElementsAre(
                "frame", "source", "time_s", "roi", "task", "rect", "status", "value", "raw_value",
                "implausible_jump", "unit", "count", "objects", "text", "confidence", "alarm",
                "error", "attempts", "latency_ms", "interaction_id", "usage"));
  EXPECT_EQ(line["frame"], 42);
  EXPECT_EQ(line["source"], "cam.mp4");
  EXPECT_EQ(line["time_s"], 1.4);
  EXPECT_EQ(line["roi"], "boiler");
  EXPECT_EQ(line["task"], "read_gauge");
  EXPECT_EQ(line["rect"], nlohmann::json({10, 12, 14, 16})) << "original frame pixels";
  EXPECT_EQ(line["status"], "ok");
  EXPECT_EQ(line["value"], 9.5);
  EXPECT_EQ(line["unit"], "bar");
  EXPECT_TRUE(line["count"].is_null());
  EXPECT_TRUE(line["objects"].is_null()) << "objects only on count lines";
  EXPECT_TRUE(line["text"].is_null());
  EXPECT_EQ(line["confidence"], 0.8);
  // 9.5 is past the high threshold, but the line's alarm is the ROI's alarm state: ReadingMonitor
  // sets it (with min_duration_s and hysteresis), not the single answer.
  EXPECT_EQ(a.alarm, "high");
  EXPECT_TRUE(line["alarm"].is_null());
  EXPECT_TRUE(line["error"].is_null());
  EXPECT_EQ(line["attempts"], 1);
  EXPECT_EQ(line["latency_ms"], 12.5);
  EXPECT_EQ(line["interaction_id"], "int-1");
  EXPECT_EQ(line["usage"]["total_input_tokens"], 100);

  RoiAnswer skipped;
  skipped.status = "skipped";
  const nlohmann::json empty = ResultLine(0, "", 0, instance, CountRoi(), skipped);
  EXPECT_EQ(empty.size(), keys.size());
  for (const char* k : {"source", "value", "unit", "count", "text", "confidence", "alarm", "error",
                        "interaction_id", "usage"}) {
    EXPECT_TRUE(empty[k].is_null()) << k;
  }
  EXPECT_EQ(empty["task"], "count");
  EXPECT_EQ(empty["status"], "skipped");
  EXPECT_EQ(empty["objects"], nlohmann::json::array()) << "a count line always lists objects";
}

TEST(AnswerTest, ReadingBelowMinConfidenceIsUncertainAndRaisesNoAlarm) {
  // 9.5 is above the alarm's high of 8: a certain reading alarms, an uncertain one must not.
  const RoiAnswer low =
      ParseRoiAnswer(GaugeRoi(), Completed("{\"value\": 9.5, \"confidence\": 0.49}"));
  EXPECT_EQ(low.status, "uncertain");
  EXPECT_EQ(low.value, 9.5) << "the reading is still given";
  EXPECT_EQ(low.confidence, 0.49);
  EXPECT_EQ(low.alarm, "");
  EXPECT_EQ(low.error, "");
  // The default bar is 0.5, and reaching it is enough.
  const RoiAnswer at =
      ParseRoiAnswer(GaugeRoi(), Completed("{\"value\": 9.5, \"confidence\": 0.5}"));
  EXPECT_EQ(at.status, "ok");
  EXPECT_EQ(at.alarm, "high");

  RoiConfig strict = GaugeRoi();
  strict.min_confidence = 0.9;
  EXPECT_EQ(ParseRoiAnswer(strict, Completed("{\"value\": 0.5, \"confidence\": 0.85}")).status,
            "uncertain");
  EXPECT_EQ(ParseRoiAnswer(strict, Completed("{\"value\": 0.5, \"confidence\": 0.85}")).alarm, "");
  EXPECT_EQ(ParseRoiAnswer(strict, Completed("{\"value\": 0.5, \"confidence\": 0.95}")).alarm,
            "low");

  RoiConfig count = CountRoi();
  count.alarm.high = 5;
  const RoiAnswer counted = ParseRoiAnswer(count, Completed("{\"count\": 9, \"confidence\": 0.1}"));
  EXPECT_EQ(counted.status, "uncertain");
  EXPECT_EQ(counted.count, 9);
  EXPECT_EQ(counted.alarm, "");
  const nlohmann::json line = ResultLine(3, "", 0, RoiInstance(), count, counted);
  EXPECT_EQ(line["status"], "uncertain");
  EXPECT_EQ(line["count"], 9);
  EXPECT_TRUE(line["alarm"].is_null());

  // Text tasks have no reading to doubt.
  RoiConfig ask;
  ask.name = "q";
  ask.task = TaskKind::kAsk;
  ask.prompt = "colour?";
  EXPECT_EQ(ParseRoiAnswer(ask, Completed("{\"text\": \"red\", \"confidence\": 0.1}")).status,
            "ok");
}

TEST(AnswerTest, MissingConfidenceIsUncertainOnlyWhenMinConfidenceIsSet) {
  // Default: a model that gives no confidence (the real API may omit it) keeps working, alarms
  // included.
  const RoiAnswer plain = ParseRoiAnswer(GaugeRoi(), Completed("{\"value\": 9.5}"));
  EXPECT_EQ(plain.status, "ok");
  EXPECT_EQ(plain.alarm, "high");
  // An operator who set a bar asked for evidence; an answer without any does not meet it.
  RoiConfig demanding = GaugeRoi();
  demanding.min_confidence = 0.5;
  const RoiAnswer none = ParseRoiAnswer(demanding, Completed("{\"value\": 9.5}"));
  EXPECT_EQ(none.status, "uncertain");
  EXPECT_EQ(none.alarm, "");
  EXPECT_FALSE(none.confidence.has_value());
  // ...unless the bar is 0: nothing is uncertain then.
  RoiConfig off = GaugeRoi();
  off.min_confidence = 0;
  EXPECT_EQ(ParseRoiAnswer(off, Completed("{\"value\": 9.5}")).status, "ok");
  EXPECT_EQ(ParseRoiAnswer(off, Completed("{\"value\": 9.5, \"confidence\": 0}")).status, "ok");
}

TEST(AnswerTest, CountObjectsAreParsedAndMalformedOnesIgnored) {
  const RoiAnswer a = ParseRoiAnswer(
      CountRoi(),
      Completed(R"({"count": 3, "confidence": 0.9, "objects": [)"
                R"({"box": [1, 2, 3, 4], "score": 0.75}, )"
                R"({"box": [10.5, 20.25, 5, 6]}, )"
                R"({"box": [7, 8, 9, 10], "score": 1.5}, )"
                R"({"box": [1, 2, 0, 4], "score": 0.5}, {"box": [1, 2, 3, -4]}, )"
                R"({"box": [1, 2, 3]}, {"box": [1, 2, 3, 4, 5]}, {"box": "1,2,3,4"}, )"
                R"({"box": [1, "2", 3, 4]}, {"box": [1, 2, 3, 4], "score": "high"}, )"
                R"({"box": [1e300, 2, 3, 4]}, {"score": 0.9}, [1, 2, 3, 4], null, 7]})"));
  EXPECT_EQ(a.status, "ok");
  EXPECT_EQ(a.count, 3);
  ASSERT_EQ(a.objects.size(), 3u);
  EXPECT_EQ(a.objects[0].box, cv::Rect2d(1, 2, 3, 4));
  EXPECT_EQ(a.objects[0].score, 0.75);
  EXPECT_EQ(a.objects[1].box, cv::Rect2d(10.5, 20.25, 5, 6));
  EXPECT_FALSE(a.objects[1].score.has_value());
  EXPECT_EQ(a.objects[2].score, 1.0) << "clamped into 0..1";

  // Not a list, or absent: no objects, and the count still stands.
  for (const char* text : {R"({"count": 2, "objects": {"box": [1, 2, 3, 4]}})",
                           R"({"count": 2, "objects": "many"})", R"({"count": 2})"}) {
    const RoiAnswer b = ParseRoiAnswer(CountRoi(), Completed(text));
    EXPECT_EQ(b.status, "ok") << text;
    EXPECT_EQ(b.count, 2) << text;
    EXPECT_TRUE(b.objects.empty()) << text;
  }
  // Gauges ignore objects.
  EXPECT_TRUE(
      ParseRoiAnswer(GaugeRoi(), Completed(R"({"value": 2, "objects": [{"box": [1, 2, 3, 4]}]})"))
          .objects.empty());
}

TEST(AnswerTest, CountObjectsAreCapped) {
  std::string text = R"({"count": 5000, "objects": [)";
  for (int i = 0; i < 5000; ++i) {
    text += (i ? ", " : "") + std::string(R"({"box": [)") + std::to_string(i) + R"(, 0, 1, 1]})";
  }
  text += "]}";
  const RoiAnswer a = ParseRoiAnswer(CountRoi(), Completed(text));
  EXPECT_EQ(a.count, 5000);
  ASSERT_EQ(a.objects.size(), kMaxCountedObjects);
  EXPECT_EQ(a.objects.back().box.x, static_cast<double>(kMaxCountedObjects - 1))
      << "the first ones";
}

TEST(AnswerTest, ObjectsAreReportedInOriginalFramePixels) {
  // A 400x300 frame processed at half size (max_width 200); the ROI [80, 60, 100, 80] (original)
  // is [40, 30, 50, 40] processed, and its crop is zoomed 2x to 100x80.
  StationConfig config;
  config.pipeline.preprocess.max_width = 200;
  RoiConfig roi = CountRoi();
  roi.rect = cv::Rect(80, 60, 100, 80);
  roi.zoom = 2;
  config.rois.push_back(roi);
  auto pre = Preprocess(cv::Mat(300, 400, CV_8UC3, cv::Scalar::all(0)), config.pipeline.preprocess);
  ASSERT_TRUE(pre.ok()) << pre.status();
  auto instances = FindRois(config, *pre);
  ASSERT_TRUE(instances.ok()) << instances.status();
  ASSERT_EQ(instances->size(), 1u);
  const RoiInstance& instance = instances->front();
  ASSERT_EQ(instance.rect, cv::Rect(40, 30, 50, 40));
  ASSERT_EQ(instance.frame_rect, cv::Rect(80, 60, 100, 80));
  auto crop = MakeCrop(pre->image, instance, roi.zoom);
  ASSERT_TRUE(crop.ok());
  ASSERT_EQ(crop->image.size(), cv::Size(100, 80));

  const RoiAnswer a = ParseRoiAnswer(
      roi,
      Completed(R"({"count": 4, "confidence": 0.9, "objects": [)"
                // crop [10, 20, 30, 16] -> processed [45, 40, 15, 8] -> original [90, 80, 30, 16]
                R"({"box": [10, 20, 30, 16], "score": 0.9}, )"
                // fractional: crop [1, 1, 1, 1] -> original [81, 61, 1, 1]
                R"({"box": [1, 1, 1, 1], "score": 0.8}, )"
                // past the crop's corner: clipped to the ROI
                R"({"box": [90, 70, 20, 20], "score": 0.7}, )"
                // entirely outside the crop: dropped
                R"({"box": [200, 200, 10, 10], "score": 0.6}]})"));
  ASSERT_EQ(a.status, "ok");
  const nlohmann::json line = ResultLine(7, "", 0, instance, roi, a);
  EXPECT_EQ(line["rect"], nlohmann::json({80, 60, 100, 80}));
  EXPECT_EQ(line["objects"], nlohmann::json::parse(R"([
      {"box": [90, 80, 30, 16], "score": 0.9},
      {"box": [81, 61, 1, 1], "score": 0.8},
      {"box": [170, 130, 10, 10], "score": 0.7}])"));

  // Without preprocessing a zoomed, offset ROI maps by its zoom and offset alone.
  RoiInstance plain;
  plain.rect = plain.frame_rect = cv::Rect(300, 200, 40, 30);
  roi.zoom = 4;
  const RoiAnswer b = ParseRoiAnswer(
      roi, Completed(R"({"count": 1, "objects": [{"box": [8, 12, 20, 6], "score": 0.5}]})"));
  EXPECT_EQ(ResultLine(0, "", 0, plain, roi, b)["objects"],
            nlohmann::json::parse(R"([{"box": [302, 203, 5, 2], "score": 0.5}])"));
  // A box that does not fall on whole frame pixels grows outward to cover it.
  const RoiAnswer c =
      ParseRoiAnswer(roi, Completed(R"({"count": 1, "objects": [{"box": [2, 2, 1, 1]}]})"));
  EXPECT_EQ(ResultLine(0, "", 0, plain, roi, c)["objects"],
            nlohmann::json::parse(R"([{"box": [300, 200, 1, 1], "score": null}])"));
}

}  // namespace
}  // namespace roilens
