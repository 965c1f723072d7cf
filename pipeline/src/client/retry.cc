// Retry (whether) and backoff (how long) policies used by InteractionsClient for every call.
#include "roilens/client/retry.h"

#include <algorithm>
#include <atomic>
#include <cmath>

namespace roilens {

std::unique_ptr<RetryPolicy> LimitedErrorCountRetryPolicy::Clone() const {
  // A clone starts a fresh call: the failure count is not copied.
  return std::make_unique<LimitedErrorCountRetryPolicy>(max_retries_);
}

bool LimitedErrorCountRetryPolicy::IsRetryable(const Status& status) {
  if (status.ok()) return false;
  // A 2xx body that does not parse (garbage from a proxy, a body cut short) says nothing about
  // the request: the next attempt usually gets a whole answer.
  if (status.code() == StatusCode::kDataLoss) return true;
  const int http = status.http_status();
  if (http != 0) return http == 408 || http == 409 || http == 429 || (http >= 500 && http < 600);
  // No HTTP answer: connection refused/reset, DNS, TLS, per-attempt timeout.
  return status.code() == StatusCode::kUnavailable ||
         status.code() == StatusCode::kDeadlineExceeded;
}

bool LimitedErrorCountRetryPolicy::OnFailure(const Status& status) {
  if (!IsRetryable(status)) return false;
  return ++failures_ <= max_retries_;
}

bool IsKeyRejected(const Status& status) {
  const int http = status.http_status();
  return http == 401 || http == 403 || (http == 400 && status.reason() == "API_KEY_INVALID");
}

ExponentialBackoffPolicy::ExponentialBackoffPolicy(std::chrono::milliseconds initial,
                                                   std::chrono::milliseconds maximum,
                                                   double multiplier, std::uint32_t seed)
    : initial_(std::max(initial, std::chrono::milliseconds(1))),
      maximum_(std::max(maximum, initial_)),
      multiplier_(std::max(multiplier, 1.0)),
      current_(static_cast<double>(initial_.count())),
      rng_(seed) {}

std::unique_ptr<BackoffPolicy> ExponentialBackoffPolicy::Clone() const {
  // Fresh schedule. Each clone gets its own seed (this policy's seed mixed with a process-wide
  // clone counter) so that calls failing together do not retry in lockstep.
  static std::atomic<std::uint32_t> clones{0};
  auto copy = rng_;
  const std::uint32_t seed = copy() ^ (0x9E3779B9u * (clones.fetch_add(1) + 1));
  return std::make_unique<ExponentialBackoffPolicy>(initial_, maximum_, multiplier_, seed);
}

std::chrono::milliseconds ExponentialBackoffPolicy::NextDelay(
    std::optional<std::chrono::milliseconds> server_hint) {
  const double upper = std::min(current_, static_cast<double>(maximum_.count()));
  current_ = std::min(current_ * multiplier_, static_cast<double>(maximum_.count()));
  if (server_hint) return std::max(*server_hint, std::chrono::milliseconds(0));
  std::uniform_real_distribution<double> jitter(upper / 2.0, upper);
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(jitter(rng_))));
}

}  // namespace roilens
