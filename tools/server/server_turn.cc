// Local backend: parses create requests (input as string, content blocks or steps; previous
// interaction history) and orchestrates one model turn with the Coder and the Sandbox.
#include <algorithm>
#include <exception>
#include <set>

#include "server_internal.h"

namespace roilens::backend::internal {
namespace {

// Deep chains are legal but a runaway chain (or a cycle) must not loop forever.
constexpr int kMaxHistoryDepth = 1000;
constexpr int kTokensPerImage = 258;

Status BadRequest(std::string message) {
  return Status(StatusCode::kInvalidArgument, std::move(message), 400);
}

bool IsStepType(const std::string& type) {
  static const std::set<std::string> kSteps = {"user_input", "model_output", "thought"};
  if (kSteps.count(type)) return true;
  auto ends_with = [&](std::string_view suffix) {
    return type.size() > suffix.size() &&
           type.compare(type.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends_with("_call") || ends_with("_result");
}

// Checks one content block; `where` names it in errors ("input[2]").
Status ValidateBlock(const Json& block, const std::string& where) {
  if (!block.is_object() || !block.contains("type") || !block["type"].is_string()) {
    return BadRequest(where + ": a content block must be an object with a string \"type\"");
  }
  const std::string type = block["type"];
  if (type == "text") {
    if (!block.contains("text") || !block["text"].is_string()) {
      return BadRequest(where + ".text: a text block needs a string \"text\"");
    }
  } else if (type == "image") {
    if (block.contains("data")) {
      if (!block["data"].is_string() || !Base64Decode(block["data"].get<std::string>())) {
        return BadRequest(where + ".data: image data must be base64 (standard alphabet)");
      }
      if (!block.contains("mime_type") || !block["mime_type"].is_string()) {
        return BadRequest(where + ".mime_type: an inline image needs its mime_type");
      }
    } else if (block.contains("uri")) {
      return BadRequest(where +
                        ".uri: the local backend cannot fetch image URIs; send the bytes inline "
                        "as base64 \"data\"");
    } else {
      return BadRequest(where + ": an image block needs \"data\" (base64) and \"mime_type\"");
    }
  }
  return OkStatus();
}

Status ValidateStep(const Json& step, const std::string& where) {
  const std::string type = step["type"];
  if (step.contains("content")) {
    if (!step["content"].is_array()) return BadRequest(where + ".content must be an array");
    for (std::size_t i = 0; i < step["content"].size(); ++i) {
      if (auto s = ValidateBlock(step["content"][i], where + ".content[" + std::to_string(i) + "]");
          !s.ok()) {
        return s;
      }
    }
  }
  return OkStatus();
}

StatusOr<Json> InputToSteps(const Json& input) {
  if (input.is_string()) {
    return Json::array({Json{{"type", "user_input"},
                             {"content", Json::array({{{"type", "text"}, {"text", input}}})}}});
  }
  Json items = input.is_array() ? input : Json::array({input});
  if (!input.is_array() && !input.is_object()) {
    return BadRequest(
        "input must be a string, a content block, or an array of content blocks or "
        "steps");
  }
  if (items.empty()) return BadRequest("input must not be empty");
  bool any_step = false, any_block = false;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string where = "input[" + std::to_string(i) + "]";
    if (items[i].is_string()) {  // a bare string in a list is a text block
      items[i] = Json{{"type", "text"}, {"text", items[i]}};
    }
    if (!items[i].is_object() || !items[i].contains("type") || !items[i]["type"].is_string()) {
      return BadRequest(where + ": expected an object with a string \"type\"");
    }
    const bool step = IsStepType(items[i]["type"].get<std::string>());
    (step ? any_step : any_block) = true;
    auto status = step ? ValidateStep(items[i], where) : ValidateBlock(items[i], where);
    if (!status.ok()) return status;
  }
  if (any_step && any_block) {
    return BadRequest("input mixes steps and content blocks; send either content blocks or steps");
  }
  if (any_step) return items;
  return Json::array({Json{{"type", "user_input"}, {"content", items}}});
}

std::string FlattenInstruction(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  std::string out;
  auto add = [&](const Json& part) {
    if (part.is_object() && part.contains("text") && part["text"].is_string()) {
      if (!out.empty()) out += "\n";
      out += part["text"].get<std::string>();
    } else if (part.is_string()) {
      if (!out.empty()) out += "\n";
      out += part.get<std::string>();
    }
  };
  if (value.is_array()) {
    for (const auto& p : value) add(p);
  } else if (value.is_object()) {
    if (value.contains("parts") && value["parts"].is_array()) {
      for (const auto& p : value["parts"]) add(p);
    } else {
      add(value);
    }
  }
  return out;
}

std::int64_t TextTokens(std::size_t chars) { return static_cast<std::int64_t>((chars + 3) / 4); }

std::string MimeExtension(const std::string& mime) {
  if (mime == "image/jpeg" || mime == "image/jpg") return "jpg";
  if (mime == "image/webp") return "webp";
  if (mime == "image/bmp") return "bmp";
  if (mime == "image/tiff") return "tiff";
  return "png";
}

Json TextBlock(const std::string& text) { return Json{{"type", "text"}, {"text", text}}; }

std::string Truncate(const std::string& s, std::size_t n) {
  return s.size() <= n ? s : s.substr(0, n) + "...";
}

}  // namespace

StatusOr<ParsedRequest> ParseCreateRequest(const Json& body, InteractionStore& store) {
  if (!body.is_object()) return BadRequest("request body must be a JSON object");
  ParsedRequest req;
  req.body = body;
  if (!body.contains("model") || !body["model"].is_string() ||
      body["model"].get<std::string>().empty()) {
    return BadRequest("model is required (a non-empty string, e.g. \"gemini-3-flash-preview\")");
  }
  req.model = body["model"];
  if (auto it = body.find("store"); it != body.end() && !it->is_null()) {
    if (!it->is_boolean()) return BadRequest("store must be a boolean");
    req.store = *it;
  }
  if (auto it = body.find("stream"); it != body.end() && !it->is_null()) {
    if (!it->is_boolean()) return BadRequest("stream must be a boolean");
    req.stream = *it;
  }
  if (auto it = body.find("tools"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) return BadRequest("tools must be an array");
    for (std::size_t i = 0; i < it->size(); ++i) {
      const Json& tool = (*it)[i];
      if (!tool.is_object() || !tool.contains("type") || !tool["type"].is_string()) {
        return BadRequest("tools[" + std::to_string(i) + "]: expected {\"type\": ...}");
      }
      if (tool["type"] == "code_execution") req.code_execution = true;
    }
  }
  if (auto it = body.find("system_instruction"); it != body.end() && !it->is_null()) {
    req.system_instruction = FlattenInstruction(*it);
  }
  if (!body.contains("input") || body["input"].is_null()) {
    return BadRequest("input is required (a string, content blocks or steps)");
  }
  auto steps = InputToSteps(body["input"]);
  if (!steps.ok()) return steps.status();
  req.input_steps = std::move(*steps);

  req.history_steps = Json::array();
  if (auto it = body.find("previous_interaction_id"); it != body.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>().empty()) {
      return BadRequest("previous_interaction_id must be a non-empty string");
    }
    req.previous_interaction_id = *it;
    // Walk the chain back to its first turn, then lay the turns out oldest first.
    std::vector<Json> turns;
    std::string id = req.previous_interaction_id;
    for (int depth = 0; !id.empty(); ++depth) {
      if (depth >= kMaxHistoryDepth) {
        return BadRequest("previous_interaction_id chain is longer than " +
                          std::to_string(kMaxHistoryDepth) + " turns");
      }
      auto stored = store.Get(id);
      if (!stored) {
        const bool first = id == req.previous_interaction_id;
        return Status(StatusCode::kNotFound,
                      first
                          ? "previous interaction '" + id +
                                "' not found (unknown, expired, deleted or created with "
                                "store:false)"
                          : "interaction '" + id + "', an earlier turn of previous interaction '" +
                                req.previous_interaction_id + "', is no longer stored",
                      404);
      }
      turns.push_back(stored->interaction.value("steps", Json::array()));
      id = stored->previous_interaction_id;
    }
    for (auto t = turns.rbegin(); t != turns.rend(); ++t) {
      for (auto& step : *t) req.history_steps.push_back(std::move(step));
    }
  }
  return req;
}

CoderInput MakeCoderInput(const ParsedRequest& request) {
  CoderInput input;
  input.system_instruction = request.system_instruction;
  std::vector<const Json*> latest_images;
  auto visit = [&](const Json& steps) {
    for (const auto& step : steps) {
      if (step.value("type", "") != "user_input" || !step.contains("content")) continue;
      std::vector<const Json*> images;
      for (const auto& block : step["content"]) {
        const std::string type = block.value("type", "");
        if (type == "text") {
          if (!input.text.empty()) input.text += "\n";
          input.text += block.value("text", "");
        } else if (type == "image" && block.contains("data")) {
          images.push_back(&block);
        }
      }
      // The images of the latest turn that sent any are the ones the code works on.
      if (!images.empty()) latest_images = std::move(images);
    }
  };
  visit(request.history_steps);
  visit(request.input_steps);
  for (const Json* block : latest_images) {
    auto bytes = Base64Decode((*block)["data"].get<std::string>());
    if (!bytes) continue;  // validated on parse; history from the store was validated then too
    input.images.push_back({block->value("mime_type", "image/png"), std::move(*bytes)});
  }
  return input;
}

Json EstimateUsage(const Json& input_steps, const Json& output_steps) {
  std::int64_t in_text = 0, in_image = 0, out_text = 0, out_image = 0, tool = 0, thought = 0;
  auto count_blocks = [](const Json& content, std::int64_t& text, std::int64_t& image) {
    if (!content.is_array()) return;
    for (const auto& b : content) {
      const std::string type = b.value("type", "");
      if (type == "text") text += TextTokens(b.value("text", "").size());
      if (type == "image") image += kTokensPerImage;
    }
  };
  for (const auto& step : input_steps) {
    // Everything sent (including replayed model steps) is read by the model as input.
    if (step.contains("content")) count_blocks(step["content"], in_text, in_image);
    if (step.contains("arguments")) in_text += TextTokens(step["arguments"].dump().size());
    if (step.contains("result") && step["result"].is_string()) {
      in_text += TextTokens(step["result"].get<std::string>().size());
    }
  }
  for (const auto& step : output_steps) {
    const std::string type = step.value("type", "");
    if (type == "model_output") count_blocks(step["content"], out_text, out_image);
    if (type == "code_execution_call") {
      out_text += TextTokens(step["arguments"].value("code", "").size());
    }
    if (type == "code_execution_result") {
      tool += TextTokens(step.value("result", "").size());
    }
    if (type == "thought" && step.contains("summary")) {
      std::int64_t ignored = 0;
      count_blocks(step["summary"], thought, ignored);
    }
  }
  auto by_modality = [](std::int64_t text, std::int64_t image) {
    Json a = Json::array();
    if (text > 0) a.push_back({{"modality", "text"}, {"tokens", text}});
    if (image > 0) a.push_back({{"modality", "image"}, {"tokens", image}});
    return a;
  };
  const std::int64_t input = in_text + in_image, output = out_text + out_image;
  return Json{{"total_input_tokens", input},
              {"total_output_tokens", output},
              {"total_tool_use_tokens", tool},
              {"total_thought_tokens", thought},
              {"total_cached_tokens", 0},
              {"total_tokens", input + output + tool + thought},
              {"input_tokens_by_modality", by_modality(in_text, in_image)},
              {"output_tokens_by_modality", by_modality(out_text, out_image)},
              {"tool_use_tokens_by_modality", by_modality(tool, 0)}};
}

StatusOr<TurnResult> RunTurn(const ParsedRequest& request, const TurnContext& context) {
  TurnResult turn;
  Coder& coder = *context.coder;
  const CoderInput input = MakeCoderInput(request);
  const bool run_code = request.code_execution && coder.ExecutesCode();
  if (run_code && context.sandbox == nullptr) {
    return Status(
        StatusCode::kFailedPrecondition,
        "code execution is unavailable on this local backend: " +
            (context.sandbox_error.empty() ? std::string("no sandbox") : context.sandbox_error) +
            " (code is never run unsandboxed)",
        400, "SANDBOX_UNAVAILABLE");
  }
  // Each step goes to on_step the moment it exists, so a stream shows the plan and the code
  // while the sandbox is still running it. on_step returning false (cancelled, or the client
  // hung up) ends the turn there: status "cancelled", with the steps produced so far.
  auto emit = [&](Json step) {
    turn.steps.push_back(std::move(step));
    if (!context.on_step || context.on_step(turn.steps.size() - 1, turn.steps.back())) return true;
    turn.steps.erase(turn.steps.size() - 1);  // not delivered: not part of the interaction
    return false;
  };
  auto add_usage = [&] {
    Json read = request.history_steps;
    for (const auto& s : request.input_steps) read.push_back(s);
    turn.usage = EstimateUsage(read, turn.steps);
  };
  auto stopped = [&]() -> StatusOr<TurnResult> {
    turn.status = "cancelled";
    add_usage();
    return std::move(turn);
  };
  try {
    std::string gist = input.text.substr(0, std::min<std::size_t>(input.text.find('\n'), 120));
    if (!emit({{"type", "thought"},
               {"signature", RandomSignature()},
               {"summary", Json::array({TextBlock(
                               std::string(run_code ? "Planning Python code for the request"
                                                    : "Answering the request directly") +
                               (input.images.empty()
                                    ? ""
                                    : " on " + std::to_string(input.images.size()) + " image(s)") +
                               ": " + Truncate(gist, 120))})}})) {
      return stopped();
    }

    std::vector<CoderObservation> history;
    if (run_code) {
      std::vector<SandboxFile> files;
      for (std::size_t i = 0; i < input.images.size(); ++i) {
        files.push_back(
            {"input_" + std::to_string(i) + "." + MimeExtension(input.images[i].mime_type),
             input.images[i].bytes});
      }
      const int attempts = std::max(1, context.max_attempts);
      for (int attempt = 0; attempt < attempts; ++attempt) {
        CoderProgram program = coder.Write(input, attempt, history);
        const std::string call_id = "call_" + RandomToken(16);
        if (!emit(
                {{"type", "model_output"}, {"content", Json::array({TextBlock(program.plan)})}}) ||
            !emit({{"type", "code_execution_call"},
                   {"id", call_id},
                   {"arguments", {{"code", program.code}, {"language", "python"}}},
                   {"signature", RandomSignature()}})) {
          return stopped();
        }
        SandboxResult result = context.sandbox->Run(SandboxJob{program.code, files, {}});
        if (!emit({{"type", "code_execution_result"},
                   {"call_id", call_id},
                   {"result", ResultText(result)},
                   {"is_error", !result.ok},
                   {"signature", RandomSignature()}})) {
          return stopped();
        }
        const bool ok = result.ok;
        history.push_back({std::move(result)});
        if (ok) break;
      }
      if (!history.back().result.ok) turn.status = "failed";
    }

    std::string answer = coder.Answer(input, history);
    if (turn.status == "failed") {
      std::string why =
          "The code failed in all " + std::to_string(history.size()) + " attempt(s); last error: " +
          (history.back().result.error.empty() ? "non-zero exit" : history.back().result.error);
      answer = answer.empty() ? why : why + "\n" + answer;
    }
    Json content = Json::array({TextBlock(answer)});
    for (const auto& image : coder.OutputImages(input, history)) {
      content.push_back(
          {{"type", "image"}, {"data", Base64Encode(image.bytes)}, {"mime_type", image.mime_type}});
    }
    if (!emit({{"type", "model_output"}, {"content", std::move(content)}})) return stopped();
  } catch (const std::exception& e) {
    return Status(StatusCode::kInternal, std::string("the local coder failed: ") + e.what(), 500);
  }
  add_usage();
  return turn;
}

}  // namespace roilens::backend::internal
