// Task prompts and the ROI request: the contract of DESIGN.md "Task prompt contract".
#include "roilens/stages/prompt.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace roilens {
namespace {

using ::testing::HasSubstr;

RoiConfig GaugeRoi() {
  RoiConfig roi;
  roi.name = "boiler";
  roi.task = TaskKind::kReadGauge;
  roi.zoom = 2;
  roi.gauge.min_value = 0;
  roi.gauge.max_value = 10;
  roi.gauge.min_angle_deg = 225;
  roi.gauge.max_angle_deg = -45;
  roi.gauge.unit = "bar";
  return roi;
}

/// The ```json fenced block of a prompt, parsed (the local coder does the same).
nlohmann::json FencedSpec(const std::string& prompt) {
  const std::string open = "```json\n";
  const std::size_t begin = prompt.find(open);
  EXPECT_NE(begin, std::string::npos) << prompt;
  if (begin == std::string::npos) return nullptr;
  const std::size_t end = prompt.find("\n```", begin + open.size());
  EXPECT_NE(end, std::string::npos) << prompt;
  if (end == std::string::npos) return nullptr;
  return nlohmann::json::parse(prompt.substr(begin + open.size(), end - begin - open.size()));
}

TEST(PromptTest, GaugePromptCarriesInstructionSpecAndFinalLine) {
  const std::string prompt = RenderTaskPrompt(GaugeRoi());
  EXPECT_THAT(prompt, HasSubstr("Read the analog gauge in this image."));
  EXPECT_THAT(prompt, HasSubstr("Angles: degrees, 0 = 3 o'clock, counter-clockwise positive; "
                                "min_angle_deg is where min_value sits, max_angle_deg where "
                                "max_value sits; the scale runs clockwise from min to max."));
  EXPECT_THAT(prompt, HasSubstr("Write and run Python code"));
  EXPECT_THAT(prompt, HasSubstr("End your answer with one JSON line: {\"value\": number, "
                                "\"unit\": str, \"confidence\": 0..1}"));
  const nlohmann::json spec = FencedSpec(prompt);
  EXPECT_EQ(spec, TaskSpec(GaugeRoi()));
  EXPECT_EQ(spec["task"], "read_gauge");
  EXPECT_EQ(spec["calibration"], nlohmann::json({{"min_value", 0.0},
                                                 {"max_value", 10.0},
                                                 {"min_angle_deg", 225.0},
                                                 {"max_angle_deg", -45.0},
                                                 {"unit", "bar"}}));
  EXPECT_EQ(spec["zoom"], 2.0);
  EXPECT_FALSE(spec.contains("object"));
}

TEST(PromptTest, GaugeScalePivotAndRadiusReachTheSpec) {
  RoiConfig roi = GaugeRoi();
  roi.gauge.scale = {{0, 225}, {1, 165}, {10, -45}};
  roi.gauge.pivot = cv::Point2d(0.5, 0.6);
  roi.gauge.radius = 0.42;
  const std::string prompt = RenderTaskPrompt(roi);
  EXPECT_THAT(prompt, HasSubstr("interpolate linearly between its points"));
  const nlohmann::json c = FencedSpec(prompt)["calibration"];
  EXPECT_EQ(c["scale"], nlohmann::json::parse("[[0, 225], [1, 165], [10, -45]]"));
  EXPECT_EQ(c["pivot"], nlohmann::json::parse("[0.5, 0.6]"));
  EXPECT_EQ(c["radius"], 0.42);
  // Without them the spec has exactly the linear keys (checked above).
}

TEST(PromptTest, EveryTaskHasItsSpecAndFinalLine) {
  RoiConfig count;
  count.task = TaskKind::kCount;
  count.object = "bolts";
  EXPECT_THAT(RenderTaskPrompt(count), HasSubstr("Count the bolts"));
  EXPECT_THAT(RenderTaskPrompt(count),
              HasSubstr("one JSON line: {\"count\": int, \"confidence\": 0..1, "
                        "\"objects\": [{\"box\": [x, y, w, h], \"score\": 0..1}, ...]}"));
  EXPECT_EQ(FencedSpec(RenderTaskPrompt(count))["object"], "bolts");
  EXPECT_FALSE(TaskSpec(count).contains("calibration"));

  for (TaskKind t : {TaskKind::kZoom, TaskKind::kAnnotate, TaskKind::kAsk}) {
    RoiConfig roi;
    roi.task = t;
    roi.prompt = "Circle the open valve";
    const std::string prompt = RenderTaskPrompt(roi);
    EXPECT_THAT(prompt, HasSubstr("one JSON line: {\"text\": str}")) << TaskName(t);
    EXPECT_THAT(prompt, HasSubstr("Circle the open valve"));
    const nlohmann::json spec = FencedSpec(prompt);
    EXPECT_EQ(spec["task"], TaskName(t));
    EXPECT_EQ(spec["prompt"], "Circle the open valve");
  }
}

TEST(PromptTest, RequestHasTextImageToolAndNoStore) {
  const cv::Mat crop(40, 60, CV_8UC3, cv::Scalar(10, 20, 30));
  const wire::InteractionRequest request = BuildRoiRequest(GaugeRoi(), crop, "gemini-x");
  EXPECT_EQ(request.model, "gemini-x");
  ASSERT_TRUE(std::holds_alternative<std::vector<wire::ContentBlock>>(request.input));
  const auto& blocks = std::get<std::vector<wire::ContentBlock>>(request.input);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0].type, "text");
  EXPECT_EQ(blocks[0].text, RenderTaskPrompt(GaugeRoi()));
  EXPECT_EQ(blocks[1].type, "image");
  EXPECT_EQ(blocks[1].mime_type, "image/png");
  auto bytes = wire::Base64Decode(blocks[1].data);
  ASSERT_TRUE(bytes.ok());
  const cv::Mat decoded = cv::imdecode(*bytes, cv::IMREAD_COLOR);
  EXPECT_EQ(cv::norm(decoded, crop, cv::NORM_INF), 0) << "small crops are lossless PNG";
  ASSERT_EQ(request.tools.size(), 1u);
  EXPECT_EQ(request.tools[0], nlohmann::json({{"type", "code_execution"}}));
  EXPECT_EQ(request.store, false);
}

TEST(PromptTest, LargeCropsAreJpeg) {
  cv::Mat crop(600, 800, CV_8UC3);
  cv::RNG(1).fill(crop, cv::RNG::UNIFORM, 0, 256);
  cv::GaussianBlur(crop, crop, cv::Size(9, 9), 3);
  std::string mime;
  const std::vector<std::uint8_t> jpeg = EncodeCropImage(crop, &mime);
  EXPECT_EQ(mime, "image/jpeg");
  const cv::Mat decoded = cv::imdecode(jpeg, cv::IMREAD_COLOR);
  ASSERT_EQ(decoded.size(), crop.size());
  EXPECT_GT(cv::PSNR(decoded, crop), 35) << "quality 92";
  std::vector<std::uint8_t> png;
  cv::imencode(".png", crop, png);
  EXPECT_LT(jpeg.size(), png.size());
}

}  // namespace
}  // namespace roilens
