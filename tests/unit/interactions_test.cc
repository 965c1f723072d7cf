// Wire model: lossless round trips, shape errors that name the field, base64, accessors.
#include "roilens/client/interactions.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

namespace roilens::wire {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

std::string PngBase64(int w, int h, cv::Scalar colour) {
  cv::Mat img(h, w, CV_8UC3, colour);
  std::vector<std::uint8_t> png;
  EXPECT_TRUE(cv::imencode(".png", img, png));
  return Base64Encode(png.data(), png.size());
}

// Everything the documented wire has, plus fields from a future revision at every level.
json FullInteraction() {
  return json::parse(R"json({
    "id": "v1_abc123", "status": "completed", "object": "interaction",
    "model": "gemini-3-flash-preview", "created": "2026-05-20T10:00:00Z",
    "updated": "2026-05-20T10:00:03Z", "future_top": {"nested": [1, 2, 3]},
    "steps": [
      {"type": "user_input", "content": [{"type": "text", "text": "read the gauge"}]},
      {"type": "thought", "signature": "c2lnLXRob3VnaHQ=", "summary": [{"type": "text",
       "text": "plan"}], "thought_extra": true},
      {"type": "model_output", "content": [{"type": "text", "text": "I will run code."}]},
      {"type": "code_execution_call", "id": "call_1", "signature": "c2lnLWNhbGw=",
       "arguments": {"code": "print(42)", "language": "python", "arg_extra": "x"}},
      {"type": "code_execution_result", "call_id": "call_1", "result": "42\n",
       "is_error": false, "signature": "c2lnLXJlc3VsdA=="},
      {"type": "model_output", "content": [
        {"type": "image", "data": "IMAGE", "mime_type": "image/png", "block_extra": 7},
        {"type": "text", "text": "Reading: "},
        {"type": "text", "text": "{\"value\": 42.5, \"unit\": \"bar\"}"}]},
      {"type": "brand_new_step", "payload": {"k": "v"}}
    ],
    "usage": {"total_input_tokens": 300, "total_output_tokens": 50,
              "total_tool_use_tokens": 12, "total_tokens": 362,
              "input_tokens_by_modality": [{"modality": "image", "tokens": 258}]}
  })json");
}

json FullInteractionWithImage() {
  json j = FullInteraction();
  j["steps"][5]["content"][0]["data"] = PngBase64(16, 8, cv::Scalar(255, 0, 0));
  return j;
}

TEST(InteractionsTest, ParsesEveryStepType) {
  auto parsed = ParseInteraction(FullInteractionWithImage().dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const Interaction& i = *parsed;
  EXPECT_EQ(i.id, "v1_abc123");
  EXPECT_EQ(i.status, "completed");
  EXPECT_EQ(i.object, "interaction");
  ASSERT_EQ(i.steps.size(), 7u);
  EXPECT_EQ(i.steps[1].type, "thought");
  EXPECT_EQ(i.steps[1].signature, "c2lnLXRob3VnaHQ=");
  EXPECT_TRUE(i.steps[1].summary.is_array());
  EXPECT_EQ(i.steps[3].code, "print(42)");
  EXPECT_EQ(i.steps[3].language, "python");
  EXPECT_EQ(i.steps[3].id, "call_1");
  EXPECT_EQ(i.steps[4].call_id, "call_1");
  EXPECT_EQ(i.steps[4].is_error, false);
  EXPECT_EQ(i.steps[4].result, "42\n");
  ASSERT_TRUE(i.usage.has_value());
  EXPECT_EQ(i.usage->total_tokens, 362);
  EXPECT_TRUE(i.usage->extra.contains("input_tokens_by_modality"));
  EXPECT_EQ(i.steps[5].content[0].extra["block_extra"], 7);
}

TEST(InteractionsTest, RoundTripIsLossless) {
  const json original = FullInteractionWithImage();
  auto parsed = ParseInteraction(original.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  json again = *parsed;
  EXPECT_EQ(again, original) << "diff: " << json::diff(original, again).dump();
}

TEST(InteractionsTest, StepRoundTripKeepsIdsSignaturesAndUnknowns) {
  const json full = FullInteraction();  // named: a temporary's ["steps"] would dangle
  for (const auto& step : full["steps"]) {
    Step s = step.get<Step>();
    json back = s;
    EXPECT_EQ(back, step) << json::diff(step, back).dump();
  }
}

TEST(InteractionsTest, RequestRoundTripAllInputForms) {
  const char* kForms[] = {
      R"({"model":"m","input":"hello","store":false,"stream":false,"future":{"a":1}})",
      R"({"model":"m","input":[{"type":"text","text":"hi"},{"type":"image","data":"QUJD",
          "mime_type":"image/jpeg"}],"tools":[{"type":"code_execution","x":1}],
          "system_instruction":"be terse","generation_config":{"temperature":0.2},
          "response_format":{"type":"object"},"previous_interaction_id":"v1_prev"})",
      R"({"model":"m","store":false,"input":[{"type":"user_input","content":[{"type":"text",
          "text":"q"}]},{"type":"thought","signature":"sig=="},{"type":"code_execution_call",
          "id":"c1","arguments":{"code":"1","language":"python"},"signature":"s2"},
          {"type":"code_execution_result","call_id":"c1","result":"1","signature":"s3"}]})",
  };
  for (const char* text : kForms) {
    json original = json::parse(text);
    InteractionRequest r = original.get<InteractionRequest>();
    json back = json::parse(SerializeRequest(r));
    EXPECT_EQ(back, original) << json::diff(original, back).dump();
  }
  auto steps = json::parse(kForms[2]).get<InteractionRequest>();
  ASSERT_TRUE(std::holds_alternative<std::vector<Step>>(steps.input));
  auto blocks = json::parse(kForms[1]).get<InteractionRequest>();
  ASSERT_TRUE(std::holds_alternative<std::vector<ContentBlock>>(blocks.input));
}

TEST(InteractionsTest, BuiltRequestHasDocumentedShape) {
  InteractionRequest r;
  r.model = "gemini-3-flash-preview";
  r.input = std::vector<ContentBlock>{ContentBlock::Text("count the bolts"),
                                      ContentBlock::ImageBytes({0xFF, 0xD8, 0xFF}, "image/jpeg")};
  r.tools.push_back({{"type", "code_execution"}});
  json j = json::parse(SerializeRequest(r));
  EXPECT_EQ(j["model"], "gemini-3-flash-preview");
  EXPECT_EQ(j["input"][0], json({{"type", "text"}, {"text", "count the bolts"}}));
  EXPECT_EQ(j["input"][1],
            json({{"type", "image"}, {"data", "/9j/"}, {"mime_type", "image/jpeg"}}));
  EXPECT_EQ(j["tools"], json::parse(R"([{"type":"code_execution"}])"));
  EXPECT_FALSE(j.contains("store"));
  EXPECT_FALSE(j.contains("previous_interaction_id"));
}

TEST(InteractionsTest, InvalidUtf8DoesNotThrowWhenSerialising) {
  InteractionRequest r;
  r.model = "m";
  r.input = std::string("bad \xC3\x28 bytes");
  std::string body;
  EXPECT_NO_THROW(body = SerializeRequest(r));
  EXPECT_TRUE(json::accept(body));
}

struct MalformedCase {
  const char* body;
  StatusCode code;
  const char* names;  // what the message must mention
};

TEST(InteractionsTest, MalformedBodiesAreStatusesNamingTheProblem) {
  const MalformedCase kCases[] = {
      {"<html>oops</html>", StatusCode::kDataLoss, "not valid JSON"},
      {R"({"id":"x","steps":[{"type":"model_output")", StatusCode::kDataLoss, "truncated"},
      {"", StatusCode::kDataLoss, "truncated"},
      {R"([{"id":"x"}])", StatusCode::kInternal, "<root>: expected object, got array"},
      {R"({"id":"x","steps":{"type":"thought"}})", StatusCode::kInternal,
       "steps: expected array, got object"},
      {R"({"id":"x","steps":[{"type":"model_output","content":[{"type":"text","text":5}]}]})",
       StatusCode::kInternal, "steps[0].content[0].text: expected string, got number"},
      {R"({"id":"x","steps":[{"content":[]}]})", StatusCode::kInternal, "steps[0].type: missing"},
      {R"json({"id":"x","steps":[{"type":"code_execution_call","arguments":"print(1)"}]})json",
       StatusCode::kInternal, "steps[0].arguments: expected object, got string"},
      {R"({"id":"x","usage":{"total_tokens":"lots"}})", StatusCode::kInternal,
       "usage.total_tokens"},
      // Found by the fuzzer: integers beyond int64 were converted with undefined behaviour.
      {R"({"id":"x","usage":{"total_tokens":19e99}})", StatusCode::kInternal,
       "usage.total_tokens: integer 1.9e+100 is out of range"},
      {R"({"id":"x","usage":{"total_tokens":-9.3e18}})", StatusCode::kInternal,
       "usage.total_tokens: integer"},
      {R"({"id":"x","usage":{"total_tokens":18446744073709551615}})", StatusCode::kInternal,
       "usage.total_tokens: integer 18446744073709551615 is out of range"},
      {R"({"id":7})", StatusCode::kInternal, "id: expected string, got number"},
      {R"({"hello":"world"})", StatusCode::kInternal, "not an interaction"},
      {R"({"id":"x","steps":[{"type":"code_execution_result","is_error":"no"}]})",
       StatusCode::kInternal, "steps[0].is_error: expected boolean"},
  };
  for (const auto& c : kCases) {
    StatusOr<Interaction> r = Status(StatusCode::kUnknown, "unset");
    ASSERT_NO_THROW(r = ParseInteraction(c.body)) << c.body;
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), c.code) << c.body << " -> " << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr(c.names)) << c.body;
  }
}

TEST(InteractionsTest, FromJsonThrowsOnWrongShapeInsteadOfCrashing) {
  EXPECT_THROW(json::parse(R"({"type":3})").get<ContentBlock>(), std::exception);
  EXPECT_THROW(json::parse(R"("str")").get<Step>(), std::exception);
}

TEST(InteractionsTest, GoogleErrorParsesRetryInfoAndErrorInfo) {
  auto e = ParseGoogleError(R"({"error":{"code":429,"message":"Quota exceeded",
      "status":"RESOURCE_EXHAUSTED","details":[
      {"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED",
       "domain":"googleapis.com"},
      {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->code, 429);
  EXPECT_EQ(e->status, "RESOURCE_EXHAUSTED");
  EXPECT_EQ(e->message, "Quota exceeded");
  EXPECT_EQ(e->reason, "RATE_LIMIT_EXCEEDED");
  EXPECT_EQ(e->retry_delay_ms, 1500);
  EXPECT_EQ(e->details.size(), 2u);
}

TEST(InteractionsTest, RetryDelayForms) {
  const std::pair<const char*, std::optional<std::int64_t>> kCases[] = {
      {R"("30s")", 30000},
      {R"("0.250s")", 250},
      {R"("0.0001s")", 1},
      {R"("2")", {}},
      {R"("abc s")", {}},
      {R"({"seconds":2,"nanos":500000000})", 2500},
      {R"("-1s")", {}},
      {R"({"seconds":"3"})", 3000},
      // Absurd delays are no hint at all (and must not overflow the conversion).
      {R"("1e30s")", {}},
      {R"({"seconds":1e300})", {}},
      {R"("inf s")", {}},
      {R"({"seconds":86400})", 86400000},
  };
  for (const auto& [delay, want] : kCases) {
    std::string body = std::string(R"({"error":{"code":429,"details":[{"@type":)") +
                       R"("type.googleapis.com/google.rpc.RetryInfo","retryDelay":)" + delay +
                       "}]}}";
    auto e = ParseGoogleError(body);
    ASSERT_TRUE(e.ok()) << body << e.status();
    EXPECT_EQ(e->retry_delay_ms, want) << delay;
  }
}

TEST(InteractionsTest, GoogleErrorToJsonSynthesisesDetailsAndRoundTrips) {
  GoogleError e;
  e.code = 400;
  e.status = "INVALID_ARGUMENT";
  e.message = "API key not valid. Please pass a valid API key.";
  e.reason = "API_KEY_INVALID";
  e.retry_delay_ms = 2250;
  json j = e;
  auto back = ParseGoogleError(j.dump());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->reason, "API_KEY_INVALID");
  EXPECT_EQ(back->retry_delay_ms, 2250);
  EXPECT_EQ(back->message, e.message);
  EXPECT_EQ(json(*back), j);
}

TEST(InteractionsTest, NotAGoogleError) {
  EXPECT_FALSE(ParseGoogleError("Service Unavailable").ok());
  EXPECT_FALSE(ParseGoogleError(R"({"message":"x"})").ok());
  auto bad = ParseGoogleError(R"({"error":{"code":"x"}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("error.code"));
}

TEST(InteractionsTest, Base64KnownVectors) {
  const std::pair<std::string, std::string> kVectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : kVectors) {
    auto bytes = reinterpret_cast<const std::uint8_t*>(plain.data());
    EXPECT_EQ(Base64Encode(bytes, plain.size()), encoded);
    auto decoded = Base64Decode(encoded);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(std::string(decoded->begin(), decoded->end()), plain);
  }
}

TEST(InteractionsTest, Base64RandomRoundTripAndLenientForms) {
  std::mt19937 rng(7);
  for (std::size_t n = 0; n < 300; ++n) {
    std::vector<std::uint8_t> data(n);
    for (auto& b : data) b = static_cast<std::uint8_t>(rng());
    auto decoded = Base64Decode(Base64Encode(data.data(), data.size()));
    ASSERT_TRUE(decoded.ok());
    ASSERT_EQ(*decoded, data) << n;
  }
  // unpadded, line-wrapped and URL-safe input decode as well
  auto unpadded = Base64Decode("Zm9vYg");
  ASSERT_TRUE(unpadded.ok());
  EXPECT_EQ(std::string(unpadded->begin(), unpadded->end()), "foob");
  auto wrapped = Base64Decode("Zm9v\r\nYmFy\n");
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(std::string(wrapped->begin(), wrapped->end()), "foobar");
  auto url = Base64Decode("-_-_");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(*url, (std::vector<std::uint8_t>{0xFB, 0xFF, 0xBF}));
}

TEST(InteractionsTest, Base64RejectsGarbage) {
  for (const char* bad : {"Zm9v!", "Z", "Zm=9", "Zm9vY"}) {
    auto r = Base64Decode(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(InteractionsTest, AccessorsOnFullInteraction) {
  auto parsed = ParseInteraction(FullInteractionWithImage().dump());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->FinalText(), R"(Reading: {"value": 42.5, "unit": "bar"})");
  auto answer = parsed->LastJsonObject();
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ((*answer)["value"], 42.5);
  auto images = parsed->OutputImages();
  ASSERT_EQ(images.size(), 1u);
  EXPECT_EQ(images[0].cols, 16);
  EXPECT_EQ(images[0].rows, 8);
  EXPECT_EQ(images[0].type(), CV_8UC3);
  EXPECT_EQ(images[0].at<cv::Vec3b>(0, 0), cv::Vec3b(255, 0, 0));
  auto runs = parsed->CodeRuns();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].call_id, "call_1");
  EXPECT_EQ(runs[0].code, "print(42)");
  EXPECT_EQ(runs[0].result, "42\n");
  EXPECT_TRUE(runs[0].has_result);
  EXPECT_FALSE(runs[0].is_error);
}

Interaction WithFinalText(const std::string& text) {
  Interaction i;
  i.id = "v1_t";
  Step s;
  s.type = "model_output";
  s.content.push_back(ContentBlock::Text(text));
  i.steps.push_back(s);
  return i;
}

TEST(InteractionsTest, LastJsonObjectPicksTheLastCompleteObject) {
  struct Case {
    const char* text;
    const char* want;  // nullptr: NotFound
  };
  const Case kCases[] = {
      {R"(first {"a":1} then {"b":{"c":2}})", R"({"b":{"c":2}})"},
      {"```json\n{\"value\": 3}\n```\n", R"({"value":3})"},
      {R"({"s":"brace } in string", "n": 1} trailing {not json})",
       R"({"s":"brace } in string","n":1})"},
      {R"(use {x} then {"ok":true})", R"({"ok":true})"},
      {"no json here", nullptr},
      {R"({"unterminated": )", nullptr},
      {"[1,2,3]", nullptr},
  };
  for (const auto& c : kCases) {
    auto r = WithFinalText(c.text).LastJsonObject();
    if (c.want == nullptr) {
      EXPECT_FALSE(r.ok()) << c.text;
      EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
      EXPECT_THAT(r.status().message(), HasSubstr("v1_t"));
    } else {
      ASSERT_TRUE(r.ok()) << c.text;
      EXPECT_EQ(*r, json::parse(c.want)) << c.text;
    }
  }
}

TEST(InteractionsTest, LastJsonObjectFindsALongFinalLine) {
  // A count that lists 2000 objects has a '{' per object: far more openings than the general
  // search tries, so the final answer line is taken whole.
  std::string line = R"({"count": 2000, "objects": [)";
  for (int i = 0; i < 2000; ++i) {
    line += (i ? ", " : "") + std::string(R"({"box": [)") + std::to_string(i) + R"(, 0, 1, 1]})";
  }
  line += "]}";
  for (const std::string& text :
       {"Counted.\n" + line, "Counted.\n" + line + "\n\n", "```json\n" + line + "\n```\n"}) {
    auto r = WithFinalText(text).LastJsonObject();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ((*r)["count"], 2000);
    EXPECT_EQ((*r)["objects"].size(), 2000u);
  }
  // A final line that is not an object alone falls back to the search.
  auto r = WithFinalText("{\"count\": 1}\ndone").LastJsonObject();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["count"], 1);
}

TEST(InteractionsTest, FinalTextSkipsImageOnlyOutputsAndUndecodableImages) {
  Interaction i = WithFinalText("answer");
  Step img;
  img.type = "model_output";
  img.content.push_back(ContentBlock::ImageBase64("bm90IGFuIGltYWdl", "image/png"));
  img.content.push_back(ContentBlock::ImageBase64("!!!", "image/png"));
  i.steps.push_back(img);
  EXPECT_EQ(i.FinalText(), "answer");
  EXPECT_TRUE(i.OutputImages().empty());
  EXPECT_EQ(Interaction{}.FinalText(), "");
}

TEST(InteractionsTest, CodeRunsPairByIdAndKeepOrphans) {
  Interaction i;
  auto call = [](std::string id, std::string code) {
    Step s;
    s.type = "code_execution_call";
    s.id = std::move(id);
    s.code = std::move(code);
    s.language = "python";
    return s;
  };
  auto result = [](std::string call_id, std::string out, bool err) {
    Step s;
    s.type = "code_execution_result";
    s.call_id = std::move(call_id);
    s.result = std::move(out);
    s.is_error = err;
    return s;
  };
  i.steps = {call("a", "1/0"),
             call("b", "print(2)"),
             result("b", "2", false),
             result("a", "ZeroDivisionError", true),
             result("zz", "orphan", false),
             call("c", "never ran")};
  auto runs = i.CodeRuns();
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[0].call_id, "a");
  EXPECT_TRUE(runs[0].is_error);
  EXPECT_EQ(runs[0].result, "ZeroDivisionError");
  EXPECT_EQ(runs[1].result, "2");
  EXPECT_EQ(runs[2].call_id, "zz");
  EXPECT_TRUE(runs[2].code.empty());
  EXPECT_FALSE(runs[3].has_result);
}

}  // namespace
}  // namespace roilens::wire
