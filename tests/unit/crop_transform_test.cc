// CropTransform and MakeCrop: exact round trips, and agreement with plain OpenCV resampling.
#include "roilens/stages/crop_transform.h"

#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "roilens/stages/rois.h"

namespace roilens {
namespace {

/// A smooth test image (interpolation error stays small, so a round trip is meaningful).
cv::Mat SmoothImage(cv::Size size) {
  cv::Mat m(size, CV_8UC3);
  for (int y = 0; y < size.height; ++y) {
    for (int x = 0; x < size.width; ++x) {
      m.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>(128 + 100 * std::sin(x * 0.05)),
                                        static_cast<uchar>(128 + 100 * std::cos(y * 0.07)),
                                        static_cast<uchar>((x + 2 * y) % 256 / 2 + 60));
    }
  }
  return m;
}

RoiInstance Instance(const cv::Rect& rect) {
  RoiInstance roi;
  roi.name = "r";
  roi.rect = rect;
  roi.frame_rect = rect;
  return roi;
}

TEST(CropTransformTest, PointRoundTripIsExact) {
  for (double zoom : {0.5, 1.0, 2.0, 3.7, 8.0}) {
    const CropTransform t = CropTransform::Make(cv::Rect(37, 21, 101, 57), zoom);
    for (const cv::Point2d p : {cv::Point2d(37, 21), cv::Point2d(50.25, 30.75),
                                cv::Point2d(138, 78), cv::Point2d(-5, 500)}) {
      const cv::Point2d back = t.ToFrame(t.ToCrop(p));
      EXPECT_NEAR(back.x, p.x, 1e-9) << zoom;
      EXPECT_NEAR(back.y, p.y, 1e-9) << zoom;
    }
    EXPECT_EQ(t.crop_size, cv::Size(static_cast<int>(std::lround(101 * zoom)),
                                    static_cast<int>(std::lround(57 * zoom))));
  }
}

TEST(CropTransformTest, CornersMapToCorners) {
  const CropTransform t = CropTransform::Make(cv::Rect(10, 20, 30, 40), 2);
  EXPECT_EQ(t.ToCrop({10, 20}), cv::Point2d(0, 0));
  EXPECT_EQ(t.ToCrop({40, 60}), cv::Point2d(60, 80));
  EXPECT_EQ(t.ToFrame(cv::Rect(0, 0, 60, 80)), cv::Rect(10, 20, 30, 40));
  EXPECT_EQ(t.ToFrame(cv::Rect(2, 2, 4, 4)), cv::Rect(11, 21, 2, 2));
  EXPECT_EQ(t.ToFrame(cv::Rect(1, 1, 1, 1)), cv::Rect(10, 20, 1, 1)) << "rounded outward";
  EXPECT_EQ(t.ToFrame(cv::Rect(-50, -50, 500, 500)), cv::Rect(10, 20, 30, 40)) << "clipped";
}

TEST(CropTransformTest, MapAgreesWithOpenCvResize) {
  // Our ToCrop, applied through warpAffine at pixel centres, must sample the same places as
  // cv::resize does: the two images agree up to rounding.
  const cv::Mat frame = SmoothImage({200, 150});
  const cv::Rect rect(30, 40, 80, 60);
  const CropTransform t = CropTransform::Make(rect, 2);
  cv::Mat resized;
  cv::resize(frame(rect), resized, t.crop_size, 0, 0, cv::INTER_LINEAR);
  // crop index i <-> crop edge coordinate i + 0.5 <-> frame edge ToFrame(.) <-> frame index - 0.5
  const cv::Point2d o = t.ToFrame(cv::Point2d(0.5, 0.5));
  const cv::Point2d x = t.ToFrame(cv::Point2d(1.5, 0.5));
  const cv::Point2d y = t.ToFrame(cv::Point2d(0.5, 1.5));
  const cv::Matx23d crop_index_to_frame_index(x.x - o.x, y.x - o.x, o.x - 0.5, x.y - o.y, y.y - o.y,
                                              o.y - 0.5);
  cv::Mat warped;
  cv::warpAffine(frame, warped, crop_index_to_frame_index, t.crop_size,
                 cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_REPLICATE);
  // Stay off the outermost row/column where resize replicates inside the rect only.
  const cv::Rect inner(1, 1, t.crop_size.width - 2, t.crop_size.height - 2);
  EXPECT_LE(cv::norm(warped(inner), resized(inner), cv::NORM_INF), 1);
}

TEST(CropTransformTest, MakeCropZoomOneRoundTripIsLossless) {
  const cv::Mat frame = SmoothImage({160, 120});
  const RoiInstance roi = Instance(cv::Rect(13, 17, 50, 40));
  auto crop = MakeCrop(frame, roi, 1);
  ASSERT_TRUE(crop.ok()) << crop.status();
  EXPECT_EQ(crop->image.size(), roi.rect.size());
  EXPECT_NE(crop->image.data, frame(roi.rect).data) << "the crop owns its pixels";
  const cv::Mat back = crop->transform.ImageToFrame(crop->image);
  ASSERT_EQ(back.size(), roi.rect.size());
  EXPECT_LE(cv::norm(back, frame(roi.rect), cv::NORM_INF), 1);
}

TEST(CropTransformTest, MakeCropZoomTwoRoundTripWithinInterpolationError) {
  const cv::Mat frame = SmoothImage({160, 120});
  const RoiInstance roi = Instance(cv::Rect(20, 10, 64, 48));
  auto crop = MakeCrop(frame, roi, 2);
  ASSERT_TRUE(crop.ok());
  EXPECT_EQ(crop->image.size(), cv::Size(128, 96));
  // Reference: plain OpenCV bicubic upscale of the region.
  cv::Mat reference;
  cv::resize(frame(roi.rect), reference, cv::Size(128, 96), 0, 0, cv::INTER_CUBIC);
  EXPECT_EQ(cv::norm(crop->image, reference, cv::NORM_INF), 0);
  const cv::Mat back = crop->transform.ImageToFrame(crop->image);
  ASSERT_EQ(back.size(), roi.rect.size());
  cv::Mat diff;
  cv::absdiff(back, frame(roi.rect), diff);
  EXPECT_LE(cv::mean(diff)[0], 1.0);
  EXPECT_LE(cv::norm(back, frame(roi.rect), cv::NORM_INF), 6);
}

TEST(CropTransformTest, ReturnedImageOfAnySizeAndTypeMapsBack) {
  const CropTransform t = CropTransform::Make(cv::Rect(0, 0, 40, 30), 2);
  EXPECT_TRUE(t.ImageToFrame(cv::Mat()).empty());
  const cv::Mat grey(77, 91, CV_8UC1, cv::Scalar(9));
  cv::Mat back = t.ImageToFrame(grey);
  EXPECT_EQ(back.size(), cv::Size(40, 30));
  EXPECT_EQ(back.type(), CV_8UC3);
  EXPECT_EQ(back.at<cv::Vec3b>(5, 5), cv::Vec3b(9, 9, 9));
  back = t.ImageToFrame(cv::Mat(10, 10, CV_8UC4, cv::Scalar(1, 2, 3, 255)));
  EXPECT_EQ(back.size(), cv::Size(40, 30));
  EXPECT_EQ(back.at<cv::Vec3b>(29, 39), cv::Vec3b(1, 2, 3));
  back = t.ImageToFrame(cv::Mat(60, 80, CV_16UC3, cv::Scalar::all(65535)));
  EXPECT_EQ(back.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 255, 255));
}

TEST(CropTransformTest, MaskedPolygonCrop) {
  const cv::Mat frame(100, 100, CV_8UC3, cv::Scalar::all(200));
  RoiInstance roi = Instance(cv::Rect(10, 10, 40, 40));
  roi.polygon = {{10, 10}, {49, 10}, {10, 49}};  // triangle: lower-right half masked
  auto crop = MakeCrop(frame, roi, 1);
  ASSERT_TRUE(crop.ok());
  EXPECT_EQ(crop->image.at<cv::Vec3b>(2, 2), cv::Vec3b::all(200));
  EXPECT_EQ(crop->image.at<cv::Vec3b>(37, 37), cv::Vec3b::all(0));
}

TEST(CropTransformTest, MakeCropRejectsBadInput) {
  const cv::Mat frame(100, 100, CV_8UC3, cv::Scalar::all(0));
  RoiInstance roi = Instance(cv::Rect(90, 90, 20, 20));
  roi.name = "boiler";
  auto crop = MakeCrop(frame, roi, 1);
  ASSERT_FALSE(crop.ok());
  EXPECT_NE(crop.status().message().find("roi 'boiler'"), std::string::npos);
  EXPECT_FALSE(MakeCrop(frame, Instance(cv::Rect(0, 0, 0, 5)), 1).ok());
  EXPECT_FALSE(MakeCrop(frame, Instance(cv::Rect(0, 0, 5, 5)), 0).ok());
  EXPECT_FALSE(MakeCrop(frame, Instance(cv::Rect(0, 0, 5, 5)), 9).ok());
}

}  // namespace
}  // namespace roilens
