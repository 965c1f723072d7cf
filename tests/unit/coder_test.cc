// The CV coder's contract: task from spec or wording, spec injected into the program, revised
// programs after errors, and answers that end with one normalised JSON line.
#include "roilens/backend/coder.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace roilens::backend {
namespace {

using nlohmann::json;

CoderInput Text(const std::string& text) {
  CoderInput in;
  in.text = text;
  in.images.push_back({"image/png", {0x89, 'P', 'N', 'G'}});
  return in;
}

/// A `NAME = json.loads("...")` literal of the program, parsed back out of its source.
json Literal(const std::string& code, const std::string& name) {
  const std::string key = "\n" + name + " = json.loads(";
  auto begin = code.find(key);
  EXPECT_NE(begin, std::string::npos);
  begin += key.size();
  const auto end = code.find(")\n", begin);
  return json::parse(json::parse(code.substr(begin, end - begin)).get<std::string>());
}

json SpecOf(const std::string& code) { return Literal(code, "SPEC"); }

std::string LastLine(const std::string& s) {
  const auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

SandboxResult Ok(const std::string& stdout_text) {
  SandboxResult r;
  r.ok = true;
  r.exit_code = 0;
  r.stdout_text = stdout_text;
  return r;
}

SandboxResult Failed(const std::string& stderr_text) {
  SandboxResult r;
  r.exit_code = 1;
  r.stderr_text = stderr_text;
  r.error = "exit code 1";
  return r;
}

TEST(CoderTest, FencedSpecIsInjectedIntoTheGaugeProgram) {
  auto coder = MakeCvCoder();
  const auto in = Text(
      "Read the gauge.\n```json\n{\"task\":\"read_gauge\",\"calibration\":{\"min_value\":0,"
      "\"max_value\":16,\"min_angle_deg\":210,\"max_angle_deg\":-30,\"unit\":\"bar\"},\"zoom\":2}"
      "\n```\nEnd with one JSON line.");
  const CoderProgram p = coder->Write(in, 0, {});
  EXPECT_NE(p.code.find("roilens coder: read_gauge"), std::string::npos);
  const json spec = SpecOf(p.code);
  EXPECT_EQ(spec["task"], "read_gauge");
  EXPECT_EQ(spec["calibration"]["max_value"], 16);
  EXPECT_EQ(spec["calibration"]["min_angle_deg"], 210);
  EXPECT_NE(p.plan.find("16 at -30 deg"), std::string::npos) << p.plan;
  EXPECT_NE(p.code.find("\nread_gauge()\n"), std::string::npos);
}

TEST(CoderTest, TaskIsInferredFromWordingWithoutSpec) {
  auto coder = MakeCvCoder();
  struct Case {
    const char* text;
    const char* marker;
  } cases[] = {
      {"What does the pressure gauge read?", "roilens coder: read_gauge"},
      {"How many bolts are on the tray?", "roilens coder: count"},
      {"Count the washers", "roilens coder: count"},
      {"Zoom into the top left corner", "roilens coder: zoom"},
      {"Circle the open valve", "roilens coder: annotate"},
      {"Draw an arrow to the leak", "roilens coder: annotate"},
      {"What is in this picture?", "roilens coder: ask"},
  };
  for (const auto& c : cases) {
    const CoderProgram p = coder->Write(Text(c.text), 0, {});
    EXPECT_NE(p.code.find(c.marker), std::string::npos) << c.text;
  }
  EXPECT_EQ(SpecOf(coder->Write(Text("How many bolts are on the tray?"), 0, {}).code)["object"],
            "bolts");
  EXPECT_EQ(SpecOf(coder->Write(Text("Circle the open valve"), 0, {}).code)["prompt"],
            "Circle the open valve");
}

TEST(CoderTest, SpecTaskWinsOverWording) {
  auto coder = MakeCvCoder();
  const auto in = Text("How many gauges? ```json\n{\"task\":\"count\",\"object\":\"nuts\"}\n```");
  const json spec = SpecOf(coder->Write(in, 0, {}).code);
  EXPECT_EQ(spec["task"], "count");
  EXPECT_EQ(spec["object"], "nuts");
}

TEST(CoderTest, HostileTextInSpecStaysAStringLiteral) {
  auto coder = MakeCvCoder();
  const std::string prompt = "Label it '''\"\\n\"); import os; os.system('x') #";
  const auto in =
      Text("```json\n" + json{{"task", "annotate"}, {"prompt", prompt}}.dump() + "\n```");
  const CoderProgram p = coder->Write(in, 0, {});
  EXPECT_EQ(SpecOf(p.code)["prompt"], prompt);
}

TEST(CoderTest, RevisionAfterAnErrorIsADifferentProgram) {
  auto coder = MakeCvCoder();
  const auto in = Text("Read the gauge ```json\n{\"task\":\"read_gauge\"}\n```");
  const CoderProgram first = coder->Write(in, 0, {});
  std::vector<CoderObservation> history = {
      {Failed("Traceback (most recent call last):\n  File \"x\", line 3\n"
              "ModuleNotFoundError: No module named 'scipy'\n")}};
  const CoderProgram second = coder->Write(in, 1, history);
  EXPECT_NE(first.code, second.code);
  EXPECT_NE(second.plan.find("No module named 'scipy'"), std::string::npos) << second.plan;
  EXPECT_EQ(Literal(second.code, "STRATEGY")["scipy"], false);
  EXPECT_EQ(Literal(first.code, "STRATEGY")["scipy"], true);
  history.push_back({Failed("ValueError: bad\n")});
  const CoderProgram third = coder->Write(in, 2, history);
  EXPECT_NE(third.code, second.code);
  EXPECT_NE(third.code.find("except Exception"), std::string::npos);  // defensive entry
}

TEST(CoderTest, AnswerEndsWithTheNormalisedJsonLine) {
  auto coder = MakeCvCoder();
  const auto gauge =
      Text("```json\n{\"task\":\"read_gauge\",\"calibration\":{\"unit\":\"bar\"}}\n```");
  const std::string a =
      coder->Answer(gauge, {{Ok("debug output\n{\"value\": 4.23456, \"confidence\": 1.7}\n")}});
  const json line = json::parse(LastLine(a));
  EXPECT_DOUBLE_EQ(line["value"].get<double>(), 4.2346);
  EXPECT_EQ(line["unit"], "bar");  // filled from the calibration
  EXPECT_DOUBLE_EQ(line["confidence"].get<double>(), 1.0);
  EXPECT_NE(a.find("4.2346 bar"), std::string::npos) << a;

  const auto count = Text("Count the nuts");
  const json c = json::parse(LastLine(coder->Answer(count, {{Ok("{\"count\": 7.0}\n")}})));
  EXPECT_TRUE(c["count"].is_number_integer());
  EXPECT_EQ(c["count"], 7);

  const json t = json::parse(LastLine(coder->Answer(Text("Zoom in"), {{Ok("{\"text\": \"x\"}")}})));
  EXPECT_EQ(t["text"], "x");
}

TEST(CoderTest, CountObjectsPassThroughValidated) {
  auto coder = MakeCvCoder();
  const auto in = Text("Count the nuts");
  const std::string out = R"({"count": 3, "confidence": 0.9, "objects": [)"
                          R"({"box": [1, 2, 30, 40], "score": 0.95},)"
                          R"({"box": [5, 6, 7], "score": 0.5},)"        // three numbers
                          R"({"box": [5, -6, 7, 8], "score": 0.5},)"    // negative
                          R"({"box": [5, 6, 7, "8"], "score": 0.5},)"   // not a number
                          R"({"box": [5, 6, 7, 8], "score": 1.5},)"     // score outside 0..1
                          R"({"box": [5, 6, 7, 8], "score": "high"},)"  // score not a number
                          R"("box",)"                                   // not an object
                          R"({"box": [50, 60, 10.5, 12]}]})";           // no score: 1
  const json c = json::parse(LastLine(coder->Answer(in, {{Ok(out + "\n")}})));
  EXPECT_EQ(c["count"], 3);
  ASSERT_TRUE(c["objects"].is_array());
  ASSERT_EQ(c["objects"].size(), 2u) << c.dump();
  EXPECT_EQ(c["objects"][0]["box"], json::parse("[1, 2, 30, 40]"));
  EXPECT_DOUBLE_EQ(c["objects"][0]["score"].get<double>(), 0.95);
  EXPECT_DOUBLE_EQ(c["objects"][1]["box"][2].get<double>(), 10.5);
  EXPECT_DOUBLE_EQ(c["objects"][1]["score"].get<double>(), 1.0);

  // not a list: an empty list; absent: no key; a flood: capped
  const json d = json::parse(
      LastLine(coder->Answer(in, {{Ok(R"({"count": 1, "objects": {"box": [1, 2, 3, 4]}})")}})));
  EXPECT_TRUE(d["objects"].is_array() && d["objects"].empty()) << d.dump();
  const json e = json::parse(LastLine(coder->Answer(in, {{Ok(R"({"count": 1})")}})));
  EXPECT_FALSE(e.contains("objects"));
  json flood = {{"count", 5000}, {"objects", json::array()}};
  for (int i = 0; i < 5000; ++i) flood["objects"].push_back({{"box", {i, 0, 1, 1}}, {"score", 1}});
  const json f = json::parse(LastLine(coder->Answer(in, {{Ok(flood.dump())}})));
  EXPECT_EQ(f["count"], 5000);
  EXPECT_EQ(f["objects"].size(), 1000u);
}

TEST(CoderTest, CountLadderGetsMoreDefensive) {
  auto coder = MakeCvCoder();
  const auto in = Text("Count the nuts");
  std::vector<CoderObservation> history;
  const json first = Literal(coder->Write(in, 0, history).code, "STRATEGY");
  EXPECT_EQ(first["split"], true);
  for (int attempt = 1; attempt < 5; ++attempt) {
    history.push_back({Failed("ValueError: bad\n")});
    const json s = Literal(coder->Write(in, attempt, history).code, "STRATEGY");
    EXPECT_EQ(s["any_input"], true) << attempt;
    if (attempt >= 2) {
      EXPECT_EQ(s["split"], false) << attempt;  // the plainest path
    }
  }
}

TEST(CoderTest, AnswerUsesTheLastSuccessfulRun) {
  auto coder = MakeCvCoder();
  const auto in = Text("Count the bolts");
  const json c = json::parse(LastLine(coder->Answer(
      in, {{Ok("{\"count\": 3}")}, {Failed("RuntimeError: boom")}, {Ok("{\"count\": 5}")}})));
  EXPECT_EQ(c["count"], 5);
}

TEST(CoderTest, AnswerAfterFailuresIsAnError) {
  auto coder = MakeCvCoder();
  const auto in = Text("Count the bolts");
  const std::string a = coder->Answer(in, {{Failed("Traceback\nFileNotFoundError: no input image")},
                                           {Ok("not json")},
                                           {Ok("{\"count\": -2}")}});
  const json line = json::parse(LastLine(a));
  ASSERT_TRUE(line.contains("error"));
  EXPECT_NE(line["error"].get<std::string>().find("FileNotFoundError"), std::string::npos);
  EXPECT_EQ(line.size(), 1u);
}

}  // namespace
}  // namespace roilens::backend
