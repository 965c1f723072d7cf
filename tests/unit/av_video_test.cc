// The libav writer: encoder options reach the file, frames come back in order, the index can be
// put first (faststart), a file cut off by a crash is told apart from a complete one, and
// segments join by stream copy with continuous time stamps.
#include "roilens/outputs/av_video.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "testing/paths.h"

namespace roilens {
namespace {

namespace fs = std::filesystem;

/// A frame whose grey level encodes its number, with a moving square so that the encoder has
/// motion to code (B-frames, non-trivial time stamps).
cv::Mat Frame(int n, cv::Size size) {
  cv::Mat frame(size, CV_8UC3, cv::Scalar::all(6 * n));
  cv::rectangle(frame, cv::Rect((5 * n) % (size.width - 16), 8, 16, 16), cv::Scalar(0, 0, 255),
                cv::FILLED);
  return frame;
}

std::string Write(const fs::path& path, int frames, const VideoEncoderConfig& options,
                  bool faststart, cv::Size size = {160, 96}, int first = 0) {
  auto writer = AvVideoWriter::Open(path.string(), size, 10, options, faststart);
  EXPECT_TRUE(writer.ok()) << writer.status();
  if (!writer.ok()) return "";
  for (int i = 0; i < frames; ++i) EXPECT_TRUE((*writer)->Write(Frame(first + i, size)).ok());
  EXPECT_TRUE((*writer)->Close().ok());
  return (*writer)->description();
}

/// Mean grey of each decoded frame (OpenCV's reader, independent of our writer).
std::vector<double> Levels(const fs::path& path) {
  cv::VideoCapture capture(path.string(), cv::CAP_FFMPEG);
  std::vector<double> levels;
  cv::Mat frame;
  while (capture.read(frame)) levels.push_back(cv::mean(frame(cv::Rect(0, 40, 160, 56)))[1]);
  return levels;
}

TEST(AvVideoWriterTest, WritesH264WithTheConfiguredOptionsAndEveryFrameInOrder) {
  const auto dir = testing::ScratchDir("av-writer");
  VideoEncoderConfig options;  // defaults: libx264 veryfast crf 23
  const std::string description = Write(dir / "a.mp4", 30, options, /*faststart=*/false);
  EXPECT_EQ(description, "libav libx264 veryfast crf 23");
  auto probe = ProbeVideo((dir / "a.mp4").string());
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->codec, "h264");
  EXPECT_EQ(probe->frames, 30);
  EXPECT_EQ(probe->size, cv::Size(160, 96));
  EXPECT_NEAR(probe->duration_s, 3.0, 0.11);
  EXPECT_FALSE(probe->faststart);
  const auto levels = Levels(dir / "a.mp4");
  ASSERT_EQ(levels.size(), 30u);
  for (int i = 0; i < 30; ++i) EXPECT_NEAR(levels[i], 6 * i, 4) << "frame " << i;

  // Another preset, bitrate instead of crf, a fixed GOP: the description says what encoded,
  // and the index goes first when asked.
  options.preset = "ultrafast";
  options.bitrate_kbps = 300;
  options.gop = 5;
  EXPECT_EQ(Write(dir / "b.mp4", 12, options, /*faststart=*/true),
            "libav libx264 ultrafast 300 kb/s");
  probe = ProbeVideo((dir / "b.mp4").string());
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_TRUE(probe->faststart);
  EXPECT_EQ(probe->frames, 12);
}

TEST(AvVideoWriterTest, MissingCodecFallsBackToMpeg4AndBadPixelFormatIsAnError) {
  const auto dir = testing::ScratchDir("av-fallback");
  VideoEncoderConfig options;
  options.codec = "no-such-encoder";
  EXPECT_EQ(Write(dir / "m.mp4", 5, options, false), "libav mpeg4 qscale 4");
  auto probe = ProbeVideo((dir / "m.mp4").string());
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->codec, "mpeg4");
  EXPECT_EQ(probe->frames, 5);

  options = {};
  options.pix_fmt = "not-a-format";
  auto bad = AvVideoWriter::Open((dir / "x.mp4").string(), {64, 48}, 10, options, false);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("pix_fmt"), std::string::npos) << bad.status();
}

TEST(AvVideoWriterTest, OddFrameSizesAreRoundedToEven) {
  const auto dir = testing::ScratchDir("av-odd");
  auto writer = AvVideoWriter::Open((dir / "o.mp4").string(), {65, 49}, 10, {}, false);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Write(cv::Mat(49, 65, CV_8UC3, cv::Scalar::all(90))).ok());
  ASSERT_TRUE((*writer)->Close().ok());
  auto probe = ProbeVideo((dir / "o.mp4").string());
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->size, cv::Size(64, 48));
  EXPECT_EQ(probe->frames, 1);
}

TEST(ProbeVideoTest, AFileCutOffBeforeItsIndexIsAnErrorNamingIt) {
  const auto dir = testing::ScratchDir("av-cut");
  Write(dir / "whole.mp4", 20, {}, false);
  // kill -9 while a segment is written: the media data is there, the index (moov, written
  // last without faststart) is not.
  const auto size = fs::file_size(dir / "whole.mp4");
  fs::copy_file(dir / "whole.mp4", dir / "cut.mp4");
  fs::resize_file(dir / "cut.mp4", size * 2 / 3);
  auto probe = ProbeVideo((dir / "cut.mp4").string());
  ASSERT_FALSE(probe.ok());
  EXPECT_NE(probe.status().message().find("cut.mp4"), std::string::npos) << probe.status();
  // Not a video at all.
  std::ofstream(dir / "text.mp4") << "hello";
  EXPECT_FALSE(ProbeVideo((dir / "text.mp4").string()).ok());
}

TEST(RemuxConcatTest, SegmentsJoinByStreamCopyWithContinuousTimeStamps) {
  const auto dir = testing::ScratchDir("av-remux");
  std::vector<std::string> segments;
  for (int s = 0; s < 3; ++s) {
    const fs::path path = dir / ("s" + std::to_string(s) + ".mp4");
    Write(path, 10, {}, false, {160, 96}, 10 * s);
    segments.push_back(path.string());
  }
  ASSERT_TRUE(RemuxConcat(segments, (dir / "all.mp4").string(), /*faststart=*/true).ok());
  auto probe = ProbeVideo((dir / "all.mp4").string());
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->frames, 30);
  EXPECT_TRUE(probe->faststart);
  EXPECT_NEAR(probe->duration_s, 3.0, 0.21);
  const auto levels = Levels(dir / "all.mp4");
  ASSERT_EQ(levels.size(), 30u);
  for (int i = 0; i < 30; ++i) EXPECT_NEAR(levels[i], 6 * i, 4) << "frame " << i;

  // A segment of another size cannot be stream-copied: the error names it.
  Write(dir / "other.mp4", 3, {}, false, {96, 64});
  segments.push_back((dir / "other.mp4").string());
  const Status mixed = RemuxConcat(segments, (dir / "mixed.mp4").string(), true);
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.message().find("other.mp4"), std::string::npos) << mixed;
  EXPECT_FALSE(RemuxConcat({}, (dir / "none.mp4").string(), true).ok());
}

}  // namespace
}  // namespace roilens
