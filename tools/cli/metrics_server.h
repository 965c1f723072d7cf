// `roilens run --metrics-port N`: the run's counters as Prometheus text at /metrics and its health
// at /healthz, on a small cpp-httplib server.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "roilens/client/status.h"
#include "roilens/stages/pipeline.h"

namespace roilens::cli {

/// What a station has done so far, fed by the writer thread, rendered for scraping.
/// Thread-safe: Observe*/Set* from the run, Render/Healthy from the server's threads.
class StationMetrics {
 public:
  /// Upper bounds (seconds) of the call latency histogram's buckets.
  static const std::vector<double>& LatencyBuckets();

  /// One delivered frame and its result lines (results.jsonl objects).
  void ObserveFrame(const FrameOutput& frame);
  /// A source outage that ended (gap record): `missing_frames` estimated frames lost.
  void ObserveGap(std::int64_t missing_frames);
  /// Asked at render time whether the live source is connected (none: always "up").
  void SetStreamUpProbe(std::function<bool()> probe);
  /// Called at render time for values owned by others (requests in flight).
  void SetInFlightProbe(std::function<std::int64_t()> probe);

  /// Prometheus text exposition format 0.0.4.
  std::string Render() const;
  /// /healthz: false (with why) while the stream is down.
  bool Healthy(std::string* why) const;

 private:
  struct RoiState {
    std::optional<double> value;
    std::optional<std::int64_t> count;
    std::string unit, status, alarm;
    double time_s = 0;
  };
  mutable std::mutex mu_;
  std::int64_t frames_ = 0, calls_ = 0, cache_hits_ = 0, gaps_ = 0, missing_frames_ = 0;
  std::map<std::string, std::int64_t> lines_by_status_;
  std::map<std::string, std::int64_t> errors_by_kind_;
  std::vector<std::int64_t> latency_buckets_;  // cumulative at render; per-bucket here
  double latency_sum_s_ = 0;
  std::int64_t latency_count_ = 0;
  std::map<std::string, RoiState> rois_;
  std::function<bool()> stream_up_;
  std::function<std::int64_t()> in_flight_;
};

/// Serves `metrics` on 127.0.0.1 (or `host`) at /metrics and /healthz on its own thread.
class MetricsServer {
 public:
  /// port 0: any free port (see port()). kUnavailable when it cannot bind.
  static StatusOr<std::unique_ptr<MetricsServer>> Start(const StationMetrics* metrics, int port,
                                                        const std::string& host = "127.0.0.1");
  ~MetricsServer();
  int port() const;

 private:
  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace roilens::cli
