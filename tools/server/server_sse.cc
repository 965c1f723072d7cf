// Local backend: renders interactions as the Interactions SSE stream (the event names and shapes
// of @google/genai 3.x: interaction.created, step.start / step.delta / step.stop per step as it
// is produced, interaction.completed, then `data: [DONE]`).
#include "server_internal.h"

namespace roilens::backend::internal {
namespace {

// Text arrives in pieces of this many bytes, like a model streaming tokens; small enough that
// clients see several deltas for a paragraph, large enough to keep the event count modest.
constexpr std::size_t kTextDeltaBytes = 256;

std::string Frame(int& event_id, Json event) {
  event["event_id"] = "evt_" + std::to_string(++event_id);
  return "event: " + event["event_type"].get<std::string>() + "\ndata: " + event.dump() + "\n\n";
}

// Splits at a UTF-8 boundary at or before `max` bytes.
std::vector<std::string> SplitText(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t n = std::min(kTextDeltaBytes, text.size() - pos);
    while (n > 1 && pos + n < text.size() &&
           (static_cast<unsigned char>(text[pos + n]) & 0xC0) == 0x80) {
      --n;
    }
    out.push_back(text.substr(pos, n));
    pos += n;
  }
  if (out.empty()) out.emplace_back();
  return out;
}

}  // namespace

std::string SseCreatedFrame(const Json& interaction) {
  int event_id = 0;
  Json head = {{"id", interaction["id"]},
               {"object", "interaction"},
               {"model", interaction.value("model", "")},
               {"status", "in_progress"},
               {"created", interaction.value("created", "")},
               {"updated", interaction.value("created", "")}};
  return Frame(event_id, {{"event_type", "interaction.created"}, {"interaction", head}});
}

std::string SseErrorFrame(const HttpError& error) {
  int event_id = 1000000;
  return Frame(event_id, {{"event_type", "error"}, {"error", GoogleErrorBody(error)["error"]}}) +
         "data: [DONE]\n\n";
}

std::vector<std::string> SseStepFrames(int& event_id, std::size_t index, const Json& step) {
  std::vector<std::string> frames;
  const std::string type = step.value("type", "");
  std::vector<Json> deltas;
  Json start = step;
  if (type == "model_output") {
    start["content"] = Json::array();
    for (const auto& block : step.value("content", Json::array())) {
      if (block.value("type", "") == "text") {
        for (auto& piece : SplitText(block.value("text", ""))) {
          deltas.push_back({{"type", "text"}, {"text", std::move(piece)}});
        }
      } else {
        deltas.push_back(block);  // image (and any other) blocks arrive whole
      }
    }
  } else if (type == "thought") {
    start.erase("summary");
    start.erase("signature");
    for (const auto& block : step.value("summary", Json::array())) {
      deltas.push_back({{"type", "thought_summary"}, {"content", block}});
    }
    if (step.contains("signature")) {
      deltas.push_back({{"type", "thought_signature"}, {"signature", step["signature"]}});
    }
  } else if (type == "code_execution_call") {
    start["arguments"] = Json::object();
    start.erase("signature");
    Json delta = {{"type", "code_execution_call"},
                  {"arguments", step.value("arguments", Json::object())}};
    if (step.contains("signature")) delta["signature"] = step["signature"];
    deltas.push_back(std::move(delta));
  } else if (type == "code_execution_result") {
    start["result"] = "";
    start.erase("signature");
    start.erase("is_error");
    Json delta = {{"type", "code_execution_result"}, {"result", step.value("result", "")}};
    if (step.contains("is_error")) delta["is_error"] = step["is_error"];
    if (step.contains("signature")) delta["signature"] = step["signature"];
    deltas.push_back(std::move(delta));
  }
  frames.push_back(Frame(
      event_id, {{"event_type", "step.start"}, {"index", index}, {"step", std::move(start)}}));
  for (auto& delta : deltas) {
    frames.push_back(Frame(
        event_id, {{"event_type", "step.delta"}, {"index", index}, {"delta", std::move(delta)}}));
  }
  frames.push_back(Frame(event_id, {{"event_type", "step.stop"}, {"index", index}}));
  return frames;
}

std::vector<std::string> SseEndFrames(int& event_id, const Json& interaction) {
  return {Frame(event_id, {{"event_type", "interaction.status_update"},
                           {"interaction_id", interaction["id"]},
                           {"status", interaction.value("status", "completed")}}),
          Frame(event_id, {{"event_type", "interaction.completed"}, {"interaction", interaction}}),
          "data: [DONE]\n\n"};
}

std::vector<std::string> SseFrames(const Json& interaction) {
  std::vector<std::string> frames;
  int event_id = 1;  // evt_1 is interaction.created
  const Json& steps = interaction["steps"];
  for (std::size_t index = 0; index < steps.size(); ++index) {
    for (auto& f : SseStepFrames(event_id, index, steps[index])) frames.push_back(std::move(f));
  }
  for (auto& f : SseEndFrames(event_id, interaction)) frames.push_back(std::move(f));
  return frames;
}

}  // namespace roilens::backend::internal
