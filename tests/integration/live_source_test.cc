// ReconnectingSource against a real loopback MJPEG camera (FFmpeg via cv::VideoCapture) that
// dies and comes back on the same port.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "roilens/stages/reconnecting_source.h"
#include "testing/mjpeg_server.h"

namespace roilens {
namespace {

using testing::MjpegServer;

/// Blue frames come from the first camera, red ones from the second.
bool IsRed(const cv::Mat& bgr) {
  const cv::Scalar mean = cv::mean(bgr);
  return mean[2] > 150 && mean[0] < 100;
}

/// More frames than a dead camera's decoder can still hold.
constexpr int kMaxBuffered = 5000;

/// Reads a source whose camera has died until another thread stops it, once `attempts` opens
/// have failed; returns the frames read (those buffered before the death). The reader gives up
/// after kMaxBuffered frames and stops the source itself, so a test fails instead of hanging.
int ReadUntilStoppedWhileRetrying(ReconnectingSource& source, int attempts) {
  std::atomic<bool> gave_up{false};
  std::thread stopper([&] {
    while (source.reconnect_attempts() < attempts && !gave_up) std::this_thread::yield();
    source.Stop();
  });
  int read = 0;
  while (source.Next()) {
    if (++read >= kMaxBuffered) {
      gave_up = true;
      break;
    }
  }
  stopper.join();
  return read;
}

TEST(LiveSourceTest, StreamDiesAndComesBackAndTheOutageIsAGap) {
  auto first = std::make_unique<MjpegServer>(cv::Scalar(255, 0, 0));
  ASSERT_TRUE(first->Start());
  const int port = first->port();
  const std::string url = first->url();

  std::mutex log_mu;
  std::vector<std::string> log;
  ReconnectOptions options;
  options.initial_backoff = std::chrono::milliseconds(20);
  options.max_backoff = std::chrono::milliseconds(200);
  options.log = [&](const std::string& line) {
    std::lock_guard lock(log_mu);
    log.push_back(line);
  };
  auto created = ReconnectingSource::Create([&] { return FrameSource::Open(url); }, options);
  ASSERT_TRUE(created.ok()) << created.status().message();
  ReconnectingSource& source = **created;
  EXPECT_EQ(source.info().total_frames, -1);

  // A few frames from the first camera.
  for (int i = 0; i < 3; ++i) {
    auto frame = source.Next();
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->index, i);
    EXPECT_FALSE(IsRed(frame->bgr));
  }

  // The camera dies; once the source has tried (and failed) to reconnect twice, a new camera
  // comes up on the same port. Ordered by the source's own attempt counter, not by time.
  std::unique_ptr<MjpegServer> second;
  std::thread operator_thread([&] {
    first->Stop();
    while (source.reconnect_attempts() < 2) std::this_thread::yield();
    second = std::make_unique<MjpegServer>(cv::Scalar(0, 0, 255));
    if (!second->Start(port)) {
      ADD_FAILURE() << "port " << port << " could not be bound again";
      source.Stop();  // the reader's Next() returns nullopt instead of waiting forever
    }
  });

  std::int64_t last_index = 2;
  bool saw_red = false;
  std::optional<SourceGap> gap;
  // Frames buffered before the death are still blue; the red ones are after the reconnect.
  for (int i = 0; i < 5000 && !saw_red; ++i) {
    auto frame = source.Next();
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->index, last_index + 1);  // one index sequence across the outage
    last_index = frame->index;
    if (auto g = source.TakeGap()) gap = g;
    saw_red = IsRed(frame->bgr);
    if (saw_red) {
      ASSERT_TRUE(gap) << "the first frame after the outage carries its gap";
      EXPECT_EQ(gap->to_time_s, frame->time_s);
    }
  }
  operator_thread.join();
  ASSERT_TRUE(saw_red);
  EXPECT_EQ(source.outages(), 1);
  EXPECT_GE(gap->reconnect_attempts, 3);  // two refused, then the one that worked
  EXPECT_LT(gap->after_frame, last_index);
  EXPECT_GE(gap->to_time_s, gap->from_time_s);
  EXPECT_GE(gap->missing_frames, 0);
  // As results.jsonl lines: the ordinary shape, one per ROI, numbered as the frame after it.
  RoiResult roi;
  roi.roi = "boiler";
  roi.task = "read_gauge";
  roi.rect = cv::Rect(1, 2, 3, 4);
  const std::vector<RoiResult> lines = gap->ToResults({roi});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].status, kGapStatus);
  EXPECT_EQ(lines[0].frame, gap->after_frame + 1);
  EXPECT_EQ(lines[0].time_s, gap->to_time_s);
  EXPECT_EQ(lines[0].roi, "boiler");
  EXPECT_EQ(lines[0].rect, roi.rect);
  EXPECT_NE(lines[0].error.find("back after " + std::to_string(gap->reconnect_attempts)),
            std::string::npos)
      << lines[0].error;
  auto parsed = RoiResultFromJson(ToJson(lines[0]));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, lines[0]);
  {
    std::lock_guard lock(log_mu);
    ASSERT_GE(log.size(), 2u);
    EXPECT_NE(log.front().find("lost"), std::string::npos) << log.front();
    EXPECT_NE(log.back().find("reconnected"), std::string::npos) << log.back();
  }

  // Stop ends a source that waits to reconnect, promptly: the camera dies again and Stop
  // comes once the source is retrying.
  ASSERT_TRUE(second);
  second->Stop();
  EXPECT_LT(ReadUntilStoppedWhileRetrying(source, 1), kMaxBuffered);
  EXPECT_FALSE(source.Next());
}

TEST(LiveSourceTest, ALiveStreamCannotBeSkipped) {
  MjpegServer camera(cv::Scalar(0, 255, 0));
  ASSERT_TRUE(camera.Start());
  auto created = ReconnectingSource::Create([&] { return FrameSource::Open(camera.url()); });
  ASSERT_TRUE(created.ok()) << created.status().message();
  EXPECT_EQ((*created)->Skip(1).code(), StatusCode::kFailedPrecondition);
}

TEST(LiveSourceTest, AStreamThatNeverOpenedIsAnErrorNotAnOutage) {
  MjpegServer camera(cv::Scalar(0, 255, 0));
  ASSERT_TRUE(camera.Start());
  const std::string url = camera.url();
  camera.Stop();
  auto created = ReconnectingSource::Create([&] { return FrameSource::Open(url); });
  EXPECT_FALSE(created.ok());
}

TEST(LiveSourceTest, AnAttemptIsCountedOnceItsOpenHasFailedNotWhileItRuns) {
  // Whoever waits on reconnect_attempts() (an operator restarting the camera, a metric) must
  // be able to rely on that many opens having failed: the open in progress is not counted yet.
  auto camera = std::make_unique<MjpegServer>(cv::Scalar(0, 255, 0));
  ASSERT_TRUE(camera->Start());
  const std::string url = camera->url();
  std::atomic<ReconnectingSource*> self{nullptr};
  std::vector<int> seen_while_opening;  // written by the reader thread only (inside Next)
  ReconnectOptions options;
  options.initial_backoff = std::chrono::milliseconds(1);
  options.max_backoff = std::chrono::milliseconds(5);
  auto created = ReconnectingSource::Create(
      [&]() -> StatusOr<std::unique_ptr<FrameSource>> {
        if (ReconnectingSource* source = self.load()) {
          seen_while_opening.push_back(source->reconnect_attempts());
        }
        return FrameSource::Open(url);
      },
      options);
  ASSERT_TRUE(created.ok()) << created.status().message();
  ReconnectingSource& source = **created;
  self = &source;
  ASSERT_TRUE(source.Next());
  camera->Stop();
  EXPECT_LT(ReadUntilStoppedWhileRetrying(source, 3), kMaxBuffered);
  ASSERT_GE(seen_while_opening.size(), 3u);
  for (std::size_t i = 0; i < seen_while_opening.size(); ++i) {
    EXPECT_EQ(seen_while_opening[i], static_cast<int>(i)) << "open " << i + 1;
  }
}

}  // namespace
}  // namespace roilens
