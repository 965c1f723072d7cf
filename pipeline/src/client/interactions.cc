// The Interactions API wire model: lossless JSON conversions, response/error parsing, base64 and
// the Interaction accessors (final text, answer JSON, output images, code runs).
#include "roilens/client/interactions.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <exception>
#include <limits>
#include <opencv2/imgcodecs.hpp>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "client/internal/wire_shape.h"
#include "roilens/client/bounded_json.h"

namespace roilens::wire {
namespace {

using internal::ShapeError;
using internal::TypeName;
using nlohmann::json;

// Each parser takes the JSON path of the value it reads so that shape errors name the field
// ("steps[2].content[0].data: expected string, got number").
std::string Join(const std::string& path, const char* key) {
  return path.empty() ? std::string(key) : path + "." + key;
}
std::string Index(const std::string& path, std::size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

const json& RequireObject(const json& j, const std::string& path) {
  if (!j.is_object()) {
    throw ShapeError(path.empty() ? std::string("<root>") : path,
                     std::string("expected object, got ") + TypeName(j));
  }
  return j;
}

std::string GetString(const json& v, const std::string& path) {
  if (!v.is_string()) throw ShapeError(path, std::string("expected string, got ") + TypeName(v));
  return v.get<std::string>();
}

bool GetBool(const json& v, const std::string& path) {
  if (!v.is_boolean()) throw ShapeError(path, std::string("expected boolean, got ") + TypeName(v));
  return v.get<bool>();
}

// Doubles in [-2^63, 2^63) convert to int64 exactly; anything outside is undefined behaviour.
constexpr double kInt64Bound = 9223372036854775808.0;

std::int64_t GetInt(const json& v, const std::string& path) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw ShapeError(path, "integer " + v.dump() + " is out of range");
    }
    return static_cast<std::int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (!std::isfinite(d) || d != std::floor(d)) {
      throw ShapeError(path, "expected integer, got a fractional number");
    }
    if (d < -kInt64Bound || d >= kInt64Bound) {
      throw ShapeError(path, "integer " + v.dump() + " is out of range");
    }
    return static_cast<std::int64_t>(d);
  }
  if (v.is_string()) {  // int64 fields are strings in proto3 JSON; accept both
    const auto& s = v.get_ref<const std::string&>();
    try {
      std::size_t used = 0;
      long long n = std::stoll(s, &used);
      if (used == s.size()) return n;
    } catch (const std::exception&) {
    }
    throw ShapeError(path, "expected integer, got a non-numeric string");
  }
  throw ShapeError(path, std::string("expected integer, got ") + TypeName(v));
}

// Copies every key of `j` not in `known` into an object (the fields we do not model).
template <std::size_t N>
json Extras(const json& j, const std::array<const char*, N>& known) {
  json extra = json::object();
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::none_of(known.begin(), known.end(), [&](const char* k) { return it.key() == k; })) {
      extra[it.key()] = it.value();
    }
  }
  return extra;
}

// Starts a serialised object from the preserved unknown fields (known fields then overwrite).
json FromExtra(const json& extra) { return extra.is_object() ? extra : json::object(); }

constexpr std::array<const char*, 5> kBlockKeys = {"type", "text", "data", "uri", "mime_type"};

void ParseBlock(const json& j, ContentBlock& v, const std::string& path) {
  RequireObject(j, path);
  v = ContentBlock{};
  auto type = j.find("type");
  if (type == j.end()) throw ShapeError(Join(path, "type"), "missing");
  v.type = GetString(*type, Join(path, "type"));
  if (auto it = j.find("text"); it != j.end()) v.text = GetString(*it, Join(path, "text"));
  if (auto it = j.find("data"); it != j.end()) v.data = GetString(*it, Join(path, "data"));
  if (auto it = j.find("uri"); it != j.end()) v.uri = GetString(*it, Join(path, "uri"));
  if (auto it = j.find("mime_type"); it != j.end()) {
    v.mime_type = GetString(*it, Join(path, "mime_type"));
  }
  v.extra = Extras(j, kBlockKeys);
}

std::vector<ContentBlock> ParseBlocks(const json& j, const std::string& path) {
  if (!j.is_array()) throw ShapeError(path, std::string("expected array, got ") + TypeName(j));
  std::vector<ContentBlock> out(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) ParseBlock(j[i], out[i], Index(path, i));
  return out;
}

constexpr std::array<const char*, 9> kStepKeys = {
    "type", "content", "id", "arguments", "call_id", "result", "is_error", "signature", "summary"};

bool IsContentStep(const std::string& type) {
  return type == "model_output" || type == "user_input";
}

void ParseStep(const json& j, Step& v, const std::string& path) {
  RequireObject(j, path);
  v = Step{};
  auto type = j.find("type");
  if (type == j.end()) throw ShapeError(Join(path, "type"), "missing");
  v.type = GetString(*type, Join(path, "type"));
  if (auto it = j.find("content"); it != j.end()) {
    // A user_input step may carry a plain string as its content (the SDKs accept both).
    if (it->is_string() && v.type == "user_input") {
      v.content.push_back(ContentBlock::Text(it->get<std::string>()));
      v.extra["content"] = *it;  // keeps the exact original form for the round trip
    } else {
      v.content = ParseBlocks(*it, Join(path, "content"));
    }
  }
  if (auto it = j.find("id"); it != j.end()) v.id = GetString(*it, Join(path, "id"));
  if (auto it = j.find("arguments"); it != j.end()) {
    const std::string apath = Join(path, "arguments");
    RequireObject(*it, apath);
    if (auto c = it->find("code"); c != it->end()) v.code = GetString(*c, Join(apath, "code"));
    if (auto l = it->find("language"); l != it->end()) {
      v.language = GetString(*l, Join(apath, "language"));
    }
    json rest = Extras(*it, std::array<const char*, 2>{"code", "language"});
    // Remember that "arguments" existed (even when empty) and keep its unknown members.
    v.extra["arguments"] = std::move(rest);
  }
  if (auto it = j.find("call_id"); it != j.end()) v.call_id = GetString(*it, Join(path, "call_id"));
  if (auto it = j.find("result"); it != j.end()) {
    if (it->is_string()) {
      v.result = it->get<std::string>();
    } else {
      // Some revisions send result as content blocks; keep them verbatim and expose their text.
      if (it->is_array()) {
        for (const auto& b : *it) {
          if (b.is_object() && b.value("type", "") == "text" && b.contains("text") &&
              b["text"].is_string()) {
            v.result += b["text"].get<std::string>();
          }
        }
      } else if (!it->is_null()) {
        throw ShapeError(Join(path, "result"),
                         std::string("expected string or array, got ") + TypeName(*it));
      }
      v.extra["result"] = *it;
    }
  }
  if (auto it = j.find("is_error"); it != j.end()) {
    v.is_error = GetBool(*it, Join(path, "is_error"));
  }
  if (auto it = j.find("signature"); it != j.end()) {
    v.signature = GetString(*it, Join(path, "signature"));
  }
  if (auto it = j.find("summary"); it != j.end()) v.summary = *it;
  json extra = Extras(j, kStepKeys);
  for (auto& [k, val] : extra.items()) v.extra[k] = val;
}

json StepToJson(const Step& v) {
  json j = FromExtra(v.extra);
  j["type"] = v.type;
  const bool original_content_string = j.contains("content") && j["content"].is_string();
  if (!original_content_string && (IsContentStep(v.type) || !v.content.empty())) {
    j["content"] = v.content;
  }
  if (!v.id.empty()) j["id"] = v.id;
  if (v.type == "code_execution_call" || !v.code.empty() || !v.language.empty() ||
      j.contains("arguments")) {
    json args =
        j.contains("arguments") && j["arguments"].is_object() ? j["arguments"] : json::object();
    if (v.type == "code_execution_call" || !v.code.empty()) args["code"] = v.code;
    if (!v.language.empty()) args["language"] = v.language;
    j["arguments"] = std::move(args);
  }
  if (!v.call_id.empty()) j["call_id"] = v.call_id;
  if (!j.contains("result") && (v.type == "code_execution_result" || !v.result.empty())) {
    j["result"] = v.result;
  }
  if (v.is_error) j["is_error"] = *v.is_error;
  if (v.signature) j["signature"] = *v.signature;
  if (!v.summary.is_null()) j["summary"] = v.summary;
  return j;
}

std::vector<Step> ParseSteps(const json& j, const std::string& path) {
  if (!j.is_array()) throw ShapeError(path, std::string("expected array, got ") + TypeName(j));
  std::vector<Step> out(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) ParseStep(j[i], out[i], Index(path, i));
  return out;
}

constexpr std::array<const char*, 4> kUsageKeys = {"total_input_tokens", "total_output_tokens",
                                                   "total_tool_use_tokens", "total_tokens"};

void ParseUsage(const json& j, Usage& v, const std::string& path) {
  RequireObject(j, path);
  v = Usage{};
  std::int64_t* fields[] = {&v.total_input_tokens, &v.total_output_tokens, &v.total_tool_use_tokens,
                            &v.total_tokens};
  for (std::size_t i = 0; i < kUsageKeys.size(); ++i) {
    if (auto it = j.find(kUsageKeys[i]); it != j.end() && !it->is_null()) {
      *fields[i] = GetInt(*it, Join(path, kUsageKeys[i]));
    }
  }
  v.extra = Extras(j, kUsageKeys);
}

constexpr std::array<const char*, 8> kInteractionKeys = {"id",    "status",  "steps",   "usage",
                                                         "model", "created", "updated", "object"};

void ParseInteractionJson(const json& j, Interaction& v, const std::string& path) {
  RequireObject(j, path);
  v = Interaction{};
  if (!j.contains("id") && !j.contains("status") && !j.contains("steps")) {
    throw ShapeError(path.empty() ? "<root>" : path,
                     "not an interaction: none of id, status, steps is present");
  }
  if (auto it = j.find("id"); it != j.end()) v.id = GetString(*it, Join(path, "id"));
  if (auto it = j.find("status"); it != j.end()) v.status = GetString(*it, Join(path, "status"));
  if (auto it = j.find("steps"); it != j.end() && !it->is_null()) {
    v.steps = ParseSteps(*it, Join(path, "steps"));
  }
  if (auto it = j.find("usage"); it != j.end() && !it->is_null()) {
    Usage u;
    ParseUsage(*it, u, Join(path, "usage"));
    v.usage = std::move(u);
  }
  if (auto it = j.find("model"); it != j.end()) v.model = GetString(*it, Join(path, "model"));
  if (auto it = j.find("created"); it != j.end()) {
    v.created = GetString(*it, Join(path, "created"));
  }
  if (auto it = j.find("updated"); it != j.end()) {
    v.updated = GetString(*it, Join(path, "updated"));
  }
  if (auto it = j.find("object"); it != j.end()) v.object = GetString(*it, Join(path, "object"));
  v.extra = Extras(j, kInteractionKeys);
}

constexpr std::array<const char*, 9> kRequestKeys = {"model",
                                                     "input",
                                                     "tools",
                                                     "system_instruction",
                                                     "generation_config",
                                                     "response_format",
                                                     "previous_interaction_id",
                                                     "store",
                                                     "stream"};

// Step types end in these; content block types ("text", "image", "audio", ...) never do.
bool LooksLikeStep(const json& element) {
  if (!element.is_object()) return false;
  auto t = element.find("type");
  if (t == element.end() || !t->is_string()) return false;
  const auto& s = t->get_ref<const std::string&>();
  auto ends_with = [&](std::string_view suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return s == "thought" || ends_with("_input") || ends_with("_output") || ends_with("_call") ||
         ends_with("_result");
}

void ParseRequest(const json& j, InteractionRequest& v, const std::string& path) {
  RequireObject(j, path);
  v = InteractionRequest{};
  if (auto it = j.find("model"); it != j.end()) v.model = GetString(*it, Join(path, "model"));
  if (auto it = j.find("input"); it != j.end()) {
    const std::string ipath = Join(path, "input");
    if (it->is_string()) {
      v.input = it->get<std::string>();
    } else if (it->is_array()) {
      if (!it->empty() && LooksLikeStep((*it)[0])) {
        v.input = ParseSteps(*it, ipath);
      } else {
        v.input = ParseBlocks(*it, ipath);
      }
    } else if (it->is_object()) {
      // A single content block or step; normalise to a one-element list.
      if (LooksLikeStep(*it)) {
        v.input = ParseSteps(json::array({*it}), ipath);
      } else {
        v.input = ParseBlocks(json::array({*it}), ipath);
      }
    } else {
      throw ShapeError(ipath,
                       std::string("expected string, array or object, got ") + TypeName(*it));
    }
  }
  if (auto it = j.find("tools"); it != j.end() && !it->is_null()) {
    const std::string tpath = Join(path, "tools");
    if (!it->is_array()) {
      throw ShapeError(tpath, std::string("expected array, got ") + TypeName(*it));
    }
    for (const auto& t : *it) v.tools.push_back(t);
  }
  if (auto it = j.find("system_instruction"); it != j.end() && !it->is_null()) {
    v.system_instruction = GetString(*it, Join(path, "system_instruction"));
  }
  if (auto it = j.find("generation_config"); it != j.end()) v.generation_config = *it;
  if (auto it = j.find("response_format"); it != j.end()) v.response_format = *it;
  if (auto it = j.find("previous_interaction_id"); it != j.end() && !it->is_null()) {
    v.previous_interaction_id = GetString(*it, Join(path, "previous_interaction_id"));
  }
  if (auto it = j.find("store"); it != j.end() && !it->is_null()) {
    v.store = GetBool(*it, Join(path, "store"));
  }
  if (auto it = j.find("stream"); it != j.end() && !it->is_null()) {
    v.stream = GetBool(*it, Join(path, "stream"));
  }
  v.extra = Extras(j, kRequestKeys);
}

// A delay in milliseconds, or nothing when negative, not finite or beyond a year (a hostile
// or broken server must not park the client, nor overflow the conversion).
std::optional<std::int64_t> MillisecondsIfSane(double ms) {
  constexpr double kYearMs = 365.0 * 24 * 3600 * 1000;
  if (!std::isfinite(ms) || ms < 0 || ms > kYearMs) return std::nullopt;
  return static_cast<std::int64_t>(std::ceil(ms));
}

// Protobuf Duration in JSON: "1.5s", "30s", "0.250s"; also {"seconds":1,"nanos":500000000}.
std::optional<std::int64_t> ParseDurationMs(const json& v) {
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (s.empty() || s.back() != 's') return std::nullopt;
    s.pop_back();
    try {
      std::size_t used = 0;
      double seconds = std::stod(s, &used);
      if (used != s.size()) return std::nullopt;
      return MillisecondsIfSane(seconds * 1000.0);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  if (v.is_object()) {
    double seconds = 0, nanos = 0;
    if (auto s = v.find("seconds"); s != v.end()) {
      if (s->is_number()) {
        seconds = s->get<double>();
      } else if (s->is_string()) {
        try {
          seconds = std::stod(s->get<std::string>());
        } catch (const std::exception&) {
          return std::nullopt;
        }
      }
    }
    if (auto n = v.find("nanos"); n != v.end() && n->is_number()) nanos = n->get<double>();
    return MillisecondsIfSane(seconds * 1000.0 + nanos / 1e6);
  }
  return std::nullopt;
}

bool TypeUrlEndsWith(const json& detail, std::string_view suffix) {
  auto t = detail.find("@type");
  if (t == detail.end() || !t->is_string()) return false;
  const auto& s = t->get_ref<const std::string&>();
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void ParseErrorJson(const json& j, GoogleError& v) {
  RequireObject(j, "");
  auto err_it = j.find("error");
  if (err_it == j.end()) throw ShapeError("error", "missing");
  const json& e = RequireObject(*err_it, "error");
  v = GoogleError{};
  if (auto it = e.find("code"); it != e.end()) v.code = static_cast<int>(GetInt(*it, "error.code"));
  if (auto it = e.find("message"); it != e.end()) v.message = GetString(*it, "error.message");
  if (auto it = e.find("status"); it != e.end()) v.status = GetString(*it, "error.status");
  if (auto it = e.find("details"); it != e.end() && !it->is_null()) {
    if (!it->is_array()) {
      throw ShapeError("error.details", std::string("expected array, got ") + TypeName(*it));
    }
    v.details = *it;
    for (const auto& d : *it) {
      if (!d.is_object()) continue;
      if (TypeUrlEndsWith(d, "google.rpc.RetryInfo")) {
        if (auto rd = d.find("retryDelay"); rd != d.end()) {
          if (auto ms = ParseDurationMs(*rd)) v.retry_delay_ms = *ms;
        }
      } else if (TypeUrlEndsWith(d, "google.rpc.ErrorInfo")) {
        if (auto r = d.find("reason"); r != d.end() && r->is_string() && v.reason.empty()) {
          v.reason = r->get<std::string>();
        }
      }
    }
  }
}

std::string FormatSeconds(std::int64_t ms) {
  std::string s = std::to_string(ms / 1000);
  if (ms % 1000 != 0) {
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(ms % 1000));
    s += frac;
    while (s.back() == '0') s.pop_back();
  }
  return s + "s";
}

std::string DumpLossless(const json& j) {
  // Invalid UTF-8 in a text field must not throw out of a serialiser; replace it (U+FFFD).
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Status ShapeStatus(const char* what, const ShapeError& e) {
  return Status(StatusCode::kInternal,
                std::string(what) + " has an unexpected shape: " + e.path() + ": " + e.what());
}

Status ParseStatus(const char* what, std::string_view body, const json::parse_error& e) {
  const bool truncated = e.byte >= body.size();
  return Status(StatusCode::kDataLoss,
                std::string(what) + (truncated ? " is truncated JSON" : " is not valid JSON") +
                    " (error at byte " + std::to_string(e.byte) + " of " +
                    std::to_string(body.size()) + ")");
}

Status DepthStatus(const char* what, std::string_view body, const JsonTooDeepError& e) {
  return Status(StatusCode::kDataLoss, std::string(what) + " (" + std::to_string(body.size()) +
                                           " bytes) is refused: " + e.what());
}

// Finds the index one past the '}' balancing the '{' at `open`, skipping JSON strings.
std::optional<std::size_t> MatchBrace(const std::string& s, std::size_t open) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = open; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::nullopt;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
ContentBlock ContentBlock::Text(std::string text) {
  ContentBlock b;
  b.type = "text";
  b.text = std::move(text);
  return b;
}

ContentBlock ContentBlock::ImageBase64(std::string base64, std::string mime_type) {
  ContentBlock b;
  b.type = "image";
  b.data = std::move(base64);
  b.mime_type = std::move(mime_type);
  return b;
}

ContentBlock ContentBlock::ImageBytes(const std::vector<std::uint8_t>& bytes,
                                      std::string mime_type) {
  return ImageBase64(Base64Encode(bytes.data(), bytes.size()), std::move(mime_type));
}

void to_json(nlohmann::json& j, const ContentBlock& v) {
  j = FromExtra(v.extra);
  j["type"] = v.type;
  if (v.type == "text" || !v.text.empty()) j["text"] = v.text;
  if (!v.data.empty()) j["data"] = v.data;
  if (!v.uri.empty()) j["uri"] = v.uri;
  if (!v.mime_type.empty()) j["mime_type"] = v.mime_type;
}
void from_json(const nlohmann::json& j, ContentBlock& v) { ParseBlock(j, v, ""); }

void to_json(nlohmann::json& j, const Step& v) { j = StepToJson(v); }
void from_json(const nlohmann::json& j, Step& v) { ParseStep(j, v, ""); }

void to_json(nlohmann::json& j, const Usage& v) {
  j = FromExtra(v.extra);
  j["total_input_tokens"] = v.total_input_tokens;
  j["total_output_tokens"] = v.total_output_tokens;
  j["total_tool_use_tokens"] = v.total_tool_use_tokens;
  j["total_tokens"] = v.total_tokens;
}
void from_json(const nlohmann::json& j, Usage& v) { ParseUsage(j, v, ""); }

void to_json(nlohmann::json& j, const InteractionRequest& v) {
  j = FromExtra(v.extra);
  j["model"] = v.model;
  std::visit([&](const auto& input) { j["input"] = input; }, v.input);
  if (!v.tools.empty()) j["tools"] = v.tools;
  if (v.system_instruction) j["system_instruction"] = *v.system_instruction;
  if (!v.generation_config.is_null()) j["generation_config"] = v.generation_config;
  if (!v.response_format.is_null()) j["response_format"] = v.response_format;
  if (v.previous_interaction_id) j["previous_interaction_id"] = *v.previous_interaction_id;
  if (v.store) j["store"] = *v.store;
  if (v.stream) j["stream"] = *v.stream;
}
void from_json(const nlohmann::json& j, InteractionRequest& v) { ParseRequest(j, v, ""); }

void to_json(nlohmann::json& j, const Interaction& v) {
  j = FromExtra(v.extra);
  j["id"] = v.id;
  j["status"] = v.status;
  j["steps"] = v.steps;
  if (v.usage) j["usage"] = *v.usage;
  if (!v.model.empty()) j["model"] = v.model;
  if (!v.created.empty()) j["created"] = v.created;
  if (!v.updated.empty()) j["updated"] = v.updated;
  j["object"] = v.object.empty() ? std::string("interaction") : v.object;
}
void from_json(const nlohmann::json& j, Interaction& v) { ParseInteractionJson(j, v, ""); }

void to_json(nlohmann::json& j, const GoogleError& v) {
  json details = v.details.is_array() ? v.details : json::array();
  // Synthesise the standard detail messages when the caller set the shortcut fields only.
  if (v.retry_delay_ms && std::none_of(details.begin(), details.end(), [](const json& d) {
        return d.is_object() && TypeUrlEndsWith(d, "google.rpc.RetryInfo");
      })) {
    details.push_back({{"@type", "type.googleapis.com/google.rpc.RetryInfo"},
                       {"retryDelay", FormatSeconds(*v.retry_delay_ms)}});
  }
  if (!v.reason.empty() && std::none_of(details.begin(), details.end(), [](const json& d) {
        return d.is_object() && TypeUrlEndsWith(d, "google.rpc.ErrorInfo");
      })) {
    details.push_back({{"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
                       {"reason", v.reason},
                       {"domain", "googleapis.com"}});
  }
  json e = {{"code", v.code}, {"message", v.message}, {"status", v.status}};
  if (!details.empty()) e["details"] = std::move(details);
  j = json{{"error", std::move(e)}};
}
void from_json(const nlohmann::json& j, GoogleError& v) { ParseErrorJson(j, v); }

StatusOr<Interaction> ParseInteraction(std::string_view body) {
  json j;
  try {
    j = ParseBoundedJson(body);
  } catch (const json::parse_error& e) {
    return ParseStatus("interaction response", body, e);
  } catch (const JsonTooDeepError& e) {
    return DepthStatus("interaction response", body, e);
  }
  try {
    Interaction v;
    ParseInteractionJson(j, v, "");
    return v;
  } catch (const ShapeError& e) {
    return ShapeStatus("interaction response", e);
  } catch (const std::exception& e) {
    return Status(StatusCode::kInternal,
                  std::string("interaction response could not be read: ") + e.what());
  }
}

StatusOr<GoogleError> ParseGoogleError(std::string_view body) {
  json j;
  try {
    j = ParseBoundedJson(body);
  } catch (const json::parse_error& e) {
    return ParseStatus("error body", body, e);
  } catch (const JsonTooDeepError& e) {
    return DepthStatus("error body", body, e);
  }
  try {
    GoogleError v;
    ParseErrorJson(j, v);
    return v;
  } catch (const ShapeError& e) {
    return ShapeStatus("error body", e);
  } catch (const std::exception& e) {
    return Status(StatusCode::kInternal, std::string("error body could not be read: ") + e.what());
  }
}

std::string SerializeRequest(const InteractionRequest& request) {
  json j = request;
  return DumpLossless(j);
}

// ---------------------------------------------------------------------------------------------
namespace {
constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// 0..63: value; kSkip: whitespace (line-wrapped base64); kPad: '='; kBad: anything else.
// '-' and '_' decode too, so URL-safe payloads are accepted.
constexpr std::uint8_t kBad = 0xFF, kSkip = 0xFE, kPad = 0xFD;
constexpr std::array<std::uint8_t, 256> MakeDecodeTable() {
  std::array<std::uint8_t, 256> t{};
  for (auto& x : t) x = kBad;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kBase64Alphabet[i])] = i;
  t['-'] = 62;
  t['_'] = 63;
  t[' '] = t['\n'] = t['\r'] = t['\t'] = kSkip;
  t['='] = kPad;
  return t;
}
constexpr std::array<std::uint8_t, 256> kDecode = MakeDecodeTable();
}  // namespace

std::string Base64Encode(const std::uint8_t* data, std::size_t size) {
  std::string out((size + 2) / 3 * 4, '\0');
  char* o = out.data();
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    std::uint32_t n = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) |
                      std::uint32_t{data[i + 2]};
    *o++ = kBase64Alphabet[(n >> 18) & 63];
    *o++ = kBase64Alphabet[(n >> 12) & 63];
    *o++ = kBase64Alphabet[(n >> 6) & 63];
    *o++ = kBase64Alphabet[n & 63];
  }
  if (std::size_t rest = size - i; rest > 0) {
    std::uint32_t n = std::uint32_t{data[i]} << 16;
    if (rest == 2) n |= std::uint32_t{data[i + 1]} << 8;
    *o++ = kBase64Alphabet[(n >> 18) & 63];
    *o++ = kBase64Alphabet[(n >> 12) & 63];
    *o++ = rest == 2 ? kBase64Alphabet[(n >> 6) & 63] : '=';
    *o++ = '=';
  }
  return out;
}

StatusOr<std::vector<std::uint8_t>> Base64Decode(std::string_view text) {
  std::vector<std::uint8_t> out;
  out.reserve(text.size() / 4 * 3 + 3);
  std::uint32_t acc = 0;
  int have = 0;  // sextets in acc
  std::size_t i = 0;
  const std::size_t n = text.size();
  // Fast path: four clean symbols at a time.
  while (i + 4 <= n) {
    auto a = kDecode[static_cast<unsigned char>(text[i])];
    auto b = kDecode[static_cast<unsigned char>(text[i + 1])];
    auto c = kDecode[static_cast<unsigned char>(text[i + 2])];
    auto d = kDecode[static_cast<unsigned char>(text[i + 3])];
    if ((a | b | c | d) & 0xC0) break;  // a special symbol: finish on the slow path
    std::uint32_t v =
        (std::uint32_t{a} << 18) | (std::uint32_t{b} << 12) | (std::uint32_t{c} << 6) | d;
    out.push_back(static_cast<std::uint8_t>(v >> 16));
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v));
    i += 4;
  }
  bool padding = false;
  for (; i < n; ++i) {
    auto v = kDecode[static_cast<unsigned char>(text[i])];
    if (v == kSkip) continue;
    if (v == kPad) {
      padding = true;
      continue;
    }
    if (v == kBad || padding) {
      return Status(StatusCode::kInvalidArgument,
                    "invalid base64: unexpected character at offset " + std::to_string(i));
    }
    acc = (acc << 6) | v;
    if (++have == 4) {
      out.push_back(static_cast<std::uint8_t>(acc >> 16));
      out.push_back(static_cast<std::uint8_t>(acc >> 8));
      out.push_back(static_cast<std::uint8_t>(acc));
      acc = 0;
      have = 0;
    }
  }
  if (have == 1) {
    return Status(StatusCode::kInvalidArgument,
                  "invalid base64: " + std::to_string(n) + " characters leave a dangling symbol");
  }
  if (have == 2) {
    out.push_back(static_cast<std::uint8_t>(acc >> 4));
  } else if (have == 3) {
    out.push_back(static_cast<std::uint8_t>(acc >> 10));
    out.push_back(static_cast<std::uint8_t>(acc >> 2));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
std::string Interaction::FinalText() const {
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    if (it->type != "model_output") continue;
    std::string text;
    bool any = false;
    for (const auto& b : it->content) {
      if (b.type == "text") {
        text += b.text;
        any = true;
      }
    }
    if (any) return text;
  }
  return {};
}

namespace {

/// The text's final line when that line alone is a JSON object (a closing ``` fence and blank
/// lines after it are skipped): the answer line the task prompt asks for.
std::optional<json> FinalLineObject(const std::string& text) {
  std::size_t end = text.size();
  while (end > 0) {
    const std::size_t newline = text.rfind('\n', end - 1);
    const std::size_t begin = newline == std::string::npos ? 0 : newline + 1;
    std::string_view line = std::string_view(text).substr(begin, end - begin);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) {
      line.remove_prefix(1);
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
      line.remove_suffix(1);
    }
    if (!line.empty() && line.rfind("```", 0) != 0) {
      if (line.front() != '{' || line.back() != '}') return std::nullopt;
      json parsed = ParseBoundedJsonOrDiscard(line);
      if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
      return parsed;
    }
    if (newline == std::string::npos) break;
    end = newline;
  }
  return std::nullopt;
}

}  // namespace

StatusOr<nlohmann::json> Interaction::LastJsonObject() const {
  const std::string text = FinalText();
  // The usual case, in linear time: the answer is the final line. The search below would miss a
  // long one, a count listing more objects (one '{' each) than it tries openings.
  if (std::optional<json> line = FinalLineObject(text)) return *std::move(line);
  // Prefer the candidate that ends last; among those, the outermost (smallest start). Each
  // candidate costs a scan to its closing brace, so a hostile text of many '{' would cost
  // O(n^2): only the last kMaxCandidates openings are tried (the answer ends the text).
  constexpr int kMaxCandidates = 512;
  int candidates = 0;
  std::optional<std::size_t> best_start, best_end;
  json best;
  for (std::size_t pos = text.rfind('{'); pos != std::string::npos && candidates < kMaxCandidates;
       pos = pos == 0 ? std::string::npos : text.rfind('{', pos - 1)) {
    ++candidates;
    auto end = MatchBrace(text, pos);
    if (!end) continue;
    if (best_end && *end < *best_end) continue;
    json parsed = ParseBoundedJsonOrDiscard(std::string_view(text).substr(pos, *end - pos));
    if (parsed.is_discarded() || !parsed.is_object()) continue;
    best_start = pos;
    best_end = *end;
    best = std::move(parsed);
  }
  if (!best_start) {
    return NotFoundError("no JSON object in the final model text of interaction '" + id + "' (" +
                         std::to_string(text.size()) + " characters)");
  }
  return best;
}

std::vector<cv::Mat> Interaction::OutputImages() const {
  std::vector<cv::Mat> images;
  for (const auto& step : steps) {
    if (step.type != "model_output") continue;
    for (const auto& b : step.content) {
      if (b.type != "image" || b.data.empty()) continue;
      auto bytes = Base64Decode(b.data);
      if (!bytes.ok() || bytes->empty()) continue;
      try {
        cv::Mat m = cv::imdecode(*bytes, cv::IMREAD_COLOR);
        if (!m.empty()) images.push_back(std::move(m));
      } catch (const cv::Exception&) {
        // undecodable: skipped, as documented
      }
    }
  }
  return images;
}

std::vector<CodeRun> Interaction::CodeRuns() const {
  std::vector<CodeRun> runs;
  std::unordered_map<std::string, std::size_t> by_id;
  for (const auto& step : steps) {
    if (step.type == "code_execution_call") {
      CodeRun r;
      r.call_id = step.id;
      r.code = step.code;
      r.language = step.language;
      if (!step.id.empty()) by_id[step.id] = runs.size();
      runs.push_back(std::move(r));
    } else if (step.type == "code_execution_result") {
      CodeRun* target = nullptr;
      if (auto it = by_id.find(step.call_id); it != by_id.end()) {
        target = &runs[it->second];
        by_id.erase(it);  // a second result for the same id becomes its own entry
      } else if (step.call_id.empty() && !runs.empty() && !runs.back().has_result) {
        target = &runs.back();  // no id given: pair with the call just before it
      } else {
        runs.push_back(CodeRun{});
        target = &runs.back();
        target->call_id = step.call_id;
      }
      target->result = step.result;
      target->is_error = step.is_error.value_or(false);
      target->has_result = true;
    }
  }
  return runs;
}

}  // namespace roilens::wire
