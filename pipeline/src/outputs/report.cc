// Summary statistics from results.jsonl lines, and the self-contained HTML report.
#include "roilens/outputs/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <sstream>

#include "roilens/client/interactions.h"
#include "roilens/stages/reconnecting_source.h"

namespace roilens {
namespace {

double Percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const double rank = p * static_cast<double>(samples.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(rank));
  const auto hi = std::min(samples.size() - 1, lo + 1);
  return samples[lo] + (samples[hi] - samples[lo]) * (rank - static_cast<double>(lo));
}

std::string StringField(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

std::int64_t IntField(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return 0;
  return it->get<std::int64_t>();
}

/// Calls `line_fn` with every results line of `paths`, read in order as one file, leaving out
/// records (objects with a "type": older results files' source gaps). A line that is not a JSON
/// object is an error naming the file and line when `strict`, else skipped. A file that cannot
/// be opened is an error either way.
Status ForEachResultLine(const std::vector<std::string>& paths, bool strict,
                         const std::function<void(const nlohmann::json&)>& line_fn) {
  for (const std::string& path : paths) {
    std::ifstream in(path);
    if (!in) return NotFoundError("results file '" + path + "' cannot be read");
    std::string text;
    std::int64_t line_number = 0;
    while (std::getline(in, text)) {
      ++line_number;
      if (text.empty()) continue;
      auto line = nlohmann::json::parse(text, nullptr, false);
      if (line.is_discarded() || !line.is_object()) {
        if (!strict) continue;
        return Status(StatusCode::kDataLoss,
                      path + ":" + std::to_string(line_number) + ": not a JSON object");
      }
      if (line.contains("type")) continue;
      line_fn(line);
    }
  }
  return OkStatus();
}

}  // namespace

void RunStats::AddLine(const nlohmann::json& line) {
  ++lines_;
  const std::string status = StringField(line, "status");
  if (status == "cached") ++cache_hits_;
  if (status == "error") ++errors_;
  if (status == "skipped") ++skipped_;
  if (status == "uncertain") ++uncertain_;
  const auto latency = line.find("latency_ms");
  if (latency == line.end() || !latency->is_number() || latency->get<double>() <= 0) return;
  ++calls_;
  ++latencies_seen_;
  const double ms = latency->get<double>();
  if (latencies_.size() < kMaxLatencySamples) {
    latencies_.push_back(ms);
  } else {
    std::uniform_int_distribution<std::int64_t> pick(0, latencies_seen_ - 1);
    const std::int64_t slot = pick(rng_);
    if (slot < static_cast<std::int64_t>(kMaxLatencySamples)) latencies_[slot] = ms;
  }
  const auto usage = line.find("usage");
  if (usage != line.end() && usage->is_object()) {
    input_tokens_ += IntField(*usage, "total_input_tokens");
    output_tokens_ += IntField(*usage, "total_output_tokens");
    total_tokens_ += IntField(*usage, "total_tokens");
  }
}

PipelineSummary RunStats::Summary() const {
  PipelineSummary s;
  s.frames = frames_;
  s.roi_results = lines_;
  s.calls = calls_;
  s.cache_hits = cache_hits_;
  s.errors = errors_;
  s.skipped = skipped_;
  s.uncertain = uncertain_;
  s.latency_p50_ms = Percentile(latencies_, 0.50);
  s.latency_p95_ms = Percentile(latencies_, 0.95);
  s.input_tokens = input_tokens_;
  s.output_tokens = output_tokens_;
  s.total_tokens = total_tokens_;
  return s;
}

StatusOr<PipelineSummary> SummarizeResultsFile(const std::string& path) {
  return SummarizeResultsFiles({path});
}

StatusOr<PipelineSummary> SummarizeResultsFiles(const std::vector<std::string>& paths) {
  RunStats stats;
  std::int64_t last_frame = -1;
  bool any = false;
  Status read = ForEachResultLine(paths, true, [&](const nlohmann::json& line) {
    if (StringField(line, "status") == kGapStatus) return;  // a live source's outage
    const std::int64_t frame = line.value("frame", std::int64_t{-1});
    if (!any || frame != last_frame) stats.AddFrame();
    any = true;
    last_frame = frame;
    stats.AddLine(line);
  });
  if (!read.ok()) return read;
  return stats.Summary();
}

std::string HtmlEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

struct Point {
  double t = 0, v = 0;
  bool alarm = false;
  bool uncertain = false;
  bool cached = false;  ///< an earlier answer shown again (change gate), not a fresh model call
};

/// One chart's readings in bounded memory: consecutive readings are grouped into buckets of
/// per_bucket_ (a power of two), each keeping its lowest and highest reading (spikes stay
/// visible); when there are too many buckets, neighbours merge and per_bucket_ doubles. Up to
/// max_points readings are kept as they are. Not thread-safe.
class PointBuckets {
 public:
  explicit PointBuckets(std::size_t max_points = 1500)
      : max_points_(std::max<std::size_t>(4, max_points)) {}

  void Add(const Point& p) {
    const std::int64_t seq = seen_++;
    if (!buckets_.empty() && buckets_.back().n < per_bucket_) {
      Bucket& b = buckets_.back();
      ++b.n;
      if (p.v < b.lo.v) b.lo = p, b.lo_seq = seq;
      if (p.v > b.hi.v) b.hi = p, b.hi_seq = seq;
      return;
    }
    while (buckets_.size() >= Limit()) Halve();
    buckets_.push_back({1, p, p, seq, seq});
  }

  /// At most max_points points in reading order.
  std::vector<Point> Points() const {
    std::vector<Point> out;
    for (const Bucket& b : buckets_) {
      if (b.lo_seq == b.hi_seq) {
        out.push_back(b.lo);
      } else if (b.lo_seq < b.hi_seq) {
        out.push_back(b.lo), out.push_back(b.hi);
      } else {
        out.push_back(b.hi), out.push_back(b.lo);
      }
    }
    return out;
  }

 private:
  struct Bucket {
    std::size_t n = 0;
    Point lo, hi;
    std::int64_t lo_seq = 0, hi_seq = 0;  ///< which readings lo and hi are (their order)
  };
  /// Single readings show one point each, merged buckets up to two.
  std::size_t Limit() const { return per_bucket_ == 1 ? max_points_ : max_points_ / 2; }
  void Halve() {
    std::vector<Bucket> merged;
    merged.reserve(buckets_.size() / 2 + 1);
    for (std::size_t i = 0; i < buckets_.size(); i += 2) {
      Bucket b = buckets_[i];
      if (i + 1 < buckets_.size()) {
        const Bucket& next = buckets_[i + 1];
        b.n += next.n;
        if (next.lo.v < b.lo.v) b.lo = next.lo, b.lo_seq = next.lo_seq;
        if (next.hi.v > b.hi.v) b.hi = next.hi, b.hi_seq = next.hi_seq;
      }
      merged.push_back(b);
    }
    buckets_ = std::move(merged);
    per_bucket_ *= 2;
  }

  std::size_t max_points_;
  std::size_t per_bucket_ = 1;
  std::int64_t seen_ = 0;
  std::vector<Bucket> buckets_;
};

struct Series {
  std::string unit;
  const RoiConfig* config = nullptr;
  PointBuckets points;
  std::int64_t ok = 0, uncertain = 0, cached = 0, errors = 0, skipped = 0;
  bool counts = false;  ///< readings are object counts: whole-number axis ticks
};

struct AlarmRow {
  std::string roi, alarm, source;
  std::int64_t frame = 0;
  double time_s = 0, value = 0;
};

/// Where a stretch of uncertain readings began.
struct UncertainRow {
  std::string roi, source;
  std::int64_t frame = 0;
  double time_s = 0, value = 0;
  std::optional<double> confidence;
};

std::string Num(double v, int precision = 3) {
  std::ostringstream s;
  s.precision(precision);
  s << v;
  return s.str();
}

/// `v` with exactly `decimals` digits after the point.
std::string Fixed(double v, int decimals) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(decimals);
  s << v;
  return s.str();
}

/// How a summary.json field reads in the report: a label, a unit and the decimals shown.
struct SummaryField {
  const char* key;
  const char* label;
  const char* unit;
  int decimals;
};

/// The known summary.json fields in the order a reader wants them; others follow as they come.
constexpr SummaryField kSummaryFields[] = {
    {"input", "input", "", 0},
    {"frames", "frames", "", 0},
    {"frames_this_run", "frames written by this run", "", 0},
    {"roi_results", "result lines (frame x ROI)", "", 0},
    {"calls", "model calls", "", 0},
    {"cache_hits", "cached readings (change gate)", "", 0},
    {"uncertain", "uncertain readings", "", 0},
    {"errors", "errors", "", 0},
    {"skipped", "skipped", "", 0},
    {"latency_p50_ms", "call latency p50", "ms", 0},
    {"latency_p95_ms", "call latency p95", "ms", 0},
    {"input_tokens", "input tokens", "", 0},
    {"output_tokens", "output tokens", "", 0},
    {"total_tokens", "total tokens", "", 0},
    {"usage", "usage and estimated cost", "", 0},
    {"stopped", "stopped early", "", 0},
    {"wall_time_s", "wall time", "s", 1},
    {"fps", "throughput", "frames/s", 1},
    {"peak_rss_mib", "peak memory (RSS)", "MiB", 0},
    {"mode", "mode", "", 0},
    {"endpoint", "endpoint", "", 0},
    {"model", "model", "", 0},
    {"roilens_version", "roilens version", "", 0},
    {"resumed_from_frame", "resumed from frame", "", 0},
    {"interrupted", "interrupted", "", 0},
    {"video", "annotated video", "", 0},
    {"video_codec", "video codec", "", 0},
    {"video_join", "video segments joined by", "", 0},
    {"annotated_images", "annotated images", "", 0},
};

/// One summary value as text: numbers rounded (a whole number never shows decimals), the unit
/// after it; null reads "none", booleans "yes"/"no".
std::string SummaryValue(const nlohmann::json& value, const char* unit, int decimals) {
  std::string text;
  if (value.is_null()) return "none";
  if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
  if (value.is_string()) {
    text = value.get<std::string>();
  } else if (value.is_object()) {  // "usage", "stopped": one "key: value" per entry
    for (const auto& [key, item] : value.items()) {
      if (!text.empty()) text += ", ";
      text += key + ": " + SummaryValue(item, "", key == "estimated_cost" ? 4 : decimals);
    }
  } else if (value.is_number_integer()) {
    text = std::to_string(value.get<std::int64_t>());
  } else if (value.is_number()) {
    const double v = value.get<double>();
    text = std::abs(v - std::round(v)) < 1e-9 ? Fixed(v, 0) : Fixed(v, decimals);
    if (text == "-0") text = "0";
  } else {
    text = value.dump();
  }
  if (*unit != '\0' && value.is_number()) text += std::string(" ") + unit;
  return text;
}

/// The summary.json object as a two-column table: known fields first with labels and units,
/// the rest by key with numbers rounded to 3 significant digits. fatal_error is shown at the top.
std::string SummaryTable(const nlohmann::json& summary) {
  std::ostringstream html;
  html << "<table class='summary'>";
  if (!summary.is_object()) return html.str() + "</table>";
  for (const SummaryField& field : kSummaryFields) {
    auto it = summary.find(field.key);
    if (it == summary.end()) continue;
    html << "<tr><th>" << field.label << "</th><td>"
         << HtmlEscape(SummaryValue(*it, field.unit, field.decimals)) << "</td></tr>";
  }
  for (const auto& [key, value] : summary.items()) {
    if (key == "fatal_error") continue;
    bool known = false;
    for (const SummaryField& field : kSummaryFields) known = known || key == field.key;
    if (known) continue;
    std::string text =
        value.is_number_float() ? Num(value.get<double>()) : SummaryValue(value, "", 0);
    html << "<tr><th>" << HtmlEscape(key) << "</th><td>" << HtmlEscape(text) << "</td></tr>";
  }
  html << "</table>";
  return html.str();
}

/// Value-axis ticks from v0 to v1 (about four steps). Counts get whole-number ticks only (the
/// range is widened to whole steps), other readings four equal steps.
std::vector<double> ValueTicks(double& v0, double& v1, bool counts) {
  std::vector<double> ticks;
  if (!counts) {
    for (int i = 0; i <= 4; ++i) ticks.push_back(v0 + (v1 - v0) * i / 4.0);
    return ticks;
  }
  v0 = std::floor(v0), v1 = std::ceil(v1);
  if (v1 <= v0) v1 = v0 + 1;
  const double step = std::max(1.0, std::ceil((v1 - v0) / 4.0));
  v1 = v0 + step * std::ceil((v1 - v0) / step);
  for (double v = v0; v <= v1 + 1e-9; v += step) ticks.push_back(v);
  return ticks;
}

std::string Chart(const std::string& name, const Series& series) {
  constexpr double kW = 760, kH = 220, kLeft = 56, kRight = 12, kTop = 12, kBottom = 30;
  const auto points = series.points.Points();
  std::ostringstream svg;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << kW << "' height='" << kH
      << "' viewBox='0 0 " << kW << ' ' << kH << "' role='img' aria-label='" << HtmlEscape(name)
      << " over time'>";
  svg << "<rect x='0' y='0' width='" << kW << "' height='" << kH << "' fill='#fafafa'/>";
  if (points.empty()) {
    svg << "<text x='" << kW / 2 << "' y='" << kH / 2
        << "' text-anchor='middle' fill='#888'>no readings</text></svg>";
    return svg.str();
  }
  double t0 = points.front().t, t1 = points.front().t, v0 = points.front().v, v1 = v0;
  for (const Point& p : points) {
    t0 = std::min(t0, p.t), t1 = std::max(t1, p.t);
    v0 = std::min(v0, p.v), v1 = std::max(v1, p.v);
  }
  const RoiConfig* rc = series.config;
  if (rc && rc->task == TaskKind::kReadGauge) {
    v0 = std::min(v0, rc->gauge.min_value), v1 = std::max(v1, rc->gauge.max_value);
  }
  if (rc && rc->alarm.low) v0 = std::min(v0, *rc->alarm.low);
  if (rc && rc->alarm.high) v1 = std::max(v1, *rc->alarm.high);
  if (v1 - v0 < 1e-9) v0 -= 1, v1 += 1;
  if (t1 - t0 < 1e-9) t1 = t0 + 1;
  const std::vector<double> value_ticks = ValueTicks(v0, v1, series.counts);
  const double pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  auto x = [&](double t) { return kLeft + (t - t0) / (t1 - t0) * pw; };
  auto y = [&](double v) { return kTop + (1 - (v - v0) / (v1 - v0)) * ph; };
  // Alarm bands first, under the line.
  if (rc && rc->alarm.high) {
    svg << "<rect x='" << kLeft << "' y='" << kTop << "' width='" << pw << "' height='"
        << std::max(0.0, y(*rc->alarm.high) - kTop) << "' fill='#f8d7c4'/>";
  }
  if (rc && rc->alarm.low) {
    svg << "<rect x='" << kLeft << "' y='" << y(*rc->alarm.low) << "' width='" << pw << "' height='"
        << std::max(0.0, kTop + ph - y(*rc->alarm.low)) << "' fill='#f8d7c4'/>";
  }
  svg << "<rect x='" << kLeft << "' y='" << kTop << "' width='" << pw << "' height='" << ph
      << "' fill='none' stroke='#999'/>";
  for (double v : value_ticks) {
    svg << "<text class='ytick' x='" << kLeft - 6 << "' y='" << y(v) + 4
        << "' font-size='11' text-anchor='end' fill='#555'>" << Num(v, 6) << "</text>";
  }
  for (int i = 0; i <= 4; ++i) {
    const double t = t0 + (t1 - t0) * i / 4.0;
    svg << "<text x='" << x(t) << "' y='" << kH - 10
        << "' font-size='11' text-anchor='middle' fill='#555'>" << Num(t) << " s</text>";
  }
  svg << "<polyline fill='none' stroke='#1f6fb2' stroke-width='1.5' points='";
  for (const Point& p : points) svg << Num(x(p.t), 6) << ',' << Num(y(p.v), 6) << ' ';
  svg << "'/>";
  // One marker per reading. Shape says where it came from: a filled dot is a fresh model
  // answer, a small square a cached one (the change gate reused an earlier answer). Orange fill
  // marks an alarm; a hollow amber ring a reading that is drawn but not trusted (uncertain).
  for (const Point& p : points) {
    const std::string cx = Num(x(p.t), 6), cy = Num(y(p.v), 6);
    if (p.uncertain) {
      svg << "<circle class='uncertain' cx='" << cx << "' cy='" << cy
          << "' r='3' fill='none' stroke='#d4a000' stroke-width='1.5'/>";
    } else if (p.cached) {
      svg << "<rect class='cached' x='" << Num(x(p.t) - 2, 6) << "' y='" << Num(y(p.v) - 2, 6)
          << "' width='4' height='4' fill='" << (p.alarm ? "#e07000" : "#9aa5b1") << "'/>";
    } else {
      svg << "<circle class='fresh' cx='" << cx << "' cy='" << cy << "' r='2.5' fill='"
          << (p.alarm ? "#e07000" : "#1f6fb2") << "'/>";
    }
  }
  svg << "<text x='" << kLeft << "' y='" << kTop + 12 << "' dx='6' font-size='12' fill='#333'>"
      << HtmlEscape(series.unit) << "</text></svg>";
  return svg.str();
}

}  // namespace

StatusOr<std::string> RenderHtmlReport(const ReportInputs& inputs) {
  std::map<std::string, Series> series;  // keyed by ROI instance name
  std::vector<std::string> order;
  std::vector<AlarmRow> alarms;
  constexpr std::size_t kMaxAlarmRows = 200;
  std::int64_t alarm_lines = 0;
  std::map<std::string, std::string> last_alarm;
  std::vector<UncertainRow> uncertain_rows;
  std::int64_t uncertain_lines = 0;
  std::map<std::string, bool> was_uncertain;
  struct FirstError {
    std::string roi, source;
    std::int64_t frame = 0;
    double time_s = 0;
    std::string message;
  };
  std::optional<FirstError> first_error;
  std::int64_t error_lines = 0;

  std::vector<std::string> paths = inputs.earlier_results_paths;
  paths.push_back(inputs.results_path);
  Status read = ForEachResultLine(paths, false, [&](const nlohmann::json& line) {
    const std::string roi = StringField(line, "roi");
    auto [it, inserted] = series.try_emplace(roi);
    Series& s = it->second;
    if (inserted) {
      s.points = PointBuckets(inputs.max_points);
      order.push_back(roi);
      if (inputs.config) {
        const std::string base = roi.substr(0, roi.find('#'));
        for (const auto& rc : inputs.config->rois) {
          if (rc.name == base) s.config = &rc;
        }
      }
    }
    const std::string status = StringField(line, "status");
    if (status == "ok") ++s.ok;
    if (status == "uncertain") ++s.uncertain;
    if (status == "cached") ++s.cached;
    if (status == "error") ++s.errors, ++error_lines;
    if (status == "skipped") ++s.skipped;
    std::optional<double> v;
    if (line.contains("value") && line["value"].is_number()) v = line["value"].get<double>();
    if (!v && line.contains("count") && line["count"].is_number()) {
      v = line["count"].get<double>();
      s.counts = true;
    }
    if (line.contains("unit") && line["unit"].is_string() && s.unit.empty()) {
      s.unit = line["unit"].get<std::string>();
    }
    const std::string alarm =
        line.contains("alarm") && line["alarm"].is_string() ? line["alarm"].get<std::string>() : "";
    const double t = line.value("time_s", 0.0);
    const bool uncertain = status == "uncertain";
    if (v) s.points.Add({t, *v, !alarm.empty(), uncertain, status == "cached"});
    if (status == "error" && !first_error) {
      first_error = FirstError{roi, StringField(line, "source"),
                               line.value("frame", std::int64_t{0}), t, StringField(line, "error")};
    }
    if (!alarm.empty()) ++alarm_lines;
    if (uncertain) ++uncertain_lines;
    if (uncertain && !was_uncertain[roi] && uncertain_rows.size() < kMaxAlarmRows) {
      std::optional<double> confidence;
      if (auto c = line.find("confidence"); c != line.end() && c->is_number()) {
        confidence = c->get<double>();
      }
      uncertain_rows.push_back({roi, StringField(line, "source"),
                                line.value("frame", std::int64_t{0}), t, v.value_or(0),
                                confidence});
    }
    was_uncertain[roi] = uncertain;
    // The alarm table lists where an alarm starts (or changes side), not every frame in it.
    if (!alarm.empty() && last_alarm[roi] != alarm && alarms.size() < kMaxAlarmRows) {
      alarms.push_back({roi, alarm, StringField(line, "source"),
                        line.value("frame", std::int64_t{0}), t, v.value_or(0)});
    }
    last_alarm[roi] = alarm;
  });
  if (!read.ok()) return read;

  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
       << "<title>roilens report: " << HtmlEscape(inputs.title) << "</title><style>"
       << "body{font-family:sans-serif;margin:24px;color:#222;max-width:1000px}"
       << "table{border-collapse:collapse;margin:8px 0}"
       << "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}"
       << "th{background:#eee}figure{display:inline-block;margin:6px;text-align:center}"
       << "figcaption{font-size:12px;color:#444}img{border:1px solid #ccc;max-width:300px}"
       << ".fatal{border:2px solid #b00;background:#fee;padding:8px 12px;font-weight:bold}"
       << ".uncertain{background:#fff4cc}"
       << ".first-error{border:2px solid #c60;background:#fff1e6;padding:8px 12px}"
       << "table.summary td{text-align:right}.legend{font-size:12px;color:#444}"
       << "</style></head><body>\n<h1>roilens report</h1><p>" << HtmlEscape(inputs.title)
       << "</p>\n";
  if (paths.size() > 1) {  // output.rotate rolled the results over: say what this covers
    html << "<p class='legend'>Results read from " << paths.size() << " files, oldest first:";
    for (const std::string& path : paths) {
      html << " " << HtmlEscape(std::filesystem::path(path).filename().string());
    }
    html << "</p>\n";
  }
  // A run that stopped calling the model (e.g. the API key was rejected) says so first.
  if (inputs.summary.is_object()) {
    if (auto fatal = inputs.summary.find("fatal_error");
        fatal != inputs.summary.end() && fatal->is_string() && !fatal->get<std::string>().empty()) {
      html << "<p class='fatal'>Run stopped: " << HtmlEscape(fatal->get<std::string>()) << "</p>\n";
    }
  }
  // A run with failed calls shows the first failure before anything else: usually the one
  // message that explains the rest.
  if (first_error) {
    html << "<p class='first-error'>" << error_lines << " result line"
         << (error_lines == 1 ? "" : "s") << " failed. First error ("
         << HtmlEscape(first_error->roi) << ", frame " << first_error->frame
         << (first_error->source.empty() ? "" : " (" + HtmlEscape(first_error->source) + ")")
         << ", " << Fixed(first_error->time_s, 2) << " s): "
         << HtmlEscape(first_error->message.empty() ? "no message" : first_error->message)
         << "</p>\n";
  }
  html << "<h2>Summary</h2>" << SummaryTable(inputs.summary) << "\n<h2>Readings over time</h2>\n"
       << "<p class='legend'>Markers: <span style='color:#1f6fb2'>&#9679;</span> fresh reading "
          "(a model call), <span style='color:#9aa5b1'>&#9632;</span> cached (the change gate "
          "showed an earlier answer again), orange: in alarm, hollow amber ring: uncertain.</p>\n";
  for (const std::string& roi : order) {
    const Series& s = series[roi];
    html << "<h3>" << HtmlEscape(roi) << "</h3><p>ok " << s.ok << ", uncertain "
         << "<span class='uncertain'>" << s.uncertain << "</span>, cached " << s.cached
         << ", errors " << s.errors << ", skipped " << s.skipped;
    if (s.uncertain > 0) html << " (uncertain readings: hollow amber rings)";
    if (s.config && (s.config->alarm.low || s.config->alarm.high)) {
      html << "; alarm band shaded (low " << (s.config->alarm.low ? Num(*s.config->alarm.low) : "-")
           << ", high " << (s.config->alarm.high ? Num(*s.config->alarm.high) : "-") << ")";
    }
    html << "</p>\n" << Chart(roi, s) << "\n";
  }
  html << "<h2>Alarms</h2>";
  if (alarms.empty()) {
    html << "<p>No alarms.</p>";
  } else {
    html << "<p>" << alarm_lines << " result lines in alarm; where each alarm began:</p>"
         << "<table><tr><th>roi</th><th>frame</th><th>time (s)</th><th>value</th>"
         << "<th>alarm</th></tr>";
    for (const AlarmRow& row : alarms) {
      html << "<tr><td>" << HtmlEscape(row.roi) << "</td><td>" << row.frame
           << (row.source.empty() ? "" : " (" + HtmlEscape(row.source) + ")") << "</td><td>"
           << Num(row.time_s, 6) << "</td><td>" << Num(row.value, 6) << "</td><td>"
           << HtmlEscape(row.alarm) << "</td></tr>";
    }
    html << "</table>";
  }
  // Readings below min_confidence: shown, never alarmed on, so an operator sees where to look.
  html << "\n<h2>Uncertain readings</h2>";
  if (uncertain_rows.empty()) {
    html << "<p>No uncertain readings.</p>";
  } else {
    html << "<p class='uncertain'>" << uncertain_lines
         << " result lines uncertain (confidence below min_confidence; no alarm raised on them); "
            "where each uncertain stretch began:</p>"
         << "<table><tr><th>roi</th><th>frame</th><th>time (s)</th><th>reading</th>"
         << "<th>confidence</th></tr>";
    for (const UncertainRow& row : uncertain_rows) {
      html << "<tr class='uncertain'><td>" << HtmlEscape(row.roi) << "</td><td>" << row.frame
           << (row.source.empty() ? "" : " (" + HtmlEscape(row.source) + ")") << "</td><td>"
           << Num(row.time_s, 6) << "</td><td>" << Num(row.value, 6) << "?</td><td>"
           << (row.confidence ? Num(*row.confidence, 3) : "none") << "</td></tr>";
    }
    html << "</table>";
  }
  html << "\n<h2>Annotated crops</h2>";
  for (const ReportCrop& crop : inputs.crops) {
    if (crop.image.empty()) continue;
    std::vector<std::uint8_t> png;
    if (!cv::imencode(".png", crop.image, png)) continue;
    html << "<figure><img alt='" << HtmlEscape(crop.caption) << "' src='data:image/png;base64,"
         << wire::Base64Encode(png.data(), png.size()) << "'><figcaption>"
         << HtmlEscape(crop.caption) << "</figcaption></figure>";
  }
  html << "\n</body></html>\n";
  return html.str();
}

}  // namespace roilens
