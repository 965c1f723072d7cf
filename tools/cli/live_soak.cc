// RunLiveSoak: synthetic frames -> live Pipeline (echo coder) -> results (rotated) + metrics.
#include "live_soak.h"

#include <filesystem>
#include <fstream>
#include <opencv2/imgproc.hpp>

#include "metrics_server.h"
#include "roilens/backend/local_pipeline.h"
#include "roilens/config/config.h"
#include "roilens/outputs/rotating_sink.h"
#include "roilens/stages/pipeline.h"
#include "synthetic_station.h"

namespace roilens::cli {

double CurrentRssMib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // "... kB"
  }
  return -1;
}

StatusOr<std::vector<RssSample>> RunLiveSoak(const LiveSoakOptions& options) {
  SyntheticGaugeStation station;
  station.max_in_flight = 16;
  station.mode = "live";
  const int side = std::min(options.width / 4, options.height / 2);
  for (int i = 0; i < options.rois; ++i) {
    station.dials.push_back(
        {(i % 4) * options.width / 4, (i / 4 % 2) * options.height / 2, side, side});
  }
  auto config = ParseStationConfig(SyntheticGaugeConfig(station).dump());
  if (!config.ok()) return config.status();

  backend::BackendOptions backend_options;
  backend_options.coder = "echo";
  auto pipeline = backend::CreatePipeline(*config, {}, backend_options);
  if (!pipeline.ok()) return pipeline.status();

  std::unique_ptr<RotatingResultsWriter> results;
  if (!options.out_dir.empty()) {
    std::filesystem::create_directories(options.out_dir);
    RotateConfig rotate;
    rotate.max_bytes = 8u << 20;
    auto opened = RotatingResultsWriter::Open(options.out_dir + "/results.jsonl", rotate);
    if (!opened.ok()) return opened.status();
    results = std::move(*opened);
  }
  StationMetrics metrics;
  std::vector<RssSample> curve;
  std::int64_t delivered = 0;
  Status write_error;
  auto deliver = [&](const FrameOutput& frame) {
    metrics.ObserveFrame(frame);
    if (results && write_error.ok()) write_error = results->WriteFrame(frame.results);
    ++delivered;
    if (delivered == 1 || delivered % options.sample_every == 0) {
      curve.push_back({delivered, CurrentRssMib()});
    }
  };
  // As `roilens run` does: at most the pipeline's own frames plus a short backlog unwritten.
  const std::int64_t max_unwritten = (*pipeline)->frames_in_flight_limit() + 4;
  cv::Mat base(options.height, options.width, CV_8UC3, cv::Scalar(70, 70, 70));
  for (std::int64_t i = 0; i < options.frames; ++i) {
    FrameInput frame;
    frame.index = i;
    frame.time_s = static_cast<double>(i) / 30.0;
    frame.bgr = base.clone();
    // A bar that moves every frame, so crops change and the change gate lets calls through.
    const int x = static_cast<int>(i * 7 % options.width);
    cv::rectangle(frame.bgr, cv::Rect(x, 0, 12, options.height), cv::Scalar(230, 230, 230),
                  cv::FILLED);
    if (Status s = (*pipeline)->Submit(std::move(frame)); !s.ok()) return s;
    for (const auto& out : (*pipeline)->TakeReady()) deliver(out);
    while (i + 1 - delivered >= max_unwritten) {
      auto out = (*pipeline)->Take();
      if (!out) break;
      deliver(*out);
    }
  }
  (*pipeline)->Flush();
  while (auto out = (*pipeline)->Take()) deliver(*out);
  if (!write_error.ok()) return write_error;
  curve.push_back({delivered, CurrentRssMib()});
  return curve;
}

}  // namespace roilens::cli
