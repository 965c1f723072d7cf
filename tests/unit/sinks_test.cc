// Output sinks: results.jsonl truncation on resume, segmented video joined into one playable
// file holding every frame exactly once (in order), black frames for unreadable input frames.
#include "roilens/outputs/sinks.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "testing/paths.h"

namespace roilens {
namespace {

namespace fs = std::filesystem;

std::string Read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ResultsWriterTest, WritesLinesAndTruncatesToTheResumeOffset) {
  const auto path = testing::ScratchDir("results") / "results.jsonl";
  std::uint64_t after_first = 0;
  {
    auto writer = ResultsWriter::Open(path.string());
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->WriteFrame({{{"frame", 0}}, {{"frame", 0}, {"roi", "b"}}}).ok());
    after_first = (*writer)->bytes();
    ASSERT_TRUE((*writer)->Sync().ok());
    ASSERT_TRUE((*writer)->WriteFrame({{{"frame", 1}}}).ok());
  }
  EXPECT_EQ(Read(path), "{\"frame\":0}\n{\"frame\":0,\"roi\":\"b\"}\n{\"frame\":1}\n");
  EXPECT_EQ(after_first, std::string("{\"frame\":0}\n{\"frame\":0,\"roi\":\"b\"}\n").size());
  {
    auto writer = ResultsWriter::Open(path.string(), after_first);
    ASSERT_TRUE(writer.ok()) << writer.status();
    EXPECT_EQ((*writer)->bytes(), after_first);
    ASSERT_TRUE((*writer)->WriteFrame({{{"frame", 1}, {"again", true}}}).ok());
  }
  EXPECT_EQ(Read(path),
            "{\"frame\":0}\n{\"frame\":0,\"roi\":\"b\"}\n{\"again\":true,\"frame\":1}\n");
  // A journal offset past the end of the file means the file is not the one it describes.
  EXPECT_EQ(ResultsWriter::Open(path.string(), 1 << 20).status().code(), StatusCode::kDataLoss);
}

/// A frame whose grey level encodes its number (robust to lossy coding).
cv::Mat Numbered(int n, cv::Size size) { return cv::Mat(size, CV_8UC3, cv::Scalar::all(8 * n)); }

TEST(SegmentedVideoWriterTest, SegmentsJoinIntoOneVideoWithEveryFrameInOrder) {
  const auto dir = testing::ScratchDir("video");
  const cv::Size size(160, 96);
  SegmentedVideoWriter::Options options;
  options.dir = dir.string();
  options.fps = 10;
  options.size = size;
  SegmentedVideoWriter writer(options);
  for (int i = 0; i < 25; ++i) {
    // Frame 7 is an unreadable input frame; frame 9 has another size.
    cv::Mat frame = i == 7 ? cv::Mat() : Numbered(i, i == 9 ? cv::Size(320, 192) : size);
    ASSERT_TRUE(writer.Write(frame).ok());
    if (i % 10 == 9) {
      ASSERT_TRUE(writer.CloseSegment().ok());
    }
  }
  ASSERT_TRUE(writer.CloseSegment().ok());
  EXPECT_TRUE(writer.fourcc() == "avc1" || writer.fourcc() == "mp4v") << writer.fourcc();
  auto segments = writer.Segments();
  ASSERT_EQ(segments.size(), 3u);
  for (const auto& s : segments) EXPECT_TRUE(fs::exists(s)) << s;

  const std::string out = (dir / "joined.mp4").string();
  std::string method;
  ASSERT_TRUE(ConcatSegments(segments, out, 10, &method).ok());
  EXPECT_FALSE(method.empty());
  cv::VideoCapture capture(out, cv::CAP_FFMPEG);
  ASSERT_TRUE(capture.isOpened());
  // Grey levels rise with the frame number (YUV coding shifts them a little): strictly rising
  // means every frame once, in order; frame 7 (unreadable input) is black.
  cv::Mat frame;
  int n = 0;
  double previous = -1;
  while (capture.read(frame)) {
    EXPECT_EQ(frame.size(), size);
    const double level = cv::mean(frame)[0];
    if (n == 7) {
      EXPECT_LT(level, 6) << "via " << method;
    } else {
      EXPECT_GT(level, previous) << "frame " << n << " via " << method;
      EXPECT_NEAR(level, 8 * n, 8) << "frame " << n << " via " << method;
      previous = level;
    }
    ++n;
  }
  EXPECT_EQ(n, 25);
  auto counted = CountVideoFrames(out);
  ASSERT_TRUE(counted.ok());
  EXPECT_EQ(*counted, 25);
}

TEST(SegmentedVideoWriterTest, ResumedWriterContinuesNumbering) {
  const auto dir = testing::ScratchDir("resume");
  SegmentedVideoWriter::Options options;
  options.dir = dir.string();
  options.size = cv::Size(64, 48);
  options.first_segment = 2;
  SegmentedVideoWriter writer(options);
  ASSERT_TRUE(writer.Write(Numbered(1, options.size)).ok());
  ASSERT_TRUE(writer.CloseSegment().ok());
  auto segments = writer.Segments();
  ASSERT_EQ(segments.size(), 3u);
  EXPECT_EQ(segments[2], SegmentedVideoWriter::SegmentPath(dir.string(), 2));
  EXPECT_TRUE(fs::exists(segments[2]));
}

TEST(ConcatSegmentsTest, WithoutFfmpegSegmentsAreReencoded) {
  const auto dir = testing::ScratchDir("reencode");
  SegmentedVideoWriter::Options options;
  options.dir = dir.string();
  options.size = cv::Size(64, 48);
  SegmentedVideoWriter writer(options);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(writer.Write(Numbered(4 * i, options.size)).ok());
    if (i % 3 == 2) {
      ASSERT_TRUE(writer.CloseSegment().ok());
    }
  }
  const std::string saved_path = std::getenv("PATH") ? std::getenv("PATH") : "";
  ::setenv("PATH", "/nonexistent", 1);  // no ffmpeg program to find
  std::string method;
  const Status joined =
      ConcatSegments(writer.Segments(), (dir / "joined.mp4").string(), 10, &method);
  ::setenv("PATH", saved_path.c_str(), 1);
  ASSERT_TRUE(joined.ok()) << joined;
  EXPECT_EQ(method.rfind("opencv re-encode", 0), 0u) << method;
  auto counted = CountVideoFrames((dir / "joined.mp4").string());
  ASSERT_TRUE(counted.ok());
  EXPECT_EQ(*counted, 6);
}

TEST(ConcatSegmentsTest, NoSegmentsIsAnError) {
  EXPECT_FALSE(ConcatSegments({}, "/tmp/never.mp4", 10, nullptr).ok());
}

}  // namespace
}  // namespace roilens
