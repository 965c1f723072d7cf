// `roilens run` end to end, as a user runs it: the sample station video through the embedded
// backend (cv coder: real Python in the sandbox), checked against the ground truth; bad inputs
// an unreachable backend and a rejected API key; SIGKILL + --resume; Ctrl-C with thousands of
// ROIs; oversized images; a non-empty --out; and the annotated video as ffprobe sees it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "roilens/backend/server.h"
#include "roilens/outputs/journal.h"
#include "roilens/outputs/sinks.h"
#include "roilens/samples.h"
#include "testing/cli_runner.h"
#include "testing/http_fixture.h"
#include "testing/paths.h"

namespace roilens {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileText;
using testing::RunCli;

constexpr int kFrames = 60;
constexpr int kRois = 3;

/// The sample station, 60 frames, written once per test binary run.
const fs::path& Samples() {
  static const fs::path dir = [] {
    fs::path d = testing::ScratchDir("samples");
    SampleOptions options;
    options.frames = kFrames;
    auto manifest = WriteSamples(d.string(), options);
    EXPECT_TRUE(manifest.ok()) << manifest.status();
    return d;
  }();
  return dir;
}

std::vector<nlohmann::json> ReadLines(const fs::path& path) {
  return testing::ReadJsonLines(path.string());
}

/// Every frame x ROI exactly once, frames in order, ROIs in config order within a frame.
void ExpectCompleteResults(const std::vector<nlohmann::json>& lines, int frames) {
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(frames * kRois));
  std::set<std::pair<std::int64_t, std::string>> seen;
  const char* names[kRois] = {"boiler", "coolant", "tray"};
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto frame = lines[i]["frame"].get<std::int64_t>();
    EXPECT_EQ(frame, static_cast<std::int64_t>(i / kRois)) << lines[i].dump();
    EXPECT_EQ(lines[i]["roi"], names[i % kRois]);
    EXPECT_TRUE(seen.insert({frame, lines[i]["roi"].get<std::string>()}).second);
  }
}

TEST(RunCliTest, SampleStationThroughTheEmbeddedBackendMatchesGroundTruth) {
  const fs::path out = testing::ScratchDir("e2e");
  // The sample config's own change gate (threshold 0.02) must see every needle step and tray
  // change: the readings below are checked against ground truth on every frame.
  auto result = RunCli({"run", (Samples() / "station.mp4").string(), "--config",
                        (Samples() / "station.json").string(), "--out", out.string()});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_NE(result.out.find("using the embedded local backend at http://127.0.0.1:"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("(coder cv)"), std::string::npos);

  const auto lines = ReadLines(out / "results.jsonl");
  ExpectCompleteResults(lines, kFrames);
  std::map<std::pair<std::int64_t, std::string>, nlohmann::json> truth;
  for (const auto& t : ReadLines(Samples() / "ground_truth.jsonl")) {
    truth[{t["frame"].get<std::int64_t>(), t["roi"].get<std::string>()}] = t;
  }
  const auto station = nlohmann::json::parse(ReadFileText((Samples() / "station.json").string()));
  std::map<std::string, double> span;
  for (const auto& roi : station["rois"]) {
    if (roi.contains("gauge")) {
      span[roi["name"]] =
          roi["gauge"]["max_value"].get<double>() - roi["gauge"]["min_value"].get<double>();
    }
  }
  int checked = 0;
  for (const auto& line : lines) {
    const std::string status = line["status"];
    ASSERT_TRUE(status == "ok" || status == "cached") << line.dump();
    const auto& t = truth.at({line["frame"].get<std::int64_t>(), line["roi"].get<std::string>()});
    if (t.contains("count")) {
      EXPECT_EQ(line["count"], t["count"]) << line.dump();
    } else {
      // Within 4% of the dial's span (a needle read to about +-10 degrees).
      EXPECT_NEAR(line["value"].get<double>(), t["value"].get<double>(),
                  0.04 * span.at(line["roi"]))
          << line.dump();
    }
    ++checked;
  }
  EXPECT_EQ(checked, kFrames * kRois);

  auto frames = CountVideoFrames((out / "annotated.mp4").string());
  ASSERT_TRUE(frames.ok()) << frames.status();
  EXPECT_EQ(*frames, kFrames);
  const auto summary = nlohmann::json::parse(ReadFileText((out / "summary.json").string()));
  EXPECT_EQ(summary["frames"], kFrames);
  EXPECT_EQ(summary["roi_results"], kFrames * kRois);
  EXPECT_GT(summary["calls"].get<int>(), 0);
  EXPECT_EQ(summary["calls"].get<int>() + summary["cache_hits"].get<int>(), kFrames * kRois);
  const std::string html = ReadFileText((out / "report.html").string());
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("data:image/png;base64,"), std::string::npos);
  EXPECT_FALSE(fs::exists(out / ".roilens-work"));
}

/// stdout (and stderr) of a shell command; "" when it cannot start.
std::string ShellOutput(const std::string& command) {
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[4096];
    while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
    ::pclose(pipe);
  }
  return out;
}

TEST(RunCliTest, AnnotatedVideoPassesAnIndependentFfprobeCheck) {
  // The in-process ProbeVideo reads the file with the same libraries that wrote it; ffprobe is
  // the program a user (or a browser's demuxer) sees it through.
  if (std::system("command -v ffprobe > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "ffprobe not installed (Debian package: ffmpeg)";
  }
  const fs::path out = testing::ScratchDir("ffprobe");
  auto result =
      RunCli({"run", (Samples() / "station.mp4").string(), "--config",
              (Samples() / "station.json").string(), "--out", out.string(), "--coder", "echo"});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  const auto summary = nlohmann::json::parse(ReadFileText((out / "summary.json").string()));
  EXPECT_EQ(summary.value("video_decoder", "").rfind("libav ", 0), 0u) << summary.dump();
  const std::string video = (out / "annotated.mp4").string();
  const auto streams = nlohmann::json::parse(
      ShellOutput("ffprobe -v error -select_streams v:0 -count_frames -show_entries "
                  "stream=codec_name,pix_fmt,nb_read_frames,duration -of json '" +
                  video + "'"),
      nullptr, false);
  ASSERT_TRUE(streams.is_object() && streams.contains("streams") && streams["streams"].size() == 1)
      << streams.dump();
  const auto& stream = streams["streams"][0];
  EXPECT_EQ(stream.value("codec_name", ""), "h264");
  EXPECT_EQ(stream.value("pix_fmt", ""), "yuv420p");
  EXPECT_EQ(stream.value("nb_read_frames", ""), std::to_string(kFrames)) << "frames = input's";
  // 10 fps: kFrames / 10 seconds, within one frame.
  EXPECT_NEAR(std::stod(stream.value("duration", "0")), kFrames / 10.0, 0.1) << stream.dump();
  // Faststart: ffprobe's trace lists the top-level boxes in file order; the index comes first.
  const std::string trace = ShellOutput("ffprobe -v trace '" + video + "' 2>&1");
  const auto moov = trace.find("type:'moov'"), mdat = trace.find("type:'mdat'");
  ASSERT_NE(moov, std::string::npos) << trace.substr(0, 2000);
  ASSERT_NE(mdat, std::string::npos) << trace.substr(0, 2000);
  EXPECT_LT(moov, mdat) << "moov after mdat: not faststart";
}

TEST(RunCliTest, FolderOfImagesGivesAnnotatedImagesAndNamesSources) {
  const fs::path out = testing::ScratchDir("stills");
  auto result = RunCli({"run", (Samples() / "stills").string(), "--config",
                        (Samples() / "stills.json").string(), "--out", out.string(), "--coder",
                        "echo", "--quiet"});
  ASSERT_TRUE(result.exit_code == 0 || result.exit_code == 1) << result.out << result.err;
  std::set<std::string> sources;
  for (const auto& line : ReadLines(out / "results.jsonl")) sources.insert(line["source"]);
  ASSERT_FALSE(sources.empty());
  for (const auto& name : sources) {
    EXPECT_TRUE(fs::exists(out / "annotated" / name)) << name;
  }
}

TEST(RunCliTest, MaxFramesZeroReadsTheWholeInputAndSummaryCarriesTheVersion) {
  // README: `--max-frames 0` (the default) reads the whole input. The short flags -c/-o/-q are
  // the same as --config/--out/--quiet.
  std::size_t stills = 0;
  for (const auto& entry : fs::directory_iterator(Samples() / "stills")) {
    if (entry.path().extension() == ".png" || entry.path().extension() == ".jpg") ++stills;
  }
  ASSERT_GT(stills, 1u);
  const fs::path out = testing::ScratchDir("max_frames_zero");
  auto result =
      RunCli({"run", (Samples() / "stills").string(), "-c", (Samples() / "stills.json").string(),
              "-o", out.string(), "--coder", "echo", "-q", "--max-frames", "0"});
  ASSERT_TRUE(result.exit_code == 0 || result.exit_code == 1) << result.out << result.err;
  const auto summary = nlohmann::json::parse(ReadFileText((out / "summary.json").string()));
  EXPECT_EQ(summary["frames"], stills) << summary.dump();
  ASSERT_TRUE(summary.contains("roilens_version")) << summary.dump();
  const std::string cmake = ReadFileText(testing::SourceDir() + "/CMakeLists.txt");
  EXPECT_NE(cmake.find("project(roilens VERSION " + summary["roilens_version"].get<std::string>()),
            std::string::npos);
}

TEST(RunCliTest, BadInputsGiveOneClearLineAndDistinctExitCodes) {
  const fs::path dir = testing::ScratchDir("bad");
  const std::string config = (Samples() / "station.json").string();
  auto missing =
      RunCli({"run", "/nonexistent/clip.mp4", "--config", config, "--out", (dir / "o1").string()});
  EXPECT_EQ(missing.exit_code, 4);
  EXPECT_NE(missing.err.find("/nonexistent/clip.mp4"), std::string::npos) << missing.err;

  std::ofstream(dir / "corrupt.mp4") << std::string(10000, '\x42');
  auto corrupt = RunCli(
      {"run", (dir / "corrupt.mp4").string(), "--config", config, "--out", (dir / "o2").string()});
  EXPECT_EQ(corrupt.exit_code, 4);
  EXPECT_NE(corrupt.err.find("corrupt.mp4"), std::string::npos) << corrupt.err;

  auto station = nlohmann::json::parse(ReadFileText(config));
  station["rois"][1]["gauge"]["max_value"] = "high";
  std::ofstream(dir / "invalid.json") << station.dump();
  auto invalid = RunCli({"run", (Samples() / "station.mp4").string(), "--config",
                         (dir / "invalid.json").string(), "--out", (dir / "o3").string()});
  EXPECT_EQ(invalid.exit_code, 3);
  EXPECT_NE(invalid.err.find("rois[1].gauge.max_value"), std::string::npos) << invalid.err;

  station = nlohmann::json::parse(ReadFileText(config));
  station["rois"][2]["rect"] = {600, 300, 200, 200};  // past the 640x360 frame
  std::ofstream(dir / "outside.json") << station.dump();
  auto outside = RunCli({"run", (Samples() / "station.mp4").string(), "--config",
                         (dir / "outside.json").string(), "--out", (dir / "o4").string()});
  EXPECT_EQ(outside.exit_code, 3);
  EXPECT_NE(outside.err.find("tray"), std::string::npos) << outside.err;

  // A camera index with no such camera (no /dev/video97 here).
  auto camera = RunCli({"run", "97", "--config", config, "--out", (dir / "o5").string()});
  EXPECT_EQ(camera.exit_code, 4);
  EXPECT_NE(camera.err.find("input '97': camera cannot be opened"), std::string::npos)
      << camera.err;
}

TEST(RunCliTest, ProgressLineOnlyOnATerminalAndNotWithQuiet) {
  const fs::path dir = testing::ScratchDir("progress");
  auto args = [&](const std::string& out) {
    return std::vector<std::string>{"run",          (Samples() / "station.mp4").string(),
                                    "--config",     (Samples() / "station.json").string(),
                                    "--out",        (dir / out).string(),
                                    "--coder",      "echo",
                                    "--max-frames", "12"};
  };
  auto terminal = testing::RunCliOnTerminal(args("tty"));
  ASSERT_EQ(terminal.exit_code, 0) << terminal.out;
  // The last state is always printed: frames done of the total, rates, counters, elapsed time.
  const std::regex last_state(
      "\rframes 12/12  [0-9.]+ fps  in flight 0  calls [0-9]+  cached [0-9]+  errors 0  [0-9]+s"
      "\x1b\\[K\r?\n");
  EXPECT_TRUE(std::regex_search(terminal.out, last_state)) << terminal.out;

  auto quiet_args = args("quiet");
  quiet_args.push_back("--quiet");
  auto quiet = testing::RunCliOnTerminal(quiet_args);
  ASSERT_EQ(quiet.exit_code, 0) << quiet.out;
  EXPECT_EQ(quiet.out.find("frames "), std::string::npos) << quiet.out;

  auto piped = RunCli(args("pipe"));
  ASSERT_EQ(piped.exit_code, 0) << piped.out << piped.err;
  EXPECT_EQ(piped.out.find('\r'), std::string::npos) << "no progress line into a pipe";
  EXPECT_EQ(piped.err.find('\r'), std::string::npos);
}

TEST(RunCliTest, StreamUrlInputIsReadToItsEnd) {
  // The sample video served over HTTP on loopback: a network stream as FFmpeg reads one.
  testing::HttpFixtureServer server;
  ASSERT_TRUE(server.server().set_mount_point("/media", Samples().string()));
  ASSERT_TRUE(server.Start());
  const fs::path dir = testing::ScratchDir("stream");
  const std::string url = server.base_url() + "/media/station.mp4";
  auto result = RunCli({"run", url, "--config", (Samples() / "station.json").string(), "--out",
                        (dir / "out").string(), "--coder", "echo", "--quiet"});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  ExpectCompleteResults(ReadLines(dir / "out" / "results.jsonl"), kFrames);
  auto frames = CountVideoFrames((dir / "out" / "annotated.mp4").string());
  ASSERT_TRUE(frames.ok()) << frames.status();
  EXPECT_EQ(*frames, kFrames);

  const std::string missing = server.base_url() + "/media/no-such-clip.mp4";
  auto bad = RunCli({"run", missing, "--config", (Samples() / "station.json").string(), "--out",
                     (dir / "bad").string(), "--quiet"});
  EXPECT_EQ(bad.exit_code, 4) << bad.out << bad.err;
  EXPECT_NE(bad.err.find(missing), std::string::npos) << bad.err;
}

TEST(RunCliTest, UnreachableBackendGivesErrorLinesSummaryAndNonZeroExit) {
  const fs::path dir = testing::ScratchDir("unreachable");
  auto station = nlohmann::json::parse(ReadFileText((Samples() / "station.json").string()));
  station["backend"]["max_retries"] = 1;
  std::ofstream(dir / "station.json") << station.dump();
  // Port 1 on loopback: nothing listens there, connections are refused at once.
  auto result = RunCli({"run", (Samples() / "station.mp4").string(), "--config",
                        (dir / "station.json").string(), "--out", (dir / "out").string(),
                        "--endpoint", "http://127.0.0.1:1", "--max-frames", "5", "--quiet"});
  EXPECT_EQ(result.exit_code, 5) << result.out << result.err;
  EXPECT_NE(result.err.find("every model call failed"), std::string::npos) << result.err;
  const auto lines = ReadLines(dir / "out" / "results.jsonl");
  ASSERT_EQ(lines.size(), 5u * kRois);
  for (const auto& line : lines) EXPECT_EQ(line["status"], "error") << line.dump();
  const auto summary = nlohmann::json::parse(ReadFileText((dir / "out" / "summary.json").string()));
  EXPECT_EQ(summary["errors"], 5 * kRois);
}

TEST(RunCliTest, RejectedKeyStopsAfterOneCallExitsFiveAndSaysWhyWithoutTheKey) {
  constexpr char kWrongKey[] = "AIzaSyWRONG-cli-test-key-000000000000";
  backend::BackendOptions options;
  options.coder = "echo";
  options.api_keys = {"AIzaSyRIGHT-cli-test-key-11111111111"};
  auto backend = backend::LocalBackend::Start(options);
  ASSERT_TRUE(backend.ok()) << backend.status();
  const fs::path dir = testing::ScratchDir("rejected_key");
  auto station = nlohmann::json::parse(ReadFileText((Samples() / "station.json").string()));
  station["backend"]["api_key_env"] = "ROILENS_CLI_TEST_KEY";
  std::ofstream(dir / "station.json") << station.dump();
  ::setenv("ROILENS_CLI_TEST_KEY", kWrongKey, 1);
  auto result = RunCli({"run", (Samples() / "station.mp4").string(), "--config",
                        (dir / "station.json").string(), "--out", (dir / "out").string(),
                        "--endpoint", (*backend)->base_url(), "--max-frames", "10", "--quiet"});
  ::unsetenv("ROILENS_CLI_TEST_KEY");

  EXPECT_EQ(result.exit_code, 5) << result.out << result.err;
  EXPECT_NE(result.err.find("API key not valid"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("ROILENS_CLI_TEST_KEY"), std::string::npos) << result.err;
  const auto lines = ReadLines(dir / "out" / "results.jsonl");
  ASSERT_EQ(lines.size(), 10u * kRois);  // nothing dropped
  int calls = 0;
  for (const auto& line : lines) {
    EXPECT_EQ(line["status"], "error") << line.dump();
    if (line["latency_ms"].get<double>() > 0) ++calls;
  }
  EXPECT_EQ(calls, 1) << "one answer says the key is rejected: no further calls";
  const std::string summary_text = ReadFileText((dir / "out" / "summary.json").string());
  const auto summary = nlohmann::json::parse(summary_text);
  EXPECT_EQ(summary["calls"], 1);
  ASSERT_TRUE(summary["fatal_error"].is_string()) << summary_text;
  EXPECT_NE(summary["fatal_error"].get<std::string>().find("API key not valid"), std::string::npos);
  const std::string report = ReadFileText((dir / "out" / "report.html").string());
  const auto stopped = report.find("Run stopped: the API key is missing or was rejected");
  ASSERT_NE(stopped, std::string::npos);
  EXPECT_LT(stopped, report.find("<h2>Summary</h2>")) << "the cause comes first";
  for (const std::string& text : {result.out, result.err, summary_text, report,
                                  ReadFileText((dir / "out" / "results.jsonl").string())}) {
    EXPECT_EQ(text.find(kWrongKey), std::string::npos);
    EXPECT_EQ(text.find("AIzaSyRIGHT"), std::string::npos);
  }
}

TEST(RunCliTest, ResumeAfterSigkillCompletesWithEveryFrameExactlyOnce) {
  const fs::path dir = testing::ScratchDir("resume");
  const fs::path out = dir / "out";
  const std::vector<std::string> args = {
      "run", (Samples() / "station.mp4").string(), "--config",
      (Samples() / "station.json").string(), "--out", out.string(), "--coder", "echo",
      // Every frame calls (gate off) with 150 ms per call and few in flight: a run of several
      // seconds, checkpointed every 10 frames.
      "--change-threshold", "0", "--latency-ms", "150", "--max-in-flight", "3", "--segment-frames",
      "10", "--quiet"};
  const pid_t pid =
      testing::SpawnCli(args, (dir / "first.out").string(), (dir / "first.err").string());
  ASSERT_GT(pid, 0);
  // Wait (polling the file: waiting for a condition) until at least one checkpoint exists and
  // the next chunk is under way, then kill without warning.
  bool ready = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string journal = ReadFileText((out / ".roilens-journal").string());
    const auto results = ReadLines(out / "results.jsonl").size();
    // Two checkpoints: the second one's segment is cut off below, the resume goes back to the
    // first.
    if (std::count(journal.begin(), journal.end(), '\n') >= 3 && results > 22 * kRois &&
        results % (10 * kRois) != 0) {
      ready = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(ready) << ReadFileText((dir / "first.err").string());
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  EXPECT_EQ(testing::WaitChild(pid), -SIGKILL);
  const auto partial = ReadLines(out / "results.jsonl").size();
  ASSERT_LT(partial, static_cast<std::size_t>(kFrames * kRois)) << "the run finished too soon";
  // The last checkpointed segment is cut off as a machine crash or a full disk would leave it:
  // the resume must notice and redo its frames rather than join a broken file.
  auto journal = Journal::Load((out / ".roilens-journal").string());
  ASSERT_TRUE(journal.ok()) << journal.status();
  ASSERT_TRUE(journal->last.has_value());
  const int checkpointed = journal->last->segments;
  ASSERT_GE(checkpointed, 2);
  const fs::path last_segment =
      SegmentedVideoWriter::SegmentPath((out / ".roilens-work").string(), checkpointed - 1);
  ASSERT_TRUE(fs::exists(last_segment)) << last_segment;
  fs::resize_file(last_segment, fs::file_size(last_segment) / 2);

  auto resumed = RunCli([&] {
    auto a = args;
    a.push_back("--resume");
    return a;
  }());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  ExpectCompleteResults(ReadLines(out / "results.jsonl"), kFrames);
  auto frames = CountVideoFrames((out / "annotated.mp4").string());
  ASSERT_TRUE(frames.ok()) << frames.status();
  EXPECT_EQ(*frames, kFrames);
  const auto summary = nlohmann::json::parse(ReadFileText((out / "summary.json").string()));
  EXPECT_EQ(summary["frames"], kFrames);
  EXPECT_TRUE(summary["resumed_from_frame"].is_number());
  EXPECT_EQ(summary["resumed_from_frame"].get<int>() % 10, 0);
  EXPECT_EQ(summary["resumed_from_frame"].get<int>(), 10 * (checkpointed - 1));
  EXPECT_NE(resumed.err.find("video segment unusable"), std::string::npos) << resumed.err;
  auto probe = ProbeVideo((out / "annotated.mp4").string());
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->frames, kFrames);
  EXPECT_TRUE(probe->faststart);
  EXPECT_EQ(summary["video_join"], "libav stream copy");

  // A finished run has nothing to resume.
  auto again = RunCli([&] {
    auto a = args;
    a.push_back("--resume");
    return a;
  }());
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.out.find("nothing to resume"), std::string::npos) << again.out;
}

/// The fields a resumed run must reproduce exactly (latency and interaction ids differ per call).
nlohmann::json Reading(const nlohmann::json& line) {
  nlohmann::json kept;
  for (const char* key : {"frame", "time_s", "roi", "status", "value", "raw_value",
                          "implausible_jump", "count", "alarm"}) {
    kept[key] = line.contains(key) ? line[key] : nlohmann::json();
  }
  return kept;
}

TEST(RunCliTest, ResumeRestoresAlarmStateAndWritesEachAlarmEventOnce) {
  // Alarms whose min_duration_s spans checkpoints (every 10 frames at 10 fps): the echo coder
  // reads every boiler 5 bar (high 4: pending from frame 0, raised at 2.2 s = frame 22) and
  // every tray 0 parts (low 1: raised at 3.1 s = frame 31); coolant 60 °C (high 50) at once.
  const fs::path dir = testing::ScratchDir("resume_alarms");
  auto station = nlohmann::json::parse(ReadFileText((Samples() / "station.json").string()));
  station["rois"][0]["alarm"] = {{"high", 4}, {"min_duration_s", 2.15}};
  station["rois"][1]["alarm"] = {{"high", 50}};
  station["rois"][2]["alarm"] = {{"low", 1}, {"min_duration_s", 3.05}};
  std::ofstream(dir / "alarms.json") << station.dump(2);
  auto args = [&](const fs::path& out, std::vector<std::string> extra) {
    std::vector<std::string> a = {
        "run", (Samples() / "station.mp4").string(), "--config", (dir / "alarms.json").string(),
        "--out", out.string(), "--coder", "echo",
        // Every frame calls (gate off): each line is a fresh reading, in every run alike.
        "--change-threshold", "0", "--segment-frames", "10", "--quiet"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const fs::path whole = dir / "whole";
  auto reference = RunCli(args(whole, {}));
  ASSERT_EQ(reference.exit_code, 0) << reference.out << reference.err;
  const auto expected_alarms = ReadLines(whole / "alarms.jsonl");
  ASSERT_EQ(expected_alarms.size(), 3u);
  std::vector<std::pair<std::string, std::int64_t>> raised;
  for (const auto& event : expected_alarms) {
    EXPECT_EQ(event["event"], "raise") << event.dump();
    raised.emplace_back(event["roi"].get<std::string>(), event["frame"].get<std::int64_t>());
  }
  EXPECT_THAT(raised, ::testing::UnorderedElementsAre(::testing::Pair("coolant", 0),
                                                      ::testing::Pair("boiler", 22),
                                                      ::testing::Pair("tray", 31)));

  // Stopped after 25 frames: checkpoints at 10, 20 and 25. The last checkpoint line is dropped,
  // as a kill after frames 20..24 were written but before their checkpoint leaves the journal:
  // the resume goes back to frame 20 and redoes 20..24, whose lines (and the boiler's raise at
  // 22) are already in the files.
  const fs::path out = dir / "out";
  auto first = RunCli(args(out, {"--max-frames", "25"}));
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  ASSERT_EQ(ReadLines(out / "alarms.jsonl").size(), 2u) << "coolant at 0, boiler at 22";
  {
    const fs::path journal = out / ".roilens-journal";
    std::vector<std::string> lines;
    std::istringstream text(ReadFileText(journal.string()));
    for (std::string line; std::getline(text, line);) lines.push_back(line);
    ASSERT_EQ(lines.size(), 4u) << "header and checkpoints 10, 20, 25";
    ASSERT_EQ(nlohmann::json::parse(lines.back())["frames_done"], 25);
    std::ofstream rewritten(journal, std::ios::trunc);
    for (std::size_t i = 0; i + 1 < lines.size(); ++i) rewritten << lines[i] << "\n";
  }
  auto resumed = RunCli(args(out, {"--resume"}));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  const auto summary = nlohmann::json::parse(ReadFileText((out / "summary.json").string()));
  EXPECT_EQ(summary["resumed_from_frame"], 20);

  // The same events as the run that was never stopped: none twice, none raised again, none
  // delayed by a duration timer that restarted at the resume.
  const auto alarms = ReadLines(out / "alarms.jsonl");
  EXPECT_EQ(alarms, expected_alarms);
  const auto lines = ReadLines(out / "results.jsonl");
  const auto expected_lines = ReadLines(whole / "results.jsonl");
  ExpectCompleteResults(lines, kFrames);
  ASSERT_EQ(lines.size(), expected_lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    ASSERT_EQ(Reading(lines[i]), Reading(expected_lines[i])) << "line " << i;
  }
}

TEST(RunCliTest, SummaryAndReportCoverEveryRotatedResultsFile) {
  // results.jsonl rolls over every few frames (output.rotate.max_bytes): the run's totals and
  // report must still count all 60 frames, not only those in the active file.
  const fs::path dir = testing::ScratchDir("rotate_summary");
  auto station = nlohmann::json::parse(ReadFileText((Samples() / "station.json").string()));
  station["output"]["rotate"] = {{"max_bytes", 8000}};
  std::ofstream(dir / "rotate.json") << station.dump(2);
  const fs::path out = dir / "out";
  auto result = RunCli({"run", (Samples() / "station.mp4").string(), "--config",
                        (dir / "rotate.json").string(), "--out", out.string(), "--coder", "echo",
                        "--change-threshold", "0", "--quiet"});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  const auto summary = nlohmann::json::parse(ReadFileText((out / "summary.json").string()));
  ASSERT_TRUE(summary["results_files"].is_array()) << summary.dump(2);
  const auto& files = summary["results_files"];
  ASSERT_GE(files.size(), 3u) << summary.dump(2);
  EXPECT_EQ(files.back(), "results.jsonl") << "the active file last";
  EXPECT_EQ(files.size(), summary["rotated_results"].size() + 1);
  std::vector<nlohmann::json> lines;
  std::int64_t calls = 0;
  for (const auto& file : files) {
    for (auto& line : ReadLines(out / file.get<std::string>())) {
      if (line["latency_ms"].get<double>() > 0) ++calls;
      lines.push_back(std::move(line));
    }
  }
  ExpectCompleteResults(lines, kFrames);
  ASSERT_LT(ReadLines(out / "results.jsonl").size(), lines.size()) << "the test needs rollover";
  EXPECT_EQ(summary["frames"], kFrames);
  EXPECT_EQ(summary["roi_results"], kFrames * kRois);
  EXPECT_EQ(summary["calls"], calls);
  EXPECT_EQ(summary["errors"], 0);

  const std::string report = ReadFileText((out / "report.html").string());
  EXPECT_NE(report.find("Results read from " + std::to_string(files.size()) + " files"),
            std::string::npos);
  for (const auto& file : files) {
    EXPECT_NE(report.find(file.get<std::string>()), std::string::npos) << file;
  }
  for (const char* roi : {"boiler", "coolant", "tray"}) {
    EXPECT_NE(
        report.find("<h3>" + std::string(roi) + "</h3><p>ok " + std::to_string(kFrames) + ","),
        std::string::npos)
        << roi << " has every frame's reading in the report";
  }
}

/// Waits up to `limit` for a SpawnCli child (polling: a safety net, not an ordering sleep);
/// kills it and returns -1000 when it takes longer.
int WaitChildFor(pid_t pid, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  testing::WaitChild(pid);
  return -1000;
}

TEST(RunCliTest, CtrlCWithThousandsOfRoisStopsFlushesAndResumesExactlyOnce) {
  // 2,000 small ROIs on five images: the first unreadable (its error lines are written at once:
  // the event to interrupt on), the others each 2,000 calls of 1 s with 16 in flight, all queued
  // at once (about 500 s of work). Before, Ctrl-C waited for all of it.
  constexpr int kManyRois = 2000;
  constexpr int kImages = 5;
  const fs::path dir = testing::ScratchDir("interrupt");
  const fs::path images = dir / "images";
  fs::create_directories(images);
  std::ofstream(images / "0000.png") << "not a png";
  cv::VideoCapture capture((Samples() / "station.mp4").string());
  for (int i = 1; i < kImages; ++i) {
    cv::Mat frame;
    ASSERT_TRUE(capture.read(frame));
    char name[16];
    std::snprintf(name, sizeof name, "%04d.png", i);
    ASSERT_TRUE(cv::imwrite((images / name).string(), frame));
  }
  nlohmann::json station = {{"rois", nlohmann::json::array()}};
  for (int i = 0; i < kManyRois; ++i) {
    station["rois"].push_back({{"name", "r" + std::to_string(i)},
                               {"rect", {(i % 50) * 12, (i / 50) * 8, 8, 8}},
                               {"task", "ask"},
                               {"prompt", "What is here?"}});
  }
  std::ofstream(dir / "many.json") << station.dump();
  const fs::path out = dir / "out";
  auto args = [&](const std::string& latency_ms) {
    return std::vector<std::string>{
        "run",          images.string(), "--config",         (dir / "many.json").string(),
        "--out",        out.string(),    "--coder",          "echo",
        "--latency-ms", latency_ms,      "--segment-frames", "1",
        "--quiet"};
  };
  const pid_t pid =
      testing::SpawnCli(args("1000"), (dir / "first.out").string(), (dir / "first.err").string());
  ASSERT_GT(pid, 0);
  bool first_frame_written = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline && !first_frame_written) {
    const std::string text = ReadFileText((out / "results.jsonl").string());
    first_frame_written = std::count(text.begin(), text.end(), '\n') >= kManyRois;
    if (!first_frame_written) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(first_frame_written) << ReadFileText((dir / "first.err").string());
  const auto interrupted_at = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  const int code = WaitChildFor(pid, std::chrono::seconds(60));
  const double stop_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - interrupted_at).count();
  RecordProperty("stop_after_sigint_ms", static_cast<int>(stop_s * 1000));
  ASSERT_EQ(code, 130) << "stopped after " << stop_s << " s\n"
                       << ReadFileText((dir / "first.err").string());

  // What was written is whole frames, in order, and exactly what the journal checkpointed.
  const auto partial = ReadLines(out / "results.jsonl");  // throws on a torn line
  ASSERT_GE(partial.size(), static_cast<std::size_t>(kManyRois));
  ASSERT_EQ(partial.size() % kManyRois, 0u);
  for (std::size_t i = 0; i < partial.size(); ++i) {
    ASSERT_EQ(partial[i]["frame"], static_cast<std::int64_t>(i / kManyRois));
    ASSERT_EQ(partial[i]["roi"], "r" + std::to_string(i % kManyRois));
  }
  auto journal = Journal::Load((out / ".roilens-journal").string());
  ASSERT_TRUE(journal.ok()) << journal.status();
  ASSERT_TRUE(journal->last.has_value());
  EXPECT_FALSE(journal->finished);
  EXPECT_EQ(journal->last->frames_done * kManyRois, static_cast<std::int64_t>(partial.size()));
  EXPECT_EQ(journal->last->results_bytes, fs::file_size(out / "results.jsonl"));

  // The latency is not part of what a resume must match: finish quickly.
  auto resume_args = args("0");
  resume_args.push_back("--resume");
  auto resumed = RunCli(resume_args);
  // 1: the unreadable image's lines are errors.
  ASSERT_EQ(resumed.exit_code, 1) << resumed.out << resumed.err;
  const auto lines = ReadLines(out / "results.jsonl");
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kImages * kManyRois));
  std::set<std::pair<std::int64_t, std::string>> seen;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto frame = lines[i]["frame"].get<std::int64_t>();
    EXPECT_EQ(frame, static_cast<std::int64_t>(i / kManyRois));
    EXPECT_TRUE(seen.insert({frame, lines[i]["roi"].get<std::string>()}).second);
    EXPECT_EQ(lines[i]["status"] == "error", frame == 0) << lines[i].dump();
  }
}

TEST(RunCliTest, ImagesTooLargeExitFourNamingTheFile) {
  const fs::path dir = testing::ScratchDir("large");
  const std::string config = (Samples() / "stills.json").string();
  // Only a PNG signature and an IHDR claiming 100000 x 100000 (CRC included): before, cv::imread
  // asserted and the run ended with "internal error", exit 1.
  const auto crc32 = [](const std::string& bytes) {
    std::uint32_t crc = 0xFFFFFFFFu;
    for (unsigned char c : bytes) {
      crc ^= c;
      for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
  };
  const auto be32 = [](std::uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  const std::string ihdr = "IHDR" + be32(100000) + be32(100000) + std::string("\x08\x02\0\0\0", 5);
  std::ofstream(dir / "huge.png", std::ios::binary)
      << std::string("\x89PNG\r\n\x1a\n", 8) << be32(13) << ihdr << be32(crc32(ihdr)) << be32(0)
      << "IEND" << be32(crc32("IEND"));
  auto claimed = RunCli({"run", (dir / "huge.png").string(), "--config", config, "--out",
                         (dir / "o1").string(), "--coder", "echo"});
  EXPECT_EQ(claimed.exit_code, 4) << claimed.out << claimed.err;
  EXPECT_NE(claimed.err.find((dir / "huge.png").string() + "' is 100000x100000 pixels"),
            std::string::npos)
      << claimed.err;
  EXPECT_EQ(claimed.err.find("internal error"), std::string::npos) << claimed.err;

  // A real image above a lowered pipeline.max_input_pixels.
  const fs::path still = *fs::directory_iterator(Samples() / "stills");
  const cv::Size size = cv::imread(still.string()).size();
  auto station = nlohmann::json::parse(ReadFileText(config));
  station["pipeline"]["max_input_pixels"] = size.area() - 1;
  std::ofstream(dir / "capped.json") << station.dump();
  auto capped = RunCli({"run", still.string(), "--config", (dir / "capped.json").string(), "--out",
                        (dir / "o2").string(), "--coder", "echo"});
  EXPECT_EQ(capped.exit_code, 4) << capped.out << capped.err;
  const std::string dims = std::to_string(size.width) + "x" + std::to_string(size.height);
  EXPECT_NE(capped.err.find(still.string() + "' is " + dims + " pixels"), std::string::npos)
      << capped.err;
  EXPECT_NE(capped.err.find("pipeline.max_input_pixels"), std::string::npos) << capped.err;
}

TEST(RunCliTest, NonEmptyOutIsRefusedUnlessResumeOrOverwrite) {
  const fs::path dir = testing::ScratchDir("overwrite");
  const fs::path out = dir / "out";
  auto args = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {"run",      (Samples() / "stills").string(),
                                  "--config", (Samples() / "stills.json").string(),
                                  "--out",    out.string(),
                                  "--coder",  "echo",
                                  "--quiet"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  auto first = RunCli(args({}));
  ASSERT_TRUE(first.exit_code == 0 || first.exit_code == 1) << first.out << first.err;
  const std::string finished = ReadFileText((out / "results.jsonl").string());
  ASSERT_FALSE(finished.empty());
  std::ofstream(out / "notes.txt") << "the user's own file";

  // Before: exit 0, and the finished run's results were replaced.
  auto again = RunCli(args({"--max-frames", "1"}));
  EXPECT_EQ(again.exit_code, 2) << again.out << again.err;
  EXPECT_NE(again.err.find("is not empty"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("--resume"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("--overwrite"), std::string::npos) << again.err;
  EXPECT_TRUE(ReadFileText((out / "results.jsonl").string()) == finished)
      << "the finished run's results were changed";

  auto both = RunCli(args({"--resume", "--overwrite"}));
  EXPECT_EQ(both.exit_code, 2) << both.out << both.err;

  auto overwritten = RunCli(args({"--overwrite", "--max-frames", "1"}));
  ASSERT_TRUE(overwritten.exit_code == 0 || overwritten.exit_code == 1)
      << overwritten.out << overwritten.err;
  const auto lines = ReadLines(out / "results.jsonl");
  ASSERT_FALSE(lines.empty());
  for (const auto& line : lines) EXPECT_EQ(line["frame"], 0) << line.dump();
  EXPECT_EQ(ReadFileText((out / "notes.txt").string()), "the user's own file");
  std::size_t annotated = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(out / "annotated")) ++annotated;
  EXPECT_EQ(annotated, 1u) << "the previous run's annotated images were removed";
}

}  // namespace
}  // namespace roilens
