// JSON from outside the process is parsed with a nesting limit: a 100,000-deep document is
// refused while parsing (its tree would overflow the stack when destroyed), everywhere it enters.
#include "roilens/client/bounded_json.h"

#include <gtest/gtest.h>

#include <string>

#include "roilens/backend/coder.h"
#include "roilens/client/interactions.h"
#include "roilens/config/config.h"

namespace roilens {
namespace {

std::string Nested(int depth, const std::string& inner = "") {
  return std::string(static_cast<std::size_t>(depth), '[') + inner +
         std::string(static_cast<std::size_t>(depth), ']');
}

TEST(BoundedJsonTest, AcceptsTheLimitAndRefusesOneMore) {
  EXPECT_NO_THROW(ParseBoundedJson(Nested(kMaxJsonDepth)));
  EXPECT_THROW(ParseBoundedJson(Nested(kMaxJsonDepth + 1)), JsonTooDeepError);
  EXPECT_THROW(ParseBoundedJson("{\"a\":" + Nested(kMaxJsonDepth) + "}"), JsonTooDeepError);
  EXPECT_TRUE(ParseBoundedJsonOrDiscard(Nested(kMaxJsonDepth + 1)).is_discarded());
}

TEST(BoundedJsonTest, BadJsonStillThrowsParseError) {
  EXPECT_THROW(ParseBoundedJson("{\"a\": [1, 2"), nlohmann::json::parse_error);
  EXPECT_TRUE(ParseBoundedJsonOrDiscard("{\"a\":").is_discarded());
  EXPECT_EQ(ParseBoundedJson("// note\n{\"a\": 1}", /*ignore_comments=*/true)["a"], 1);
}

TEST(BoundedJsonTest, NumberBeyondDoubleIsAParseErrorAtTheLiteral) {
  // nlohmann reports it as out_of_range, which escaped every `catch (parse_error)` (fuzzer find).
  try {
    ParseBoundedJson("[1, 2e308]");
    FAIL() << "no exception";
  } catch (const nlohmann::json::parse_error& e) {
    EXPECT_EQ(e.byte, 9u);
    EXPECT_NE(std::string(e.what()).find("2e308"), std::string::npos) << e.what();
  }
  auto config = ParseStationConfig(
      "{\"rois\": [{\"name\": \"z\", \"rect\": [0, 0, 10, 10], \"task\": \"zoom\",\n"
      "  \"prompt\": \"x\", \"zoom\": 2e308}]}",
      "big.json");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("big.json:2:"), std::string::npos)
      << config.status().message();
  auto response = wire::ParseInteraction(R"({"id":"v1_x","status":"completed","n":1e999})");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kDataLoss);
}

TEST(BoundedJsonTest, ResponseNestedDeeplyIsARefusedBodyNotACrash) {
  const std::string body = R"({"id":"v1_x","status":"completed","extra":)" + Nested(100000) + "}";
  auto parsed = wire::ParseInteraction(body);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(parsed.status().message().find("deeper than 256"), std::string::npos)
      << parsed.status().message();
  EXPECT_FALSE(wire::ParseGoogleError(R"({"error":)" + Nested(100000) + "}").ok());
}

TEST(BoundedJsonTest, ModelTextNestedDeeplyYieldsNoAnswerObject) {
  wire::Interaction interaction;
  wire::Step step;
  step.type = "model_output";
  wire::ContentBlock text;
  text.type = "text";
  text.text = "answer: {\"v\":" + Nested(100000, "1") + "}";
  step.content.push_back(text);
  interaction.steps.push_back(step);
  EXPECT_FALSE(interaction.LastJsonObject().ok());
}

TEST(BoundedJsonTest, ConfigNestedDeeplyIsAnInvalidConfig) {
  auto config = ParseStationConfig("{\"rois\":" + Nested(100000) + "}", "deep.json");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find("deep.json"), std::string::npos);
}

TEST(BoundedJsonTest, TaskSpecNestedDeeplyInAPromptDoesNotCrashTheCoders) {
  backend::CoderInput input;
  input.text = "Read the gauge.\n```json\n" + Nested(100000) + "\n```\n";
  input.images.push_back({"image/png", {0x89, 'P', 'N', 'G'}});
  auto cv_coder = backend::MakeCvCoder();
  EXPECT_FALSE(cv_coder->Write(input, 0, {}).code.empty());
  auto echo_coder = backend::MakeEchoCoder();
  EXPECT_FALSE(echo_coder->Answer(input, {}).empty());
}

}  // namespace
}  // namespace roilens
