// --metrics-port: /metrics is scraped over loopback and checked against the Prometheus text
// exposition format (0.0.4) by a parser here (Debian's promtool is not installed on CI), and its
// values against the frames fed in; /healthz follows the stream's state.
#include "metrics_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

namespace roilens::cli {
namespace {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Exposition {
  std::map<std::string, std::string> types;  // family -> type
  std::vector<Sample> samples;
  std::string error;  // "" when the text is well-formed
};

bool IsNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || std::isdigit(static_cast<unsigned char>(c)); }

/// The family a sample belongs to: histogram samples carry _bucket/_sum/_count suffixes.
std::string Family(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      const std::string base = name.substr(0, name.size() - s.size());
      auto it = types.find(base);
      if (it != types.end() && (it->second == "histogram" || it->second == "summary")) return base;
    }
  }
  return name;
}

/// Parses the text format strictly enough to catch what a Prometheus server would reject.
Exposition Parse(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  std::set<std::string> finished_families;
  std::string current_family;
  auto fail = [&](const std::string& why) {
    e.error = "line " + std::to_string(number) + ": " + why + ": " + line;
    return e;
  };
  if (text.empty() || text.back() != '\n') {
    e.error = "must end with a newline";
    return e;
  }
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream words(line.substr(1));
      std::string keyword, name, rest;
      words >> keyword >> name;
      if (keyword == "TYPE") {
        words >> rest;
        static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                     "untyped"};
        if (!kTypes.count(rest)) return fail("unknown type");
        if (e.types.count(name)) return fail("second TYPE for a family");
        e.types[name] = rest;
      } else if (keyword == "HELP" && name.empty()) {
        return fail("HELP without a name");
      }
      continue;
    }
    Sample s;
    std::size_t i = 0;
    if (!IsNameStart(line[0]) && line[0] != ':') return fail("bad metric name");
    while (i < line.size() && (IsNameChar(line[i]) || line[i] == ':')) ++i;
    s.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::size_t start = i;
        if (!IsNameStart(line[i])) return fail("bad label name");
        while (i < line.size() && IsNameChar(line[i])) ++i;
        const std::string label = line.substr(start, i - start);
        if (i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') return fail("no =\"");
        i += 2;
        std::string value;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\') {
            if (i + 1 >= line.size()) return fail("dangling escape");
            const char c = line[i + 1];
            if (c != '\\' && c != '"' && c != 'n') return fail("bad escape");
            value += c == 'n' ? '\n' : c;
            i += 2;
          } else {
            value += line[i++];
          }
        }
        if (i >= line.size()) return fail("unterminated label value");
        ++i;  // closing quote
        if (s.labels.count(label)) return fail("duplicate label");
        s.labels[label] = value;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) return fail("unterminated labels");
      ++i;  // }
    }
    if (i >= line.size() || line[i] != ' ') return fail("no space before the value");
    const std::string value = line.substr(i + 1);
    if (value == "+Inf") {
      s.value = INFINITY;
    } else if (value == "-Inf") {
      s.value = -INFINITY;
    } else if (value == "NaN") {
      s.value = NAN;
    } else {
      std::size_t used = 0;
      try {
        s.value = std::stod(value, &used);
      } catch (const std::exception&) {
        return fail("value is not a number");
      }
      if (used != value.size()) return fail("trailing text after the value");
    }
    const std::string family = Family(s.name, e.types);
    if (!e.types.count(family)) return fail("sample before its TYPE");
    if (family != current_family) {
      if (finished_families.count(family)) return fail("family's samples are not together");
      if (!current_family.empty()) finished_families.insert(current_family);
      current_family = family;
    }
    const std::string& type = e.types[family];
    if (type == "counter" && s.value < 0) return fail("negative counter");
    if (type == "histogram" && s.name == family + "_bucket" && !s.labels.count("le")) {
      return fail("bucket without le");
    }
    e.samples.push_back(std::move(s));
  }
  // Histograms: cumulative buckets ending in +Inf == _count.
  for (const auto& [family, type] : e.types) {
    if (type != "histogram") continue;
    double previous = 0, inf = -1, count = -1;
    for (const auto& s : e.samples) {
      if (s.name == family + "_bucket") {
        if (s.value < previous) e.error = family + ": buckets not cumulative";
        previous = s.value;
        if (s.labels.at("le") == "+Inf") inf = s.value;
      } else if (s.name == family + "_count") {
        count = s.value;
      }
    }
    if (inf < 0 || inf != count) e.error = family + ": +Inf bucket missing or != _count";
  }
  return e;
}

double Value(const Exposition& e, const std::string& name,
             const std::map<std::string, std::string>& labels = {}) {
  for (const auto& s : e.samples) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : labels) {
      auto it = s.labels.find(k);
      match = match && it != s.labels.end() && it->second == v;
    }
    if (match) return s.value;
  }
  ADD_FAILURE() << "no sample " << name;
  return NAN;
}

TEST(ExpositionParserTest, RejectsMalformedText) {
  EXPECT_EQ(Parse("# TYPE a counter\na 1\n").error, "");
  EXPECT_NE(Parse("a 1\n").error, "") << "sample before TYPE";
  EXPECT_NE(Parse("# TYPE a counter\na{x=\"1} 1\n").error, "");
  EXPECT_NE(Parse("# TYPE a counter\na one\n").error, "");
  EXPECT_NE(Parse("# TYPE a counter\na 1").error, "") << "no final newline";
  EXPECT_NE(Parse("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
                  "h_count 1\nh_sum 1\n")
                .error,
            "");
}

RoiResult Line(const std::string& roi, const std::string& status, double latency_ms) {
  RoiResult r;
  r.roi = roi;
  r.status = status;
  r.latency_ms = latency_ms;
  r.time_s = 1.5;
  return r;
}

TEST(MetricsServerTest, ScrapedTextIsValidExpositionWithTheRunsFigures) {
  StationMetrics metrics;
  std::atomic<bool> up{true};
  metrics.SetStreamUpProbe([&] { return up.load(); });
  metrics.SetInFlightProbe([] { return std::int64_t{3}; });
  FrameOutput frame;
  auto boiler = Line("boiler \"A\"\n", "ok", 20);  // a name that needs escaping
  boiler.value = 4.25;
  boiler.unit = "bar";
  boiler.alarm = "high";
  auto tray = Line("tray", "error", 1500);
  frame.results = {boiler, tray};
  metrics.ObserveFrame(frame);
  auto cached = Line("tray", "cached", 0);
  cached.count = 7;
  frame.results = {Line("boiler \"A\"\n", "error", 0), cached};
  metrics.ObserveFrame(frame);
  metrics.ObserveGap(12);

  auto server = MetricsServer::Start(&metrics, 0);
  ASSERT_TRUE(server.ok()) << server.status().message();
  ASSERT_GT((*server)->port(), 0);
  httplib::Client client("127.0.0.1", (*server)->port());
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u);
  const Exposition e = Parse(res->body);
  ASSERT_EQ(e.error, "") << res->body;

  EXPECT_EQ(Value(e, "roilens_frames_total"), 2);
  EXPECT_EQ(Value(e, "roilens_model_calls_total"), 2);
  EXPECT_EQ(Value(e, "roilens_cache_hits_total"), 1);
  EXPECT_EQ(Value(e, "roilens_errors_total", {{"kind", "call"}}), 1);
  EXPECT_EQ(Value(e, "roilens_errors_total", {{"kind", "frame"}}), 1);
  EXPECT_EQ(Value(e, "roilens_errors_total", {{"kind", "stream"}}), 1);
  EXPECT_EQ(Value(e, "roilens_stream_missing_frames_total"), 12);
  EXPECT_EQ(Value(e, "roilens_requests_in_flight"), 3);
  EXPECT_EQ(Value(e, "roilens_call_latency_seconds_count"), 2);
  EXPECT_DOUBLE_EQ(Value(e, "roilens_call_latency_seconds_sum"), 1.52);
  EXPECT_EQ(Value(e, "roilens_call_latency_seconds_bucket", {{"le", "0.025"}}), 1);
  EXPECT_EQ(Value(e, "roilens_call_latency_seconds_bucket", {{"le", "2.5"}}), 2);
  // The last reading per ROI survives a later error line without a value.
  EXPECT_EQ(Value(e, "roilens_roi_value", {{"roi", "boiler \"A\"\n"}, {"unit", "bar"}}), 4.25);
  EXPECT_EQ(Value(e, "roilens_roi_count", {{"roi", "tray"}}), 7);
  EXPECT_EQ(Value(e, "roilens_roi_alarm", {{"roi", "tray"}}), 0);
  EXPECT_EQ(Value(e, "roilens_stream_up"), 1);

  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  up = false;
  health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_NE(health->body.find("down"), std::string::npos);
  res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(Value(Parse(res->body), "roilens_stream_up"), 0);
}

}  // namespace
}  // namespace roilens::cli
