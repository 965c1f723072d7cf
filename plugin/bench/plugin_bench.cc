// Per-frame cost of the plugin boundary: the same frames, config and echo-coder local backend
// through (a) roilens::Pipeline linked directly and (b) libroilens_plugin via the C++ facade, in
// one process run, alternating rounds; prints the median per-frame time of each and the ratio.
//
//   roilens_plugin_bench [--frames N] [--rounds R] [--rois K] [--plugin PATH]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "roilens/backend/local_pipeline.h"
#include "roilens/config/config.h"
#include "roilens/stages/pipeline.h"
#include "roilens_plugin/roilens_plugin.hpp"

namespace {

using Clock = std::chrono::steady_clock;

std::string BenchConfig(int rois) {
  nlohmann::json config = {{"backend", {{"endpoint", "local"}}},
                           {"pipeline", {{"mode", "batch"}}},
                           {"merge", {{"mode", "replace"}, {"labels", true}}}};
  nlohmann::json list = nlohmann::json::array();
  for (int i = 0; i < rois; ++i) {
    // Tiles along the top of a 640x360 frame; all ask for a count (echo answers any task).
    list.push_back({{"name", "roi" + std::to_string(i)},
                    {"rect", {10 + (i % 4) * 155, 10 + (i / 4) * 170, 150, 160}},
                    {"task", "count"},
                    {"object", "bolts"},
                    {"change_threshold", 0.0}});
  }
  config["rois"] = list;
  return config.dump();
}

// A small pool of distinct noisy frames, cycled, so every crop differs from the previous one.
std::vector<cv::Mat> MakeFrames() {
  cv::RNG rng(7);
  std::vector<cv::Mat> frames;
  for (int i = 0; i < 16; ++i) {
    cv::Mat f(360, 640, CV_8UC3);
    rng.fill(f, cv::RNG::UNIFORM, 0, 255);
    cv::circle(f, {80 + i * 30, 180}, 40, {0, 0, 255}, -1);
    frames.push_back(f);
  }
  return frames;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Seconds for the frame loop of one run (session setup excluded).
double RunDirect(const std::string& config_text, const std::vector<cv::Mat>& frames, int n) {
  auto config = roilens::ParseStationConfig(config_text);
  if (!config.ok()) throw std::runtime_error("config: " + config.status().ToString());
  roilens::backend::BackendOptions backend_options;
  backend_options.coder = "echo";  // as the plugin session's {"coder":"echo"} starts it
  auto pipeline = roilens::backend::CreatePipeline(std::move(*config), {}, backend_options);
  if (!pipeline.ok()) throw std::runtime_error("pipeline: " + pipeline.status().ToString());
  std::size_t checksum = 0;
  auto consume = [&](const roilens::FrameOutput& out) {
    checksum += out.results.size() + static_cast<std::size_t>(out.annotated.cols);
  };
  const auto start = Clock::now();
  for (int i = 0; i < n; ++i) {
    roilens::FrameInput in;
    in.index = i;
    in.time_s = i / 10.0;
    in.bgr = frames[i % frames.size()].clone();  // an app hands over a frame it no longer uses
    auto s = (*pipeline)->Submit(std::move(in));
    if (!s.ok()) throw std::runtime_error("submit: " + s.ToString());
    for (auto& out : (*pipeline)->TakeReady()) consume(out);
  }
  (*pipeline)->Flush();
  while (auto out = (*pipeline)->Take()) consume(*out);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (checksum == 0) throw std::runtime_error("direct run produced nothing");
  return seconds;
}

double RunPlugin(const roilens::plugin::Library& library, const std::string& config_text,
                 const std::vector<cv::Mat>& frames, int n) {
  roilens::plugin::Session session(library, config_text, R"({"coder":"echo"})");
  std::size_t checksum = 0;
  auto consume = [&](const roilens::plugin::Frame& out) {
    checksum += out.results_json.size() + static_cast<std::size_t>(out.annotated.cols);
  };
  const auto start = Clock::now();
  for (int i = 0; i < n; ++i) {
    session.Submit(frames[i % frames.size()], i, i / 10.0);
    while (auto out = session.TryTake()) consume(*out);
  }
  session.Flush();
  while (auto out = session.Take()) consume(*out);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (checksum == 0) throw std::runtime_error("plugin run produced nothing");
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  int frames = 300, rounds = 5, rois = 2;
  std::string plugin_path = ROILENS_BENCH_PLUGIN;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--frames")
      frames = std::atoi(argv[i + 1]);
    else if (arg == "--rounds")
      rounds = std::atoi(argv[i + 1]);
    else if (arg == "--rois")
      rois = std::atoi(argv[i + 1]);
    else if (arg == "--plugin")
      plugin_path = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: %s [--frames N] [--rounds R] [--rois K] [--plugin PATH]\n",
                   argv[0]);
      return 2;
    }
  }
  try {
    const std::string config = BenchConfig(std::clamp(rois, 1, 8));
    const auto pool = MakeFrames();
    roilens::plugin::Library library(plugin_path);
    std::vector<double> direct, plugin;
    RunDirect(config, pool, 20);  // warm-up: first-touch allocations, thread pools
    RunPlugin(library, config, pool, 20);
    for (int r = 0; r < rounds; ++r) {  // alternate, so drift hits both alike
      direct.push_back(RunDirect(config, pool, frames) / frames);
      plugin.push_back(RunPlugin(library, config, pool, frames) / frames);
    }
    const double d = Median(direct) * 1e3, p = Median(plugin) * 1e3;
    std::printf(
        "plugin boundary overhead: %d frames 640x360, %d ROIs, echo coder, %d rounds "
        "(median)\n",
        frames, std::clamp(rois, 1, 8), rounds);
    std::printf("  direct roilens::pipeline : %8.3f ms/frame\n", d);
    std::printf("  plugin (C ABI + facade)  : %8.3f ms/frame\n", p);
    std::printf("  difference               : %8.3f ms/frame (%+.1f us)\n", p - d, (p - d) * 1e3);
    std::printf("  ratio plugin/direct      : %8.3f\n", p / d);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "roilens_plugin_bench: %s\n", e.what());
    return 1;
  }
}
