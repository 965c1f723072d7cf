// output.rotate: results.jsonl and the annotated video roll over by size and by age, into named,
// ordered files that together hold every line / frame exactly once.
#include "roilens/outputs/rotating_sink.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "roilens/config/config.h"
#include "testing/paths.h"

namespace roilens {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;
using std::chrono::system_clock;

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(RotatedNameTest, SequenceAndUtcStartInTheName) {
  const auto t = system_clock::from_time_t(1796186160);  // 2026-12-02T04:36:00Z
  EXPECT_EQ(RotatedName("/o/results.jsonl", 3, t), "/o/results-000003-20261202T043600Z.jsonl");
  EXPECT_TRUE(IsRotatedName("results-000003-20261202T043600Z.jsonl", "results.jsonl"));
  EXPECT_TRUE(IsRotatedName("annotated-000001-20261202T043600Z.mp4", "annotated.mp4"));
  EXPECT_FALSE(IsRotatedName("results.jsonl", "results.jsonl"));
  EXPECT_FALSE(IsRotatedName("results-00000x-20261202T043600Z.jsonl", "results.jsonl"));
  EXPECT_FALSE(IsRotatedName("notes-000003-20261202T043600Z.jsonl", "results.jsonl"));
}

TEST(RotatingResultsWriterTest, RollsOverBySizeBetweenFramesAndKeepsEveryLine) {
  const fs::path dir = testing::ScratchDir("rotate_size");
  const std::string path = (dir / "results.jsonl").string();
  RotateConfig config;
  config.max_bytes = 100;
  auto writer = RotatingResultsWriter::Open(path, config);
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (int frame = 0; frame < 20; ++frame) {
    ASSERT_TRUE(
        (*writer)
            ->WriteFrame({{{"frame", frame}, {"roi", "a"}}, {{"frame", frame}, {"roi", "b"}}})
            .ok());
  }
  ASSERT_TRUE((*writer)->Sync().ok());
  const auto rotated = (*writer)->rotated();
  ASSERT_GE(rotated.size(), 3u);
  std::vector<std::string> all;
  for (const auto& file : rotated) {
    EXPECT_TRUE(IsRotatedName(fs::path(file).filename().string(), "results.jsonl")) << file;
    const auto lines = Lines(file);
    ASSERT_FALSE(lines.empty());
    ASSERT_EQ(lines.size() % 2, 0u) << "a frame's lines never span two files: " << file;
    EXPECT_LE(fs::file_size(file), 100u + 64u);  // one frame past the limit at most
    all.insert(all.end(), lines.begin(), lines.end());
  }
  for (const auto& line : Lines(path)) all.push_back(line);
  ASSERT_EQ(all.size(), 40u);
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(nlohmann::json::parse(all[i])["frame"], i / 2) << all[i];
  }
}

TEST(RotatingResultsWriterTest, RollsOverByAgeOnTheInjectedClock) {
  const fs::path dir = testing::ScratchDir("rotate_age");
  const std::string path = (dir / "results.jsonl").string();
  auto now = system_clock::from_time_t(1796186160);
  RotateConfig config;
  config.max_seconds = 3600;
  auto writer = RotatingResultsWriter::Open(path, config, [&] { return now; });
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteFrame({{{"frame", 0}}}).ok());
  now += seconds(3599);
  ASSERT_TRUE((*writer)->WriteFrame({{{"frame", 1}}}).ok());
  EXPECT_TRUE((*writer)->rotated().empty());
  now += seconds(1);
  ASSERT_TRUE((*writer)->WriteFrame({{{"frame", 2}}}).ok());
  ASSERT_EQ((*writer)->rotated().size(), 1u);
  EXPECT_EQ((*writer)->rotated()[0], (dir / "results-000001-20261202T043600Z.jsonl").string());
  EXPECT_EQ(Lines((*writer)->rotated()[0]).size(), 2u);
  EXPECT_EQ(Lines(path), std::vector<std::string>{"{\"frame\":2}"});
  // The next file's span starts when the first rolled: 05:36:00.
  now += seconds(3600);
  ASSERT_TRUE((*writer)->WriteFrame({{{"frame", 3}}}).ok());
  ASSERT_EQ((*writer)->rotated().size(), 2u);
  EXPECT_EQ((*writer)->rotated()[1], (dir / "results-000002-20261202T053600Z.jsonl").string());
}

TEST(RotatingResultsWriterTest, NoLimitsNeverRolls) {
  const fs::path dir = testing::ScratchDir("rotate_never");
  auto writer = RotatingResultsWriter::Open((dir / "results.jsonl").string(), RotateConfig{});
  ASSERT_TRUE(writer.ok());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE((*writer)->WriteFrame({{{"frame", i}}}).ok());
  EXPECT_TRUE((*writer)->rotated().empty());
}

TEST(VideoRotatorTest, ClosedSegmentsBecomeOneRolledFileAndAreRemoved) {
  const fs::path dir = testing::ScratchDir("rotate_video");
  SegmentedVideoWriter::Options options;
  options.dir = (dir / "work").string();
  fs::create_directories(options.dir);
  options.fps = 10;
  options.size = {64, 48};
  SegmentedVideoWriter video(options);
  auto now = system_clock::from_time_t(1796186160);
  RotateConfig config;
  config.max_seconds = 60;
  VideoRotator rotator((dir / "annotated.mp4").string(), 10, config, [&] { return now; });
  for (int segment = 0; segment < 2; ++segment) {
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(video.Write(cv::Mat(48, 64, CV_8UC3, cv::Scalar::all(40 * i))).ok());
    }
    ASSERT_TRUE(video.CloseSegment().ok());
    auto rolled = rotator.MaybeRoll(video.Segments());
    ASSERT_TRUE(rolled.ok()) << rolled.status();
    EXPECT_EQ(*rolled, "") << "not due yet";
  }
  now += seconds(60);
  auto rolled = rotator.MaybeRoll(video.Segments());
  ASSERT_TRUE(rolled.ok()) << rolled.status();
  EXPECT_EQ(*rolled, (dir / "annotated-000001-20261202T043600Z.mp4").string());
  EXPECT_TRUE(ExistingFiles(video.Segments()).empty());
  auto frames = CountVideoFrames(*rolled);
  ASSERT_TRUE(frames.ok());
  EXPECT_EQ(*frames, 10);
}

}  // namespace
}  // namespace roilens
