// One ROI's answer: the model's final JSON line validated against the ROI's task and
// calibration before it is trusted, and the results.jsonl line built from it.
#include "roilens/answer.h"

#include <algorithm>
#include <cmath>
#include <sstream>

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
      return "{\"count\": int, \"confidence\": 0..1}";
    default:
      return "{\"text\": str}";
  }
}

}  // namespace

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
  return answer;
}

json ResultLine(std::int64_t frame, const std::string& source, double time_s,
                const RoiInstance& roi, const RoiConfig& config, const RoiAnswer& answer) {
  auto text_or_null = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  json line = json::object();
  line["frame"] = frame;
  line["source"] = text_or_null(source);
  line["time_s"] = time_s;
  line["roi"] = roi.name;
  line["task"] = TaskName(config.task);
  line["rect"] = {roi.frame_rect.x, roi.frame_rect.y, roi.frame_rect.width, roi.frame_rect.height};
  line["status"] = answer.status;
  line["value"] = answer.value ? json(*answer.value) : json(nullptr);
  line["unit"] = text_or_null(answer.unit);
  line["count"] = answer.count ? json(*answer.count) : json(nullptr);
  line["text"] = text_or_null(answer.text);
  line["confidence"] = answer.confidence ? json(*answer.confidence) : json(nullptr);
  line["alarm"] = text_or_null(answer.alarm);
  line["error"] = text_or_null(answer.error);
  line["attempts"] = answer.attempts;
  line["latency_ms"] = answer.latency_ms;
  line["interaction_id"] = text_or_null(answer.interaction_id);
  line["usage"] = answer.usage.is_object() ? answer.usage : json(nullptr);
  return line;
}

}  // namespace roilens
