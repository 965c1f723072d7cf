// FramePool: frame-sized buffers come back to the next Mat of the same size, only once no Mat
// refers to them; small buffers, user data and the idle bound behave; OpenCV's own writers
// (copyTo, resize, VideoCapture::read) allocate through it; concurrent use keeps buffers apart.
#include "roilens/stages/frame_pool.h"

#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <thread>

#include "testing/paths.h"

namespace roilens {
namespace {

constexpr int kRows = 360, kCols = 640;  // 691,200 bytes as CV_8UC3: above min_bytes

cv::Mat NewFrame(FramePool& pool, int rows = kRows, int cols = kCols) {
  cv::Mat mat = FramePool::NewMat(&pool);
  mat.create(rows, cols, CV_8UC3);
  return mat;
}

TEST(FramePoolTest, ReleasedBufferServesTheNextMatOfTheSameSize) {
  FramePool pool;
  cv::Mat first = NewFrame(pool);
  const uchar* buffer = first.data;
  first.release();
  EXPECT_EQ(pool.stats().idle, 1);
  EXPECT_EQ(pool.stats().idle_bytes, kRows * kCols * 3);

  cv::Mat second = NewFrame(pool);
  EXPECT_EQ(second.data, buffer);
  const FramePool::Stats stats = pool.stats();
  EXPECT_EQ(stats.allocations, 2);
  EXPECT_EQ(stats.reused, 1);
  EXPECT_EQ(stats.idle, 0);
  EXPECT_EQ(stats.idle_bytes, 0);
}

TEST(FramePoolTest, BufferStaysWithItsMatsUntilTheLastReferenceGoes) {
  FramePool pool;
  cv::Mat frame = NewFrame(pool);
  frame.setTo(cv::Scalar(1, 2, 3));
  cv::Mat shared = frame;  // shallow copy: same buffer
  cv::Mat view = frame(cv::Rect(10, 10, 50, 50));
  frame.release();
  shared.release();
  EXPECT_EQ(pool.stats().idle, 0) << "the ROI view still refers to the buffer";

  cv::Mat other = NewFrame(pool);
  EXPECT_NE(other.data, view.datastart);
  other.setTo(cv::Scalar::all(0));
  EXPECT_EQ(view.at<cv::Vec3b>(0, 0), cv::Vec3b(1, 2, 3)) << "a Mat in use was handed out again";
  view.release();
  EXPECT_EQ(pool.stats().idle, 1);
}

TEST(FramePoolTest, SmallBuffersAreNotPooled) {
  FramePool pool(/*min_bytes=*/256 * 1024);
  cv::Mat crop = NewFrame(pool, 120, 120);  // 43,200 bytes
  crop.release();
  const FramePool::Stats stats = pool.stats();
  EXPECT_EQ(stats.allocations, 0);
  EXPECT_EQ(stats.idle, 0);
}

TEST(FramePoolTest, HoldsAtMostMaxIdleBuffers) {
  FramePool pool(/*min_bytes=*/1024, /*max_idle=*/2);
  std::vector<cv::Mat> frames;
  for (int i = 0; i < 5; ++i) frames.push_back(NewFrame(pool));
  frames.clear();
  EXPECT_EQ(pool.stats().idle, 2);
  pool.Trim();
  EXPECT_EQ(pool.stats().idle, 0);
  EXPECT_EQ(pool.stats().idle_bytes, 0);
}

TEST(FramePoolTest, NewSizeFreesAnIdleBufferOfAnotherSize) {
  FramePool pool;
  NewFrame(pool).release();  // 640x360 idle
  ASSERT_EQ(pool.stats().idle, 1);
  cv::Mat larger = NewFrame(pool, 720, 1280);
  EXPECT_EQ(pool.stats().idle, 0) << "a resolution change must not strand the old size";
  EXPECT_EQ(pool.stats().reused, 0);
  larger.release();
  EXPECT_EQ(pool.stats().idle_bytes, 720 * 1280 * 3);
}

TEST(FramePoolTest, UserDataIsWrappedNeverPooledOrFreed) {
  FramePool pool(/*min_bytes=*/16);
  std::vector<uchar> memory(64 * 48 * 3, 7);
  const int sizes[2] = {48, 64};
  size_t steps[2] = {cv::Mat::AUTO_STEP, cv::Mat::AUTO_STEP};
  cv::UMatData* data =
      pool.allocate(2, sizes, CV_8UC3, memory.data(), steps, cv::ACCESS_RW, cv::USAGE_DEFAULT);
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(data->data, memory.data());
  EXPECT_EQ(steps[0], 64u * 3);
  EXPECT_EQ(steps[1], 3u);
  pool.deallocate(data);
  EXPECT_EQ(pool.stats().idle, 0);
  EXPECT_EQ(memory[0], 7);
}

TEST(FramePoolTest, OpenCvFunctionsWriteIntoPooledBuffers) {
  FramePool pool;
  const cv::Mat source(kRows, kCols, CV_8UC3, cv::Scalar(9, 8, 7));
  cv::Mat copy = FramePool::NewMat(&pool);
  source.copyTo(copy);
  const uchar* buffer = copy.data;
  copy.release();

  cv::Mat resized = FramePool::NewMat(&pool);
  cv::resize(cv::Mat(kRows * 2, kCols * 2, CV_8UC3, cv::Scalar::all(5)), resized,
             cv::Size(kCols, kRows));
  EXPECT_EQ(resized.data, buffer) << "cv::resize did not allocate through the pool";
  EXPECT_EQ(resized.at<cv::Vec3b>(100, 100), cv::Vec3b(5, 5, 5));
  EXPECT_EQ(pool.stats().reused, 1);
}

TEST(FramePoolTest, VideoCaptureDecodesIntoRecycledBuffers) {
  const std::string path = (testing::ScratchDir("frame_pool") / "clip.avi").string();
  {
    cv::VideoWriter writer(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10,
                           cv::Size(kCols, kRows));
    ASSERT_TRUE(writer.isOpened());
    for (int i = 0; i < 6; ++i) {
      writer.write(cv::Mat(kRows, kCols, CV_8UC3, cv::Scalar::all(40 * i)));
    }
  }
  cv::VideoCapture capture(path);
  ASSERT_TRUE(capture.isOpened());
  FramePool pool;
  int frames = 0;
  while (true) {
    cv::Mat frame = FramePool::NewMat(&pool);  // a new Mat per frame, as the source does
    if (!capture.read(frame)) break;
    ASSERT_EQ(frame.size(), cv::Size(kCols, kRows));
    EXPECT_NEAR(frame.at<cv::Vec3b>(kRows / 2, kCols / 2)[0], 40 * frames, 4);
    ++frames;
  }
  EXPECT_EQ(frames, 6);
  EXPECT_GE(pool.stats().allocations, 6);
  EXPECT_GE(pool.stats().reused, 5) << "each decoded frame should reuse the previous buffer";
}

TEST(FramePoolTest, ConcurrentUseNeverSharesABufferBetweenLiveMats) {
  FramePool pool(/*min_bytes=*/1024, /*max_idle=*/4);
  constexpr int kThreads = 4, kRounds = 300;
  std::vector<int> corrupted(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        cv::Mat frame = NewFrame(pool, 64, 64 + t % 2);  // two sizes: reuse and eviction
        frame.setTo(cv::Scalar::all(t + 1));
        cv::Mat held = frame;  // handed on, as frames are between stages
        frame.release();
        if (cv::countNonZero(held.reshape(1) != t + 1) != 0) ++corrupted[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(corrupted, std::vector<int>(kThreads, 0));
  const FramePool::Stats stats = pool.stats();
  EXPECT_EQ(stats.allocations, kThreads * kRounds);
  EXPECT_GT(stats.reused, 0);
  EXPECT_LE(stats.idle, 4);
}

}  // namespace
}  // namespace roilens
