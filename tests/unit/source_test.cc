// Frame sources: folders of images (sorted, names as source, unreadable files as empty frames),
// video files, skipping for resume, and clear errors for missing or corrupt inputs.
#include "roilens/source.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include "testing/paths.h"

namespace roilens {
namespace {

TEST(FrameSourceTest, FolderYieldsSortedImagesAndEmptyFramesForBrokenOnes) {
  const auto dir = testing::ScratchDir("folder");
  cv::imwrite((dir / "b.png").string(), cv::Mat(40, 60, CV_8UC3, cv::Scalar::all(20)));
  cv::imwrite((dir / "a.png").string(), cv::Mat(40, 60, CV_8UC3, cv::Scalar::all(10)));
  std::ofstream(dir / "c.jpg") << "not a jpeg";
  std::ofstream(dir / "notes.txt") << "ignored";
  auto source = FrameSource::Open(dir.string());
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_FALSE((*source)->info().video());
  EXPECT_EQ((*source)->info().total_frames, 3);
  EXPECT_EQ((*source)->info().frame_size, cv::Size(60, 40));
  std::vector<std::string> names;
  std::vector<bool> empty;
  while (auto frame = (*source)->Next()) {
    EXPECT_EQ(frame->index, static_cast<std::int64_t>(names.size()));
    names.push_back(frame->source);
    empty.push_back(frame->bgr.empty());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a.png", "b.png", "c.jpg"}));
  EXPECT_EQ(empty, (std::vector<bool>{false, false, true}));
}

TEST(FrameSourceTest, VideoFramesAreNumberedAndSkipCounts) {
  const auto path = testing::ScratchDir("video") / "v.avi";
  {
    cv::VideoWriter writer(path.string(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10,
                           cv::Size(64, 48));
    ASSERT_TRUE(writer.isOpened());
    for (int i = 0; i < 12; ++i) writer.write(cv::Mat(48, 64, CV_8UC3, cv::Scalar::all(i * 20)));
  }
  auto source = FrameSource::Open(path.string());
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_TRUE((*source)->info().video());
  EXPECT_DOUBLE_EQ((*source)->info().fps, 10);
  ASSERT_TRUE((*source)->Skip(5).ok());
  std::vector<std::int64_t> indices;
  while (auto frame = (*source)->Next()) {
    indices.push_back(frame->index);
    EXPECT_NEAR(frame->time_s, frame->index / 10.0, 1e-9);
    EXPECT_NEAR(cv::mean(frame->bgr)[0], frame->index * 20, 6);
  }
  EXPECT_EQ(indices, (std::vector<std::int64_t>{5, 6, 7, 8, 9, 10, 11}));
}

TEST(FrameSourceTest, MissingAndCorruptInputsAreNamed) {
  auto missing = FrameSource::Open("/nonexistent/clip.mp4");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/clip.mp4"), std::string::npos);

  const auto corrupt = testing::ScratchDir("corrupt") / "clip.mp4";
  std::ofstream(corrupt) << std::string(4096, 'x');
  auto bad = FrameSource::Open(corrupt.string());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find(corrupt.string()), std::string::npos);

  const auto image = testing::ScratchDir("image") / "broken.png";
  std::ofstream(image) << "nope";
  EXPECT_EQ(FrameSource::Open(image.string()).status().code(), StatusCode::kInvalidArgument);
}

TEST(FrameSourceTest, RecognisesImageExtensions) {
  EXPECT_TRUE(IsImagePath("a/B.PNG"));
  EXPECT_TRUE(IsImagePath("x.jpeg"));
  EXPECT_FALSE(IsImagePath("x.mp4"));
  EXPECT_FALSE(IsImagePath("png"));
}

}  // namespace
}  // namespace roilens
