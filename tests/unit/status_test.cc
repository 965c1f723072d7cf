#include "roilens/client/status.h"

#include <gtest/gtest.h>

namespace roilens {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, CarriesHttpAndReason) {
  Status s(StatusCode::kInvalidArgument, "API key not valid", 400, "API_KEY_INVALID");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.ToString(), "INVALID_ARGUMENT (HTTP 400) [API_KEY_INVALID]: API key not valid");
}

TEST(StatusTest, NamesRoundTrip) {
  for (int i = 0; i <= 16; ++i) {
    auto code = static_cast<StatusCode>(i);
    EXPECT_EQ(StatusCodeFromName(StatusCodeName(code)), code);
  }
  EXPECT_EQ(StatusCodeFromName("NO_SUCH"), StatusCode::kUnknown);
}

TEST(StatusTest, HttpMapping) {
  EXPECT_EQ(StatusCodeFromHttp(429), StatusCode::kResourceExhausted);
  EXPECT_EQ(StatusCodeFromHttp(503), StatusCode::kUnavailable);
  EXPECT_EQ(StatusCodeFromHttp(504), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(StatusCodeFromHttp(502), StatusCode::kInternal);
}

TEST(StatusOrTest, ValueAndError) {
  StatusOr<int> v = 7;
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 7);
  StatusOr<int> e = NotFoundError("frame 12: no such ROI");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace roilens
