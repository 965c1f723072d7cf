// Station config: JSON (comments allowed) -> StationConfig, validated once with errors that name
// the file and the JSON path of the bad field. Unknown keys are errors so typos never pass.
#include "roilens/config/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <opencv2/imgproc.hpp>
#include <set>
#include <sstream>
#include <string_view>

#include "roilens/client/bounded_json.h"

namespace roilens {
namespace {

using nlohmann::json;

/// Thrown inside the parser only; caught in ParseStationConfig and turned into a Status.
struct ConfigError {
  std::string path;
  std::string message;
};

[[noreturn]] void Fail(const std::string& path, std::string message) {
  throw ConfigError{path, std::move(message)};
}

std::string Join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}
std::string Index(const std::string& path, std::size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

std::string FormatNumber(double v) {
  // Whole numbers in full (a pixel limit of 1073741824, not 1.07374e+09).
  if (std::floor(v) == v && std::abs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  std::ostringstream os;
  os << v;
  return os.str();
}

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

/// Rejects keys not in `allowed`, naming the closest allowed key when it is a likely typo.
void CheckKeys(const json& object, const std::string& path,
               std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string message = "unknown key";
    std::string_view closest;
    std::size_t best = std::numeric_limits<std::size_t>::max();
    for (std::string_view candidate : allowed) {
      const std::size_t d = EditDistance(key, candidate);
      if (d < best) best = d, closest = candidate;
    }
    if (best <= 2) message += " (did you mean '" + std::string(closest) + "'?)";
    message += "; allowed keys: ";
    bool first = true;
    for (std::string_view candidate : allowed) {
      if (!first) message += ", ";
      message += candidate;
      first = false;
    }
    Fail(Join(path, key), message);
  }
}

const json& RequireObject(const json& value, const std::string& path) {
  if (!value.is_object()) Fail(path, std::string("must be an object, got ") + value.type_name());
  return value;
}

double AsNumber(const json& value, const std::string& path) {
  if (!value.is_number()) Fail(path, std::string("must be a number, got ") + value.type_name());
  return value.get<double>();
}

int AsInt(const json& value, const std::string& path) {
  if (!value.is_number()) Fail(path, std::string("must be an integer, got ") + value.type_name());
  const double v = value.get<double>();
  if (std::floor(v) != v || std::abs(v) > std::numeric_limits<int>::max()) {
    Fail(path, "must be an integer, got " + value.dump());
  }
  return static_cast<int>(v);
}

bool AsBool(const json& value, const std::string& path) {
  if (!value.is_boolean())
    Fail(path, std::string("must be true or false, got ") + value.type_name());
  return value.get<bool>();
}

std::string AsString(const json& value, const std::string& path) {
  if (!value.is_string()) Fail(path, std::string("must be a string, got ") + value.type_name());
  return value.get<std::string>();
}

/// Reads `object[key]` into `out` when present; `read` converts and checks the type.
template <typename T, typename Read>
bool Optional(const json& object, const std::string& path, const char* key, T& out, Read read) {
  auto it = object.find(key);
  if (it == object.end()) return false;
  out = read(*it, Join(path, key));
  return true;
}

void RequireRange(double v, double lo, double hi, const std::string& path, bool lo_open = false) {
  if (v < lo || v > hi || (lo_open && v == lo)) {
    Fail(path, "must be in " + std::string(lo_open ? "(" : "[") + FormatNumber(lo) + ", " +
                   FormatNumber(hi) + "], got " + FormatNumber(v));
  }
}

/// A whole number in [1, 1e15] (a token budget may pass 2^31).
std::int64_t AsPositiveCount(const json& value, const std::string& path) {
  if (!value.is_number()) Fail(path, std::string("must be an integer, got ") + value.type_name());
  const double v = value.get<double>();
  if (std::floor(v) != v) Fail(path, "must be an integer, got " + value.dump());
  RequireRange(v, 1, 1e15, path);
  return static_cast<std::int64_t>(v);
}

BudgetConfig ParseBudget(const json& j, const std::string& path) {
  RequireObject(j, path);
  CheckKeys(j, path, {"max_calls", "max_tokens"});
  BudgetConfig b;
  Optional(j, path, "max_calls", b.max_calls, AsPositiveCount);
  Optional(j, path, "max_tokens", b.max_tokens, AsPositiveCount);
  return b;
}

std::map<std::string, ModelPrice> ParsePrices(const json& j, const std::string& path) {
  RequireObject(j, path);
  std::map<std::string, ModelPrice> prices;
  for (const auto& [model, entry] : j.items()) {
    const std::string at = path + "[\"" + model + "\"]";
    if (model.empty()) Fail(at, "a model name must not be empty");
    RequireObject(entry, at);
    CheckKeys(entry, at, {"input_per_million", "output_per_million"});
    ModelPrice price;
    for (auto [key, field] : {std::pair{"input_per_million", &price.input_per_million},
                              std::pair{"output_per_million", &price.output_per_million}}) {
      if (!entry.contains(key)) Fail(Join(at, key), "is required");
      *field = AsNumber(entry[key], Join(at, key));
      RequireRange(*field, 0, 1e6, Join(at, key));
    }
    prices[model] = price;
  }
  return prices;
}

BackendConfig ParseBackend(const json& j, const std::string& path) {
  RequireObject(j, path);
  CheckKeys(j, path,
            {"endpoint", "model", "api_key_env", "max_in_flight", "request_timeout_s",
             "max_retries", "requests_per_minute", "budget", "prices"});
  BackendConfig b;
  if (Optional(j, path, "endpoint", b.endpoint, AsString) && b.endpoint.empty()) {
    Fail(Join(path, "endpoint"), "must be \"local\" or a base URL, got an empty string");
  }
  if (b.endpoint != "local" && b.endpoint.rfind("http://", 0) != 0 &&
      b.endpoint.rfind("https://", 0) != 0) {
    Fail(Join(path, "endpoint"),
         "must be \"local\" or an http(s):// base URL, got \"" + b.endpoint + "\"");
  }
  if (Optional(j, path, "model", b.model, AsString) && b.model.empty()) {
    Fail(Join(path, "model"), "must not be empty");
  }
  Optional(j, path, "api_key_env", b.api_key_env, AsString);
  if (Optional(j, path, "max_in_flight", b.max_in_flight, AsInt)) {
    RequireRange(b.max_in_flight, 1, 4096, Join(path, "max_in_flight"));
  }
  if (Optional(j, path, "request_timeout_s", b.request_timeout_s, AsNumber)) {
    RequireRange(b.request_timeout_s, 0, 86400, Join(path, "request_timeout_s"), true);
  }
  if (Optional(j, path, "max_retries", b.max_retries, AsInt)) {
    RequireRange(b.max_retries, 0, 100, Join(path, "max_retries"));
  }
  if (Optional(j, path, "requests_per_minute", b.requests_per_minute, AsNumber)) {
    RequireRange(b.requests_per_minute, 0, 1e9, Join(path, "requests_per_minute"));
  }
  Optional(j, path, "budget", b.budget, ParseBudget);
  // A table in the config replaces the default example entry (prices are the user's to state).
  Optional(j, path, "prices", b.prices, ParsePrices);
  return b;
}

PreprocessConfig ParsePreprocess(const json& j, const std::string& path) {
  RequireObject(j, path);
  CheckKeys(j, path, {"max_width", "clahe", "denoise", "rotate_deg"});
  PreprocessConfig p;
  if (Optional(j, path, "max_width", p.max_width, AsInt) && p.max_width != 0) {
    RequireRange(p.max_width, 16, 65536, Join(path, "max_width"));
  }
  Optional(j, path, "clahe", p.clahe, AsBool);
  Optional(j, path, "denoise", p.denoise, AsBool);
  if (Optional(j, path, "rotate_deg", p.rotate_deg, AsNumber)) {
    RequireRange(p.rotate_deg, -360, 360, Join(path, "rotate_deg"));
  }
  return p;
}

ReconnectConfig ParseReconnect(const json& j, const std::string& path) {
  RequireObject(j, path);
  CheckKeys(j, path, {"initial_delay_s", "max_delay_s"});
  ReconnectConfig r;
  if (Optional(j, path, "initial_delay_s", r.initial_delay_s, AsNumber)) {
    RequireRange(r.initial_delay_s, 0, 3600, Join(path, "initial_delay_s"), /*lo_open=*/true);
  }
  if (Optional(j, path, "max_delay_s", r.max_delay_s, AsNumber)) {
    RequireRange(r.max_delay_s, 0, 86400, Join(path, "max_delay_s"), /*lo_open=*/true);
  }
  if (r.max_delay_s < r.initial_delay_s) {
    Fail(Join(path, "max_delay_s"), "must be at least initial_delay_s (" +
                                        FormatNumber(r.initial_delay_s) + "), got " +
                                        FormatNumber(r.max_delay_s));
  }
  return r;
}

PipelineConfig ParsePipeline(const json& j, const std::string& path) {
  RequireObject(j, path);
  CheckKeys(j, path,
            {"mode", "every_n_frames", "max_frames_in_flight", "max_input_pixels", "decoder",
             "preprocess", "reconnect"});
  PipelineConfig p;
  std::string mode;
  if (Optional(j, path, "mode", mode, AsString)) {
    if (mode == "batch") {
      p.mode = PipelineMode::kBatch;
    } else if (mode == "live") {
      p.mode = PipelineMode::kLive;
    } else {
      Fail(Join(path, "mode"), "must be \"batch\" or \"live\", got \"" + mode + "\"");
    }
  }
  if (Optional(j, path, "every_n_frames", p.every_n_frames, AsInt)) {
    RequireRange(p.every_n_frames, 1, 1000000, Join(path, "every_n_frames"));
  }
  if (Optional(j, path, "max_frames_in_flight", p.max_frames_in_flight, AsInt)) {
    RequireRange(p.max_frames_in_flight, 1, 1024, Join(path, "max_frames_in_flight"));
  }
  if (double pixels = 0; Optional(j, path, "max_input_pixels", pixels, AsNumber)) {
    const std::string key = Join(path, "max_input_pixels");
    RequireRange(pixels, 1, static_cast<double>(kMaxInputPixelsLimit), key);
    if (std::floor(pixels) != pixels) Fail(key, "must be an integer, got " + FormatNumber(pixels));
    p.max_input_pixels = static_cast<std::int64_t>(pixels);
  }
  if (Optional(j, path, "decoder", p.decoder, AsString) && p.decoder != "auto" &&
      p.decoder != "ffmpeg" && p.decoder != "opencv") {
    Fail(Join(path, "decoder"),
         "must be \"auto\", \"ffmpeg\" or \"opencv\", got \"" + p.decoder + "\"");
  }
  if (auto it = j.find("preprocess"); it != j.end()) {
    p.preprocess = ParsePreprocess(*it, Join(path, "preprocess"));
  }
  if (auto it = j.find("reconnect"); it != j.end()) {
    p.reconnect = ParseReconnect(*it, Join(path, "reconnect"));
  }
  return p;
}

cv::Rect ParseRect(const json& j, const std::string& path) {
  if (!j.is_array() || j.size() != 4) Fail(path, "must be [x, y, width, height], got " + j.dump());
  cv::Rect r(AsInt(j[0], Index(path, 0)), AsInt(j[1], Index(path, 1)), AsInt(j[2], Index(path, 2)),
             AsInt(j[3], Index(path, 3)));
  if (r.x < 0 || r.y < 0) Fail(path, "x and y must be >= 0, got " + j.dump());
  if (r.width <= 0 || r.height <= 0) Fail(path, "width and height must be > 0, got " + j.dump());
  return r;
}

std::vector<cv::Point> ParsePolygon(const json& j, const std::string& path) {
  if (!j.is_array() || j.size() < 3) {
    Fail(path, "must be a list of at least 3 [x, y] points, got " + j.dump());
  }
  std::vector<cv::Point> points;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const std::string p = Index(path, i);
    if (!j[i].is_array() || j[i].size() != 2) Fail(p, "must be [x, y], got " + j[i].dump());
    cv::Point pt(AsInt(j[i][0], Index(p, 0)), AsInt(j[i][1], Index(p, 1)));
    if (pt.x < 0 || pt.y < 0) Fail(p, "coordinates must be >= 0, got " + j[i].dump());
    points.push_back(pt);
  }
  if (cv::contourArea(points) == 0) Fail(path, "encloses no area");
  return points;
}

std::vector<ScalePoint> ParseScale(const json& j, const std::string& path) {
  if (!j.is_array())
    Fail(path, std::string("must be an array of [value, angle_deg] pairs, got ") + j.type_name());
  if (j.size() < 2)
    Fail(path, "needs at least 2 [value, angle_deg] pairs, got " + std::to_string(j.size()));
  if (j.size() > 360) Fail(path, "has more than 360 points");
  std::vector<ScalePoint> scale;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const std::string at = path + "[" + std::to_string(i) + "]";
    if (!j[i].is_array() || j[i].size() != 2) Fail(at, "must be a [value, angle_deg] pair");
    ScalePoint p{AsNumber(j[i][0], at + "[0]"), AsNumber(j[i][1], at + "[1]")};
    RequireRange(p.angle_deg, -720, 720, at + "[1]");
    if (!scale.empty()) {
      if (!(p.value > scale.back().value)) {
        Fail(at, "values must increase strictly, got " + FormatNumber(p.value) + " after " +
                     FormatNumber(scale.back().value));
      }
      const double step = p.angle_deg - scale.back().angle_deg;
      const double first = scale.size() > 1 ? scale[1].angle_deg - scale[0].angle_deg : step;
      if (step == 0 || (step > 0) != (first > 0)) {
        Fail(at, "angles must be strictly monotonic (all decreasing for a clockwise scale), got " +
                     FormatNumber(p.angle_deg) + " after " + FormatNumber(scale.back().angle_deg));
      }
    }
    scale.push_back(p);
  }
  if (std::abs(scale.back().angle_deg - scale.front().angle_deg) > 360) {
    Fail(path, "spans more than 360 degrees");
  }
  return scale;
}

GaugeCalibration ParseGauge(const json& j, const std::string& path) {
  RequireObject(j, path);
  CheckKeys(j, path,
            {"min_value", "max_value", "min_angle_deg", "max_angle_deg", "unit", "scale", "pivot",
             "radius"});
  GaugeCalibration g;
  if (auto it = j.find("scale"); it != j.end()) g.scale = ParseScale(*it, Join(path, "scale"));
  const bool scaled = !g.scale.empty();
  if (scaled) {
    g.min_value = g.scale.front().value;
    g.max_value = g.scale.back().value;
  }
  if (!Optional(j, path, "min_value", g.min_value, AsNumber) && !scaled) {
    Fail(Join(path, "min_value"), "is required (the value at min_angle_deg)");
  }
  if (!Optional(j, path, "max_value", g.max_value, AsNumber) && !scaled) {
    Fail(Join(path, "max_value"), "is required (the value at max_angle_deg)");
  }
  if (!(g.max_value > g.min_value)) {
    Fail(Join(path, "max_value"), "must be greater than min_value (" + FormatNumber(g.min_value) +
                                      "), got " + FormatNumber(g.max_value));
  }
  if (scaled) {
    // The scale decides where min and max sit; explicit end angles may repeat it, not contradict.
    g.min_angle_deg = GaugeAngleForValue(g, g.min_value);
    g.max_angle_deg = GaugeAngleForValue(g, g.max_value);
    for (auto [key, want] : {std::pair{"min_angle_deg", g.min_angle_deg},
                             std::pair{"max_angle_deg", g.max_angle_deg}}) {
      double given = 0;
      if (Optional(j, path, key, given, AsNumber) && std::abs(given - want) > 1.0) {
        Fail(Join(path, key), "contradicts scale, which puts it at " + FormatNumber(want) +
                                  " degrees, got " + FormatNumber(given) +
                                  " (leave it out: the scale places the ends)");
      }
    }
    if (std::abs(g.min_angle_deg - g.max_angle_deg) > 360) {
      Fail(Join(path, "scale"), "extrapolated to min_value..max_value spans more than 360 degrees");
    }
  } else {
    if (Optional(j, path, "min_angle_deg", g.min_angle_deg, AsNumber)) {
      RequireRange(g.min_angle_deg, -720, 720, Join(path, "min_angle_deg"));
    }
    if (Optional(j, path, "max_angle_deg", g.max_angle_deg, AsNumber)) {
      RequireRange(g.max_angle_deg, -720, 720, Join(path, "max_angle_deg"));
    }
    // The scale runs clockwise (decreasing angle) from min to max; its sweep must be a real arc.
    const double sweep = g.min_angle_deg - g.max_angle_deg;
    if (!(sweep > 0 && sweep <= 360)) {
      Fail(Join(path, "max_angle_deg"),
           "must be clockwise of min_angle_deg by more than 0 and at most 360 degrees (angles: 0 "
           "= 3 o'clock, counter-clockwise positive), got min_angle_deg " +
               FormatNumber(g.min_angle_deg) + ", max_angle_deg " + FormatNumber(g.max_angle_deg));
    }
  }
  Optional(j, path, "unit", g.unit, AsString);
  if (auto it = j.find("pivot"); it != j.end()) {
    const std::string at = Join(path, "pivot");
    if (!it->is_array() || it->size() != 2) {
      Fail(at, "must be [fx, fy]: the pivot as fractions of the crop's width and height");
    }
    const double fx = AsNumber((*it)[0], at + "[0]"), fy = AsNumber((*it)[1], at + "[1]");
    RequireRange(fx, 0, 1, at + "[0]");
    RequireRange(fy, 0, 1, at + "[1]");
    g.pivot = cv::Point2d(fx, fy);
  }
  if (double r = 0; Optional(j, path, "radius", r, AsNumber)) {
    if (!(r > 0 && r <= 1)) {
      Fail(Join(path, "radius"),
           "must be a fraction of the crop's shorter side in (0, 1], got " + FormatNumber(r));
    }
    g.radius = r;
  }
  return g;
}

AlarmConfig ParseAlarm(const json& j, const std::string& path) {
  RequireObject(j, path);
  CheckKeys(j, path, {"low", "high", "hysteresis", "min_duration_s"});
  AlarmConfig a;
  double v = 0;
  if (Optional(j, path, "low", v, AsNumber)) a.low = v;
  if (Optional(j, path, "high", v, AsNumber)) a.high = v;
  if (Optional(j, path, "hysteresis", a.hysteresis, AsNumber)) {
    RequireRange(a.hysteresis, 0, 1e12, Join(path, "hysteresis"));
  }
  if (Optional(j, path, "min_duration_s", a.min_duration_s, AsNumber)) {
    RequireRange(a.min_duration_s, 0, 1e7, Join(path, "min_duration_s"));
  }
  if (a.low && a.high && !(*a.low < *a.high)) {
    Fail(Join(path, "high"),
         "must be greater than low (" + FormatNumber(*a.low) + "), got " + FormatNumber(*a.high));
  }
  return a;
}

FusionConfig ParseFusion(const json& j, const std::string& path) {
  RequireObject(j, path);
  CheckKeys(j, path, {"window", "window_s", "max_rate"});
  FusionConfig f;
  int n = 0;
  double v = 0;
  if (Optional(j, path, "window", n, AsInt)) {
    RequireRange(n, 1, 100, Join(path, "window"));
    f.window = n;
  }
  if (Optional(j, path, "window_s", v, AsNumber)) {
    RequireRange(v, 0, 1e7, Join(path, "window_s"));
    f.window_s = v;
  }
  if (Optional(j, path, "max_rate", v, AsNumber)) {
    RequireRange(v, 0, 1e6, Join(path, "max_rate"));
    f.max_rate = v;
  }
  return f;
}

TaskKind ParseTask(const json& j, const std::string& path) {
  const std::string name = AsString(j, path);
  for (TaskKind t : {TaskKind::kReadGauge, TaskKind::kCount, TaskKind::kZoom, TaskKind::kAnnotate,
                     TaskKind::kAsk}) {
    if (TaskName(t) == name) return t;
  }
  Fail(path, "must be one of read_gauge, count, zoom, annotate, ask; got \"" + name + "\"");
}

RoiConfig ParseRoi(const json& j, const std::string& path) {
  RequireObject(j, path);
  CheckKeys(j, path,
            {"name", "rect", "polygon", "find", "grid", "task", "zoom", "gauge", "alarm", "fusion",
             "min_confidence", "object", "prompt", "change_threshold", "max_age_s"});
  RoiConfig r;
  if (!Optional(j, path, "name", r.name, AsString)) Fail(Join(path, "name"), "is required");
  if (r.name.empty()) Fail(Join(path, "name"), "must not be empty");
  if (r.name.find('#') != std::string::npos) {
    Fail(Join(path, "name"), "must not contain '#' (found instances are named \"<name>#<k>\")");
  }
  if (!Optional(j, path, "task", r.task, ParseTask)) {
    Fail(Join(path, "task"), "is required (read_gauge, count, zoom, annotate or ask)");
  }
  if (auto it = j.find("rect"); it != j.end()) r.rect = ParseRect(*it, Join(path, "rect"));
  Optional(j, path, "polygon", r.polygon, ParsePolygon);
  if (Optional(j, path, "find", r.find, AsString) && r.find != "gauges" && r.find != "grid") {
    Fail(Join(path, "find"), "must be \"gauges\" or \"grid\", got \"" + r.find + "\"");
  }
  if (!r.polygon.empty() && (r.rect || !r.find.empty())) {
    Fail(Join(path, "polygon"),
         "give exactly one of rect, polygon or find (find may take a rect as its search area)");
  }
  if (r.polygon.empty() && !r.rect && r.find.empty()) {
    Fail(path, "needs one of rect, polygon or find");
  }
  if (auto it = j.find("grid"); it != j.end()) {
    const std::string p = Join(path, "grid");
    if (r.find != "grid") Fail(p, "only applies with \"find\": \"grid\"");
    if (!it->is_array() || it->size() != 2) Fail(p, "must be [rows, cols], got " + it->dump());
    r.grid_rows = AsInt((*it)[0], Index(p, 0));
    r.grid_cols = AsInt((*it)[1], Index(p, 1));
    RequireRange(r.grid_rows, 1, 64, Index(p, 0));
    RequireRange(r.grid_cols, 1, 64, Index(p, 1));
  }
  if (Optional(j, path, "zoom", r.zoom, AsNumber)) {
    RequireRange(r.zoom, 0, 8, Join(path, "zoom"), /*lo_open=*/true);
  }
  if (auto it = j.find("gauge"); it != j.end()) {
    if (r.task != TaskKind::kReadGauge) {
      Fail(Join(path, "gauge"),
           "only applies to task read_gauge (this ROI's task is " + TaskName(r.task) + ")");
    }
    r.gauge = ParseGauge(*it, Join(path, "gauge"));
  } else if (r.task == TaskKind::kReadGauge) {
    Fail(Join(path, "gauge"),
         "is required for task read_gauge: {\"min_value\", \"max_value\", \"min_angle_deg\", "
         "\"max_angle_deg\", \"unit\"}");
  }
  if (auto it = j.find("alarm"); it != j.end()) {
    if (r.task != TaskKind::kReadGauge && r.task != TaskKind::kCount) {
      Fail(Join(path, "alarm"), "only applies to tasks read_gauge and count (this ROI's task is " +
                                    TaskName(r.task) + ")");
    }
    r.alarm = ParseAlarm(*it, Join(path, "alarm"));
  }
  if (auto it = j.find("fusion"); it != j.end()) {
    if (r.task != TaskKind::kReadGauge) {
      Fail(Join(path, "fusion"),
           "only applies to task read_gauge (this ROI's task is " + TaskName(r.task) + ")");
    }
    r.fusion = ParseFusion(*it, Join(path, "fusion"));
  }
  if (double v = 0; Optional(j, path, "min_confidence", v, AsNumber)) {
    const std::string at = Join(path, "min_confidence");
    if (r.task != TaskKind::kReadGauge && r.task != TaskKind::kCount) {
      Fail(at, "only applies to tasks read_gauge and count (this ROI's task is " +
                   TaskName(r.task) + ")");
    }
    RequireRange(v, 0, 1, at);
    r.min_confidence = v;
  }
  if (Optional(j, path, "object", r.object, AsString) && r.task != TaskKind::kCount) {
    Fail(Join(path, "object"),
         "only applies to task count (this ROI's task is " + TaskName(r.task) + ")");
  }
  if (r.task == TaskKind::kCount && r.object.empty()) {
    Fail(Join(path, "object"), "is required for task count (what to count, e.g. \"bolts\")");
  }
  Optional(j, path, "prompt", r.prompt, AsString);
  if (r.task == TaskKind::kAsk && r.prompt.empty()) {
    Fail(Join(path, "prompt"), "is required for task ask (the question to answer)");
  }
  if (Optional(j, path, "change_threshold", r.change_threshold, AsNumber)) {
    RequireRange(r.change_threshold, 0, 1, Join(path, "change_threshold"));
  }
  if (Optional(j, path, "max_age_s", r.max_age_s, AsNumber)) {
    RequireRange(r.max_age_s, 0, 1e9, Join(path, "max_age_s"));
  }
  return r;
}

MergeConfig ParseMerge(const json& j, const std::string& path) {
  RequireObject(j, path);
  CheckKeys(j, path, {"mode", "labels", "blend_alpha"});
  MergeConfig m;
  std::string mode;
  if (Optional(j, path, "mode", mode, AsString)) {
    if (mode == "replace") {
      m.mode = MergeMode::kReplace;
    } else if (mode == "blend") {
      m.mode = MergeMode::kBlend;
    } else if (mode == "inset") {
      m.mode = MergeMode::kInset;
    } else if (mode == "none") {
      m.mode = MergeMode::kNone;
    } else {
      Fail(Join(path, "mode"), "must be one of replace, blend, inset, none; got \"" + mode + "\"");
    }
  }
  Optional(j, path, "labels", m.labels, AsBool);
  if (Optional(j, path, "blend_alpha", m.blend_alpha, AsNumber)) {
    RequireRange(m.blend_alpha, 0, 1, Join(path, "blend_alpha"));
  }
  return m;
}

VideoEncoderConfig ParseVideoEncoder(const json& j, const std::string& path) {
  RequireObject(j, path);
  CheckKeys(j, path,
            {"codec", "preset", "crf", "bitrate_kbps", "tune", "threads", "gop", "pix_fmt"});
  VideoEncoderConfig e;
  Optional(j, path, "codec", e.codec, AsString);
  Optional(j, path, "preset", e.preset, AsString);
  if (Optional(j, path, "crf", e.crf, AsInt)) RequireRange(e.crf, 0, 51, Join(path, "crf"));
  if (Optional(j, path, "bitrate_kbps", e.bitrate_kbps, AsInt)) {
    RequireRange(e.bitrate_kbps, 0, 1e6, Join(path, "bitrate_kbps"));
  }
  Optional(j, path, "tune", e.tune, AsString);
  if (Optional(j, path, "threads", e.threads, AsInt)) {
    RequireRange(e.threads, 0, 64, Join(path, "threads"));
  }
  if (Optional(j, path, "gop", e.gop, AsInt)) RequireRange(e.gop, 0, 10000, Join(path, "gop"));
  Optional(j, path, "pix_fmt", e.pix_fmt, AsString);
  if (e.codec.empty()) Fail(Join(path, "codec"), "must not be empty");
  return e;
}

MqttConfig ParseMqtt(const json& j, const std::string& path) {
  RequireObject(j, path);
  CheckKeys(
      j, path,
      {"host", "port", "topic_prefix", "client_id", "username", "password_env", "keepalive_s"});
  MqttConfig m;
  if (!Optional(j, path, "host", m.host, AsString) || m.host.empty()) {
    Fail(Join(path, "host"), "is required (the broker's host name or address)");
  }
  if (Optional(j, path, "port", m.port, AsInt)) RequireRange(m.port, 1, 65535, Join(path, "port"));
  Optional(j, path, "topic_prefix", m.topic_prefix, AsString);
  while (!m.topic_prefix.empty() && m.topic_prefix.back() == '/') m.topic_prefix.pop_back();
  if (m.topic_prefix.empty() || m.topic_prefix.find_first_of("#+") != std::string::npos) {
    Fail(Join(path, "topic_prefix"), "must be a non-empty MQTT topic without '#' or '+'");
  }
  Optional(j, path, "client_id", m.client_id, AsString);
  Optional(j, path, "username", m.username, AsString);
  Optional(j, path, "password_env", m.password_env, AsString);
  if (Optional(j, path, "keepalive_s", m.keepalive_s, AsInt)) {
    RequireRange(m.keepalive_s, 5, 3600, Join(path, "keepalive_s"));
  }
  return m;
}

WebhookConfig ParseWebhook(const json& j, const std::string& path) {
  RequireObject(j, path);
  CheckKeys(j, path, {"url", "retries", "backoff_s", "timeout_s"});
  WebhookConfig w;
  if (!Optional(j, path, "url", w.url, AsString) ||
      !(w.url.rfind("http://", 0) == 0 || w.url.rfind("https://", 0) == 0)) {
    Fail(Join(path, "url"), "is required: an http:// or https:// URL");
  }
  if (Optional(j, path, "retries", w.retries, AsInt)) {
    RequireRange(w.retries, 0, 100, Join(path, "retries"));
  }
  if (Optional(j, path, "backoff_s", w.backoff_s, AsNumber)) {
    RequireRange(w.backoff_s, 0, 60, Join(path, "backoff_s"));
  }
  if (Optional(j, path, "timeout_s", w.timeout_s, AsNumber)) {
    RequireRange(w.timeout_s, 0, 600, Join(path, "timeout_s"), /*lo_open=*/true);
  }
  return w;
}

RotateConfig ParseRotate(const json& j, const std::string& path) {
  RequireObject(j, path);
  CheckKeys(j, path, {"max_bytes", "max_seconds"});
  RotateConfig r;
  if (double bytes = 0; Optional(j, path, "max_bytes", bytes, AsNumber)) {
    RequireRange(bytes, 0, 1e15, Join(path, "max_bytes"));
    r.max_bytes = static_cast<std::uint64_t>(bytes);
  }
  if (Optional(j, path, "max_seconds", r.max_seconds, AsNumber)) {
    RequireRange(r.max_seconds, 0, 1e9, Join(path, "max_seconds"));
  }
  return r;
}

AuditConfig ParseAudit(const json& j, const std::string& path) {
  RequireObject(j, path);
  CheckKeys(j, path, {"dir", "max_mb"});
  AuditConfig a;
  if (!Optional(j, path, "dir", a.dir, AsString) || a.dir.empty()) {
    Fail(Join(path, "dir"), "is required: the directory the audit trail is written to");
  }
  if (Optional(j, path, "max_mb", a.max_mb, AsNumber)) {
    RequireRange(a.max_mb, 0, 1e9, Join(path, "max_mb"), /*lo_open=*/true);
  }
  return a;
}

OutputConfig ParseOutput(const json& j, const std::string& path) {
  RequireObject(j, path);
  CheckKeys(j, path,
            {"video", "results", "summary", "report", "alarms", "mqtt", "webhook", "video_backend",
             "video_encoder", "rotate", "audit"});
  OutputConfig o;
  if (Optional(j, path, "video_backend", o.video_backend, AsString) &&
      o.video_backend != "ffmpeg" && o.video_backend != "opencv") {
    Fail(Join(path, "video_backend"),
         "must be \"ffmpeg\" or \"opencv\", got \"" + o.video_backend + "\"");
  }
  if (auto it = j.find("video_encoder"); it != j.end()) {
    o.video_encoder = ParseVideoEncoder(*it, Join(path, "video_encoder"));
  }
  if (auto it = j.find("mqtt"); it != j.end()) o.mqtt = ParseMqtt(*it, Join(path, "mqtt"));
  if (auto it = j.find("webhook"); it != j.end()) {
    o.webhook = ParseWebhook(*it, Join(path, "webhook"));
  }
  if (auto it = j.find("rotate"); it != j.end()) o.rotate = ParseRotate(*it, Join(path, "rotate"));
  if (auto it = j.find("audit"); it != j.end()) o.audit = ParseAudit(*it, Join(path, "audit"));
  for (auto [key, field] : {std::pair{"video", &o.video}, std::pair{"results", &o.results},
                            std::pair{"summary", &o.summary}, std::pair{"report", &o.report},
                            std::pair{"alarms", &o.alarms}}) {
    if (Optional(j, path, key, *field, AsString)) {
      if (field->find('/') != std::string::npos || *field == "." || *field == "..") {
        Fail(Join(path, key),
             "must be a file name inside the output directory, got \"" + *field + "\"");
      }
    }
  }
  if (o.results.empty()) Fail(Join(path, "results"), "must not be empty");
  return o;
}

StationConfig ParseStation(const json& j) {
  RequireObject(j, "(top level)");
  CheckKeys(j, "", {"backend", "pipeline", "rois", "merge", "output"});
  StationConfig c;
  if (auto it = j.find("backend"); it != j.end()) c.backend = ParseBackend(*it, "backend");
  if (auto it = j.find("pipeline"); it != j.end()) c.pipeline = ParsePipeline(*it, "pipeline");
  auto rois = j.find("rois");
  if (rois == j.end()) Fail("rois", "is required (a list of ROIs)");
  if (!rois->is_array()) Fail("rois", std::string("must be a list, got ") + rois->type_name());
  if (rois->empty()) Fail("rois", "must list at least one ROI");
  std::set<std::string> names;
  for (std::size_t i = 0; i < rois->size(); ++i) {
    const std::string path = Index("rois", i);
    c.rois.push_back(ParseRoi((*rois)[i], path));
    if (!names.insert(c.rois.back().name).second) {
      Fail(Join(path, "name"), "\"" + c.rois.back().name + "\" is already used by another ROI");
    }
  }
  if (auto it = j.find("merge"); it != j.end()) c.merge = ParseMerge(*it, "merge");
  if (auto it = j.find("output"); it != j.end()) c.output = ParseOutput(*it, "output");
  return c;
}

/// 1-based line and column of byte `offset` in `text`.
std::pair<std::size_t, std::size_t> LineColumn(const std::string& text, std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

std::string RectText(const cv::Rect& r) {
  return "[" + std::to_string(r.x) + "," + std::to_string(r.y) + "," + std::to_string(r.width) +
         "," + std::to_string(r.height) + "]";
}

}  // namespace

double GaugeAngleForValue(const GaugeCalibration& g, double value) {
  if (g.scale.size() < 2) {
    return g.min_angle_deg + (value - g.min_value) / (g.max_value - g.min_value) *
                                 (g.max_angle_deg - g.min_angle_deg);
  }
  // The segment holding `value`, or the end segment nearest to it.
  std::size_t i = 1;
  while (i + 1 < g.scale.size() && value > g.scale[i].value) ++i;
  const ScalePoint& a = g.scale[i - 1];
  const ScalePoint& b = g.scale[i];
  return a.angle_deg + (value - a.value) / (b.value - a.value) * (b.angle_deg - a.angle_deg);
}

double GaugeValueForAngle(const GaugeCalibration& g, double angle_deg) {
  const bool scaled = g.scale.size() >= 2;
  const double a0 = scaled ? g.scale.front().angle_deg : g.min_angle_deg;
  const double a1 = scaled ? g.scale.back().angle_deg : g.max_angle_deg;
  // The turn of `angle_deg` nearest to the middle of the scale.
  const double mid = (a0 + a1) / 2;
  const double theta = angle_deg + 360.0 * std::round((mid - angle_deg) / 360.0);
  if (!scaled) {
    return g.min_value + (theta - a0) / (a1 - a0) * (g.max_value - g.min_value);
  }
  const bool increasing = a1 > a0;
  std::size_t i = 1;
  while (i + 1 < g.scale.size() &&
         (increasing ? theta > g.scale[i].angle_deg : theta < g.scale[i].angle_deg))
    ++i;
  const ScalePoint& a = g.scale[i - 1];
  const ScalePoint& b = g.scale[i];
  return a.value + (theta - a.angle_deg) / (b.angle_deg - a.angle_deg) * (b.value - a.value);
}

std::string TaskName(TaskKind t) {
  switch (t) {
    case TaskKind::kReadGauge:
      return "read_gauge";
    case TaskKind::kCount:
      return "count";
    case TaskKind::kZoom:
      return "zoom";
    case TaskKind::kAnnotate:
      return "annotate";
    case TaskKind::kAsk:
      return "ask";
  }
  return "unknown";
}

StatusOr<StationConfig> ParseStationConfig(const std::string& text,
                                           const std::string& source_name) {
  json j;
  try {
    j = ParseBoundedJson(text, /*ignore_comments=*/true);
  } catch (const JsonTooDeepError& e) {
    return InvalidArgumentError(source_name + ": invalid JSON: " + e.what());
  } catch (const json::parse_error& e) {
    // nlohmann reports a byte offset (1-based, pointing just past the bad token); users want
    // line:column. Its own message starts with "[json.exception.parse_error.101] parse error at
    // line L, column C: "; keep only the reason after that.
    const std::size_t byte = e.byte == 0 ? 0 : e.byte - 1;
    const auto [line, column] = LineColumn(text, byte);
    std::string reason = e.what();
    if (auto colon = reason.find(": "); colon != std::string::npos)
      reason = reason.substr(colon + 2);
    return InvalidArgumentError(source_name + ":" + std::to_string(line) + ":" +
                                std::to_string(column) + ": invalid JSON: " + reason);
  }
  try {
    StationConfig config = ParseStation(j);
    config.source_path = source_name;
    return config;
  } catch (const ConfigError& e) {
    return InvalidArgumentError(source_name + ": " + (e.path.empty() ? "" : e.path + ": ") +
                                e.message);
  } catch (const json::exception& e) {
    return InvalidArgumentError(source_name + ": " + e.what());
  }
}

StatusOr<StationConfig> LoadStationConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(path + ": cannot open the station config");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return InvalidArgumentError(path + ": cannot read the station config");
  return ParseStationConfig(text.str(), path);
}

Status ValidateRoisForFrame(const StationConfig& config, cv::Size size) {
  const cv::Rect frame(0, 0, size.width, size.height);
  const std::string frame_text = std::to_string(size.width) + "x" + std::to_string(size.height);
  const std::string prefix = config.source_path.empty() ? "" : config.source_path + ": ";
  if (size.width <= 0 || size.height <= 0) {
    return InvalidArgumentError(prefix + "frame size " + frame_text + " is empty");
  }
  for (const RoiConfig& roi : config.rois) {
    if (roi.rect && (*roi.rect & frame) != *roi.rect) {
      return InvalidArgumentError(prefix + "roi '" + roi.name + "' rect " + RectText(*roi.rect) +
                                  " extends outside the " + frame_text + " frame");
    }
    for (const cv::Point& p : roi.polygon) {
      // Polygon vertices are pixel-edge coordinates: x == width is the frame's right edge.
      if (p.x > size.width || p.y > size.height) {
        return InvalidArgumentError(prefix + "roi '" + roi.name + "' polygon point [" +
                                    std::to_string(p.x) + "," + std::to_string(p.y) +
                                    "] lies outside the " + frame_text + " frame");
      }
    }
  }
  return OkStatus();
}

std::optional<double> EstimateCost(const BackendConfig& backend, const std::string& model,
                                   std::int64_t input_tokens, std::int64_t output_tokens) {
  const auto it = backend.prices.find(model);
  if (it == backend.prices.end()) return std::nullopt;
  return (static_cast<double>(input_tokens) * it->second.input_per_million +
          static_cast<double>(output_tokens) * it->second.output_per_million) /
         1e6;
}

}  // namespace roilens
