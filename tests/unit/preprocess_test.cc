// Preprocess: identity without a copy, and affine maps that agree with what the pixels did
// (checked against plain OpenCV and against a marked pixel that must land where the map says).
#include "roilens/stages/preprocess.h"

#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

namespace roilens {
namespace {

cv::Mat Noise(cv::Size size, int seed) {
  cv::Mat m(size, CV_8UC3);
  cv::RNG rng(seed);
  rng.fill(m, cv::RNG::UNIFORM, 0, 256);
  return m;
}

/// The centroid (pixel-edge coordinates) of the bright pixels of a grey rendering.
cv::Point2d BrightCentroid(const cv::Mat& bgr) {
  cv::Mat grey;
  cv::cvtColor(bgr, grey, cv::COLOR_BGR2GRAY);
  const cv::Moments m = cv::moments(grey > 128, true);
  return {m.m10 / m.m00 + 0.5, m.m01 / m.m00 + 0.5};
}

void ExpectInverse(const PreprocessedFrame& p) {
  for (const cv::Point2d q :
       {cv::Point2d(0, 0), cv::Point2d(123.25, 45.5), cv::Point2d(640, 360)}) {
    const cv::Point2d back = ApplyAffine(p.image_to_frame, ApplyAffine(p.frame_to_image, q));
    EXPECT_NEAR(back.x, q.x, 1e-9);
    EXPECT_NEAR(back.y, q.y, 1e-9);
  }
}

TEST(PreprocessTest, IdentityReturnsInputWithoutCopy) {
  const cv::Mat frame = Noise({64, 48}, 1);
  auto p = Preprocess(frame, PreprocessConfig{});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->image.data, frame.data);
  EXPECT_TRUE(IsIdentityAffine(p->frame_to_image));
  EXPECT_TRUE(IsIdentityAffine(p->image_to_frame));
  EXPECT_EQ(p->frame_size, frame.size());
  // max_width above the frame width and a full turn are no-ops too.
  PreprocessConfig noop;
  noop.max_width = 64;
  noop.rotate_deg = 360;
  p = Preprocess(frame, noop);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->image.data, frame.data);
}

TEST(PreprocessTest, RejectsBadFrames) {
  EXPECT_FALSE(Preprocess(cv::Mat(), {}).ok());
  EXPECT_FALSE(Preprocess(cv::Mat(4, 4, CV_32FC3), {}).ok());
  EXPECT_FALSE(Preprocess(cv::Mat(4, 4, CV_8UC2), {}).ok());
}

TEST(PreprocessTest, GreyAndBgraBecomeBgr) {
  auto p = Preprocess(cv::Mat(8, 8, CV_8UC1, cv::Scalar(7)), {});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->image.type(), CV_8UC3);
  EXPECT_EQ(p->image.at<cv::Vec3b>(3, 3), cv::Vec3b(7, 7, 7));
  p = Preprocess(cv::Mat(8, 8, CV_8UC4, cv::Scalar(1, 2, 3, 4)), {});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->image.at<cv::Vec3b>(3, 3), cv::Vec3b(1, 2, 3));
}

TEST(PreprocessTest, ResizeMatchesOpenCvAndMapsExactly) {
  const cv::Mat frame = Noise({1280, 720}, 2);
  PreprocessConfig config;
  config.max_width = 640;
  auto p = Preprocess(frame, config);
  ASSERT_TRUE(p.ok()) << p.status();
  cv::Mat reference;
  cv::resize(frame, reference, cv::Size(640, 360), 0, 0, cv::INTER_AREA);
  EXPECT_EQ(cv::norm(p->image, reference, cv::NORM_INF), 0);
  EXPECT_EQ(MapRect(p->frame_to_image, cv::Rect(100, 50, 200, 100)), cv::Rect(50, 25, 100, 50));
  EXPECT_EQ(MapRect(p->image_to_frame, cv::Rect(50, 25, 100, 50)), cv::Rect(100, 50, 200, 100));
  ExpectInverse(*p);
}

TEST(PreprocessTest, ResizeKeepsAspectWithOddHeight) {
  PreprocessConfig config;
  config.max_width = 300;
  auto p = Preprocess(Noise({1001, 333}, 3), config);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->image.size(), cv::Size(300, 100));
  // The map uses the exact per-axis scales, so the frame's corner maps onto the image's.
  const cv::Point2d corner = ApplyAffine(p->frame_to_image, cv::Point2d(1001, 333));
  EXPECT_NEAR(corner.x, 300, 1e-9);
  EXPECT_NEAR(corner.y, 100, 1e-9);
}

TEST(PreprocessTest, RotationMapFollowsThePixels) {
  // A bright square off-centre; after rotation its centroid must be where frame_to_image says.
  cv::Mat frame(360, 640, CV_8UC3, cv::Scalar::all(0));
  const cv::Rect spot(420, 60, 20, 20);
  frame(spot).setTo(cv::Scalar::all(255));
  const cv::Point2d spot_centre(430, 70);
  for (double deg : {90.0, -30.0, 12.5}) {
    PreprocessConfig config;
    config.rotate_deg = deg;
    auto p = Preprocess(frame, config);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->image.size(), frame.size()) << "canvas size kept";
    const cv::Point2d predicted = ApplyAffine(p->frame_to_image, spot_centre);
    const cv::Point2d seen = BrightCentroid(p->image);
    EXPECT_NEAR(seen.x, predicted.x, 0.6) << deg;
    EXPECT_NEAR(seen.y, predicted.y, 0.6) << deg;
    ExpectInverse(*p);
  }
  // Counter-clockwise positive: +90 moves a point right of centre to above the centre.
  PreprocessConfig ccw;
  ccw.rotate_deg = 90;
  auto p = Preprocess(frame, ccw);
  const cv::Point2d moved = ApplyAffine(p->frame_to_image, cv::Point2d(420, 180));
  EXPECT_NEAR(moved.x, 320, 1e-9);
  EXPECT_NEAR(moved.y, 80, 1e-9);
}

TEST(PreprocessTest, RotationMatchesOpenCvReference) {
  const cv::Mat frame = Noise({200, 100}, 4);
  PreprocessConfig config;
  config.rotate_deg = 30;
  auto p = Preprocess(frame, config);
  ASSERT_TRUE(p.ok());
  // Plain OpenCV: rotate about the centre of the pixel grid, ((w-1)/2, (h-1)/2) in pixel indices.
  const cv::Mat m = cv::getRotationMatrix2D(cv::Point2f(99.5f, 49.5f), 30, 1.0);
  cv::Mat reference;
  cv::warpAffine(frame, reference, m, frame.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
  EXPECT_LE(cv::norm(p->image, reference, cv::NORM_INF), 1);
}

TEST(PreprocessTest, ResizeThenRotateComposes) {
  cv::Mat frame(720, 1280, CV_8UC3, cv::Scalar::all(0));
  frame(cv::Rect(900, 100, 40, 40)).setTo(cv::Scalar::all(255));
  PreprocessConfig config;
  config.max_width = 640;
  config.rotate_deg = -20;
  auto p = Preprocess(frame, config);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->image.size(), cv::Size(640, 360));
  const cv::Point2d predicted = ApplyAffine(p->frame_to_image, cv::Point2d(920, 120));
  const cv::Point2d seen = BrightCentroid(p->image);
  EXPECT_NEAR(seen.x, predicted.x, 0.6);
  EXPECT_NEAR(seen.y, predicted.y, 0.6);
  ExpectInverse(*p);
}

TEST(PreprocessTest, ClaheRaisesLocalContrastAndKeepsGeometry) {
  // A dim, low-contrast gradient.
  cv::Mat frame(120, 160, CV_8UC3);
  for (int y = 0; y < frame.rows; ++y) {
    for (int x = 0; x < frame.cols; ++x) {
      frame.at<cv::Vec3b>(y, x) = cv::Vec3b::all(static_cast<uchar>(40 + (x % 20)));
    }
  }
  PreprocessConfig config;
  config.clahe = true;
  auto p = Preprocess(frame, config);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(IsIdentityAffine(p->frame_to_image));
  cv::Scalar in_mean, in_dev, out_mean, out_dev;
  cv::meanStdDev(frame, in_mean, in_dev);
  cv::meanStdDev(p->image, out_mean, out_dev);
  EXPECT_GT(out_dev[0], in_dev[0] * 1.5);
  // Only luma changes: neutral grey stays neutral (no colour cast).
  std::vector<cv::Mat> planes;
  cv::split(p->image, planes);
  EXPECT_LE(cv::norm(planes[0], planes[2], cv::NORM_INF), 2);
}

TEST(PreprocessTest, DenoiseSmoothsNoiseButKeepsEdges) {
  cv::Mat clean(100, 100, CV_8UC3, cv::Scalar::all(60));
  clean(cv::Rect(50, 0, 50, 100)).setTo(cv::Scalar::all(200));
  cv::Mat noise(clean.size(), CV_16SC3);
  cv::RNG(5).fill(noise, cv::RNG::NORMAL, 0, 8);
  cv::Mat noisy;
  clean.convertTo(noisy, CV_16SC3);
  noisy += noise;
  noisy.convertTo(noisy, CV_8UC3);
  PreprocessConfig config;
  config.denoise = true;
  auto p = Preprocess(noisy, config);
  ASSERT_TRUE(p.ok());
  EXPECT_LT(cv::norm(p->image, clean, cv::NORM_L2), cv::norm(noisy, clean, cv::NORM_L2) * 0.8);
  // The step edge stays a step: columns 45 and 55 keep their levels.
  EXPECT_NEAR(p->image.at<cv::Vec3b>(50, 45)[0], 60, 12);
  EXPECT_NEAR(p->image.at<cv::Vec3b>(50, 55)[0], 200, 12);
}

TEST(PreprocessTest, MapRectRoundsOutward) {
  const cv::Matx23d half(0.5, 0, 0, 0, 0.5, 0);
  EXPECT_EQ(MapRect(half, cv::Rect(1, 1, 3, 3)), cv::Rect(0, 0, 2, 2));
  EXPECT_EQ(MapRect(cv::Matx23d(1, 0, 0, 0, 1, 0), cv::Rect(5, 6, 7, 8)), cv::Rect(5, 6, 7, 8));
}

}  // namespace
}  // namespace roilens
