// MergeAnswer: replace/blend/inset/none draw where they should and nowhere else; labels are
// inside the frame and coloured by status; odd inputs never crash.
#include "roilens/stages/merge.h"

#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

namespace roilens {
namespace {

const cv::Size kFrame(320, 240);

cv::Mat Background() {
  cv::Mat m(kFrame, CV_8UC3);
  cv::RNG(7).fill(m, cv::RNG::UNIFORM, 0, 256);
  return m;
}

RoiInstance Instance(const cv::Rect& rect, const std::string& name = "boiler") {
  RoiInstance roi;
  roi.name = name;
  roi.rect = rect;
  roi.frame_rect = rect;
  return roi;
}

RoiAnswer WithImage(const cv::Mat& image) {
  RoiAnswer a;
  a.value = 4.2;
  a.unit = "bar";
  a.image = image;
  return a;
}

MergeConfig Mode(MergeMode mode, bool labels = false) {
  MergeConfig c;
  c.mode = mode;
  c.labels = labels;
  return c;
}

/// Mask of pixels that differ between two frames.
cv::Mat Changed(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat diff;
  cv::absdiff(a, b, diff);
  cv::Mat grey;
  cv::cvtColor(diff, grey, cv::COLOR_BGR2GRAY);
  return grey > 0;
}

TEST(MergeTest, ReplacePastesTheZoomedImageBackInsideTheRoiOnly) {
  const cv::Mat before = Background();
  cv::Mat frame = before.clone();
  const RoiInstance roi = Instance({50, 40, 60, 50});
  const CropTransform t = CropTransform::Make(roi.rect, 2);
  const cv::Mat returned(t.crop_size, CV_8UC3, cv::Scalar(10, 200, 30));  // zoomed crop size
  MergeAnswer(frame, roi, t, WithImage(returned), Mode(MergeMode::kReplace), std::nullopt);
  const cv::Mat changed = Changed(before, frame);
  EXPECT_EQ(cv::countNonZero(changed(roi.rect)), cv::countNonZero(changed)) << "outside unchanged";
  EXPECT_EQ(cv::norm(frame(roi.rect), cv::Mat(roi.rect.size(), CV_8UC3, cv::Scalar(10, 200, 30)),
                     cv::NORM_INF),
            0);
}

TEST(MergeTest, ReplaceMatchesOpenCvResizeOfTheReturnedImage) {
  cv::Mat frame = Background();
  const RoiInstance roi = Instance({20, 30, 64, 48});
  const CropTransform t = CropTransform::Make(roi.rect, 2);
  cv::Mat returned(t.crop_size, CV_8UC3);
  cv::RNG(9).fill(returned, cv::RNG::UNIFORM, 0, 256);
  MergeAnswer(frame, roi, t, WithImage(returned), Mode(MergeMode::kReplace), std::nullopt);
  cv::Mat reference;
  cv::resize(returned, reference, roi.rect.size(), 0, 0, cv::INTER_AREA);
  EXPECT_EQ(cv::norm(frame(roi.rect), reference, cv::NORM_INF), 0);
}

TEST(MergeTest, ReplaceRespectsThePolygon) {
  const cv::Mat before = Background();
  cv::Mat frame = before.clone();
  RoiInstance roi = Instance({100, 100, 50, 50});
  roi.polygon = {{100, 100}, {149, 100}, {100, 149}};
  const CropTransform t = CropTransform::Make(roi.rect, 1);
  MergeAnswer(frame, roi, t, WithImage(cv::Mat(50, 50, CV_8UC3, cv::Scalar::all(255))),
              Mode(MergeMode::kReplace), std::nullopt);
  EXPECT_EQ(frame.at<cv::Vec3b>(105, 105), cv::Vec3b::all(255));
  EXPECT_EQ(frame.at<cv::Vec3b>(145, 145), before.at<cv::Vec3b>(145, 145)) << "outside polygon";
}

TEST(MergeTest, BlendMixesWithAlpha) {
  cv::Mat frame(kFrame, CV_8UC3, cv::Scalar::all(100));
  const RoiInstance roi = Instance({10, 10, 20, 20});
  MergeConfig config = Mode(MergeMode::kBlend);
  config.blend_alpha = 0.25;
  MergeAnswer(frame, roi, CropTransform::Make(roi.rect, 1),
              WithImage(cv::Mat(20, 20, CV_8UC3, cv::Scalar::all(200))), config, std::nullopt);
  EXPECT_EQ(frame.at<cv::Vec3b>(15, 15), cv::Vec3b::all(125));
  EXPECT_EQ(frame.at<cv::Vec3b>(5, 5), cv::Vec3b::all(100));
}

TEST(MergeTest, InsetLeavesTheRoiAndDrawsBesideIt) {
  const cv::Mat before = Background();
  cv::Mat frame = before.clone();
  const RoiInstance roi = Instance({40, 40, 100, 100});
  MergeAnswer(frame, roi, CropTransform::Make(roi.rect, 2),
              WithImage(cv::Mat(200, 200, CV_8UC3, cv::Scalar(0, 0, 255))), Mode(MergeMode::kInset),
              std::nullopt);
  const cv::Mat changed = Changed(before, frame);
  EXPECT_EQ(cv::countNonZero(changed(roi.rect)), 0) << "the ROI itself is untouched";
  EXPECT_GT(cv::countNonZero(changed), 40 * 40);
  EXPECT_EQ(frame.at<cv::Vec3b>(60, 170), cv::Vec3b(0, 0, 255)) << "right of the ROI";
}

TEST(MergeTest, NoneAndErrorsDrawNoImage) {
  const cv::Mat before = Background();
  cv::Mat frame = before.clone();
  const RoiInstance roi = Instance({40, 40, 50, 50});
  const CropTransform t = CropTransform::Make(roi.rect, 1);
  const cv::Mat returned(50, 50, CV_8UC3, cv::Scalar::all(0));
  MergeAnswer(frame, roi, t, WithImage(returned), Mode(MergeMode::kNone), std::nullopt);
  EXPECT_EQ(cv::countNonZero(Changed(before, frame)), 0);
  RoiAnswer error = WithImage(returned);
  error.status = "error";
  MergeAnswer(frame, roi, t, error, Mode(MergeMode::kReplace), std::nullopt);
  EXPECT_EQ(cv::countNonZero(Changed(before, frame)), 0);
}

TEST(MergeTest, LabelTextAndColours) {
  const RoiInstance roi = Instance({0, 0, 10, 10});
  RoiAnswer a = WithImage({});
  EXPECT_EQ(LabelText(roi, a, std::nullopt), "boiler: 4.2 bar");
  EXPECT_EQ(LabelText(roi, a, 3.4), "boiler: 4.2 bar +3s");
  EXPECT_EQ(StatusColour(a), cv::Scalar(0, 200, 0));
  a.status = "cached";
  EXPECT_EQ(StatusColour(a), cv::Scalar(170, 170, 170));
  a.alarm = "high";
  EXPECT_EQ(LabelText(roi, a, std::nullopt), "boiler: 4.2 bar HIGH");
  EXPECT_EQ(StatusColour(a), cv::Scalar(0, 140, 255));
  RoiAnswer count;
  count.count = 7;
  EXPECT_EQ(LabelText(Instance({}, "tray"), count, std::nullopt), "tray: 7");
  RoiAnswer error;
  error.status = "error";
  EXPECT_EQ(LabelText(roi, error, std::nullopt), "boiler: error");
  EXPECT_EQ(StatusColour(error), cv::Scalar(0, 0, 230));
  RoiAnswer text;
  text.text = std::string(100, 'x');
  EXPECT_LE(LabelText(roi, text, std::nullopt).size(), std::string("boiler: ").size() + 40);
}

TEST(MergeTest, UncertainReadingsAreShownAmberWithAQuestionMark) {
  const RoiInstance roi = Instance({60, 60, 50, 50});
  RoiAnswer a = WithImage({});
  a.status = "uncertain";
  a.confidence = 0.314;
  EXPECT_EQ(LabelText(roi, a, std::nullopt), "boiler: 4.2 bar? uncertain");
  EXPECT_EQ(LabelText(roi, a, 2.0), "boiler: 4.2 bar? uncertain +2s");
  RoiAnswer count;
  count.status = "uncertain";
  count.count = 7;
  EXPECT_EQ(LabelText(Instance({}, "tray"), count, std::nullopt), "tray: 7? uncertain");
  const cv::Scalar amber = StatusColour(a);
  EXPECT_EQ(amber, cv::Scalar(0, 210, 255));
  RoiAnswer ok = WithImage({});
  RoiAnswer cached = ok;
  cached.status = "cached";
  RoiAnswer alarm = ok;
  alarm.alarm = "high";
  for (const RoiAnswer& other : {ok, cached, alarm}) EXPECT_NE(StatusColour(other), amber);

  // The returned image is still pasted (it is a reading), and the outline and label are amber.
  const cv::Mat before(kFrame, CV_8UC3, cv::Scalar::all(0));
  cv::Mat frame = before.clone();
  const cv::Mat returned(50, 50, CV_8UC3, cv::Scalar(40, 80, 120));
  RoiAnswer shown = WithImage(returned);
  shown.status = "uncertain";
  MergeAnswer(frame, roi, CropTransform::Make(roi.rect, 1), shown, Mode(MergeMode::kReplace, true),
              std::nullopt);
  EXPECT_EQ(frame.at<cv::Vec3b>(85, 85), cv::Vec3b(40, 80, 120));
  EXPECT_EQ(frame.at<cv::Vec3b>(60, 85), cv::Vec3b(0, 210, 255)) << "amber outline";
}

TEST(MergeTest, LabelsStayInsideTheFrameAtTheEdges) {
  for (const cv::Rect rect : {cv::Rect(0, 0, 30, 30), cv::Rect(290, 210, 30, 30),
                              cv::Rect(300, 0, 20, 240), cv::Rect(0, 230, 320, 10)}) {
    cv::Mat frame(kFrame, CV_8UC3, cv::Scalar::all(0));
    RoiAnswer a = WithImage({});
    a.text = "a long description of what the model saw";
    a.value.reset();
    MergeAnswer(frame, Instance(rect, "a-rather-long-roi-name"), CropTransform::Make(rect, 1), a,
                Mode(MergeMode::kReplace, true), 12.0);
    // The label box is filled in the status colour (green): a large green area exists.
    cv::Mat green;
    cv::inRange(frame, cv::Scalar(0, 200, 0), cv::Scalar(0, 200, 0), green);
    EXPECT_GT(cv::countNonZero(green), 200) << rect;
  }
}

TEST(MergeTest, OddInputsNeverCrash) {
  cv::Mat frame = Background();
  const RoiInstance roi = Instance({300, 220, 60, 60});  // hangs off the frame
  const CropTransform t = CropTransform::Make(roi.rect, 2);
  for (MergeMode mode : {MergeMode::kReplace, MergeMode::kBlend, MergeMode::kInset}) {
    MergeAnswer(frame, roi, t, WithImage(cv::Mat()), Mode(mode, true), 1.0);
    MergeAnswer(frame, roi, t, WithImage(cv::Mat(7, 300, CV_8UC1, cv::Scalar(5))), Mode(mode, true),
                std::nullopt);
    MergeAnswer(frame, roi, t, WithImage(cv::Mat(2000, 2000, CV_8UC4, cv::Scalar::all(5))),
                Mode(mode, true), std::nullopt);
    MergeAnswer(frame, Instance({-50, -50, 10, 10}), CropTransform::Make({-50, -50, 10, 10}, 1),
                WithImage(cv::Mat(10, 10, CV_8UC3)), Mode(mode, true), std::nullopt);
  }
  cv::Mat empty;
  MergeAnswer(empty, roi, t, WithImage(cv::Mat(3, 3, CV_8UC3)), Mode(MergeMode::kReplace, true),
              std::nullopt);
  cv::Mat grey(10, 10, CV_8UC1, cv::Scalar(0));
  MergeAnswer(grey, roi, t, WithImage(cv::Mat(3, 3, CV_8UC3)), Mode(MergeMode::kReplace, true),
              std::nullopt);
  SUCCEED();
}

TEST(MergeTest, LabelsAreDrawnAsAscii) {
  EXPECT_EQ(HersheyText("coolant: 62.9 \u00b0C"), "coolant: 62.9 degC");
  EXPECT_EQ(HersheyText("na\u00efve \u2192 ok"), "na?ve ? ok");
  EXPECT_EQ(HersheyText("plain"), "plain");
}

}  // namespace
}  // namespace roilens
