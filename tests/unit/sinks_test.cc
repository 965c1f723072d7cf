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
  // The default backend is libav with x264.
  EXPECT_EQ(writer.encoder().rfind("libav libx264 veryfast crf 23", 0), 0u) << writer.encoder();
  auto segments = writer.Segments();
  ASSERT_EQ(segments.size(), 3u);
  for (const auto& s : segments) EXPECT_TRUE(fs::exists(s)) << s;

  const std::string out = (dir / "joined.mp4").string();
  std::string method;
  ASSERT_TRUE(ConcatSegments(segments, out, 10, &method).ok());
  EXPECT_EQ(method, "libav stream copy");
  auto probe = ProbeVideo(out);
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_TRUE(probe->faststart) << "the joined video plays while it downloads";
  EXPECT_EQ(probe->frames, 25);
  EXPECT_NEAR(probe->duration_s, 2.5, 0.11);
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

TEST(ConcatSegmentsTest, SegmentsOfAnotherSizeAreReencoded) {
  // Stream copy needs one codec and one frame size; a folder holding segments of two sizes (a
  // resume with another frame size) is re-encoded instead, every frame kept.
  const auto dir = testing::ScratchDir("reencode");
  std::vector<std::string> segments;
  for (int part = 0; part < 2; ++part) {
    SegmentedVideoWriter::Options options;
    options.dir = (dir / std::to_string(part)).string();
    fs::create_directories(options.dir);
    options.size = part == 0 ? cv::Size(64, 48) : cv::Size(96, 64);
    SegmentedVideoWriter writer(options);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(writer.Write(Numbered(4 * i, options.size)).ok());
    ASSERT_TRUE(writer.CloseSegment().ok());
    segments.push_back(writer.Segments().at(0));
  }
  std::string method;
  const Status joined = ConcatSegments(segments, (dir / "joined.mp4").string(), 10, &method);
  ASSERT_TRUE(joined.ok()) << joined;
  EXPECT_EQ(method.rfind("opencv re-encode", 0), 0u) << method;
  auto counted = CountVideoFrames((dir / "joined.mp4").string());
  ASSERT_TRUE(counted.ok());
  EXPECT_EQ(*counted, 6);
}

TEST(SegmentedVideoWriterTest, OpenCvBackendStillWrites) {
  const auto dir = testing::ScratchDir("opencv-backend");
  SegmentedVideoWriter::Options options;
  options.dir = dir.string();
  options.size = cv::Size(64, 48);
  options.output.video_backend = "opencv";
  SegmentedVideoWriter writer(options);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(writer.Write(Numbered(i, options.size)).ok());
  ASSERT_TRUE(writer.CloseSegment().ok());
  EXPECT_EQ(writer.encoder().rfind("opencv ", 0), 0u) << writer.encoder();
  auto counted = CountVideoFrames(writer.Segments().at(0));
  ASSERT_TRUE(counted.ok());
  EXPECT_EQ(*counted, 4);
}

TEST(ConcatSegmentsTest, NoSegmentsIsAnError) {
  EXPECT_FALSE(ConcatSegments({}, "/tmp/never.mp4", 10, nullptr).ok());
}

}  // namespace
}  // namespace roilens
