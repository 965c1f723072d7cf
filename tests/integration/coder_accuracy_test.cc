// The coder's programs, run for real (through the sandbox when it can start, else through
// /usr/bin/python3 with a note), on a small fixed set of generated gauges and trays.
#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "roilens/backend/coder.h"
#include "roilens/backend/coder_eval.h"
#include "roilens/backend/sandbox.h"
#include "roilens/samples.h"

namespace roilens::backend {
namespace {

using nlohmann::json;

/// The sandbox when isolation is available here, else the plain interpreter (announced).
ProgramRunner Runner() {
  static std::shared_ptr<Sandbox> sandbox = [] {
    auto created = Sandbox::Create(SandboxOptions{});
    if (!created.ok()) {
      std::cout << "[note] sandbox unavailable (" << created.status().message()
                << "); running the coder's programs with /usr/bin/python3 directly\n";
      return std::shared_ptr<Sandbox>();
    }
    return std::shared_ptr<Sandbox>(std::move(created).value());
  }();
  if (sandbox) return [](const SandboxJob& job) { return sandbox->Run(job); };
  return [](const SandboxJob& job) { return RunPythonDirectly(job); };
}

TEST(CoderAccuracyTest, FixedSetOfGaugesAndTrays) {
  auto coder = MakeCvCoder();
  CoderEvalOptions options;
  options.gauges = 12;
  options.trays = 8;
  options.seed = 20261125;
  const CoderEvalReport r = EvaluateCoder(*coder, Runner(), options);
  ASSERT_EQ(r.gauges, 12);
  ASSERT_EQ(r.trays, 8);
  int exact = 0;
  for (const CoderEvalCase& c : r.cases) {
    EXPECT_FALSE(c.failed) << c.kind << " " << c.index << ": " << c.error;
    if (c.kind == "gauge")
      EXPECT_LE(c.error_pct, 3.0) << "gauge " << c.index << ": truth " << c.truth << " read "
                                  << c.answer;
    else
      exact += c.answer == c.truth;
  }
  // The trays now include the hard conditions of issue 10 (uneven light, touching clusters,
  // cut-off border parts, mixed sizes): the coder counts 5 of these 8 exactly; raise this as it
  // improves (it was 7 of 8 on evenly lit trays of separate parts).
  EXPECT_GE(exact, 5) << "trays counted exactly";
}

/// Counts one rendered tray through the coder; returns the answer line.
json CountTray(const cv::Mat& tray) {
  auto coder = MakeCvCoder();
  std::vector<std::uint8_t> png;
  cv::imencode(".png", tray, png);
  CoderInput in;
  in.text = "Count the parts.\n```json\n{\"task\": \"count\", \"object\": \"parts\"}\n```";
  in.images.push_back({"image/png", png});
  SandboxJob job;
  job.code = coder->Write(in, 0, {}).code;
  job.inputs.push_back({"input_0.png", png});
  const SandboxResult result = Runner()(job);
  EXPECT_TRUE(result.ok) << result.error << "\n" << result.stderr_text;
  const std::string answer = coder->Answer(in, {{result}});
  return json::parse(answer.substr(answer.rfind('\n') + 1));
}

void ExpectExactWithObjects(const json& line, const std::vector<cv::Rect>& truth, cv::Size size) {
  ASSERT_TRUE(line.contains("count")) << line.dump();
  EXPECT_EQ(line["count"].get<int>(), int(truth.size())) << line.dump();
  ASSERT_TRUE(line.contains("objects")) << line.dump();
  EXPECT_EQ(line["objects"].size(), line["count"].get<std::size_t>());
  for (const json& o : line["objects"]) {
    const cv::Rect box(o["box"][0].get<int>(), o["box"][1].get<int>(), o["box"][2].get<int>(),
                       o["box"][3].get<int>());
    EXPECT_EQ(box & cv::Rect(cv::Point(0, 0), size), box) << o.dump();
    // every box lies on a true part
    bool hit = false;
    for (const cv::Rect& t : truth) hit = hit || (box & t).area() > 0;
    EXPECT_TRUE(hit) << o.dump();
  }
}

TEST(CoderAccuracyTest, TouchingClustersCountEachPart) {
  TrayStyle style;
  style.kind = 2;  // washers: rings that touch along their rims
  style.clusters = 3;
  style.noise_sigma = 3;
  cv::RNG rng(41);
  std::vector<cv::Rect> boxes;
  const cv::Mat tray = RenderTray(12, style, rng, &boxes);
  ASSERT_EQ(boxes.size(), 12u);
  ExpectExactWithObjects(CountTray(tray), boxes, tray.size());
}

TEST(CoderAccuracyTest, UnevenLightCountsExactly) {
  TrayStyle style;
  style.kind = 3;
  style.light_gradient = 0.4;
  style.vignette = 0.4;
  style.glare_spots = 2;
  style.noise_sigma = 3;
  cv::RNG rng(43);
  std::vector<cv::Rect> boxes;
  const cv::Mat tray = RenderTray(14, style, rng, &boxes);
  ASSERT_EQ(boxes.size(), 14u);
  ExpectExactWithObjects(CountTray(tray), boxes, tray.size());
}

TEST(CoderAccuracyTest, RevisesAfterAFailedRun) {
  auto coder = MakeCvCoder();
  const ProgramRunner real = Runner();
  std::atomic<int> runs{0};
  std::vector<std::string> codes;
  // the first execution fails the way a broken environment would; the revision must recover
  ProgramRunner flaky = [&](const SandboxJob& job) {
    codes.push_back(job.code);
    if (runs.fetch_add(1) == 0) {
      SandboxResult r;
      r.exit_code = 1;
      r.stderr_text =
          "Traceback (most recent call last):\nModuleNotFoundError: No module named 'scipy'\n";
      r.error = "exit code 1";
      return r;
    }
    return real(job);
  };
  CoderEvalOptions options;
  options.gauges = 1;
  options.trays = 0;
  options.seed = 5;
  options.workers = 1;
  const CoderEvalReport r = EvaluateCoder(*coder, flaky, options);
  ASSERT_EQ(r.cases.size(), 1u);
  EXPECT_FALSE(r.cases[0].failed) << r.cases[0].error;
  EXPECT_EQ(r.cases[0].attempts, 2);
  ASSERT_EQ(codes.size(), 2u);
  EXPECT_NE(codes[0], codes[1]);
  EXPECT_LE(r.cases[0].error_pct, 3.0);
}

TEST(CoderAccuracyTest, GivesUpWithAnErrorAfterFiveFailures) {
  auto coder = MakeCvCoder();
  int runs = 0;
  ProgramRunner broken = [&](const SandboxJob&) {
    ++runs;
    SandboxResult r;
    r.timed_out = true;
    r.error = "timed out after 30 s";
    return r;
  };
  CoderEvalOptions options;
  options.gauges = 0;
  options.trays = 1;
  options.workers = 1;
  const CoderEvalReport r = EvaluateCoder(*coder, broken, options);
  EXPECT_EQ(runs, 5);
  ASSERT_EQ(r.cases.size(), 1u);
  EXPECT_TRUE(r.cases[0].failed);
  EXPECT_NE(r.cases[0].error.find("timed out"), std::string::npos) << r.cases[0].error;
}

TEST(CoderAccuracyTest, ZoomAnnotateAndAskProgramsRunAndDraw) {
  auto coder = MakeCvCoder();
  const ProgramRunner run = Runner();
  cv::RNG rng(3);
  std::vector<std::uint8_t> png;
  cv::imencode(".png", RenderTray(4, RandomTrayStyle(rng), rng), png);
  const json specs[] = {
      {{"task", "zoom"}, {"region", {0.25, 0.25, 0.5, 0.5}}, {"zoom", 3}},
      {{"task", "annotate"}, {"prompt", "Circle the 'largest' part \"now\""}},
      {{"task", "ask"}, {"prompt", "What colour is the tray?"}},
  };
  for (const json& spec : specs) {
    CoderInput in;
    in.text = "Do the task.\n```json\n" + spec.dump() + "\n```";
    in.images.push_back({"image/png", png});
    const CoderProgram p = coder->Write(in, 0, {});
    SandboxJob job;
    job.code = p.code;
    job.inputs.push_back({"input_0.png", png});
    const SandboxResult result = run(job);
    ASSERT_TRUE(result.ok) << spec.dump() << "\n" << result.error << "\n" << result.stderr_text;
    EXPECT_FALSE(result.images.empty()) << spec.dump();
    const std::string answer = coder->Answer(in, {{result}});
    const json line = json::parse(answer.substr(answer.rfind('\n') + 1));
    ASSERT_TRUE(line.contains("text")) << answer;
    EXPECT_FALSE(line["text"].get<std::string>().empty());
  }
}

}  // namespace
}  // namespace roilens::backend
