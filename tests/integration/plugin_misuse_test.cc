// The plugin's C table under misuse: null pointers, bad sizes and strides, out-of-order frames,
// calls after flush and after destroy, forged and double-released frames, destroy with work in
// flight or a take blocked on another thread. Every case must be an error code with a message,
// never a crash; the suite is meant to run clean under AddressSanitizer.
#include <gtest/gtest.h>

#include <future>
#include <string>
#include <thread>
#include <vector>

#include "roilens_plugin/roilens_plugin.hpp"
#include "testing/plugin_paths.h"
#include "testing/plugin_support.h"

namespace roilens::testing {
namespace {

constexpr const char* kEchoOptions = R"({"coder":"echo"})";

class PluginMisuse : public ::testing::Test {
 protected:
  void SetUp() override {
    api_ = PluginApi();
    ASSERT_NE(api_, nullptr);
    pixels_.assign(640 * 360 * 3, 128);
  }
  roilens_handle* Create(const std::string& config = EchoStationConfig(2),
                         const char* options = kEchoOptions) {
    roilens_handle* h = nullptr;
    const roilens_result r = api_->create(config.c_str(), options, &h);
    EXPECT_EQ(r, ROILENS_OK) << api_->last_error();
    EXPECT_NE(h, nullptr);
    return h;
  }
  roilens_result SubmitGrey(roilens_handle* h, std::int64_t index) {
    return api_->submit(h, pixels_.data(), 640, 360, 640 * 3, index, index / 10.0);
  }
  std::string LastError() const { return api_->last_error(); }

  const roilens_plugin_api* api_ = nullptr;
  std::vector<std::uint8_t> pixels_;
};

TEST_F(PluginMisuse, CreateRejectsNullsAndBadJson) {
  roilens_handle* h = reinterpret_cast<roilens_handle*>(0x1);
  EXPECT_EQ(api_->create(nullptr, nullptr, &h), ROILENS_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(h, nullptr) << "*out must be cleared on failure";
  EXPECT_NE(LastError().find("config_json is NULL"), std::string::npos) << LastError();

  EXPECT_EQ(api_->create(EchoStationConfig().c_str(), nullptr, nullptr),
            ROILENS_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(LastError().find("out is NULL"), std::string::npos) << LastError();

  for (const char* bad : {"", "{", "[]", "42", "{\"rois\": 7}"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(api_->create(bad, kEchoOptions, &h), ROILENS_ERROR_CONFIG);
    EXPECT_EQ(h, nullptr);
    EXPECT_FALSE(LastError().empty());
  }
  for (const char* bad : {"{", "[1]", R"({"latency_ms": -5})", R"({"queue_frames": 0})"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(api_->create(EchoStationConfig().c_str(), bad, &h), ROILENS_ERROR_CONFIG);
    EXPECT_NE(LastError().find("options"), std::string::npos) << LastError();
  }
}

TEST_F(PluginMisuse, SubmitRejectsBadFramesAndKeepsTheSessionUsable) {
  roilens_handle* h = Create();
  const std::uint8_t* p = pixels_.data();
  EXPECT_EQ(api_->submit(h, nullptr, 640, 360, 1920, 0, 0), ROILENS_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(LastError().find("bgr is NULL"), std::string::npos) << LastError();
  EXPECT_EQ(api_->submit(h, p, 0, 360, 1920, 0, 0), ROILENS_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(LastError().find("0x360"), std::string::npos) << LastError();
  EXPECT_EQ(api_->submit(h, p, 640, -1, 1920, 0, 0), ROILENS_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(api_->submit(h, p, 1 << 20, 1, 3 << 20, 0, 0), ROILENS_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(api_->submit(h, p, 640, 360, 640 * 3 - 1, 0, 0), ROILENS_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(LastError().find("stride 1919 is less than width * 3 = 1920"), std::string::npos)
      << LastError();
  EXPECT_EQ(api_->submit(h, p, 640, 360, SIZE_MAX, 0, 0), ROILENS_ERROR_INVALID_ARGUMENT);

  // Frame indices must increase.
  ASSERT_EQ(SubmitGrey(h, 5), ROILENS_OK) << LastError();
  EXPECT_EQ(LastError(), "");
  EXPECT_EQ(SubmitGrey(h, 5), ROILENS_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(LastError().find("frame_index 5 is not greater than the previous one, 5"),
            std::string::npos)
      << LastError();
  EXPECT_EQ(SubmitGrey(h, 3), ROILENS_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ(SubmitGrey(h, 6), ROILENS_OK) << LastError();

  // Rejected frames never reach the pipeline: exactly the two good ones come out.
  ASSERT_EQ(api_->flush(h), ROILENS_OK);
  std::vector<std::int64_t> indices;
  roilens_frame_out out;
  roilens_result r;
  while ((r = api_->take(h, -1, &out)) == ROILENS_OK) {
    indices.push_back(out.frame_index);
    api_->frame_release(&out);
  }
  EXPECT_EQ(r, ROILENS_END);
  EXPECT_EQ(indices, (std::vector<std::int64_t>{5, 6}));
  EXPECT_EQ(api_->destroy(h), ROILENS_OK);
}

TEST_F(PluginMisuse, SubmitAfterFlushIsAStateError) {
  roilens_handle* h = Create();
  ASSERT_EQ(SubmitGrey(h, 0), ROILENS_OK);
  ASSERT_EQ(api_->flush(h), ROILENS_OK);
  EXPECT_EQ(SubmitGrey(h, 1), ROILENS_ERROR_STATE);
  EXPECT_NE(LastError().find("after flush"), std::string::npos) << LastError();
  EXPECT_EQ(api_->flush(h), ROILENS_OK) << "flush twice is harmless";
  EXPECT_EQ(api_->destroy(h), ROILENS_OK);
}

TEST_F(PluginMisuse, NullAndForgedHandlesAreRefused) {
  roilens_frame_out out;
  for (roilens_handle* h :
       {static_cast<roilens_handle*>(nullptr), reinterpret_cast<roilens_handle*>(0xdeadbeef),
        reinterpret_cast<roilens_handle*>(&out)}) {
    EXPECT_EQ(SubmitGrey(h, 0), ROILENS_ERROR_INVALID_HANDLE);
    EXPECT_FALSE(LastError().empty());
    EXPECT_EQ(api_->take(h, 0, &out), ROILENS_ERROR_INVALID_HANDLE);
    EXPECT_EQ(api_->flush(h), ROILENS_ERROR_INVALID_HANDLE);
    EXPECT_EQ(api_->destroy(h), ROILENS_ERROR_INVALID_HANDLE);
  }
}

TEST_F(PluginMisuse, EveryCallAfterDestroyIsAnInvalidHandle) {
  roilens_handle* h = Create();
  ASSERT_EQ(SubmitGrey(h, 0), ROILENS_OK);
  ASSERT_EQ(api_->destroy(h), ROILENS_OK);
  roilens_frame_out out;
  EXPECT_EQ(SubmitGrey(h, 1), ROILENS_ERROR_INVALID_HANDLE);
  EXPECT_NE(LastError().find("not a live handle"), std::string::npos) << LastError();
  EXPECT_EQ(api_->take(h, -1, &out), ROILENS_ERROR_INVALID_HANDLE);
  EXPECT_EQ(api_->flush(h), ROILENS_ERROR_INVALID_HANDLE);
  EXPECT_EQ(api_->destroy(h), ROILENS_ERROR_INVALID_HANDLE);
  // A new session never gets the old handle's value back, so the stale one stays dead.
  roilens_handle* h2 = Create();
  EXPECT_NE(h2, h);
  EXPECT_EQ(SubmitGrey(h, 2), ROILENS_ERROR_INVALID_HANDLE);
  EXPECT_EQ(api_->destroy(h2), ROILENS_OK);
}

TEST_F(PluginMisuse, TakeRejectsNullOut) {
  roilens_handle* h = Create();
  EXPECT_EQ(api_->take(h, 0, nullptr), ROILENS_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(LastError().find("out is NULL"), std::string::npos);
  EXPECT_EQ(api_->destroy(h), ROILENS_OK);
}

TEST_F(PluginMisuse, FramesOutliveTheirSessionAndReleaseIsIdempotent) {
  roilens_handle* h = Create();
  ASSERT_EQ(SubmitGrey(h, 0), ROILENS_OK);
  ASSERT_EQ(api_->flush(h), ROILENS_OK);
  roilens_frame_out out;
  ASSERT_EQ(api_->take(h, -1, &out), ROILENS_OK) << LastError();
  const roilens_frame_out copy = out;
  ASSERT_EQ(api_->destroy(h), ROILENS_OK);

  // Still readable after destroy (ASan would flag a freed buffer).
  ASSERT_NE(out.pixels, nullptr);
  ASSERT_EQ(out.width, 640);
  ASSERT_EQ(out.height, 360);
  std::uint64_t sum = 0;
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width * 3; ++x) sum += out.pixels[y * out.stride + x];
  EXPECT_GT(sum, 0u);
  EXPECT_EQ(std::string(out.results_json).size(), out.results_json_size);

  api_->frame_release(&out);
  EXPECT_EQ(out.internal, nullptr);
  EXPECT_EQ(out.pixels, nullptr);
  api_->frame_release(&out);  // released already: no-op
  api_->frame_release(nullptr);
  roilens_frame_out stale = copy;  // a copy made before release: detected, not freed twice
  api_->frame_release(&stale);
  EXPECT_NE(LastError().find("frame_release"), std::string::npos) << LastError();
  roilens_frame_out forged{};
  forged.internal = &forged;
  api_->frame_release(&forged);
}

TEST_F(PluginMisuse, DestroyWithFramesInFlightDrainsCleanly) {
  // Slow model turns keep frames in flight while destroy runs; nothing is taken.
  roilens_handle* h = Create(EchoStationConfig(3), R"({"coder":"echo","latency_ms":30})");
  for (int i = 0; i < 6; ++i) ASSERT_EQ(SubmitGrey(h, i), ROILENS_OK) << LastError();
  EXPECT_EQ(api_->destroy(h), ROILENS_OK) << LastError();
  EXPECT_EQ(SubmitGrey(h, 7), ROILENS_ERROR_INVALID_HANDLE);
}

TEST_F(PluginMisuse, DestroyWithAFullTakeQueueDrainsCleanly) {
  // queue_frames 1: the plugin's own queue is full after one frame and its taker waits.
  roilens_handle* h = Create(EchoStationConfig(1), R"({"coder":"echo","queue_frames":1})");
  for (int i = 0; i < 4; ++i) ASSERT_EQ(SubmitGrey(h, i), ROILENS_OK) << LastError();
  roilens_frame_out out;
  ASSERT_EQ(api_->take(h, -1, &out), ROILENS_OK);  // proves the queue filled
  EXPECT_EQ(out.frame_index, 0);
  api_->frame_release(&out);
  EXPECT_EQ(api_->destroy(h), ROILENS_OK);
}

// flush() before any take(), with more frames than the plugin's queue holds: flush must not wait
// for the application to take (finished frames wait in the pipeline instead).
TEST_F(PluginMisuse, FlushBeforeTakingMoreFramesThanTheQueueHolds) {
  roilens_handle* h = Create(EchoStationConfig(1), R"({"coder":"echo","queue_frames":1})");
  for (int i = 0; i < 6; ++i) ASSERT_EQ(SubmitGrey(h, i), ROILENS_OK) << LastError();
  ASSERT_EQ(api_->flush(h), ROILENS_OK) << LastError();
  roilens_frame_out out;
  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(api_->take(h, -1, &out), ROILENS_OK) << LastError();
    EXPECT_EQ(out.frame_index, i);
    api_->frame_release(&out);
  }
  EXPECT_EQ(api_->take(h, -1, &out), ROILENS_END);
  EXPECT_EQ(api_->destroy(h), ROILENS_OK);
}

// A take blocked on another thread is woken by destroy with INVALID_HANDLE. (If the thread only
// gets to take after destroy returned, the answer is the same: the outcome does not depend on
// timing.)
TEST_F(PluginMisuse, DestroyWakesABlockedTake) {
  roilens_handle* h = Create();
  auto blocked = std::async(std::launch::async, [this, h] {
    roilens_frame_out out;
    const roilens_result r = api_->take(h, -1, &out);
    return std::make_pair(r, std::string(api_->last_error()));
  });
  EXPECT_EQ(api_->destroy(h), ROILENS_OK);
  const auto [result, message] = blocked.get();
  EXPECT_EQ(result, ROILENS_ERROR_INVALID_HANDLE);
  EXPECT_FALSE(message.empty());
}

TEST_F(PluginMisuse, LastErrorIsPerThread) {
  EXPECT_EQ(api_->destroy(nullptr), ROILENS_ERROR_INVALID_HANDLE);
  const std::string mine = LastError();
  EXPECT_NE(mine.find("destroy"), std::string::npos);
  std::string other =
      std::async(std::launch::async, [this] { return std::string(api_->last_error()); }).get();
  EXPECT_EQ(other, "");
  EXPECT_EQ(LastError(), mine);
}

TEST_F(PluginMisuse, ConcurrentDestroyOfOneHandleSucceedsOnce) {
  roilens_handle* h = Create();
  ASSERT_EQ(SubmitGrey(h, 0), ROILENS_OK);
  auto a = std::async(std::launch::async, [this, h] { return api_->destroy(h); });
  auto b = std::async(std::launch::async, [this, h] { return api_->destroy(h); });
  const roilens_result ra = a.get(), rb = b.get();
  EXPECT_EQ((ra == ROILENS_OK) + (rb == ROILENS_OK), 1);
  EXPECT_EQ((ra == ROILENS_ERROR_INVALID_HANDLE) + (rb == ROILENS_ERROR_INVALID_HANDLE), 1);
}

TEST(PluginFacadeMisuse, WrongMatTypesAreErrorsNotCrashes) {
  plugin::Library library(GetPluginPaths().plugin);
  plugin::Session session(library, EchoStationConfig(1), kEchoOptions);
  for (const cv::Mat& bad :
       {cv::Mat(), cv::Mat(360, 640, CV_8UC1, cv::Scalar(0)),
        cv::Mat(360, 640, CV_16UC3, cv::Scalar(0)), cv::Mat(360, 640, CV_8UC4, cv::Scalar(0))}) {
    try {
      session.Submit(bad, 0, 0);
      ADD_FAILURE() << "accepted type " << cv::typeToString(bad.type());
    } catch (const plugin::Error& e) {
      EXPECT_EQ(e.code(), ROILENS_ERROR_INVALID_ARGUMENT);
    }
  }
  session.Submit(cv::Mat(360, 640, CV_8UC3, cv::Scalar(9, 9, 9)), 0, 0);
  plugin::Session moved = std::move(session);  // the moved-from session destroys nothing
  moved.Flush();
  EXPECT_TRUE(moved.Take().has_value());
  EXPECT_FALSE(moved.Take().has_value());
}

}  // namespace
}  // namespace roilens::testing
