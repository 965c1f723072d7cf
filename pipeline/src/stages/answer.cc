// One ROI's answer: the model's final JSON line validated against the ROI's task and
// calibration before it is trusted, and the results.jsonl line built from it.
#include "roilens/stages/answer.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "roilens/stages/crop_transform.h"
#include "roilens/stages/preprocess.h"

namespace roilens {
namespace {

using nlohmann::json;

/// Slack on each side of the calibrated range: a needle resting on the end stop (or a reading
/// that overshoots it by a hair) is still a valid reading; further out means a misread dial.
constexpr double kRangeSlack = 0.05;

std::string FormatNumber(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

/// Error text is one line: results.jsonl and labels must not break on a multi-line message.
std::string OneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '\r', ' ');
  constexpr std::size_t kMaxLength = 500;
  if (text.size() > kMaxLength) text = text.substr(0, kMaxLength) + "...";
  return text;
}

RoiAnswer Error(RoiAnswer answer, const RoiConfig& roi, const std::string& message) {
  answer.status = "error";
  answer.value.reset();
  answer.count.reset();
  answer.objects.clear();
  answer.confidence.reset();
  answer.alarm.clear();
  answer.error = OneLine("roi '" + roi.name + "': " + message);
  return answer;
}

std::string ExpectedLine(TaskKind task) {
  switch (task) {
    case TaskKind::kReadGauge:
      return "{\"value\": number, \"unit\": str, \"confidence\": 0..1}";
    case TaskKind::kCount:
      return "{\"count\": int, \"confidence\": 0..1, \"objects\": [{\"box\": [x, y, w, h], "
             "\"score\": 0..1}]}";
    default:
      return "{\"text\": str}";
  }
}

/// Coordinates beyond this (crop pixels) cannot come from a real crop (at most 8x a frame side);
/// refusing them keeps every later conversion to int well-defined.
constexpr double kMaxObjectCoordinate = 1e7;

/// The valid entries of a count answer's "objects" (see ParseRoiAnswer); never throws.
std::vector<CountedObject> ParseObjects(const json& line) {
  std::vector<CountedObject> objects;
  auto list = line.find("objects");
  if (list == line.end() || !list->is_array()) return objects;
  for (const json& entry : *list) {
    if (objects.size() >= kMaxCountedObjects) break;
    if (!entry.is_object()) continue;
    auto box = entry.find("box");
    if (box == entry.end() || !box->is_array() || box->size() != 4) continue;
    double v[4] = {};
    bool valid = true;
    for (std::size_t i = 0; i < 4 && valid; ++i) {
      const json& n = (*box)[i];
      valid = n.is_number() && std::isfinite(v[i] = n.get<double>()) &&
              std::abs(v[i]) <= kMaxObjectCoordinate;
    }
    if (!valid || !(v[2] > 0) || !(v[3] > 0)) continue;
    CountedObject object;
    object.box = cv::Rect2d(v[0], v[1], v[2], v[3]);
    if (auto score = entry.find("score"); score != entry.end()) {
      if (!score->is_number()) continue;
      const double s = score->get<double>();
      if (!std::isfinite(s)) continue;
      object.score = std::clamp(s, 0.0, 1.0);
    }
    objects.push_back(object);
  }
  return objects;
}

/// Whether a reading with this confidence falls below the ROI's bar (RoiConfig::min_confidence).
bool Uncertain(const RoiConfig& roi, std::optional<double> confidence) {
  if (confidence) return *confidence < roi.min_confidence.value_or(kDefaultMinConfidence);
  return roi.min_confidence && *roi.min_confidence > 0;
}

/// `box` (crop pixels) in original-frame pixels: through the crop's zoom to processed pixels,
/// then through image_to_frame; the bounding box of the mapped corners, rounded outward.
cv::Rect CropBoxToFrame(const CropTransform& crop, const cv::Matx23d& image_to_frame,
                        const cv::Rect2d& box) {
  const cv::Point2d corners[] = {{box.x, box.y},
                                 {box.x + box.width, box.y},
                                 {box.x, box.y + box.height},
                                 {box.x + box.width, box.y + box.height}};
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    const cv::Point2d p = ApplyAffine(image_to_frame, crop.ToFrame(corners[i]));
    x0 = i == 0 ? p.x : std::min(x0, p.x), x1 = i == 0 ? p.x : std::max(x1, p.x);
    y0 = i == 0 ? p.y : std::min(y0, p.y), y1 = i == 0 ? p.y : std::max(y1, p.y);
  }
  if (!std::isfinite(x0) || !std::isfinite(y0) || !std::isfinite(x1) || !std::isfinite(y1)) {
    return {};  // a degenerate transform (zoom 0 in a hand-built config): nothing to report
  }
  // Clamp before converting: a box far outside the ROI must not overflow int.
  constexpr double kLimit = 1e9;
  auto clamp = [&](double v) { return std::clamp(v, -kLimit, kLimit); };
  constexpr double kEps = 1e-6;  // 4.9999999 from an exact scale must not grow the box
  const int ix0 = static_cast<int>(std::floor(clamp(x0) + kEps));
  const int iy0 = static_cast<int>(std::floor(clamp(y0) + kEps));
  const int ix1 = static_cast<int>(std::ceil(clamp(x1) - kEps));
  const int iy1 = static_cast<int>(std::ceil(clamp(y1) - kEps));
  return {ix0, iy0, std::max(0, ix1 - ix0), std::max(0, iy1 - iy0)};
}

}  // namespace

bool HasResult(const RoiAnswer& answer) {
  return answer.status == "ok" || answer.status == "uncertain" || answer.status == "cached";
}

std::string AlarmFor(const RoiConfig& roi, double value) {
  if (roi.alarm.low && value < *roi.alarm.low) return "low";
  if (roi.alarm.high && value > *roi.alarm.high) return "high";
  return "";
}

RoiAnswer ParseRoiAnswer(const RoiConfig& roi, const StatusOr<wire::Interaction>& interaction) {
  RoiAnswer answer;
  if (!interaction.ok()) {
    return Error(std::move(answer), roi, interaction.status().ToString());
  }
  const wire::Interaction& it = *interaction;
  answer.interaction_id = it.id;
  if (it.usage) answer.usage = *it.usage;
  answer.attempts =
      static_cast<int>(std::count_if(it.steps.begin(), it.steps.end(), [](const wire::Step& s) {
        return s.type == "code_execution_call";
      }));
  if (std::vector<cv::Mat> images = it.OutputImages(); !images.empty()) {
    answer.image = images.back();
  }
  if (it.status != "completed") {
    std::string detail;
    if (auto e = it.extra.find("error"); e != it.extra.end() && e->is_object()) {
      if (auto m = e->find("message"); m != e->end() && m->is_string()) {
        detail = ": " + m->get<std::string>();
      }
    }
    return Error(std::move(answer), roi,
                 "interaction " + it.id + " ended with status \"" + it.status + "\"" + detail);
  }
  StatusOr<json> line = it.LastJsonObject();
  if (!line.ok()) {
    return Error(std::move(answer), roi,
                 "the answer has no JSON line (expected " + ExpectedLine(roi.task) + ")");
  }
  const json& j = *line;
  if (auto c = j.find("confidence"); c != j.end() && c->is_number()) {
    const double v = c->get<double>();
    if (std::isfinite(v)) answer.confidence = std::clamp(v, 0.0, 1.0);
  }
  switch (roi.task) {
    case TaskKind::kReadGauge: {
      auto v = j.find("value");
      if (v == j.end() || !v->is_number()) {
        return Error(std::move(answer), roi,
                     "the answer's JSON line has no numeric \"value\": " + j.dump());
      }
      const double value = v->get<double>();
      const GaugeCalibration& g = roi.gauge;
      const double slack = kRangeSlack * (g.max_value - g.min_value);
      if (!std::isfinite(value) || value < g.min_value - slack || value > g.max_value + slack) {
        return Error(std::move(answer), roi,
                     "value " + FormatNumber(value) + " outside calibrated range " +
                         FormatNumber(g.min_value) + ".." + FormatNumber(g.max_value) +
                         (g.unit.empty() ? "" : " " + g.unit));
      }
      answer.value = value;
      // The configured unit is authoritative; the model's only fills in when none is configured.
      answer.unit = g.unit;
      if (answer.unit.empty()) {
        if (auto u = j.find("unit"); u != j.end() && u->is_string()) answer.unit = *u;
      }
      answer.alarm = AlarmFor(roi, value);
      break;
    }
    case TaskKind::kCount: {
      auto c = j.find("count");
      if (c == j.end() || !c->is_number()) {
        return Error(std::move(answer), roi,
                     "the answer's JSON line has no integer \"count\": " + j.dump());
      }
      const double v = c->get<double>();
      if (!std::isfinite(v) || std::floor(v) != v || v < 0 || v > 1e15) {
        return Error(std::move(answer), roi, "count " + c->dump() + " is not a whole number >= 0");
      }
      answer.count = static_cast<std::int64_t>(v);
      answer.objects = ParseObjects(j);
      answer.alarm = AlarmFor(roi, v);
      break;
    }
    case TaskKind::kZoom:
    case TaskKind::kAnnotate:
    case TaskKind::kAsk: {
      auto t = j.find("text");
      if (t == j.end() || !t->is_string()) {
        return Error(std::move(answer), roi,
                     "the answer's JSON line has no string \"text\": " + j.dump());
      }
      answer.text = t->get<std::string>();
      break;
    }
  }
  answer.status = "ok";
  if ((roi.task == TaskKind::kReadGauge || roi.task == TaskKind::kCount) &&
      Uncertain(roi, answer.confidence)) {
    // The reading stays (an operator may still want to see it); an alarm on it would not be
    // trustworthy, so none fires.
    answer.status = "uncertain";
    answer.alarm.clear();
  }
  return answer;
}

RoiResult MakeRoiResult(std::int64_t frame, const std::string& source, double time_s,
                        const RoiInstance& roi, const RoiConfig& config, const RoiAnswer& answer) {
  RoiResult r;
  r.frame = frame;
  r.source = source;
  r.time_s = time_s;
  r.roi = roi.name;
  r.task = TaskName(config.task);
  r.rect = roi.frame_rect;
  r.status = answer.status;
  r.value = answer.value;
  r.unit = answer.unit;
  r.count = answer.count;
  if (config.task == TaskKind::kCount) {
    const CropTransform crop = CropTransform::Make(roi.rect, config.zoom);
    for (const CountedObject& object : answer.objects) {
      const cv::Rect box = CropBoxToFrame(crop, roi.image_to_frame, object.box) & roi.frame_rect;
      if (box.empty()) continue;
      r.objects.push_back({cv::Rect2d(box), object.score});
    }
  }
  r.text = answer.text;
  r.confidence = answer.confidence;
  // r.alarm stays "": the line's alarm is the ROI's alarm state (duration, hysteresis), which
  // ReadingMonitor::Process sets on every line of a ROI with an alarm. answer.alarm, the single
  // reading against the thresholds, is for the frame's label only.
  r.error = answer.error;
  r.attempts = answer.attempts;
  r.latency_ms = answer.latency_ms;
  r.interaction_id = answer.interaction_id;
  if (answer.usage.is_object()) {
    // answer.usage is wire::Usage serialised, so it always parses.
    StatusOr<RoiUsage> usage = RoiUsageFromJson(answer.usage);
    if (usage.ok()) r.usage = std::move(*usage);
  }
  return r;
}

json ResultLine(std::int64_t frame, const std::string& source, double time_s,
                const RoiInstance& roi, const RoiConfig& config, const RoiAnswer& answer) {
  return ToJson(MakeRoiResult(frame, source, time_s, roi, config, answer));
}

}  // namespace roilens
