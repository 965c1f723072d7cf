// Retry and backoff policies for the Interactions client: whether to retry (RetryPolicy) apart
// from how long to wait (BackoffPolicy). Both are cloned per call.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>

#include "roilens/status.h"

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

/// Retries 408/409/429/5xx and transport failures (http_status 0 with kUnavailable or
/// kDeadlineExceeded), at most `max_retries` times.
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
