// RoiResult <-> results.jsonl object. ToJson fixes the line format; RoiResultFromJson reads it.
#include "roilens/stages/roi_result.h"

#include <cmath>
#include <limits>

namespace roilens {
namespace {

using nlohmann::json;

json TextOrNull(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

// Integral coordinates stay integers in JSON (what the pipeline has always written).
json Coordinate(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.0e15) {
    return json(static_cast<std::int64_t>(v));
  }
  return json(v);
}

constexpr const char* kUsageKeys[] = {"total_input_tokens", "total_output_tokens",
                                      "total_tool_use_tokens", "total_tokens"};

// Thrown inside RoiResultFromJson only; turned into a Status at its boundary.
struct BadKey {
  std::string message;
};

const json* Find(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::string Text(const json& j, const char* key, bool required = false) {
  const json* v = Find(j, key);
  if (v == nullptr) {
    if (required) throw BadKey{std::string(key) + ": required"};
    return "";
  }
  if (!v->is_string()) throw BadKey{std::string(key) + ": must be a string or null"};
  return v->get<std::string>();
}

std::optional<double> Number(const json& j, const char* key) {
  const json* v = Find(j, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) throw BadKey{std::string(key) + ": must be a number or null"};
  return v->get<double>();
}

std::optional<std::int64_t> Integer(const json& j, const char* key, bool required = false) {
  const json* v = Find(j, key);
  if (v == nullptr) {
    if (required) throw BadKey{std::string(key) + ": required"};
    return std::nullopt;
  }
  if (!v->is_number_integer()) throw BadKey{std::string(key) + ": must be an integer or null"};
  return v->get<std::int64_t>();
}

std::vector<double> Box(const json& v, const std::string& key) {
  if (!v.is_array() || v.size() != 4) throw BadKey{key + ": must be [x, y, w, h]"};
  std::vector<double> out;
  for (const json& n : v) {
    if (!n.is_number()) throw BadKey{key + ": must be [x, y, w, h] numbers"};
    out.push_back(n.get<double>());
  }
  return out;
}

}  // namespace

bool RoiResult::operator==(const RoiResult& o) const {
  return frame == o.frame && source == o.source && time_s == o.time_s && roi == o.roi &&
         task == o.task && rect == o.rect && status == o.status && value == o.value &&
         raw_value == o.raw_value && implausible_jump == o.implausible_jump && unit == o.unit &&
         count == o.count && objects == o.objects && text == o.text && confidence == o.confidence &&
         alarm == o.alarm && error == o.error && attempts == o.attempts &&
         latency_ms == o.latency_ms && interaction_id == o.interaction_id && usage == o.usage;
}

json ToJson(const RoiUsage& usage) {
  json j = usage.extra.is_object() ? usage.extra : json::object();
  j["total_input_tokens"] = usage.input_tokens;
  j["total_output_tokens"] = usage.output_tokens;
  j["total_tool_use_tokens"] = usage.tool_use_tokens;
  j["total_tokens"] = usage.total_tokens;
  return j;
}

json ToJson(const RoiResult& r) {
  json line = json::object();
  line["frame"] = r.frame;
  line["source"] = TextOrNull(r.source);
  line["time_s"] = r.time_s;
  line["roi"] = r.roi;
  line["task"] = r.task;
  line["rect"] = {r.rect.x, r.rect.y, r.rect.width, r.rect.height};
  line["status"] = r.status;
  line["value"] = r.value ? json(*r.value) : json(nullptr);
  line["raw_value"] = r.raw_value ? json(*r.raw_value) : json(nullptr);
  line["implausible_jump"] = r.implausible_jump;
  line["unit"] = TextOrNull(r.unit);
  line["count"] = r.count ? json(*r.count) : json(nullptr);
  if (r.task == "count") {
    json objects = json::array();
    for (const RoiObject& o : r.objects) {
      objects.push_back({{"box",
                          {Coordinate(o.box.x), Coordinate(o.box.y), Coordinate(o.box.width),
                           Coordinate(o.box.height)}},
                         {"score", o.score ? json(*o.score) : json(nullptr)}});
    }
    line["objects"] = std::move(objects);
  } else {
    line["objects"] = nullptr;
  }
  line["text"] = TextOrNull(r.text);
  line["confidence"] = r.confidence ? json(*r.confidence) : json(nullptr);
  line["alarm"] = TextOrNull(r.alarm);
  line["error"] = TextOrNull(r.error);
  line["attempts"] = r.attempts;
  line["latency_ms"] = r.latency_ms;
  line["interaction_id"] = TextOrNull(r.interaction_id);
  line["usage"] = r.usage ? ToJson(*r.usage) : json(nullptr);
  return line;
}

StatusOr<RoiUsage> RoiUsageFromJson(const json& usage) {
  if (!usage.is_object()) return InvalidArgumentError("result line: usage: must be an object");
  try {
    RoiUsage u;
    std::int64_t* fields[] = {&u.input_tokens, &u.output_tokens, &u.tool_use_tokens,
                              &u.total_tokens};
    for (std::size_t i = 0; i < 4; ++i) *fields[i] = Integer(usage, kUsageKeys[i]).value_or(0);
    u.extra = usage;
    for (const char* key : kUsageKeys) u.extra.erase(key);
    return u;
  } catch (const BadKey& e) {
    return InvalidArgumentError("result line: usage." + e.message);
  }
}

StatusOr<RoiResult> RoiResultFromJson(const json& line) {
  if (!line.is_object()) return InvalidArgumentError("result line: must be a JSON object");
  try {
    RoiResult r;
    r.frame = *Integer(line, "frame", /*required=*/true);
    r.source = Text(line, "source");
    r.time_s = Number(line, "time_s").value_or(0);
    r.roi = Text(line, "roi", /*required=*/true);
    r.task = Text(line, "task", /*required=*/true);
    if (const json* rect = Find(line, "rect")) {
      const std::vector<double> b = Box(*rect, "rect");
      for (double v : b) {
        if (v != std::floor(v) || std::fabs(v) > std::numeric_limits<int>::max())
          throw BadKey{"rect: must be [x, y, w, h] integers"};
      }
      r.rect = cv::Rect(static_cast<int>(b[0]), static_cast<int>(b[1]), static_cast<int>(b[2]),
                        static_cast<int>(b[3]));
    }
    r.status = Text(line, "status", /*required=*/true);
    r.value = Number(line, "value");
    r.raw_value = Number(line, "raw_value");
    if (const json* jump = Find(line, "implausible_jump")) {
      if (!jump->is_boolean()) throw BadKey{"implausible_jump: must be true or false"};
      r.implausible_jump = jump->get<bool>();
    }
    r.unit = Text(line, "unit");
    r.count = Integer(line, "count");
    if (const json* objects = Find(line, "objects")) {
      if (!objects->is_array()) throw BadKey{"objects: must be a list or null"};
      for (std::size_t i = 0; i < objects->size(); ++i) {
        const json& o = (*objects)[i];
        const std::string key = "objects[" + std::to_string(i) + "]";
        if (!o.is_object() || !o.contains("box")) throw BadKey{key + ": must be {box, score}"};
        const std::vector<double> b = Box(o.at("box"), key + ".box");
        RoiObject object;
        object.box = cv::Rect2d(b[0], b[1], b[2], b[3]);
        object.score = Number(o, "score");
        r.objects.push_back(object);
      }
    }
    r.text = Text(line, "text");
    r.confidence = Number(line, "confidence");
    r.alarm = Text(line, "alarm");
    r.error = Text(line, "error");
    r.attempts = static_cast<int>(Integer(line, "attempts").value_or(0));
    r.latency_ms = Number(line, "latency_ms").value_or(0);
    r.interaction_id = Text(line, "interaction_id");
    if (const json* usage = Find(line, "usage")) {
      StatusOr<RoiUsage> u = RoiUsageFromJson(*usage);
      if (!u.ok()) return u.status();
      r.usage = std::move(*u);
    }
    return r;
  } catch (const BadKey& e) {
    return InvalidArgumentError("result line: " + e.message);
  } catch (const json::exception& e) {
    return InvalidArgumentError(std::string("result line: ") + e.what());
  }
}

}  // namespace roilens
