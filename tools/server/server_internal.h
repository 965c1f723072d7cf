// Private pieces of the local backend (LocalBackend): Google-shaped errors, the bounded
// interaction store, fault injection, request parsing, the model-turn orchestration and SSE.
// Not installed; only tools/server/*.cc include this.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "roilens/backend/coder.h"
#include "roilens/backend/sandbox.h"
#include "roilens/backend/server.h"
#include "roilens/client/interactions.h"
#include "roilens/client/status.h"

namespace roilens::backend::internal {

using Json = nlohmann::json;

// ---- errors ---------------------------------------------------------------------------------

/// An error as the server answers it: HTTP status + Google error body + extra headers.
struct HttpError {
  int http_status = 500;
  std::string status;  ///< google.rpc name, e.g. "INVALID_ARGUMENT"
  std::string message;
  Json details = Json::array();
  std::vector<std::pair<std::string, std::string>> headers;
};

/// {"error":{"code","message","status","details"}}.
Json GoogleErrorBody(const HttpError& error);
HttpError MakeError(int http_status, std::string message);
/// Maps a Status (from the coder/sandbox/store) to an HTTP error; uses its http_status when set.
HttpError ErrorFromStatus(const Status& status);
/// An ErrorInfo detail (type.googleapis.com/google.rpc.ErrorInfo).
Json ErrorInfo(std::string_view reason, std::string_view domain = "googleapis.com");

// ---- small helpers --------------------------------------------------------------------------

/// The wire model's base64 (one implementation for client and server).
inline std::string Base64Encode(const std::vector<std::uint8_t>& bytes) {
  return wire::Base64Encode(bytes.data(), bytes.size());
}
/// nullopt when `text` is not base64 (wire::Base64Decode's rules).
inline std::optional<std::vector<std::uint8_t>> Base64Decode(std::string_view text) {
  auto bytes = wire::Base64Decode(text);
  if (!bytes.ok()) return std::nullopt;
  return std::move(*bytes);
}
/// RFC 3339 / ISO-8601 UTC with milliseconds, e.g. "2026-05-20T10:11:12.345Z".
std::string Iso8601(std::chrono::system_clock::time_point t);
/// Random [A-Za-z0-9] string (thread-safe; not for secrets).
std::string RandomToken(std::size_t length);
/// An opaque signature as Gemini sends them: base64 of random bytes.
std::string RandomSignature();

// ---- store ----------------------------------------------------------------------------------

/// What the store keeps per interaction.
struct StoredInteraction {
  Json interaction;  ///< the full interaction as GET returns it (user_input steps included)
  std::string previous_interaction_id;  ///< "" for the first turn of a conversation
};

/// Roughly the bytes `value` occupies in memory (string contents plus a per-node overhead).
/// Walks the tree iteratively: safe on any depth.
std::size_t ApproximateBytes(const Json& value);

/// Bounded interaction store: at most `max_entries` and at most `max_bytes` in all (sizes by
/// ApproximateBytes; least recently used evicted first; an entry larger than `max_bytes` on its
/// own is not stored), each expiring `ttl` after it was last written. Thread-safe.
class InteractionStore {
 public:
  using Clock = std::chrono::steady_clock;
  InteractionStore(std::size_t max_entries, std::size_t max_bytes, std::chrono::seconds ttl);

  /// Stores `value` under `id` (replacing any entry of that id); false when it is larger than
  /// max_bytes on its own (then nothing is stored under `id`, not even an older value).
  bool Put(const std::string& id, StoredInteraction value);
  /// nullopt when unknown or expired; a hit counts as a use for LRU.
  std::optional<StoredInteraction> Get(const std::string& id);
  bool Erase(const std::string& id);
  /// Replaces the stored interaction's status (cancel); false when unknown.
  bool UpdateStatus(const std::string& id, const std::string& status, const std::string& updated);
  std::size_t size() const;
  /// The approximate bytes held (the sum of the live entries' sizes).
  std::size_t bytes() const;
  /// For tests: pretends `delta` has passed.
  void AdvanceClockForTesting(std::chrono::seconds delta);

 private:
  struct Entry {
    StoredInteraction value;
    Clock::time_point expires;
    std::list<std::string>::iterator lru;
    std::size_t bytes = 0;
  };
  using Entries = std::unordered_map<std::string, Entry>;
  Clock::time_point Now() const;
  void EvictExpiredLocked(Clock::time_point now);
  void RemoveLocked(Entries::iterator it);

  const std::size_t max_entries_;
  const std::size_t max_bytes_;
  const std::chrono::seconds ttl_;
  mutable std::mutex mu_;
  Entries entries_;
  std::size_t bytes_ = 0;                                         ///< sum of entries_[*].bytes
  std::list<std::string> lru_;                                    ///< front = most recently used
  std::deque<std::pair<Clock::time_point, std::string>> expiry_;  ///< in write order
  std::chrono::seconds skew_{0};
};

// ---- faults ---------------------------------------------------------------------------------

enum class FaultKind { kNone, k429, k500, k503, kSlow, kReset, kGarbage, kTruncated, kStall };

/// How long a "stall" fault holds a request before it is answered (a proxy that stops for a few
/// seconds; longer than "slow", which dribbles the body over 1.5 s).
constexpr std::chrono::milliseconds kStallTime{4000};

/// The fault kinds' names, for messages: "429, 500, 503, slow, reset, garbage, truncated, stall".
extern const char kFaultKindNames[];

/// Validates kind names (kFaultKindNames) and rate.
Status ValidateFaults(const FaultOptions& options);
FaultKind ParseFaultKind(std::string_view name);

/// The "truncated" fault's body: an interaction answer (id, steps with an image and the answer
/// line) cut mid-way, as a proxy that drops the connection's tail would deliver it. It never
/// parses as JSON.
std::string TruncatedInteractionBody();

/// Decides per request whether and how to fail, reproducibly for a seed. Thread-safe.
class FaultInjector {
 public:
  explicit FaultInjector(const FaultOptions& options);
  FaultKind Next();

 private:
  double rate_;
  std::vector<FaultKind> kinds_;
  std::mutex mu_;
  std::mt19937 rng_;
};

// ---- requests and turns ---------------------------------------------------------------------

/// A create request, parsed and validated.
struct ParsedRequest {
  Json body;  ///< the request as sent (unknown fields kept)
  std::string model;
  Json input_steps;    ///< this turn's input as steps (user_input / replayed history)
  Json history_steps;  ///< earlier turns (from previous_interaction_id), oldest first
  std::string previous_interaction_id;
  bool code_execution = false;  ///< tools holds {"type":"code_execution"}
  bool store = true;
  bool stream = false;
  std::string system_instruction;
};

/// Parses + validates a create body. `lookup` resolves previous_interaction_id (and its
/// ancestors); errors are Google-shaped (400 for bad shape, 404 for unknown previous id).
StatusOr<ParsedRequest> ParseCreateRequest(const Json& body, InteractionStore& store);

/// A create request's raw body -> ParsedRequest: JSON parsed with the nesting limit checked while
/// parsing (a body nested deeper than roilens::kMaxJsonDepth is refused before any tree of that
/// depth exists: 400 INVALID_ARGUMENT), then ParseCreateRequest. Invalid JSON is a 400 too. Any
/// input is safe here (this is the fuzzing entry point).
StatusOr<ParsedRequest> ParseCreateBody(std::string_view body, InteractionStore& store);

/// Flattens steps (history + input) into what the coder reads.
CoderInput MakeCoderInput(const ParsedRequest& request);

/// Everything one model turn needs; `sandbox` may be null (then code requests fail cleanly with
/// `sandbox_error`).
struct TurnContext {
  Coder* coder = nullptr;
  Sandbox* sandbox = nullptr;
  std::string sandbox_error;  ///< why there is no sandbox (when coder executes code)
  int max_attempts = 5;
  /// Called with each output step as soon as it exists (a streaming answer sends it at once).
  /// Returning false (cancelled, or the client went away) ends the turn there with status
  /// "cancelled" and the steps so far.
  std::function<bool(std::size_t index, const Json& step)> on_step;
};

/// Runs one model turn and returns the output steps and status ("completed" | "failed" |
/// "cancelled").
struct TurnResult {
  Json steps = Json::array();
  std::string status = "completed";
  Json usage;
};
StatusOr<TurnResult> RunTurn(const ParsedRequest& request, const TurnContext& context);

/// Token usage in the Interactions shape (plausible figures: 258 per image, chars/4 for text).
Json EstimateUsage(const Json& input_steps, const Json& output_steps);

// ---- SSE ------------------------------------------------------------------------------------

/// The first SSE frame ("event: interaction.created\ndata: {...}\n\n"), sent before the turn runs.
std::string SseCreatedFrame(const Json& interaction);
/// One output step as step.start, step.delta(s), step.stop. `event_id` numbers the events of
/// one stream (the interaction.created frame is evt_1) and is advanced.
std::vector<std::string> SseStepFrames(int& event_id, std::size_t index, const Json& step);
/// The end of a stream: interaction.status_update, interaction.completed, "data: [DONE]".
std::vector<std::string> SseEndFrames(int& event_id, const Json& interaction);
/// A finished interaction's whole stream after interaction.created (a streamed GET).
std::vector<std::string> SseFrames(const Json& interaction);
/// An "error" event (a turn that failed after the stream started) followed by [DONE].
std::string SseErrorFrame(const HttpError& error);

}  // namespace roilens::backend::internal
