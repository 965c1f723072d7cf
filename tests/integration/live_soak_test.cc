// Memory stays flat over a live run: the resident set after warm-up and at the end of a few
// thousand frames (embedded backend, echo coder) differ by a bounded amount. A leak of even a few
// kilobytes per frame (a result line, a crop) shows; a leaked frame (675 KiB) shows at once.
#include "live_soak.h"

#include <gtest/gtest.h>

#include "testing/paths.h"

namespace roilens::cli {
namespace {

TEST(LiveSoakTest, ResidentMemoryStaysFlatOverALiveRun) {
  LiveSoakOptions options;
  options.frames = 4000;
  options.sample_every = 500;
  options.out_dir = testing::ScratchDir("live_soak").string();
  auto curve = RunLiveSoak(options);
  ASSERT_TRUE(curve.ok()) << curve.status().message();
  ASSERT_GE(curve->size(), 4u);
  EXPECT_EQ(curve->back().frames, 4000);
  double warm = -1;
  for (const auto& sample : *curve) {
    std::printf("%lld frames: %.1f MiB\n", static_cast<long long>(sample.frames), sample.rss_mib);
    if (warm < 0 && sample.frames >= 1000) warm = sample.rss_mib;
  }
  ASSERT_GT(warm, 0);
  // 3000 frames after warm-up: 12 MiB is 4 KiB a frame.
  EXPECT_LE(curve->back().rss_mib - warm, 12.0);
}

}  // namespace
}  // namespace roilens::cli
