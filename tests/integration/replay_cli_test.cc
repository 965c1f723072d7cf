// output.audit and `roilens replay` end to end: a run of the sample station on a still scene
// (change gate off, so every frame calls with an identical crop) through a real local backend
// that needs an API key; the trail holds one record per call, each crop once, never the key;
// replaying it with the same coder reproduces it, another coder or an edited record differs.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <regex>
#include <set>

#include "roilens/backend/server.h"
#include "roilens/outputs/audit.h"
#include "roilens/samples.h"
#include "testing/cli_runner.h"
#include "testing/paths.h"

namespace roilens {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileText;
using testing::RunCli;

constexpr int kFrames = 4;
constexpr int kRois = 3;  // the sample station: boiler, coolant (gauges), tray (count)
constexpr char kKey[] = "AIzaSyAUDIT-replay-test-key-2222222222";

struct Recorded {
  fs::path out;
  fs::path audit;
  testing::CliResult run;
};

/// One recorded run per test binary: 4 identical frames of the sample station, cv coder.
const Recorded& Recording() {
  static const Recorded recorded = [] {
    Recorded r;
    const fs::path dir = testing::ScratchDir("replay");
    SampleOptions options;
    options.frames = 2;
    options.stills = 0;
    auto manifest = WriteSamples(dir.string(), options);
    EXPECT_TRUE(manifest.ok()) << manifest.status();
    cv::VideoCapture video((dir / "station.mp4").string());
    cv::Mat frame;
    EXPECT_TRUE(video.read(frame));
    fs::create_directories(dir / "frames");
    for (int i = 0; i < kFrames; ++i) {
      cv::imwrite((dir / "frames" / ("frame_" + std::to_string(i) + ".png")).string(), frame);
    }
    auto station = nlohmann::json::parse(ReadFileText((dir / "station.json").string()));
    for (auto& roi : station["rois"]) roi["change_threshold"] = 0;  // every frame makes a call
    station["output"]["audit"] = {{"dir", "audit"}, {"max_mb", 64}};
    station["backend"]["api_key_env"] = "ROILENS_REPLAY_TEST_KEY";
    std::ofstream(dir / "station.json") << station.dump();

    backend::BackendOptions backend_options;
    backend_options.coder = "cv";
    backend_options.api_keys = {kKey};
    auto backend = backend::LocalBackend::Start(backend_options);
    EXPECT_TRUE(backend.ok()) << backend.status();
    r.out = dir / "out";
    r.audit = r.out / "audit";
    ::setenv("ROILENS_REPLAY_TEST_KEY", kKey, 1);
    r.run = RunCli({"run", (dir / "frames").string(), "--config", (dir / "station.json").string(),
                    "--out", r.out.string(), "--endpoint", (*backend)->base_url(), "--quiet"});
    ::unsetenv("ROILENS_REPLAY_TEST_KEY");
    return r;
  }();
  return recorded;
}

int Count(const std::string& text, const std::string& what) {
  std::smatch match;
  if (!std::regex_search(text, match, std::regex("(\\d+) " + what))) return -1;
  return std::stoi(match[1]);
}

TEST(ReplayCliTest, AuditKeepsOneRecordPerCallEachCropOnceAndNeverTheKey) {
  const Recorded& r = Recording();
  ASSERT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  const auto summary = nlohmann::json::parse(ReadFileText((r.out / "summary.json").string()));
  EXPECT_EQ(summary["calls"], kFrames * kRois);

  auto records = ReadAuditRecords(r.audit.string());
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), static_cast<std::size_t>(kFrames * kRois));
  std::set<std::string> crops, rois;
  std::set<std::int64_t> frames;
  for (const auto& record : *records) {
    rois.insert(record["roi"].get<std::string>());
    frames.insert(record["frame"].get<std::int64_t>());
    crops.insert(record["crop"]["blob"].get<std::string>());
    EXPECT_EQ(record["status"], "ok") << record.dump();
    EXPECT_TRUE(record["answer"]["status"] == "ok" || record["answer"]["status"] == "uncertain")
        << record.dump();
    ASSERT_FALSE(record["code_runs"].empty()) << record.dump();
    auto code = ReadAuditBlob(r.audit.string(), record["code_runs"][0]["code"]);
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_NE(code->find("cv2"), std::string::npos);  // the model's Python, as it ran
    auto crop = ReadAuditBlob(r.audit.string(), record["crop"]["blob"]);
    ASSERT_TRUE(crop.ok()) << crop.status();
    const cv::Mat image =
        cv::imdecode(std::vector<std::uint8_t>(crop->begin(), crop->end()), cv::IMREAD_COLOR);
    EXPECT_FALSE(image.empty());
    EXPECT_EQ(record["endpoint"].get<std::string>().rfind("http://127.0.0.1:", 0), 0u);
  }
  EXPECT_EQ(rois.size(), static_cast<std::size_t>(kRois));
  EXPECT_EQ(frames.size(), static_cast<std::size_t>(kFrames));
  // A still scene: every ROI sent the same bytes on every frame, stored once.
  EXPECT_EQ(crops.size(), static_cast<std::size_t>(kRois));

  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(r.out)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    EXPECT_EQ(ReadFileText(entry.path().string()).find(kKey), std::string::npos) << entry.path();
  }
  EXPECT_GT(files, kRois * 2);
}

TEST(ReplayCliTest, SameCoderReproducesTheRecordedRunExactly) {
  const Recorded& r = Recording();
  ASSERT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  auto replay = RunCli({"replay", r.audit.string(), "--coder", "cv"});
  EXPECT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  EXPECT_NE(replay.out.find("replay: 12 call(s): 12 same, 0 differ, 0 failed"), std::string::npos)
      << replay.out << replay.err;
}

TEST(ReplayCliTest, ExecReRunsTheRecordedCodeToTheSameOutput) {
  const Recorded& r = Recording();
  ASSERT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  auto replay = RunCli({"replay", r.audit.string(), "--exec"});
  EXPECT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  EXPECT_NE(replay.out.find("12 same, 0 differ, 0 failed"), std::string::npos)
      << replay.out << replay.err;
}

TEST(ReplayCliTest, AnotherCoderReportsWhereItsAnswersDiffer) {
  const Recorded& r = Recording();
  ASSERT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  auto replay = RunCli({"replay", r.audit.string(), "--coder", "echo"});
  EXPECT_EQ(replay.exit_code, 1) << replay.out << replay.err;
  EXPECT_GT(Count(replay.out, "differ,"), 0) << replay.out;
  EXPECT_EQ(Count(replay.out, "failed"), 0) << replay.out;
  EXPECT_NE(replay.out.find("roi boiler: differs:"), std::string::npos) << replay.out;
}

TEST(ReplayCliTest, AnEditedRecordedAnswerIsTheOneDifference) {
  const Recorded& r = Recording();
  ASSERT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  const fs::path copy = testing::ScratchDir("replay-edited") / "audit";
  fs::copy(r.audit, copy, fs::copy_options::recursive);
  // The first record of the first file says the boiler read 1 more than it did.
  fs::path first;
  for (const auto& entry : fs::directory_iterator(copy)) {
    if (entry.path().extension() == ".jsonl" && (first.empty() || entry.path() < first)) {
      first = entry.path();
    }
  }
  ASSERT_FALSE(first.empty());
  std::vector<nlohmann::json> lines;
  {
    std::ifstream in(first);
    std::string text;
    while (std::getline(in, text)) lines.push_back(nlohmann::json::parse(text));
  }
  int edited = -1;
  for (std::size_t i = 0; i < lines.size() && edited < 0; ++i) {
    if (lines[i]["roi"] == "boiler") {
      lines[i]["answer"]["value"] = lines[i]["answer"]["value"].get<double>() + 1;
      edited = static_cast<int>(lines[i]["frame"].get<std::int64_t>());
    }
  }
  ASSERT_GE(edited, 0);
  {
    std::ofstream out(first, std::ios::trunc);
    for (const auto& line : lines) out << line.dump() << "\n";
  }
  auto replay = RunCli({"replay", copy.string()});
  EXPECT_EQ(replay.exit_code, 1) << replay.out << replay.err;
  EXPECT_NE(replay.out.find("11 same, 1 differ, 0 failed"), std::string::npos) << replay.out;
  EXPECT_NE(replay.out.find("frame " + std::to_string(edited) + " roi boiler: differs: value"),
            std::string::npos)
      << replay.out;
  // Within a tolerance of 1.5 the edit no longer counts (and the summary says so).
  auto tolerant = RunCli({"replay", copy.string(), "--tolerance", "1.5"});
  EXPECT_EQ(tolerant.exit_code, 0) << tolerant.out << tolerant.err;
  EXPECT_NE(tolerant.out.find("12 same, 0 differ, 0 failed (1 same only within --tolerance 1.5)"),
            std::string::npos)
      << tolerant.out;
}

TEST(ReplayCliTest, NotAnAuditDirectoryIsBadInput) {
  const fs::path empty = testing::ScratchDir("replay-empty");
  auto replay = RunCli({"replay", empty.string()});
  EXPECT_EQ(replay.exit_code, 4) << replay.out << replay.err;
  EXPECT_NE(replay.err.find("not an audit directory"), std::string::npos) << replay.err;
}

}  // namespace
}  // namespace roilens
