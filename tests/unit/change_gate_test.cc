// ChangeGate: a crop that has not changed reuses the last answer (status cached) until it is
// too old; a changed crop, an error answer or another ROI does not.
#include "roilens/stages/change_gate.h"

#include <gtest/gtest.h>

#include <future>
#include <opencv2/imgproc.hpp>
#include <thread>

namespace roilens {
namespace {

cv::Mat Dial(double needle_deg) {
  cv::Mat m(120, 120, CV_8UC3, cv::Scalar(230, 230, 230));
  const double a = needle_deg * CV_PI / 180;
  cv::line(m, {60, 60},
           {60 + static_cast<int>(50 * std::cos(a)), 60 - static_cast<int>(50 * std::sin(a))},
           cv::Scalar(0, 0, 0), 4);
  return m;
}

// A station-like crop: a big light dial, a thin needle, and sensor noise on every pixel.
cv::Mat ThinNeedleDial(double needle_deg, int noise_seed) {
  cv::Mat m(200, 200, CV_8UC3, cv::Scalar(60, 60, 60));
  cv::circle(m, {100, 100}, 90, cv::Scalar(235, 235, 235), cv::FILLED);
  const double a = needle_deg * CV_PI / 180;
  cv::line(m, {100, 100},
           {100 + static_cast<int>(80 * std::cos(a)), 100 - static_cast<int>(80 * std::sin(a))},
           cv::Scalar(20, 20, 200), 2, cv::LINE_AA);
  cv::Mat noise(m.size(), CV_16SC3);
  cv::RNG rng(noise_seed);
  rng.fill(noise, cv::RNG::NORMAL, 0, 4);
  cv::Mat noisy;
  m.convertTo(noisy, CV_16SC3);
  noisy += noise;
  noisy.convertTo(m, CV_8UC3);
  return m;
}

RoiAnswer Ok(double value) {
  RoiAnswer a;
  a.value = value;
  a.unit = "bar";
  a.interaction_id = "int-" + std::to_string(value);
  a.image = cv::Mat(4, 4, CV_8UC3, cv::Scalar(1, 2, 3));
  return a;
}

TEST(ChangeGateTest, ThinNeedleMoveIsAChangeButNoiseIsNot) {
  const cv::Mat still = ChangeGate::Thumbnail(ThinNeedleDial(120, 1));
  // Same needle, fresh noise: must stay under the default threshold (0.02).
  EXPECT_LT(ChangeGate::Difference(still, ChangeGate::Thumbnail(ThinNeedleDial(120, 2))), 0.02);
  // The needle moved 15 degrees (a reading change of ~5% of a 270-degree span).
  EXPECT_GT(ChangeGate::Difference(still, ChangeGate::Thumbnail(ThinNeedleDial(105, 3))), 0.02);
}

TEST(ChangeGateTest, ThumbnailIsSmallGreyFloat) {
  const cv::Mat t = ChangeGate::Thumbnail(Dial(90));
  EXPECT_EQ(t.size(), cv::Size(32, 32));
  EXPECT_EQ(t.type(), CV_32FC1);
  double lo = 0, hi = 0;
  cv::minMaxLoc(t, &lo, &hi);
  EXPECT_GE(lo, 0);
  EXPECT_LE(hi, 1);
  EXPECT_TRUE(ChangeGate::Thumbnail(cv::Mat()).empty());
  EXPECT_EQ(ChangeGate::Thumbnail(cv::Mat(10, 10, CV_8UC1, cv::Scalar(255))).at<float>(3, 3), 1.0f);
}

TEST(ChangeGateTest, DifferenceIsLargestCellMeanOfPlainAbsDiff) {
  const cv::Mat a = ChangeGate::Thumbnail(Dial(90));
  const cv::Mat b = ChangeGate::Thumbnail(Dial(30));
  EXPECT_EQ(ChangeGate::Difference(a, a), 0);
  cv::Mat ga, gb;
  cv::cvtColor(Dial(90), ga, cv::COLOR_BGR2GRAY);
  cv::cvtColor(Dial(30), gb, cv::COLOR_BGR2GRAY);
  cv::resize(ga, ga, {32, 32}, 0, 0, cv::INTER_AREA);
  cv::resize(gb, gb, {32, 32}, 0, 0, cv::INTER_AREA);
  cv::Mat diff;
  cv::absdiff(ga, gb, diff);
  cv::Mat cells;
  cv::resize(diff, cells, {8, 8}, 0, 0, cv::INTER_AREA);
  double largest = 0;
  cv::minMaxLoc(cells, nullptr, &largest);
  EXPECT_NEAR(ChangeGate::Difference(a, b), largest / 255.0, 2e-3);
  EXPECT_GT(ChangeGate::Difference(a, b), 0.02) << "a moved needle is a change at the default";
  EXPECT_EQ(ChangeGate::Difference(a, cv::Mat()), 1.0);
  EXPECT_EQ(ChangeGate::Difference(a, cv::Mat(8, 8, CV_32F, cv::Scalar(0))), 1.0);
}

TEST(ChangeGateTest, UnchangedCropReusesTheAnswerUntilTooOld) {
  ChangeGate gate;
  const cv::Mat thumb = ChangeGate::Thumbnail(Dial(90));
  EXPECT_FALSE(gate.Lookup("boiler", thumb, 0, 0.02, 10).has_value()) << "nothing stored yet";
  gate.Store("boiler", thumb, Ok(4.2), 100);

  // Slight sensor noise: still the same crop.
  cv::Mat noisy = Dial(90);
  cv::Mat noise(noisy.size(), CV_8UC3);
  cv::RNG(1).fill(noise, cv::RNG::UNIFORM, 0, 4);
  noisy += noise;
  auto hit = gate.Lookup("boiler", ChangeGate::Thumbnail(noisy), 105, 0.02, 10);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->status, "cached");
  EXPECT_EQ(hit->value, 4.2);
  EXPECT_EQ(hit->interaction_id, "int-4.200000");
  EXPECT_FALSE(hit->image.empty());

  EXPECT_TRUE(gate.Lookup("boiler", thumb, 110, 0.02, 10).has_value()) << "age == max_age_s";
  EXPECT_FALSE(gate.Lookup("boiler", thumb, 110.5, 0.02, 10).has_value()) << "too old";
  EXPECT_FALSE(gate.Lookup("boiler", ChangeGate::Thumbnail(Dial(30)), 101, 0.02, 10).has_value())
      << "needle moved";
  EXPECT_FALSE(gate.Lookup("boiler#1", thumb, 101, 0.02, 10).has_value()) << "another ROI";
  EXPECT_FALSE(gate.Lookup("boiler", thumb, 101, 0.0, 10).has_value()) << "threshold 0: never";
}

TEST(ChangeGateTest, OnlyFreshAnswersAreStored) {
  ChangeGate gate;
  const cv::Mat thumb = ChangeGate::Thumbnail(Dial(90));
  RoiAnswer error;
  error.status = "error";
  error.error = "roi 'boiler': boom";
  gate.Store("boiler", thumb, error, 0);
  EXPECT_FALSE(gate.Lookup("boiler", thumb, 1, 0.02, 10).has_value());

  gate.Store("boiler", thumb, Ok(1), 0);
  auto cached = gate.Lookup("boiler", thumb, 1, 0.02, 10);
  ASSERT_TRUE(cached.has_value());
  gate.Store("boiler", thumb, *cached, 9);  // re-storing a cached answer must not refresh its age
  EXPECT_FALSE(gate.Lookup("boiler", thumb, 10.5, 0.02, 10).has_value());

  gate.Store("boiler", thumb, Ok(2), 20);  // a newer answer replaces the older one
  EXPECT_EQ(gate.Lookup("boiler", thumb, 21, 0.02, 10)->value, 2);
}

TEST(ChangeGateTest, StoredImageIsACopy) {
  ChangeGate gate;
  const cv::Mat thumb = ChangeGate::Thumbnail(Dial(90));
  RoiAnswer a = Ok(1);
  gate.Store("k", thumb, a, 0);
  a.image.setTo(cv::Scalar::all(99));  // caller draws on its own answer later
  EXPECT_EQ(gate.Lookup("k", thumb, 0, 0.02, 10)->image.at<cv::Vec3b>(0, 0), cv::Vec3b(1, 2, 3));
}

TEST(ChangeGateTest, AnswerForAnOlderFrameDoesNotReplaceANewerOne) {
  ChangeGate gate;
  const cv::Mat thumb = ChangeGate::Thumbnail(Dial(90));
  gate.Store("boiler", thumb, Ok(7), 100);  // frame at t=100 finished first
  gate.Store("boiler", thumb, Ok(3), 2);    // a slow worker finishes the frame at t=2 later
  auto cached = gate.Lookup("boiler", thumb, 105, 0.02, 10);
  ASSERT_TRUE(cached.has_value()) << "the t=2 answer must not have replaced the t=100 one";
  EXPECT_EQ(cached->value, 7);
}

TEST(ChangeGateTest, ConcurrentUseFromManyThreads) {
  ChangeGate gate;
  const cv::Mat thumb = ChangeGate::Thumbnail(Dial(90));
  std::promise<void> go;
  std::shared_future<void> start = go.get_future().share();
  std::vector<std::thread> threads;
  std::atomic<int> hits{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      start.wait();
      for (int i = 0; i < 200; ++i) {
        const std::string key = "roi" + std::to_string(i % 5);
        gate.Store(key, thumb, Ok(t), i);
        if (gate.Lookup(key, thumb, i, 0.02, 10)) ++hits;
      }
    });
  }
  go.set_value();
  for (auto& th : threads) th.join();
  EXPECT_EQ(hits.load(), 800)
      << "the entry is never older than what this thread just stored, so every lookup hits";
}

}  // namespace
}  // namespace roilens
