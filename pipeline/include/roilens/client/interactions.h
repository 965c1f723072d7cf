// The Interactions API wire model (requests, content blocks, steps, interactions, usage, errors)
// with lossless JSON round trips: unknown fields, ids and signatures survive parse -> serialize.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "roilens/client/status.h"

namespace roilens::wire {

/// {"type":"text","text"} | {"type":"image","data"(base64)|"uri","mime_type"} | any other type.
/// Fields the model does not name are kept in `extra` and written back unchanged.
struct ContentBlock {
  std::string type;  ///< "text", "image", or whatever the server sent
  std::string text;
  std::string data;  ///< base64 (standard alphabet, padded) for inline images
  std::string uri;
  std::string mime_type;
  nlohmann::json extra = nlohmann::json::object();

  static ContentBlock Text(std::string text);
  static ContentBlock ImageBase64(std::string base64, std::string mime_type);
  /// Encodes raw bytes (e.g. a JPEG) as base64.
  static ContentBlock ImageBytes(const std::vector<std::uint8_t>& bytes, std::string mime_type);
};

/// One step of an interaction. `type` decides which fields are meaningful:
///   model_output / user_input: content
///   code_execution_call: id, code, language (serialised as arguments{code, language}), signature
///   code_execution_result: call_id, result, is_error, signature
///   thought: signature, summary
struct Step {
  std::string type;
  std::vector<ContentBlock> content;
  std::string id;
  std::string code;
  std::string language;
  std::string call_id;
  std::string result;
  std::optional<bool> is_error;
  std::optional<std::string> signature;
  nlohmann::json summary;  ///< thought summary, kept verbatim (null when absent)
  nlohmann::json extra = nlohmann::json::object();
};

struct Usage {
  std::int64_t total_input_tokens = 0;
  std::int64_t total_output_tokens = 0;
  std::int64_t total_tool_use_tokens = 0;
  std::int64_t total_tokens = 0;
  nlohmann::json extra = nlohmann::json::object();  ///< *_by_modality and anything newer
};

struct InteractionRequest {
  std::string model;
  /// string | content blocks | steps (the whole history for stateless multi-turn).
  std::variant<std::string, std::vector<ContentBlock>, std::vector<Step>> input;
  std::vector<nlohmann::json> tools;  ///< e.g. {"type":"code_execution"}
  std::optional<std::string> system_instruction;
  nlohmann::json generation_config;  ///< null when unset
  nlohmann::json response_format;    ///< null when unset
  std::optional<std::string> previous_interaction_id;
  std::optional<bool> store;
  std::optional<bool> stream;
  nlohmann::json extra = nlohmann::json::object();
};

/// One code execution and its outcome, paired by call id.
struct CodeRun {
  std::string call_id;
  std::string code;
  std::string language;
  std::string result;
  bool is_error = false;
  bool has_result = false;
};

struct Interaction {
  std::string id;
  std::string status;  ///< completed | failed | in_progress | requires_action | incomplete | ...
  std::vector<Step> steps;
  std::optional<Usage> usage;
  std::string model;
  std::string created;
  std::string updated;
  std::string object;  ///< "interaction"
  nlohmann::json extra = nlohmann::json::object();

  /// Concatenated text of the last model_output step ("" when none).
  std::string FinalText() const;
  /// The last balanced {...} in FinalText() that parses as a JSON object; NotFound otherwise.
  StatusOr<nlohmann::json> LastJsonObject() const;
  /// Every inline image in model_output steps, decoded (BGR, or as stored); undecodable images
  /// are skipped.
  std::vector<cv::Mat> OutputImages() const;
  std::vector<CodeRun> CodeRuns() const;
};

/// {"error":{"code","message","status","details"}}; retry_delay_ms from a RetryInfo detail.
struct GoogleError {
  int code = 0;
  std::string message;
  std::string status;
  nlohmann::json details = nlohmann::json::array();
  std::optional<std::int64_t> retry_delay_ms;
  /// API_KEY_INVALID and similar, from an ErrorInfo detail's "reason".
  std::string reason;
};

void to_json(nlohmann::json& j, const ContentBlock& v);
void from_json(const nlohmann::json& j, ContentBlock& v);
void to_json(nlohmann::json& j, const Step& v);
void from_json(const nlohmann::json& j, Step& v);
void to_json(nlohmann::json& j, const Usage& v);
void from_json(const nlohmann::json& j, Usage& v);
void to_json(nlohmann::json& j, const InteractionRequest& v);
void from_json(const nlohmann::json& j, InteractionRequest& v);
void to_json(nlohmann::json& j, const Interaction& v);
void from_json(const nlohmann::json& j, Interaction& v);
void to_json(nlohmann::json& j, const GoogleError& v);
void from_json(const nlohmann::json& j, GoogleError& v);

/// Parses a response body; a non-object, truncated JSON or wrong shape is an error naming the
/// offending field, never an exception.
StatusOr<Interaction> ParseInteraction(std::string_view body);
/// Parses a Google error body; fails when `body` is not one.
StatusOr<GoogleError> ParseGoogleError(std::string_view body);
std::string SerializeRequest(const InteractionRequest& request);

std::string Base64Encode(const std::uint8_t* data, std::size_t size);
StatusOr<std::vector<std::uint8_t>> Base64Decode(std::string_view text);

}  // namespace roilens::wire
