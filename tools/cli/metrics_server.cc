// StationMetrics (counters from delivered frames) and MetricsServer (/metrics, /healthz).
#include "metrics_server.h"

#include <httplib.h>

#include <cmath>
#include <sstream>
#include <thread>

namespace roilens::cli {
namespace {

/// A label value with \, " and newline escaped, as the exposition format requires.
std::string Label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}

}  // namespace

const std::vector<double>& StationMetrics::LatencyBuckets() {
  // Model calls take from milliseconds (local echo coder) to a minute (hosted, retried).
  static const std::vector<double> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                               1,     2.5,  5,     10,   30,  60,   120};
  return kBuckets;
}

void StationMetrics::ObserveFrame(const FrameOutput& frame) {
  std::lock_guard lock(mu_);
  if (latency_buckets_.empty()) latency_buckets_.assign(LatencyBuckets().size(), 0);
  ++frames_;
  for (const RoiResult& line : frame.results) {
    const std::string& status = line.status;
    ++lines_by_status_[status];
    const double latency_ms = line.latency_ms;
    const bool called = latency_ms > 0;
    if (called) {
      ++calls_;
      const double s = latency_ms / 1000.0;
      latency_sum_s_ += s;
      ++latency_count_;
      const auto& bounds = LatencyBuckets();
      for (std::size_t i = 0; i < bounds.size(); ++i) {
        if (s <= bounds[i]) {
          ++latency_buckets_[i];
          break;
        }
      }
    }
    if (status == "cached") ++cache_hits_;
    if (status == "error") ++errors_by_kind_[called ? "call" : "frame"];
    RoiState& roi = rois_[line.roi];
    roi.status = status;
    roi.time_s = line.time_s;
    if (!line.unit.empty()) roi.unit = line.unit;
    if (line.value) roi.value = *line.value;
    if (line.count) roi.count = *line.count;
    roi.alarm = line.alarm;
  }
}

void StationMetrics::ObserveGap(std::int64_t missing_frames) {
  std::lock_guard lock(mu_);
  ++gaps_;
  ++errors_by_kind_["stream"];
  missing_frames_ += missing_frames;
}

void StationMetrics::SetStreamUpProbe(std::function<bool()> probe) {
  std::lock_guard lock(mu_);
  stream_up_ = std::move(probe);
}

void StationMetrics::SetInFlightProbe(std::function<std::int64_t()> probe) {
  std::lock_guard lock(mu_);
  in_flight_ = std::move(probe);
}

bool StationMetrics::Healthy(std::string* why) const {
  std::lock_guard lock(mu_);
  if (stream_up_ && !stream_up_()) {
    if (why) *why = "input stream is down; reconnecting";
    return false;
  }
  return true;
}

std::string StationMetrics::Render() const {
  std::lock_guard lock(mu_);
  std::ostringstream out;
  auto head = [&](const char* name, const char* type, const char* help) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  head("roilens_frames_total", "counter", "Frames delivered (written to the outputs).");
  out << "roilens_frames_total " << frames_ << "\n";
  head("roilens_result_lines_total", "counter", "Result lines (frame x ROI) by status.");
  for (const auto& [status, n] : lines_by_status_) {
    out << "roilens_result_lines_total{status=\"" << Label(status) << "\"} " << n << "\n";
  }
  head("roilens_model_calls_total", "counter", "Model calls answered or failed.");
  out << "roilens_model_calls_total " << calls_ << "\n";
  head("roilens_cache_hits_total", "counter", "Result lines that reused an answer (change gate).");
  out << "roilens_cache_hits_total " << cache_hits_ << "\n";
  head("roilens_errors_total", "counter",
       "Errors by kind: call (a model call failed), frame (no call: unreadable frame, "
       "stopped calls), stream (input outage).");
  for (const char* kind : {"call", "frame", "stream"}) {
    auto it = errors_by_kind_.find(kind);
    out << "roilens_errors_total{kind=\"" << kind << "\"} "
        << (it == errors_by_kind_.end() ? 0 : it->second) << "\n";
  }
  head("roilens_call_latency_seconds", "histogram", "Latency of model calls, retries included.");
  std::int64_t cumulative = 0;
  const auto& bounds = LatencyBuckets();
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    cumulative += latency_buckets_.empty() ? 0 : latency_buckets_[i];
    out << "roilens_call_latency_seconds_bucket{le=\"" << Number(bounds[i]) << "\"} " << cumulative
        << "\n";
  }
  out << "roilens_call_latency_seconds_bucket{le=\"+Inf\"} " << latency_count_ << "\n";
  out << "roilens_call_latency_seconds_sum " << Number(latency_sum_s_) << "\n";
  out << "roilens_call_latency_seconds_count " << latency_count_ << "\n";
  head("roilens_requests_in_flight", "gauge", "Model requests on the wire or queued.");
  out << "roilens_requests_in_flight " << (in_flight_ ? in_flight_() : 0) << "\n";
  head("roilens_stream_up", "gauge", "1 while the input is connected.");
  out << "roilens_stream_up " << (!stream_up_ || stream_up_() ? 1 : 0) << "\n";
  head("roilens_stream_outages_total", "counter", "Input outages that ended in a reconnect.");
  out << "roilens_stream_outages_total " << gaps_ << "\n";
  head("roilens_stream_missing_frames_total", "counter",
       "Frames estimated lost during input outages.");
  out << "roilens_stream_missing_frames_total " << missing_frames_ << "\n";
  head("roilens_roi_value", "gauge", "Last reading per ROI (read_gauge).");
  for (const auto& [roi, s] : rois_) {
    if (s.value) {
      out << "roilens_roi_value{roi=\"" << Label(roi) << "\",unit=\"" << Label(s.unit) << "\"} "
          << Number(*s.value) << "\n";
    }
  }
  head("roilens_roi_count", "gauge", "Last count per ROI (count).");
  for (const auto& [roi, s] : rois_) {
    if (s.count) out << "roilens_roi_count{roi=\"" << Label(roi) << "\"} " << *s.count << "\n";
  }
  head("roilens_roi_last_time_seconds", "gauge", "time_s of the ROI's last result line.");
  for (const auto& [roi, s] : rois_) {
    out << "roilens_roi_last_time_seconds{roi=\"" << Label(roi) << "\"} " << Number(s.time_s)
        << "\n";
  }
  head("roilens_roi_alarm", "gauge", "1 while the ROI's last line is in alarm (state: low/high).");
  for (const auto& [roi, s] : rois_) {
    out << "roilens_roi_alarm{roi=\"" << Label(roi) << "\",state=\"" << Label(s.alarm) << "\"} "
        << (s.alarm.empty() ? 0 : 1) << "\n";
  }
  return out.str();
}

struct MetricsServer::Impl {
  httplib::Server server;
  int port = -1;
  std::thread thread;
};

StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const StationMetrics* metrics,
                                                              int port, const std::string& host) {
  auto impl = std::make_unique<Impl>();
  impl->server.Get("/metrics", [metrics](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics->Render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  impl->server.Get("/healthz", [metrics](const httplib::Request&, httplib::Response& res) {
    std::string why;
    if (metrics->Healthy(&why)) {
      res.set_content("ok\n", "text/plain");
    } else {
      res.status = 503;
      res.set_content(why + "\n", "text/plain");
    }
  });
  if (port == 0) {
    impl->port = impl->server.bind_to_any_port(host);
  } else if (impl->server.bind_to_port(host, port)) {
    impl->port = port;
  }
  if (impl->port <= 0) {
    return Status(StatusCode::kUnavailable,
                  "metrics: cannot listen on " + host + ":" + std::to_string(port));
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->server.listen_after_bind(); });
  // Wait for the accept loop so a stop right after start is not lost (httplib 0.11).
  while (!impl->server.is_running()) std::this_thread::yield();
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int MetricsServer::port() const { return impl_->port; }

}  // namespace roilens::cli
