// The local backend's private pieces (tools/server/server_internal.h): the interaction store's
// count and byte caps, and the create body's depth-limited parse.
#include "server_internal.h"

#include <gtest/gtest.h>

#include <string>

#include "roilens/client/bounded_json.h"

namespace roilens::backend::internal {
namespace {

StoredInteraction Sized(std::size_t text_bytes) {
  return {Json{{"id", "x"}, {"steps", Json::array({{{"text", std::string(text_bytes, 'a')}}})}},
          ""};
}

TEST(InteractionStoreTest, ApproximateBytesCountsStringsAndNodes) {
  EXPECT_GE(ApproximateBytes(Json(std::string(1000, 'a'))), 1000u);
  const Json nested = {{"k", Json::array({std::string(500, 'b'), std::string(500, 'c')})}};
  EXPECT_GE(ApproximateBytes(nested), 1001u);
  EXPECT_LT(ApproximateBytes(nested), 2000u);
}

// Regression: the store had only a count cap; 60 interactions of 26 MB each took 6.5 GB.
TEST(InteractionStoreTest, ByteCapEvictsLeastRecentlyUsedFirst) {
  constexpr std::size_t kCap = 1 << 20;
  InteractionStore store(/*max_entries=*/1000, kCap, std::chrono::seconds(3600));
  constexpr std::size_t kEntry = 300 << 10;  // three fit, four do not
  ASSERT_TRUE(store.Put("a", Sized(kEntry)));
  ASSERT_TRUE(store.Put("b", Sized(kEntry)));
  ASSERT_TRUE(store.Put("c", Sized(kEntry)));
  EXPECT_EQ(store.size(), 3u);
  ASSERT_TRUE(store.Get("a"));  // a is now the most recently used; b the least
  ASSERT_TRUE(store.Put("d", Sized(kEntry)));
  EXPECT_FALSE(store.Get("b"));
  EXPECT_TRUE(store.Get("a"));
  EXPECT_TRUE(store.Get("c"));
  EXPECT_TRUE(store.Get("d"));
  EXPECT_LE(store.bytes(), kCap);
  EXPECT_GE(store.bytes(), 3 * kEntry);

  // Many more writes never take it past the cap.
  for (int i = 0; i < 50; ++i) store.Put("e" + std::to_string(i), Sized(kEntry));
  EXPECT_LE(store.bytes(), kCap);
  EXPECT_EQ(store.size(), 3u);

  // Erase gives the bytes back.
  const std::size_t before = store.bytes();
  ASSERT_TRUE(store.Erase("e49"));
  EXPECT_LT(store.bytes(), before);
}

TEST(InteractionStoreTest, AnEntryLargerThanTheCapIsNotStored) {
  InteractionStore store(1000, 1 << 20, std::chrono::seconds(3600));
  ASSERT_TRUE(store.Put("small", Sized(1000)));
  ASSERT_TRUE(store.Put("id", Sized(1000)));
  EXPECT_FALSE(store.Put("id", Sized(2 << 20)));
  EXPECT_FALSE(store.Get("id"));    // the older value is not left behind as if current
  EXPECT_TRUE(store.Get("small"));  // and nothing else was evicted for it
  EXPECT_EQ(store.size(), 1u);
}

TEST(InteractionStoreTest, ExpiryGivesTheBytesBack) {
  InteractionStore store(1000, 1 << 20, std::chrono::seconds(10));
  ASSERT_TRUE(store.Put("a", Sized(1000)));
  EXPECT_GT(store.bytes(), 0u);
  store.AdvanceClockForTesting(std::chrono::seconds(11));
  ASSERT_TRUE(store.Put("b", Sized(1000)));  // a write drops what has expired
  EXPECT_FALSE(store.Get("a"));
  EXPECT_EQ(store.size(), 1u);
  EXPECT_LT(store.bytes(), 2 * ApproximateBytes(Sized(1000).interaction));
}

std::string Nested(int depth) {
  return R"({"model":"m","input":)" + std::string(depth, '[') + std::string(depth, ']') + "}";
}

// Regression: a body nesting arrays 100,000 deep crashed the server.
TEST(ParseCreateBodyTest, RefusesDeepNestingBeforeBuildingIt) {
  InteractionStore store(10, 1 << 20, std::chrono::seconds(60));
  for (int depth : {100000, kMaxJsonDepth + 1}) {
    auto parsed = ParseCreateBody(Nested(depth), store);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(parsed.status().http_status(), 400);
    EXPECT_NE(parsed.status().message().find("deeper than 256"), std::string::npos)
        << parsed.status();
  }
  // Objects count as well as arrays.
  std::string objects;
  for (int i = 0; i < 300; ++i) objects += R"({"a":)";
  objects += "1" + std::string(300, '}');
  EXPECT_FALSE(ParseCreateBody(objects, store).ok());
  // At the limit the depth is fine (the shape is then what is wrong).
  auto at_limit = ParseCreateBody(Nested(kMaxJsonDepth - 1), store);
  ASSERT_FALSE(at_limit.ok());
  EXPECT_EQ(at_limit.status().message().find("nested deeper"), std::string::npos);
}

TEST(ParseCreateBodyTest, ParsesValidBodiesAndRefusesInvalidJson) {
  InteractionStore store(10, 1 << 20, std::chrono::seconds(60));
  auto parsed = ParseCreateBody(R"({"model":"m","input":"hello","stream":true})", store);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->model, "m");
  EXPECT_TRUE(parsed->stream);
  for (std::string_view bad : {"", "{", "[1,2", "{\"model\":}", "\xff"}) {
    auto refused = ParseCreateBody(bad, store);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.status().http_status(), 400);
  }
}

}  // namespace
}  // namespace roilens::backend::internal
