// ParseRoiAnswer and ResultLine: answers are validated before they are trusted, every failure
// becomes a one-line error naming the ROI, and result lines carry exactly the documented keys.
#include "roilens/answer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

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
  EXPECT_THAT(keys, ::testing::UnorderedElementsAre(
                        "frame", "source", "time_s", "roi", "task", "rect", "status", "value",
                        "unit", "count", "text", "confidence", "alarm", "error", "attempts",
                        "latency_ms", "interaction_id", "usage"));
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
  EXPECT_TRUE(line["text"].is_null());
  EXPECT_EQ(line["confidence"], 0.8);
  EXPECT_EQ(line["alarm"], "high");
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
}

}  // namespace
}  // namespace roilens
