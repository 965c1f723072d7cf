// RetryPolicy (which failures are retried, how often) and BackoffPolicy (jittered exponential,
// capped, server hint wins).
#include "roilens/client/retry.h"

#include <gtest/gtest.h>

#include <set>

namespace roilens {
namespace {

using std::chrono::milliseconds;

Status Http(int code) { return Status(StatusCodeFromHttp(code), "http", code); }

TEST(RetryPolicyTest, RetryableClasses) {
  for (int code : {408, 409, 429, 500, 502, 503, 504, 599}) {
    EXPECT_TRUE(LimitedErrorCountRetryPolicy::IsRetryable(Http(code))) << code;
  }
  for (int code : {400, 401, 403, 404, 413, 422, 499}) {
    EXPECT_FALSE(LimitedErrorCountRetryPolicy::IsRetryable(Http(code))) << code;
  }
  // Transport failures carry no HTTP status.
  EXPECT_TRUE(LimitedErrorCountRetryPolicy::IsRetryable(UnavailableError("connection refused")));
  EXPECT_TRUE(LimitedErrorCountRetryPolicy::IsRetryable(DeadlineExceededError("attempt timeout")));
  EXPECT_FALSE(LimitedErrorCountRetryPolicy::IsRetryable(CancelledError("cancelled")));
  EXPECT_FALSE(LimitedErrorCountRetryPolicy::IsRetryable(InvalidArgumentError("bad URL")));
  EXPECT_FALSE(LimitedErrorCountRetryPolicy::IsRetryable(InternalError("malformed body")));
  EXPECT_FALSE(LimitedErrorCountRetryPolicy::IsRetryable(OkStatus()));
  // A 200 whose body does not parse (garbage, truncated JSON) is a transport fault: retried.
  EXPECT_TRUE(
      LimitedErrorCountRetryPolicy::IsRetryable(Status(StatusCode::kDataLoss, "truncated", 200)));
  // One that parses but has the wrong shape would come back the same: not retried.
  EXPECT_FALSE(
      LimitedErrorCountRetryPolicy::IsRetryable(Status(StatusCode::kInternal, "wrong shape", 200)));
}

TEST(RetryPolicyTest, MalformedSuccessBodiesCountAgainstTheSameBudget) {
  LimitedErrorCountRetryPolicy policy(2);
  EXPECT_TRUE(policy.OnFailure(Status(StatusCode::kDataLoss, "not valid JSON", 200)));
  EXPECT_TRUE(policy.OnFailure(Http(503)));
  EXPECT_FALSE(policy.OnFailure(Status(StatusCode::kDataLoss, "truncated JSON", 200)));
}

TEST(RetryPolicyTest, KeyRejectionsAreRecognised) {
  EXPECT_TRUE(IsKeyRejected(
      Status(StatusCode::kInvalidArgument, "API key not valid", 400, "API_KEY_INVALID")));
  EXPECT_TRUE(IsKeyRejected(Status(StatusCode::kUnauthenticated, "no credentials", 401)));
  EXPECT_TRUE(IsKeyRejected(Status(StatusCode::kPermissionDenied, "unregistered caller", 403)));
  EXPECT_FALSE(IsKeyRejected(Status(StatusCode::kInvalidArgument, "bad request", 400)));
  EXPECT_FALSE(IsKeyRejected(Http(429)));
  EXPECT_FALSE(IsKeyRejected(UnavailableError("connection refused")));
}

TEST(RetryPolicyTest, CountsFailuresAndClonesStartFresh) {
  LimitedErrorCountRetryPolicy policy(2);
  EXPECT_TRUE(policy.OnFailure(Http(503)));
  EXPECT_TRUE(policy.OnFailure(Http(429)));
  EXPECT_FALSE(policy.OnFailure(Http(503))) << "third failure exceeds max_retries = 2";
  auto fresh = policy.Clone();
  EXPECT_TRUE(fresh->OnFailure(Http(500)));
  EXPECT_FALSE(fresh->OnFailure(Http(400))) << "permanent errors are never retried";
  LimitedErrorCountRetryPolicy none(0);
  EXPECT_FALSE(none.OnFailure(Http(503)));
}

TEST(BackoffPolicyTest, FullJitterWithinDoublingBoundsAndCapped) {
  ExponentialBackoffPolicy backoff(milliseconds(100), milliseconds(1000), 2.0, 42);
  const std::int64_t uppers[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (std::int64_t upper : uppers) {
    auto d = backoff.NextDelay(std::nullopt);
    EXPECT_GE(d.count(), upper / 2) << upper;
    EXPECT_LE(d.count(), upper) << upper;
  }
}

TEST(BackoffPolicyTest, ServerHintWinsButTheScheduleStillAdvances) {
  ExponentialBackoffPolicy backoff(milliseconds(100), milliseconds(10000), 2.0, 1);
  EXPECT_EQ(backoff.NextDelay(milliseconds(1500)), milliseconds(1500));
  EXPECT_EQ(backoff.NextDelay(milliseconds(60000)), milliseconds(60000)) << "not capped";
  auto d = backoff.NextDelay(std::nullopt);  // third step: upper bound 400
  EXPECT_GE(d.count(), 200);
  EXPECT_LE(d.count(), 400);
}

TEST(BackoffPolicyTest, SeededIsReproducibleAndJittered) {
  ExponentialBackoffPolicy a(milliseconds(1000), milliseconds(1000), 2.0, 7);
  ExponentialBackoffPolicy b(milliseconds(1000), milliseconds(1000), 2.0, 7);
  std::set<std::int64_t> distinct;
  for (int i = 0; i < 20; ++i) {
    auto da = a.NextDelay(std::nullopt);
    EXPECT_EQ(da, b.NextDelay(std::nullopt));
    distinct.insert(da.count());
  }
  EXPECT_GT(distinct.size(), 5u) << "delays must be jittered";
}

TEST(BackoffPolicyTest, ClonesRestartTheScheduleWithDifferentJitter) {
  ExponentialBackoffPolicy prototype(milliseconds(1000), milliseconds(64000), 2.0, 3);
  prototype.NextDelay(std::nullopt);
  prototype.NextDelay(std::nullopt);
  std::set<std::int64_t> first_delays;
  for (int i = 0; i < 10; ++i) {
    auto clone = prototype.Clone();
    auto d = clone->NextDelay(std::nullopt);
    EXPECT_GE(d.count(), 500) << "a clone starts from the initial delay";
    EXPECT_LE(d.count(), 1000);
    first_delays.insert(d.count());
  }
  EXPECT_GT(first_delays.size(), 1u) << "clones must not retry in lockstep";
}

}  // namespace
}  // namespace roilens
