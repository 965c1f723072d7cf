// `roilens run` over many inputs and `roilens merge`, as real processes on the embedded backend:
// two shards into one root with one of them SIGKILLed and resumed, a failing input among good
// ones, manifest errors, and the Indexed Job environment.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "roilens/backend/server.h"
#include "roilens/samples.h"
#include "testing/cli_runner.h"
#include "testing/paths.h"

namespace roilens {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileText;
using testing::RunCli;

constexpr int kRois = 3;  // the sample station's ROIs

/// Four tiny sample videos of different lengths (so different sizes) under videos/: two share a
/// stem in different folders. Returns frame counts by path.
const std::map<std::string, int>& Videos() {
  static const std::map<std::string, int> videos = [] {
    const fs::path dir = testing::ScratchDir("videos");
    std::map<std::string, int> made;
    const std::vector<std::pair<std::string, int>> wanted = {
        {"north/cam.mp4", 14}, {"south/cam.mp4", 10}, {"dock.mp4", 12}, {"yard.mp4", 8}};
    int seed = 1;
    for (const auto& [name, frames] : wanted) {
      const fs::path scratch = dir / ("gen" + std::to_string(seed));
      SampleOptions options;
      options.frames = frames;
      options.seed = static_cast<std::uint64_t>(seed++);
      options.stills = 0;
      auto written = WriteSamples(scratch.string(), options);
      EXPECT_TRUE(written.ok()) << written.status();
      fs::create_directories((dir / name).parent_path());
      fs::copy_file(scratch / "station.mp4", dir / name);
      if (seed == 2) fs::copy_file(scratch / "station.json", dir / "station.json");
      made[(dir / name).string()] = frames;
    }
    return made;
  }();
  return videos;
}

std::string Config() {
  return (fs::path(Videos().begin()->first).parent_path() / "station.json").string();
}

std::vector<nlohmann::json> ReadLines(const fs::path& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  std::string text;
  while (std::getline(in, text)) {
    if (!text.empty()) lines.push_back(nlohmann::json::parse(text, nullptr, false));
  }
  return lines;
}

nlohmann::json ReadJson(const fs::path& path) {
  return nlohmann::json::parse(ReadFileText(path.string()), nullptr, false);
}

/// The list file naming the four videos, relative to the list's own folder.
fs::path WriteList(const fs::path& dir) {
  const fs::path list = dir / "inputs.txt";
  std::ofstream out(list);
  out << "# four cameras\n\n";
  for (const auto& [path, frames] : Videos()) {
    out << fs::relative(path, dir).string() << "\n";
  }
  return list;
}

TEST(BatchCliTest, TwoShardsOneKilledResumedAndMergedHoldEveryFrameTimesRoiOnce) {
  const fs::path dir = testing::ScratchDir("shards");
  const fs::path out = dir / "out";
  const fs::path list = WriteList(dir);
  // Every frame calls (gate off), 60 ms a call, two in flight, a checkpoint every 3 frames: each
  // shard runs for a few seconds, long enough to be killed in the middle of a file.
  auto args = [&](const std::string& shard) {
    return std::vector<std::string>{"run",
                                    "--inputs",
                                    list.string(),
                                    "--config",
                                    Config(),
                                    "--out",
                                    out.string(),
                                    "--coder",
                                    "echo",
                                    "--shard",
                                    shard,
                                    "--change-threshold",
                                    "0",
                                    "--latency-ms",
                                    "60",
                                    "--max-in-flight",
                                    "2",
                                    "--segment-frames",
                                    "3"};
  };
  const pid_t shard0 =
      testing::SpawnCli(args("0/2"), (dir / "0.out").string(), (dir / "0.err").string());
  const pid_t shard1 =
      testing::SpawnCli(args("1/2"), (dir / "1.out").string(), (dir / "1.err").string());
  ASSERT_GT(shard0, 0);
  ASSERT_GT(shard1, 0);

  // Poll (a condition, not a sleep for ordering) until shard 0 has a file with a checkpoint and
  // more results after it, not yet finished; then kill it without warning.
  bool ready = false;
  fs::path killed_in;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!ready && std::chrono::steady_clock::now() < deadline) {
    const nlohmann::json record = ReadJson(out / "shards" / "0-of-2.json");
    if (record.is_object()) {
      for (const auto& file : record["files"]) {
        const fs::path folder = out / file["folder"].get<std::string>();
        const std::string journal = ReadFileText((folder / ".roilens-journal").string());
        const auto lines = ReadLines(folder / "results.jsonl").size();
        if (!fs::exists(folder / ".roilens-done") &&
            std::count(journal.begin(), journal.end(), '\n') >= 2 && lines > 4 * kRois) {
          ready = true;
          killed_in = folder;
          break;
        }
      }
    }
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(ready) << ReadFileText((dir / "0.err").string());
  ASSERT_EQ(::kill(shard0, SIGKILL), 0);
  EXPECT_EQ(testing::WaitChild(shard0), -SIGKILL);
  ASSERT_FALSE(fs::exists(killed_in / ".roilens-done")) << "shard 0 finished too soon";
  // A merge while shard 1 may still be running reads only finished files: it always succeeds.
  auto during = RunCli({"merge", out.string()});
  EXPECT_EQ(during.exit_code, 0) << during.err;
  EXPECT_TRUE(ReadJson(out / "summary.json").is_object());
  EXPECT_EQ(testing::WaitChild(shard1), 0) << ReadFileText((dir / "1.err").string());

  // Merge while shard 0 is incomplete: its unfinished files are partial or pending.
  auto early = RunCli({"merge", out.string()});
  ASSERT_EQ(early.exit_code, 0) << early.err;
  EXPECT_EQ(RunCli({"merge", out.string(), "--require-complete"}).exit_code, 1);
  nlohmann::json summary = ReadJson(out / "summary.json");
  ASSERT_TRUE(summary.is_object());
  EXPECT_FALSE(summary["complete"].get<bool>());
  EXPECT_GE(summary["totals"]["partial"].get<int>(), 1);
  for (const auto& row : summary["files"]) {
    if (row["folder"] == killed_in.filename().string()) {
      EXPECT_EQ(row["status"], "partial");
    }
  }

  // Resume shard 0: finished files are skipped, the killed one continues from its journal.
  auto resumed = RunCli([&] {
    auto a = args("0/2");
    a.push_back("--resume");
    return a;
  }());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  EXPECT_NE(resumed.out.find("(resuming)"), std::string::npos) << resumed.out;
  const nlohmann::json killed_summary = ReadJson(killed_in / "summary.json");
  EXPECT_TRUE(killed_summary["resumed_from_frame"].is_number()) << killed_summary.dump();

  auto merged = RunCli({"merge", out.string(), "--require-complete"});
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  summary = ReadJson(out / "summary.json");
  ASSERT_TRUE(summary["complete"].get<bool>()) << summary.dump(2);
  ASSERT_EQ(summary["files"].size(), Videos().size());

  // Every frame x ROI of every file exactly once, and the totals add up.
  std::int64_t frames_total = 0;
  std::set<std::string> folders;
  for (const auto& row : summary["files"]) {
    const std::string input = row["input"];
    ASSERT_TRUE(Videos().count(input)) << input;
    const int frames = Videos().at(input);
    EXPECT_EQ(row["status"], "ok") << row.dump();
    EXPECT_EQ(row["frames"], frames) << row.dump();
    EXPECT_EQ(row["roi_results"], frames * kRois);
    EXPECT_TRUE(folders.insert(row["folder"].get<std::string>()).second);
    std::set<std::pair<std::int64_t, std::string>> seen;
    const auto lines = ReadLines(out / row["folder"].get<std::string>() / "results.jsonl");
    for (const auto& line : lines) {
      ASSERT_TRUE(line.is_object());
      EXPECT_TRUE(
          seen.insert({line["frame"].get<std::int64_t>(), line["roi"].get<std::string>()}).second)
          << input << ": " << line.dump();
    }
    EXPECT_EQ(lines.size(), static_cast<std::size_t>(frames * kRois)) << input;
    for (int f = 0; f < frames; ++f) {
      for (const char* roi : {"boiler", "coolant", "tray"}) {
        EXPECT_TRUE(seen.count({f, roi})) << input << " frame " << f << " " << roi;
      }
    }
    frames_total += frames;
  }
  EXPECT_EQ(summary["totals"]["frames"], frames_total);
  EXPECT_EQ(summary["totals"]["roi_results"], frames_total * kRois);
  EXPECT_EQ(summary["totals"]["ok"], 4);
  // The two cam.mp4 got distinct folders; each shard recorded its share, together all four.
  EXPECT_EQ(folders.size(), 4u);
  std::size_t shared = 0;
  for (const char* name : {"0-of-2.json", "1-of-2.json"}) {
    const nlohmann::json record = ReadJson(out / "shards" / name);
    EXPECT_EQ(record["state"], "done");
    shared += record["files"].size();
  }
  EXPECT_EQ(shared, 4u);
  // Shared files are replaced by rename, never left half-written (the root and shards/: the
  // killed process was inside a file's run, not writing these).
  for (const fs::path& shared_dir : {out, out / "shards"}) {
    for (const auto& entry : fs::directory_iterator(shared_dir)) {
      EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
    }
  }
  EXPECT_NE(ReadFileText((out / "report.html").string()).find("<table>"), std::string::npos);
}

TEST(BatchCliTest, AFailingInputIsRecordedWhileTheOthersFinish) {
  const fs::path dir = testing::ScratchDir("failing");
  const fs::path videos = dir / "videos";
  fs::create_directories(videos);
  auto it = Videos().begin();
  fs::copy_file(it->first, videos / "good1.mp4");
  fs::copy_file(std::next(it)->first, videos / "good2.mp4");
  std::ofstream(videos / "broken.mp4") << "not a video";
  std::ofstream(videos / "notes.txt") << "not an input";  // a folder's non-videos are skipped
  const fs::path out = dir / "out";
  auto run = RunCli({"run", videos.string(), "--config", Config(), "--out", out.string(), "--coder",
                     "echo", "--quiet"});
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  EXPECT_NE(run.err.find("1 of 3 inputs failed"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find((videos / "broken.mp4").string() + ": input"), std::string::npos)
      << run.err;
  const nlohmann::json summary = ReadJson(out / "summary.json");
  ASSERT_TRUE(summary.is_object());
  std::map<std::string, nlohmann::json> rows;
  for (const auto& row : summary["files"]) rows[row["folder"]] = row;
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows["broken"]["status"], "failed");
  EXPECT_NE(rows["broken"]["error"].get<std::string>().find("not a readable video"),
            std::string::npos);
  EXPECT_EQ(rows["good1"]["status"], "ok");
  EXPECT_EQ(rows["good2"]["status"], "ok");
  EXPECT_TRUE(fs::exists(out / "good1" / "annotated.mp4"));
  EXPECT_TRUE(fs::exists(out / "good2" / "report.html"));
  EXPECT_TRUE(summary["complete"].get<bool>());

  // --resume retries the failed file (still broken) and skips the finished ones.
  auto again = RunCli({"run", videos.string(), "--config", Config(), "--out", out.string(),
                       "--coder", "echo", "--resume"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.out.find("good1.mp4: already finished"), std::string::npos) << again.out;
  EXPECT_NE(again.err.find("broken.mp4"), std::string::npos);
  // Another config in the same root is refused (its results would be mixed with these).
  const fs::path edited = dir / "edited.json";
  std::ofstream(edited) << ReadFileText(Config()) << "\n";
  auto other_config = RunCli({"run", videos.string(), "--config", edited.string(), "--out",
                              out.string(), "--coder", "echo", "--resume"});
  EXPECT_EQ(other_config.exit_code, 2);
  EXPECT_NE(other_config.err.find("another config"), std::string::npos) << other_config.err;
  // Without --resume a batch does not write into folders it already wrote.
  auto refused = RunCli(
      {"run", videos.string(), "--config", Config(), "--out", out.string(), "--coder", "echo"});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("--resume"), std::string::npos) << refused.err;
}

TEST(BatchCliTest, FilesFailedByARejectedKeyAreRedoneFromScratchOnResume) {
  constexpr char kWrongKey[] = "AIzaSyWRONG-batch-test-key-00000000000";
  constexpr char kRightKey[] = "AIzaSyRIGHT-batch-test-key-11111111111";
  backend::BackendOptions options;
  options.coder = "echo";
  options.api_keys = {kRightKey};
  auto backend = backend::LocalBackend::Start(options);
  ASSERT_TRUE(backend.ok()) << backend.status();
  const fs::path dir = testing::ScratchDir("rejected_key");
  auto station = nlohmann::json::parse(ReadFileText(Config()));
  station["backend"]["api_key_env"] = "ROILENS_BATCH_TEST_KEY";
  std::ofstream(dir / "station.json") << station.dump();
  const fs::path list = dir / "inputs.txt";
  {
    std::ofstream out(list);
    auto it = Videos().begin();
    out << it->first << "\n" << std::next(it)->first << "\n";
  }
  auto args = [&](bool resume) {
    std::vector<std::string> a = {"run",
                                  "--inputs",
                                  list.string(),
                                  "--config",
                                  (dir / "station.json").string(),
                                  "--out",
                                  (dir / "out").string(),
                                  "--endpoint",
                                  (*backend)->base_url()};
    if (resume) a.push_back("--resume");
    return a;
  };
  ::setenv("ROILENS_BATCH_TEST_KEY", kWrongKey, 1);
  auto rejected = RunCli(args(false));
  ::setenv("ROILENS_BATCH_TEST_KEY", kRightKey, 1);
  auto resumed = RunCli(args(true));
  ::unsetenv("ROILENS_BATCH_TEST_KEY");

  EXPECT_EQ(rejected.exit_code, 1) << rejected.out << rejected.err;
  EXPECT_NE(rejected.err.find("2 of 2 inputs failed"), std::string::npos) << rejected.err;
  EXPECT_NE(rejected.err.find("API key not valid"), std::string::npos) << rejected.err;
  EXPECT_EQ(rejected.err.find(kWrongKey), std::string::npos);

  // The failed runs finished (their journals say so) with error lines: --resume must redo them,
  // not take "already finished" for done.
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  const nlohmann::json summary = ReadJson(dir / "out" / "summary.json");
  ASSERT_TRUE(summary["complete"].get<bool>()) << summary.dump(2);
  EXPECT_EQ(summary["totals"]["ok"], 2);
  EXPECT_EQ(summary["totals"]["errors"], 0);
  EXPECT_EQ(summary.dump().find(kWrongKey), std::string::npos);
  for (const auto& row : summary["files"]) {
    const int frames = Videos().at(row["input"].get<std::string>());
    const auto lines = ReadLines(dir / "out" / row["folder"].get<std::string>() / "results.jsonl");
    EXPECT_EQ(lines.size(), static_cast<std::size_t>(frames * kRois)) << row.dump();
    for (const auto& line : lines) EXPECT_NE(line["status"], "error") << line.dump();
  }
}

TEST(BatchCliTest, GlobAndIndexedJobEnvironmentPickTheSameShardAsTheFlag) {
  const fs::path dir = testing::ScratchDir("env");
  const std::string pattern = (fs::path(Videos().begin()->first).parent_path() / "*.mp4").string();
  ::setenv("JOB_COMPLETION_INDEX", "1", 1);
  ::setenv("JOB_COMPLETIONS", "2", 1);
  auto by_env = RunCli({"run", pattern, "--config", Config(), "--out", (dir / "env").string(),
                        "--coder", "echo", "--quiet"});
  ::setenv("JOB_COMPLETION_INDEX", "2", 1);
  auto bad_env = RunCli({"run", pattern, "--config", Config(), "--out", (dir / "bad").string(),
                         "--coder", "echo", "--quiet"});
  ::unsetenv("JOB_COMPLETION_INDEX");
  ::unsetenv("JOB_COMPLETIONS");
  ASSERT_EQ(by_env.exit_code, 0) << by_env.err;
  EXPECT_EQ(bad_env.exit_code, 2);
  EXPECT_NE(bad_env.err.find("JOB_COMPLETION_INDEX='2'"), std::string::npos) << bad_env.err;
  auto by_flag = RunCli({"run", pattern, "--config", Config(), "--out", (dir / "flag").string(),
                         "--coder", "echo", "--quiet", "--shard", "1/2"});
  ASSERT_EQ(by_flag.exit_code, 0) << by_flag.err;
  const nlohmann::json env_record = ReadJson(dir / "env" / "shards" / "1-of-2.json");
  const nlohmann::json flag_record = ReadJson(dir / "flag" / "shards" / "1-of-2.json");
  ASSERT_TRUE(env_record.is_object());
  EXPECT_EQ(env_record["files"], flag_record["files"]);
  // The glob matched the two top-level videos only (not north/ and south/).
  const nlohmann::json manifest = ReadJson(dir / "env" / "manifest.json");
  EXPECT_EQ(manifest["files"].size(), 2u);

  auto bad_flag = RunCli(
      {"run", pattern, "--config", Config(), "--out", (dir / "x").string(), "--shard", "2/2"});
  EXPECT_EQ(bad_flag.exit_code, 2);
  EXPECT_NE(bad_flag.err.find("--shard '2/2'"), std::string::npos) << bad_flag.err;
}

TEST(BatchCliTest, ListErrorsNameTheFileAndLine) {
  const fs::path dir = testing::ScratchDir("list_errors");
  const fs::path list = dir / "inputs.txt";
  std::ofstream(list) << "# cams\na.mp4\n\nb.mp4\na.mp4\n";
  auto run = RunCli(
      {"run", "--inputs", list.string(), "--config", Config(), "--out", (dir / "out").string()});
  EXPECT_EQ(run.exit_code, 4);
  EXPECT_NE(run.err.find(list.string() + ":5:"), std::string::npos) << run.err;
  auto merge = RunCli({"merge", (dir / "nothing").string()});
  EXPECT_EQ(merge.exit_code, 4);
  EXPECT_NE(merge.err.find("holds no batch"), std::string::npos) << merge.err;
}

}  // namespace
}  // namespace roilens
