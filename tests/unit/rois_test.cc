// FindRois: static rects/polygons mapped through preprocessing, grid tiles, and the dial finder
// on synthetic gauges whose true positions are known.
#include "roilens/stages/rois.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/imgproc.hpp>

#include "roilens/samples.h"

namespace roilens {
namespace {

using ::testing::HasSubstr;

/// Draws an analog gauge: light face, dark bezel, tick marks over 270 degrees and a needle.
void DrawDial(cv::Mat& image, cv::Point centre, int radius, double needle_deg) {
  cv::circle(image, centre, radius, cv::Scalar(235, 235, 235), cv::FILLED, cv::LINE_AA);
  cv::circle(image, centre, radius, cv::Scalar(30, 30, 30), std::max(2, radius / 20), cv::LINE_AA);
  for (int i = 0; i <= 10; ++i) {
    const double a = (225 - 27.0 * i) * CV_PI / 180;
    const cv::Point2d dir(std::cos(a), -std::sin(a));
    cv::line(image, centre + cv::Point(dir * radius * 0.8), centre + cv::Point(dir * radius * 0.92),
             cv::Scalar(20, 20, 20), 2, cv::LINE_AA);
  }
  const double a = needle_deg * CV_PI / 180;
  cv::line(image, centre,
           centre + cv::Point(cv::Point2d(std::cos(a), -std::sin(a)) * radius * 0.75),
           cv::Scalar(0, 0, 200), 3, cv::LINE_AA);
  cv::circle(image, centre, std::max(3, radius / 12), cv::Scalar(20, 20, 20), cv::FILLED);
}

PreprocessedFrame Identity(const cv::Mat& image) {
  PreprocessedFrame frame;
  frame.image = image;
  frame.frame_size = image.size();
  return frame;
}

RoiConfig Roi(const std::string& name) {
  RoiConfig roi;
  roi.name = name;
  roi.task = TaskKind::kZoom;
  return roi;
}

TEST(RoisTest, StaticRectAndPolygonOnIdentityFrame) {
  StationConfig config;
  config.rois.push_back(Roi("a"));
  config.rois[0].rect = cv::Rect(10, 20, 30, 40);
  config.rois.push_back(Roi("b"));
  config.rois[1].polygon = {{5, 5}, {60, 5}, {30, 50}};
  const cv::Mat image(100, 100, CV_8UC3, cv::Scalar::all(0));
  auto rois = FindRois(config, Identity(image));
  ASSERT_TRUE(rois.ok()) << rois.status();
  ASSERT_EQ(rois->size(), 2u);
  EXPECT_EQ((*rois)[0].name, "a");
  EXPECT_EQ((*rois)[0].roi_index, 0);
  EXPECT_EQ((*rois)[0].rect, cv::Rect(10, 20, 30, 40));
  EXPECT_EQ((*rois)[0].frame_rect, cv::Rect(10, 20, 30, 40));
  EXPECT_TRUE((*rois)[0].polygon.empty());
  EXPECT_EQ((*rois)[1].roi_index, 1);
  EXPECT_EQ((*rois)[1].polygon, config.rois[1].polygon);
  EXPECT_EQ((*rois)[1].rect, cv::boundingRect(config.rois[1].polygon));
}

TEST(RoisTest, StaticRectFollowsPreprocessing) {
  StationConfig config;
  config.rois.push_back(Roi("boiler"));
  config.rois[0].rect = cv::Rect(200, 100, 400, 300);
  config.rois.push_back(Roi("tray"));
  config.rois[1].polygon = {{0, 0}, {100, 0}, {100, 100}};
  PreprocessConfig pre;
  pre.max_width = 640;
  auto frame = Preprocess(cv::Mat(720, 1280, CV_8UC3, cv::Scalar::all(50)), pre);
  ASSERT_TRUE(frame.ok());
  auto rois = FindRois(config, *frame);
  ASSERT_TRUE(rois.ok()) << rois.status();
  EXPECT_EQ((*rois)[0].rect, cv::Rect(100, 50, 200, 150));
  EXPECT_EQ((*rois)[0].frame_rect, cv::Rect(200, 100, 400, 300));
  EXPECT_EQ((*rois)[1].polygon, (std::vector<cv::Point>{{0, 0}, {50, 0}, {50, 50}}));
  EXPECT_EQ((*rois)[1].frame_rect, cv::Rect(0, 0, 101, 101));
}

TEST(RoisTest, RotatedRectIsClippedToTheImage) {
  StationConfig config;
  config.rois.push_back(Roi("corner"));
  config.rois[0].rect = cv::Rect(0, 0, 100, 100);
  PreprocessConfig pre;
  pre.rotate_deg = 10;
  auto frame = Preprocess(cv::Mat(360, 640, CV_8UC3, cv::Scalar::all(50)), pre);
  ASSERT_TRUE(frame.ok());
  auto rois = FindRois(config, *frame);
  ASSERT_TRUE(rois.ok()) << rois.status();
  const cv::Rect r = (*rois)[0].rect;
  EXPECT_EQ(r & cv::Rect(0, 0, 640, 360), r);
  EXPECT_FALSE(r.empty());
  // Mapped back, it lies in the frame and covers most of the configured rect (the corner that
  // rotated off the canvas is lost).
  const cv::Rect back = (*rois)[0].frame_rect;
  EXPECT_EQ(back & cv::Rect(0, 0, 640, 360), back);
  EXPECT_GT((back & cv::Rect(0, 0, 100, 100)).area(), 100 * 100 * 0.8);
}

TEST(RoisTest, GridTilesCoverTheRectExactly) {
  StationConfig config;
  config.rois.push_back(Roi("shelf"));
  config.rois[0].find = "grid";
  config.rois[0].rect = cv::Rect(10, 10, 101, 50);
  config.rois[0].grid_rows = 2;
  config.rois[0].grid_cols = 3;
  auto rois = FindRois(config, Identity(cv::Mat(100, 200, CV_8UC3, cv::Scalar::all(0))));
  ASSERT_TRUE(rois.ok()) << rois.status();
  ASSERT_EQ(rois->size(), 6u);
  cv::Mat covered(100, 200, CV_8U, cv::Scalar(0));
  for (std::size_t k = 0; k < rois->size(); ++k) {
    EXPECT_EQ((*rois)[k].name, "shelf#" + std::to_string(k));
    covered((*rois)[k].rect) += 1;
  }
  EXPECT_EQ(cv::countNonZero(covered == 1), 101 * 50) << "every pixel in exactly one tile";
  EXPECT_EQ(cv::countNonZero(covered), 101 * 50);
  EXPECT_EQ((*rois)[0].rect.tl(), cv::Point(10, 10));  // row-major: #1 is right of #0
  EXPECT_EQ((*rois)[1].rect.y, 10);
  EXPECT_GT((*rois)[1].rect.x, 10);
  EXPECT_EQ((*rois)[3].rect.x, 10);
}

TEST(RoisTest, HandBuiltFrameWithoutFrameSize) {
  StationConfig config;
  config.rois.push_back(Roi("all"));
  config.rois[0].find = "grid";
  config.rois[0].grid_rows = 1;
  PreprocessedFrame frame;  // frame_size left empty: bounds come from the image
  frame.image = cv::Mat(90, 120, CV_8UC3, cv::Scalar::all(0));
  auto rois = FindRois(config, frame);
  ASSERT_TRUE(rois.ok());
  ASSERT_EQ(rois->size(), 2u);
  EXPECT_EQ((*rois)[1].frame_rect, cv::Rect(60, 0, 60, 90));
}

TEST(RoisTest, GridWithoutRectTilesTheWholeFrame) {
  StationConfig config;
  config.rois.push_back(Roi("all"));
  config.rois[0].find = "grid";
  auto rois = FindRois(config, Identity(cv::Mat(90, 120, CV_8UC3, cv::Scalar::all(0))));
  ASSERT_TRUE(rois.ok());
  ASSERT_EQ(rois->size(), 4u);
  EXPECT_EQ((*rois)[3].rect, cv::Rect(60, 45, 60, 45));
}

TEST(RoisTest, FindsDialsLeftToRight) {
  cv::Mat image(360, 640, CV_8UC3, cv::Scalar(90, 100, 110));
  // The right dial is higher: order must still be left-to-right.
  DrawDial(image, {470, 150}, 100, 40);
  DrawDial(image, {170, 200}, 90, 200);
  StationConfig config;
  config.rois.push_back(Roi("panel"));
  config.rois[0].task = TaskKind::kReadGauge;
  config.rois[0].find = "gauges";
  auto rois = FindRois(config, Identity(image));
  ASSERT_TRUE(rois.ok()) << rois.status();
  ASSERT_EQ(rois->size(), 2u);
  EXPECT_EQ((*rois)[0].name, "panel#0");
  EXPECT_EQ((*rois)[1].name, "panel#1");
  const cv::Point2d left = ((*rois)[0].rect.tl() + (*rois)[0].rect.br()) / 2;
  const cv::Point2d right = ((*rois)[1].rect.tl() + (*rois)[1].rect.br()) / 2;
  EXPECT_NEAR(left.x, 170, 4);
  EXPECT_NEAR(left.y, 200, 4);
  EXPECT_NEAR(right.x, 470, 4);
  EXPECT_NEAR(right.y, 150, 4);
  // Square with a margin around the whole dial (clipped at the frame's top/bottom).
  EXPECT_NEAR((*rois)[0].rect.width, 2 * 90 * 1.1, 10);
  EXPECT_TRUE(((*rois)[0].rect & cv::Rect(80, 110, 181, 181)) == cv::Rect(80, 110, 181, 181) ||
              (*rois)[0].rect.y == 0 || (*rois)[0].rect.br().y == 360);
  EXPECT_EQ((*rois)[1].frame_rect, (*rois)[1].rect);
}

TEST(RoisTest, DialSearchStaysInsideTheRect) {
  cv::Mat image(360, 640, CV_8UC3, cv::Scalar(90, 100, 110));
  DrawDial(image, {170, 180}, 90, 200);
  DrawDial(image, {470, 180}, 90, 40);
  StationConfig config;
  config.rois.push_back(Roi("right"));
  config.rois[0].task = TaskKind::kReadGauge;
  config.rois[0].find = "gauges";
  config.rois[0].rect = cv::Rect(320, 0, 320, 360);
  auto rois = FindRois(config, Identity(image));
  ASSERT_TRUE(rois.ok()) << rois.status();
  ASSERT_EQ(rois->size(), 1u);
  EXPECT_EQ((*rois)[0].name, "right#0");
  EXPECT_NEAR(((*rois)[0].rect.tl() + (*rois)[0].rect.br()).x / 2.0, 470, 4);
}

TEST(RoisTest, FindsVariedRenderedDials) {
  // Random styles (faces, bezels, needles, blur, noise, glare, JPEG, perspective) from the
  // sample renderer, each placed off-centre on a wider canvas: exactly one dial, near the truth.
  cv::RNG rng(42);
  for (int i = 0; i < 24; ++i) {
    const GaugeStyle style = RandomGaugeStyle(rng);
    const cv::Mat dial = RenderGauge(style, (style.min_value + style.max_value) / 2, rng);
    cv::Mat canvas(dial.rows, dial.cols * 2, CV_8UC3, style.background);
    dial.copyTo(canvas(cv::Rect(dial.cols / 2, 0, dial.cols, dial.rows)));
    const cv::Point2d truth(dial.cols + style.centre_offset.x * style.size,
                            dial.rows / 2.0 + style.centre_offset.y * style.size);
    const std::vector<cv::Vec3f> found =
        FindDials(canvas, cv::Rect(0, 0, canvas.cols, canvas.rows));
    ASSERT_EQ(found.size(), 1u) << "style " << i;
    EXPECT_LT(std::hypot(found[0][0] - truth.x, found[0][1] - truth.y), 0.1 * style.size)
        << "style " << i;
  }
}

TEST(RoisTest, NoDialsOnAPlainOrNoisyFrame) {
  cv::Mat plain(360, 640, CV_8UC3, cv::Scalar(90, 100, 110));
  EXPECT_TRUE(FindDials(plain, cv::Rect(0, 0, 640, 360)).empty());
  cv::Mat noise(360, 640, CV_8UC3);
  cv::RNG(3).fill(noise, cv::RNG::UNIFORM, 0, 256);
  EXPECT_TRUE(FindDials(noise, cv::Rect(0, 0, 640, 360)).empty());
  cv::Mat boxes = plain.clone();
  cv::rectangle(boxes, cv::Rect(100, 100, 150, 150), cv::Scalar(0, 0, 0), 3);
  EXPECT_TRUE(FindDials(boxes, cv::Rect(0, 0, 640, 360)).empty());
}

TEST(RoisTest, RectOutsideTheImageIsAnError) {
  StationConfig config;
  config.rois.push_back(Roi("boiler"));
  config.rois[0].rect = cv::Rect(700, 10, 50, 50);
  auto rois = FindRois(config, Identity(cv::Mat(360, 640, CV_8UC3, cv::Scalar::all(0))));
  ASSERT_FALSE(rois.ok());
  EXPECT_THAT(rois.status().message(), HasSubstr("roi 'boiler'"));
  EXPECT_FALSE(FindRois(config, PreprocessedFrame{}).ok());
}

}  // namespace
}  // namespace roilens
