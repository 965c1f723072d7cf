// InteractionsClient: asynchronous Interactions API client on libcurl's multi interface.
// One I/O thread drives every request; callers get a future or a callback.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "roilens/client/interactions.h"
#include "roilens/client/retry.h"
#include "roilens/client/status.h"

namespace roilens {

struct ClientOptions {
  /// Base URL without the version path, e.g. "https://generativelanguage.googleapis.com" or
  /// "http://127.0.0.1:8123". Empty: env GOOGLE_GEMINI_BASE_URL, then the Google endpoint.
  std::string base_url;
  std::string api_version = "v1beta";
  /// Name of the env var holding the key; when unset/empty there, GOOGLE_API_KEY is tried.
  std::string api_key_env = "GEMINI_API_KEY";
  /// Explicit key (overrides the env); never logged or echoed in errors.
  std::optional<std::string> api_key;
  std::string api_revision = "2026-05-20";
  int max_in_flight = 16;                             ///< concurrent transfers on the I/O thread
  std::chrono::milliseconds request_timeout{120000};  ///< per attempt
  int max_retries = 4;                                ///< retries after the first attempt
  double requests_per_minute = 0;                     ///< 0 = unlimited
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30000};
  /// Test seam: how the client waits between attempts. Default: a timer on the I/O thread
  /// (no thread blocks). When set, it is called on the I/O thread with each delay.
  Sleeper sleeper;
};

/// Per-call options.
struct CallOptions {
  /// Overall deadline across attempts (0 = none beyond the per-attempt timeout).
  std::chrono::milliseconds deadline{0};
  /// Set to true from any thread to cancel; the result is then kCancelled.
  std::shared_ptr<std::atomic<bool>> cancel;
  /// Optional out-parameter: set to the number of HTTP attempts made (1 + retries) before the
  /// result is delivered.
  std::shared_ptr<std::atomic<int>> attempts;
};

/// Thread-safe: any thread may call Create/Get/Delete concurrently. Destruction cancels
/// outstanding requests (their callbacks run with kCancelled) and joins the I/O thread.
class InteractionsClient {
 public:
  using Callback = std::function<void(StatusOr<wire::Interaction>)>;

  static StatusOr<std::unique_ptr<InteractionsClient>> Create(ClientOptions options);
  ~InteractionsClient();

  /// POST {base}/{version}/interactions. The callback runs on the I/O thread: keep it short.
  void CreateInteraction(wire::InteractionRequest request, Callback done, CallOptions call = {});
  std::future<StatusOr<wire::Interaction>> CreateInteraction(wire::InteractionRequest request,
                                                             CallOptions call = {});
  /// GET {base}/{version}/interactions/{id}.
  std::future<StatusOr<wire::Interaction>> GetInteraction(std::string id, CallOptions call = {});
  /// DELETE {base}/{version}/interactions/{id}.
  std::future<Status> DeleteInteraction(std::string id, CallOptions call = {});

  /// Multi-turn helpers.
  static wire::InteractionRequest FollowUp(const wire::Interaction& previous,
                                           wire::InteractionRequest next);
  /// Stateless: store=false and the previous input + every returned step sent back verbatim.
  static wire::InteractionRequest FollowUpStateless(
      const wire::InteractionRequest& previous_request, const wire::Interaction& previous,
      wire::InteractionRequest next);

  /// Counters for tests and summaries.
  struct Stats {
    std::int64_t requests = 0;   ///< logical calls
    std::int64_t attempts = 0;   ///< HTTP attempts including retries
    std::int64_t in_flight = 0;  ///< transfers running now
    std::int64_t max_in_flight_seen = 0;
    std::int64_t connections = 0;  ///< new TCP connections opened (reuse keeps this low)
    std::int64_t retries = 0;      ///< attempts that followed a retryable failure
  };
  Stats stats() const;
  const std::string& base_url() const;

 private:
  struct Impl;
  explicit InteractionsClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace roilens
