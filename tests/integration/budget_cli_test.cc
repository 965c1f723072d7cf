// backend.budget end to end: `roilens run` against the embedded backend stops cleanly when the
// budget is reached (every frame read gets its lines, exit 6, the reason in summary.json), and
// --resume runs, each with the budget again, finish the input with every frame x ROI once.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "roilens/outputs/sinks.h"
#include "roilens/samples.h"
#include "testing/cli_runner.h"
#include "testing/paths.h"

namespace roilens {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileText;
using testing::RunCli;

constexpr int kFrames = 12;
constexpr int kRois = 3;  // the sample station's

std::vector<nlohmann::json> ReadLines(const fs::path& path) {
  return testing::ReadJsonLines(path.string());
}

bool IsBudgetLine(const nlohmann::json& line) {
  return line["status"] == "error" && line["error"].is_string() &&
         line["error"].get<std::string>().find("not called: backend.budget is spent") !=
             std::string::npos;
}

/// The sample station with backend.budget and a price table added.
fs::path WriteStation(const fs::path& dir, const nlohmann::json& budget) {
  SampleOptions options;
  options.frames = kFrames;
  EXPECT_TRUE(WriteSamples(dir.string(), options).ok());
  auto config = nlohmann::json::parse(ReadFileText((dir / "station.json").string()));
  config["backend"]["budget"] = budget;
  config["backend"]["prices"] = {{config["backend"]["model"].get<std::string>(),
                                  {{"input_per_million", 1.0}, {"output_per_million", 2.0}}}};
  const fs::path path = dir / "budget.json";
  std::ofstream(path) << config.dump(2);
  return path;
}

TEST(BudgetCliTest, MaxCallsStopsCleanlyAndResumesToACompleteRun) {
  const fs::path dir = testing::ScratchDir("budget_calls");
  const fs::path config = WriteStation(dir, {{"max_calls", 10}});
  const fs::path out = dir / "out";
  // Every frame calls for each ROI (gate off): 36 calls in all, 10 per invocation.
  const std::vector<std::string> args = {"run",
                                         (dir / "station.mp4").string(),
                                         "--config",
                                         config.string(),
                                         "--out",
                                         out.string(),
                                         "--coder",
                                         "echo",
                                         "--change-threshold",
                                         "0",
                                         "--segment-frames",
                                         "2",
                                         "--quiet"};
  auto first = RunCli(args);
  ASSERT_EQ(first.exit_code, 6) << first.out << first.err;
  EXPECT_NE(first.err.find("max_calls (10) reached"), std::string::npos) << first.err;
  EXPECT_NE(first.err.find("--resume"), std::string::npos) << first.err;

  // Every frame read has all its lines, in order; only the budget kept calls from being made.
  const auto lines = ReadLines(out / "results.jsonl");
  ASSERT_FALSE(lines.empty());
  ASSERT_EQ(lines.size() % kRois, 0u);
  int calls = 0;
  std::int64_t first_budget_frame = -1;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["frame"], static_cast<std::int64_t>(i / kRois)) << lines[i].dump();
    if (lines[i]["latency_ms"].get<double>() > 0) ++calls;
    if (IsBudgetLine(lines[i]) && first_budget_frame < 0) {
      first_budget_frame = lines[i]["frame"].get<std::int64_t>();
    }
    if (!IsBudgetLine(lines[i])) {
      EXPECT_NE(lines[i]["status"], "error") << lines[i].dump();
    }
  }
  EXPECT_EQ(calls, 10);
  // The budget went to the earliest frames: three whole frames, then one ROI of the fourth.
  EXPECT_EQ(first_budget_frame, 3);

  const auto summary = nlohmann::json::parse(ReadFileText((out / "summary.json").string()));
  ASSERT_TRUE(summary["stopped"].is_object()) << summary.dump(2);
  EXPECT_EQ(summary["stopped"]["reason"], "budget");
  EXPECT_EQ(summary["stopped"]["resume_from_frame"], 3);
  EXPECT_EQ(summary["usage"]["calls"], 10);
  const auto& usage = summary["usage"];
  EXPECT_GT(usage["total_tokens"].get<std::int64_t>(), 0) << usage.dump();
  EXPECT_DOUBLE_EQ(
      usage["estimated_cost"].get<double>(),
      (usage["input_tokens"].get<double>() * 1.0 + usage["output_tokens"].get<double>() * 2.0) /
          1e6);
  const std::string report = ReadFileText((out / "report.html").string());
  EXPECT_NE(report.find("stopped early"), std::string::npos);
  EXPECT_NE(report.find("estimated_cost"), std::string::npos);

  // Each --resume gets the budget again and redoes the frames that were not called.
  auto resume_args = args;
  resume_args.push_back("--resume");
  std::int64_t resumed_from = 3;
  int runs = 1;
  for (;;) {
    auto next = RunCli(resume_args);
    ++runs;
    ASSERT_LE(runs, 8) << "no progress";
    if (next.exit_code == 0) break;
    ASSERT_EQ(next.exit_code, 6) << next.out << next.err;
    const auto s = nlohmann::json::parse(ReadFileText((out / "summary.json").string()));
    EXPECT_EQ(s["resumed_from_frame"], resumed_from);
    const std::int64_t from = s["stopped"]["resume_from_frame"].get<std::int64_t>();
    EXPECT_GT(from, resumed_from);  // progress: a whole frame's calls fit in one budget
    resumed_from = from;
  }
  EXPECT_EQ(runs, 4);  // 36 calls at 10 a run

  const auto done = ReadLines(out / "results.jsonl");
  ASSERT_EQ(done.size(), static_cast<std::size_t>(kFrames * kRois));
  std::set<std::pair<std::int64_t, std::string>> seen;
  for (std::size_t i = 0; i < done.size(); ++i) {
    EXPECT_EQ(done[i]["frame"], static_cast<std::int64_t>(i / kRois));
    EXPECT_TRUE(
        seen.insert({done[i]["frame"].get<std::int64_t>(), done[i]["roi"].get<std::string>()})
            .second)
        << done[i].dump();
    EXPECT_FALSE(IsBudgetLine(done[i])) << done[i].dump();
    EXPECT_GT(done[i]["latency_ms"].get<double>(), 0) << done[i].dump();
  }
  const auto summary_done = nlohmann::json::parse(ReadFileText((out / "summary.json").string()));
  EXPECT_TRUE(summary_done["stopped"].is_null());
  EXPECT_EQ(summary_done["usage"]["calls"], kFrames * kRois);
  EXPECT_EQ(summary_done["frames"], kFrames);
  // The segments of frames written after the budget stopped were dropped and redone.
  auto frames = CountVideoFrames((out / "annotated.mp4").string());
  ASSERT_TRUE(frames.ok()) << frames.status();
  EXPECT_EQ(*frames, kFrames);
}

TEST(BudgetCliTest, MaxTokensStopsAfterTheAnswersReachIt) {
  const fs::path dir = testing::ScratchDir("budget_tokens");
  const fs::path config = WriteStation(dir, {{"max_tokens", 1}});
  const fs::path out = dir / "out";
  auto run = RunCli({"run", (dir / "station.mp4").string(), "--config", config.string(), "--out",
                     out.string(), "--coder", "echo", "--change-threshold", "0", "--quiet"});
  ASSERT_EQ(run.exit_code, 6) << run.out << run.err;
  const auto summary = nlohmann::json::parse(ReadFileText((out / "summary.json").string()));
  EXPECT_EQ(summary["stopped"]["reason"], "budget");
  EXPECT_NE(summary["stopped"]["detail"].get<std::string>().find("max_tokens (1) reached"),
            std::string::npos)
      << summary.dump(2);
  EXPECT_LT(summary["usage"]["calls"].get<int>(), kFrames * kRois);
}

TEST(BudgetCliTest, ABudgetBelowOneFramesCallsSaysResumingCannotProgress) {
  const fs::path dir = testing::ScratchDir("budget_small");
  const fs::path config = WriteStation(dir, {{"max_calls", 2}});  // 3 ROIs call on frame 0
  auto run = RunCli({"run", (dir / "station.mp4").string(), "--config", config.string(), "--out",
                     (dir / "out").string(), "--coder", "echo", "--quiet"});
  ASSERT_EQ(run.exit_code, 6) << run.out << run.err;
  EXPECT_NE(run.err.find("raise backend.budget"), std::string::npos) << run.err;
  const auto summary = nlohmann::json::parse(ReadFileText((dir / "out" / "summary.json").string()));
  EXPECT_EQ(summary["stopped"]["resume_from_frame"], 0);
}

TEST(BudgetCliTest, ABatchSpendsOneBudgetOverAllItsFilesAndResumesWhereItStopped) {
  const fs::path dir = testing::ScratchDir("budget_batch");
  const fs::path config = WriteStation(dir, {{"max_calls", 45}});
  const fs::path videos = dir / "videos";
  fs::create_directories(videos);
  for (const char* name : {"a.mp4", "b.mp4", "c.mp4"}) {
    fs::copy_file(dir / "station.mp4", videos / name);
  }
  const fs::path out = dir / "out";
  // 36 calls a file (gate off): the first file fits, the second stops after 9 more calls and
  // the third is not started, instead of each file getting 45 calls of its own.
  std::vector<std::string> args = {"run",
                                   videos.string(),
                                   "--config",
                                   config.string(),
                                   "--out",
                                   out.string(),
                                   "--coder",
                                   "echo",
                                   "--change-threshold",
                                   "0",
                                   "--segment-frames",
                                   "2",
                                   "--quiet"};
  auto first = RunCli(args);
  ASSERT_EQ(first.exit_code, 6) << first.out << first.err;
  EXPECT_NE(first.err.find("the batch stopped"), std::string::npos) << first.err;
  const auto shard = nlohmann::json::parse(ReadFileText((out / "shards" / "0-of-1.json").string()));
  EXPECT_EQ(shard["state"], "budget");
  EXPECT_EQ(shard["usage"]["calls"], 45);
  const auto summary = nlohmann::json::parse(ReadFileText((out / "summary.json").string()));
  EXPECT_EQ(summary["totals"]["ok"], 1);
  EXPECT_EQ(summary["totals"]["partial"], 1);
  EXPECT_EQ(summary["totals"]["pending"], 1);
  EXPECT_FALSE(fs::exists(out / "c" / "summary.json"));

  // Each --resume gets the budget again and continues: b from its journal, then c.
  args.push_back("--resume");
  int runs = 1;
  int code = 6;
  while (code == 6 && runs < 6) {
    code = RunCli(args).exit_code;
    ++runs;
  }
  ASSERT_EQ(code, 0);
  for (const char* name : {"a", "b", "c"}) {
    const auto lines = ReadLines(out / name / "results.jsonl");
    std::set<std::pair<std::int64_t, std::string>> seen;
    for (const auto& line : lines) {
      EXPECT_FALSE(IsBudgetLine(line)) << name << ": " << line;
      const bool first_time =
          seen.insert({line["frame"].get<std::int64_t>(), line["roi"].get<std::string>()}).second;
      EXPECT_TRUE(first_time) << name << ": " << line;
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(kFrames * kRois)) << name;
  }
}

}  // namespace
}  // namespace roilens
