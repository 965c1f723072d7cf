// `roilens run URL --mode live --metrics-port 0` end to end: a loopback MJPEG camera dies and
// comes back; the run keeps going, /healthz and /metrics say so, results.jsonl holds gap lines
// (the ordinary result shape) between the frames before and after, and SIGTERM ends it cleanly
// (exit 130).
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "roilens/stages/roi_result.h"
#include "testing/cli_runner.h"
#include "testing/mjpeg_server.h"
#include "testing/paths.h"

namespace roilens {
namespace {

namespace fs = std::filesystem;
using testing::MjpegServer;

/// Polls `condition` until true or the safety timeout (a net, not an ordering device).
bool WaitFor(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

double Metric(httplib::Client& client, const std::string& name) {
  auto res = client.Get("/metrics");
  if (!res || res->status != 200) return -1;
  std::smatch m;
  const std::regex re("\n" + name + " ([0-9.e+-]+)\n");
  return std::regex_search(res->body, m, re) ? std::stod(m[1]) : -1;
}

TEST(LiveRunCliTest, CameraDiesAndComesBackRunContinuesAndSigtermStopsCleanly) {
  const fs::path dir = testing::ScratchDir("live_run_cli");
  auto camera = std::make_unique<MjpegServer>(cv::Scalar(255, 0, 0), 25, cv::Size(160, 120));
  ASSERT_TRUE(camera->Start());
  const int port = camera->port();
  {
    std::ofstream config(dir / "station.json");
    config << R"({"rois": [{"name": "g", "rect": [0, 0, 80, 80], "task": "read_gauge",
      "gauge": {"min_value": 0, "max_value": 10, "min_angle_deg": 225, "max_angle_deg": -45}},
      {"name": "t", "rect": [80, 0, 80, 80], "task": "count", "object": "parts"}],
      "pipeline": {"mode": "live"}})";
  }
  const std::string out_path = (dir / "stdout.txt").string();
  const pid_t pid = testing::SpawnCli(
      {"run", camera->url(), "--config", (dir / "station.json").string(), "--out",
       (dir / "out").string(), "--coder", "echo", "--metrics-port", "0", "--quiet"},
      out_path, (dir / "stderr.txt").string());
  int metrics_port = 0;
  ASSERT_TRUE(WaitFor([&] {
    std::smatch m;
    const std::string text = testing::ReadFileText(out_path);
    static const std::regex re("metrics at http://127\\.0\\.0\\.1:([0-9]+)/metrics");
    if (!std::regex_search(text, m, re)) return false;
    metrics_port = std::stoi(m[1]);
    return true;
  })) << testing::ReadFileText((dir / "stderr.txt").string());
  httplib::Client client("127.0.0.1", metrics_port);
  ASSERT_TRUE(WaitFor([&] { return Metric(client, "roilens_frames_total") >= 5; }));

  camera->Stop();  // the camera dies
  ASSERT_TRUE(WaitFor([&] {
    auto res = client.Get("/healthz");
    return res && res->status == 503;
  }));
  EXPECT_EQ(Metric(client, "roilens_stream_up"), 0);
  const double frames_before = Metric(client, "roilens_frames_total");

  camera = std::make_unique<MjpegServer>(cv::Scalar(0, 0, 255), 25, cv::Size(160, 120));
  ASSERT_TRUE(camera->Start(port));  // and comes back on the same address
  ASSERT_TRUE(WaitFor([&] {
    return Metric(client, "roilens_stream_outages_total") >= 1 &&
           Metric(client, "roilens_frames_total") >= frames_before + 5;
  }));
  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  EXPECT_EQ(testing::WaitChild(pid), 130) << testing::ReadFileText((dir / "stderr.txt").string());
  const std::string err = testing::ReadFileText((dir / "stderr.txt").string());
  EXPECT_NE(err.find("lost after frame"), std::string::npos) << err;
  EXPECT_NE(err.find("reconnected after"), std::string::npos) << err;

  // results.jsonl: frame x ROI lines, then for the outage one line per ROI of the same shape
  // (status "gap", the frame number the stream went on with, why in "error"), then frame lines:
  // every line reads as a result line, with the same keys.
  const auto lines = testing::ReadJsonLines((dir / "out" / "results.jsonl").string());
  ASSERT_FALSE(lines.empty());
  std::int64_t last_frame = -1, gap_frame = -1, first_after_gap = -1;
  std::vector<std::string> gap_rois;
  const std::vector<std::string> rois = {"g", "t"};
  std::size_t roi_index = 0;
  for (const auto& line : lines) {
    auto result = RoiResultFromJson(line);
    ASSERT_TRUE(result.ok()) << result.status() << ": " << line.dump();
    EXPECT_EQ(line.size(), lines.front().size()) << line.dump();
    for (const auto& [key, value] : lines.front().items()) EXPECT_TRUE(line.contains(key)) << key;
    if (result->status == "gap") {
      EXPECT_EQ(result->frame, last_frame + 1) << "numbered as the frame after the outage";
      EXPECT_NE(result->error.find("stream outage after frame " + std::to_string(last_frame)),
                std::string::npos)
          << result->error;
      EXPECT_NE(result->error.find("back after"), std::string::npos) << result->error;
      EXPECT_FALSE(result->value.has_value());
      EXPECT_EQ(result->rect,
                result->roi == "g" ? cv::Rect(0, 0, 80, 80) : cv::Rect(80, 0, 80, 80));
      gap_frame = result->frame;
      gap_rois.push_back(result->roi);
      continue;
    }
    EXPECT_EQ(result->roi, rois[roi_index]) << line.dump();
    if (roi_index == 0) {
      EXPECT_EQ(result->frame, last_frame + 1) << line.dump();
      last_frame = result->frame;
      if (gap_frame >= 0 && first_after_gap < 0) first_after_gap = result->frame;
    } else {
      EXPECT_EQ(result->frame, last_frame) << line.dump();
    }
    roi_index = (roi_index + 1) % rois.size();
  }
  EXPECT_EQ(gap_rois, rois) << "one gap line per ROI";
  EXPECT_EQ(first_after_gap, gap_frame);
  EXPECT_GT(last_frame, first_after_gap);
  const auto summary =
      nlohmann::json::parse(testing::ReadFileText((dir / "out" / "summary.json").string()));
  EXPECT_EQ(summary["source_outages"], 1);
  EXPECT_EQ(summary["interrupted"], true);
}

TEST(LiveRunCliTest, ReconnectDelaysFollowPipelineReconnect) {
  const fs::path dir = testing::ScratchDir("live_run_reconnect");
  auto camera = std::make_unique<MjpegServer>(cv::Scalar(0, 255, 0), 25, cv::Size(160, 120));
  ASSERT_TRUE(camera->Start());
  {
    // Waits of at most 80 ms; the default (0.5 s doubling to 30 s) would announce up to 1000 ms
    // after the first failed attempt and up to 2000 ms after the second.
    std::ofstream config(dir / "station.json");
    config << R"({"rois": [{"name": "g", "rect": [0, 0, 80, 80], "task": "read_gauge",
      "gauge": {"min_value": 0, "max_value": 10, "min_angle_deg": 225, "max_angle_deg": -45}}],
      "pipeline": {"mode": "live", "reconnect": {"initial_delay_s": 0.04, "max_delay_s": 0.08}}})";
  }
  const std::string out_path = (dir / "stdout.txt").string();
  const std::string err_path = (dir / "stderr.txt").string();
  const pid_t pid = testing::SpawnCli(
      {"run", camera->url(), "--config", (dir / "station.json").string(), "--out",
       (dir / "out").string(), "--coder", "echo", "--metrics-port", "0", "--quiet"},
      out_path, err_path);
  int metrics_port = 0;
  ASSERT_TRUE(WaitFor([&] {
    std::smatch m;
    const std::string text = testing::ReadFileText(out_path);
    static const std::regex re("metrics at http://127\\.0\\.0\\.1:([0-9]+)/metrics");
    if (!std::regex_search(text, m, re)) return false;
    metrics_port = std::stoi(m[1]);
    return true;
  })) << testing::ReadFileText(err_path);
  httplib::Client client("127.0.0.1", metrics_port);
  ASSERT_TRUE(WaitFor([&] { return Metric(client, "roilens_frames_total") >= 2; }));

  camera->Stop();  // and stays down
  ASSERT_TRUE(WaitFor([&] {
    return testing::ReadFileText(err_path).find("reconnect attempt 3 failed") != std::string::npos;
  })) << testing::ReadFileText(err_path);
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  EXPECT_EQ(testing::WaitChild(pid), 130);

  const std::string err = testing::ReadFileText(err_path);
  static const std::regex next_re("next in up to ([0-9]+) ms");
  int announced = 0;
  for (auto it = std::sregex_iterator(err.begin(), err.end(), next_re);
       it != std::sregex_iterator(); ++it) {
    EXPECT_LE(std::stoi((*it)[1]), 80) << err;
    ++announced;
  }
  EXPECT_GE(announced, 3) << err;
}

}  // namespace
}  // namespace roilens
