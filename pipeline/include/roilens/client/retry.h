// Retry and backoff policies for the Interactions client: whether to retry (RetryPolicy) apart
// from how long to wait (BackoffPolicy). Both are cloned per call.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>

#include "roilens/client/status.h"

namespace roilens {

/// Waits; production sleeps/schedules, tests record the delays.
using Sleeper = std::function<void(std::chrono::milliseconds)>;

class RetryPolicy {
 public:
  virtual ~RetryPolicy() = default;
  virtual std::unique_ptr<RetryPolicy> Clone() const = 0;
  /// false: permanent error or attempts exhausted.
  virtual bool OnFailure(const Status& status) = 0;
};

class BackoffPolicy {
 public:
  virtual ~BackoffPolicy() = default;
  virtual std::unique_ptr<BackoffPolicy> Clone() const = 0;
  /// The next delay; a server hint (Retry-After, retry-after-ms, RetryInfo) wins when given.
  virtual std::chrono::milliseconds NextDelay(
      std::optional<std::chrono::milliseconds> server_hint) = 0;
};

/// Retries 408/409/429/5xx, transport failures (http_status 0 with kUnavailable or
/// kDeadlineExceeded) and 2xx answers whose body does not parse (kDataLoss: garbage or truncated
/// JSON), at most `max_retries` times. A body that parses but has the wrong shape (kInternal) is
/// not retried: the server would answer the same again.
class LimitedErrorCountRetryPolicy : public RetryPolicy {
 public:
  explicit LimitedErrorCountRetryPolicy(int max_retries) : max_retries_(max_retries) {}
  std::unique_ptr<RetryPolicy> Clone() const override;
  bool OnFailure(const Status& status) override;
  static bool IsRetryable(const Status& status);

 private:
  int max_retries_;
  int failures_ = 0;
};

/// True when an answer says the API key is missing or not accepted: HTTP 401, HTTP 403
/// (PERMISSION_DENIED) or HTTP 400 with reason API_KEY_INVALID (the Gemini API's answer to a wrong
/// key). Every later call with the same key fails the same way, so callers stop calling.
bool IsKeyRejected(const Status& status);

/// Full-jitter exponential backoff: uniform in [initial*2^n / 2, initial*2^n], capped.
class ExponentialBackoffPolicy : public BackoffPolicy {
 public:
  ExponentialBackoffPolicy(std::chrono::milliseconds initial, std::chrono::milliseconds maximum,
                           double multiplier = 2.0, std::uint32_t seed = std::random_device{}());
  std::unique_ptr<BackoffPolicy> Clone() const override;
  std::chrono::milliseconds NextDelay(
      std::optional<std::chrono::milliseconds> server_hint) override;

 private:
  std::chrono::milliseconds initial_, maximum_;
  double multiplier_;
  double current_;
  std::mt19937 rng_;
};

}  // namespace roilens
