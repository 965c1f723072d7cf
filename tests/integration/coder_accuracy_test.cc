// The coder's programs, run for real (through the sandbox when it can start, else through
// /usr/bin/python3 with a note), on a small fixed set of generated gauges and trays.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <initializer_list>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "roilens/backend/coder.h"
#include "roilens/backend/coder_eval.h"
#include "roilens/backend/sandbox.h"
#include "roilens/config/config.h"
#include "roilens/samples.h"
#include "roilens/stages/prompt.h"
#include "testing/paths.h"

namespace roilens::backend {
namespace {

using nlohmann::json;

/// The sandbox when isolation is available here, else the plain interpreter (announced).
ProgramRunner Runner() {
  static std::shared_ptr<Sandbox> sandbox = [] {
    auto created = Sandbox::Create(SandboxOptions{});
    if (!created.ok()) {
      std::cout << "[note] sandbox unavailable (" << created.status().message()
                << "); running the coder's programs with /usr/bin/python3 directly\n";
      return std::shared_ptr<Sandbox>();
    }
    return std::shared_ptr<Sandbox>(std::move(created).value());
  }();
  if (sandbox) return [](const SandboxJob& job) { return sandbox->Run(job); };
  return [](const SandboxJob& job) { return RunPythonDirectly(job); };
}

TEST(CoderAccuracyTest, FixedSetOfGaugesAndTrays) {
  auto coder = MakeCvCoder();
  CoderEvalOptions options;
  options.gauges = 12;
  options.trays = 8;
  options.seed = 20261125;
  const CoderEvalReport r = EvaluateCoder(*coder, Runner(), options);
  ASSERT_EQ(r.gauges, 12);
  ASSERT_EQ(r.trays, 8);
  int exact = 0;
  for (const CoderEvalCase& c : r.cases) {
    EXPECT_FALSE(c.failed) << c.kind << " " << c.index << ": " << c.error;
    if (c.kind == "gauge") {
      EXPECT_LE(c.error_pct, 3.0) << "gauge " << c.index << ": truth " << c.truth << " read "
                                  << c.answer;
    } else {
      exact += c.answer == c.truth;
    }
  }
  // The trays now include the hard conditions of issue 10 (uneven light, touching clusters,
  // cut-off border parts, mixed sizes): the coder counts 5 of these 8 exactly; raise this as it
  // improves (it was 7 of 8 on evenly lit trays of separate parts).
  EXPECT_GE(exact, 5) << "trays counted exactly";
}

TEST(CoderAccuracyTest, TraysInAWiderViewAreCountedWithTheTraysAndReportedApart) {
  auto coder = MakeCvCoder();
  CoderEvalOptions options;
  options.gauges = 0;
  options.trays = 2;
  options.wider = 4;
  options.seed = 20261203;
  const CoderEvalReport r = EvaluateCoder(*coder, Runner(), options);
  ASSERT_EQ(r.trays, 6);
  EXPECT_EQ(r.trays_wider, 4);
  int exact_wider = 0;
  for (const CoderEvalCase& c : r.cases) {
    EXPECT_FALSE(c.failed) << "tray " << c.index << ": " << c.error;
    EXPECT_EQ(c.wider_view, c.index >= 2) << "tray " << c.index;
    exact_wider += c.wider_view && CaseIsRight(c);
  }
  EXPECT_DOUBLE_EQ(r.count_exact_wider_pct, 100.0 * exact_wider / 4);
  // the counter finds the tray in the view and counts on it: 3 of this seed's 4 exactly (raise
  // this as it improves)
  EXPECT_GE(exact_wider, 3);
}

/// Counts one rendered tray through the coder; returns the answer line.
json CountTray(const cv::Mat& tray) {
  auto coder = MakeCvCoder();
  std::vector<std::uint8_t> png;
  cv::imencode(".png", tray, png);
  CoderInput in;
  in.text = "Count the parts.\n```json\n{\"task\": \"count\", \"object\": \"parts\"}\n```";
  in.images.push_back({"image/png", png});
  SandboxJob job;
  job.code = coder->Write(in, 0, {}).code;
  job.inputs.push_back({"input_0.png", png});
  const SandboxResult result = Runner()(job);
  EXPECT_TRUE(result.ok) << result.error << "\n" << result.stderr_text;
  const std::string answer = coder->Answer(in, {{result}});
  return json::parse(answer.substr(answer.rfind('\n') + 1));
}

void ExpectExactWithObjects(const json& line, const std::vector<cv::Rect>& truth, cv::Size size) {
  ASSERT_TRUE(line.contains("count")) << line.dump();
  EXPECT_EQ(line["count"].get<int>(), int(truth.size())) << line.dump();
  ASSERT_TRUE(line.contains("objects")) << line.dump();
  EXPECT_EQ(line["objects"].size(), line["count"].get<std::size_t>());
  for (const json& o : line["objects"]) {
    const cv::Rect box(o["box"][0].get<int>(), o["box"][1].get<int>(), o["box"][2].get<int>(),
                       o["box"][3].get<int>());
    EXPECT_EQ(box & cv::Rect(cv::Point(0, 0), size), box) << o.dump();
    // every box lies on a true part
    bool hit = false;
    for (const cv::Rect& t : truth) hit = hit || (box & t).area() > 0;
    EXPECT_TRUE(hit) << o.dump();
  }
}

/// The weaker contract for scenes the counter may get wrong: either the count is exact (with its
/// objects), or its confidence says not to trust it (< 0.8).
void ExpectExactOrNotConfident(const json& line, const std::vector<cv::Rect>& truth,
                               cv::Size size) {
  if (line["count"].get<int>() == int(truth.size()))
    ExpectExactWithObjects(line, truth, size);
  else
    EXPECT_LT(line["confidence"].get<double>(), 0.8) << line.dump();
}

/// Renders `count` parts in `style` from each seed; each must be counted exactly, every box on a
/// part. Without border parts every one of the `count` must have been placed.
void ExpectEachSeedExact(const TrayStyle& style, int count, std::initializer_list<int> seeds) {
  for (int seed : seeds) {
    cv::RNG rng(seed);
    std::vector<cv::Rect> boxes;
    const cv::Mat tray = RenderTray(count, style, rng, &boxes);
    SCOPED_TRACE("seed " + std::to_string(seed));
    if (style.border_parts == 0) {
      ASSERT_EQ(boxes.size(), std::size_t(count));
    }
    ExpectExactWithObjects(CountTray(tray), boxes, tray.size());
  }
}

/// As ExpectEachSeedExact, with the weaker contract: exact, or not confident.
void ExpectEachSeedExactOrNotConfident(const TrayStyle& style, int count,
                                       std::initializer_list<int> seeds) {
  for (int seed : seeds) {
    cv::RNG rng(seed);
    std::vector<cv::Rect> boxes;
    const cv::Mat tray = RenderTray(count, style, rng, &boxes);
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectExactOrNotConfident(CountTray(tray), boxes, tray.size());
  }
}

TEST(CoderAccuracyTest, TouchingClustersCountEachPart) {
  TrayStyle style;
  style.kind = 2;  // washers: rings that touch along their rims
  style.clusters = 3;
  style.noise_sigma = 3;
  ExpectEachSeedExact(style, 12, {41});
}

/// Bolts on an evenly lit tray with sensor noise, some of them in two touching groups.
TrayStyle BoltsInTwoTouchingGroups() {
  TrayStyle style;
  style.kind = 0;
  style.clusters = 2;
  style.noise_sigma = 3;
  return style;
}

TEST(CoderAccuracyTest, TouchingBoltsBesideLoneOnesCountEachBolt) {
  // Regression: clusters of touching bolts were cut at the necks of their distance transform
  // into heads and head-plus-shaft pieces and counted piece by piece against a typical area
  // that the clusters dragged: one or two bolts short (18 of 20). A cluster is now counted by
  // its area against the lone bolts' when the pieces' count is inconsistent with it.
  ExpectEachSeedExact(BoltsInTwoTouchingGroups(), 20, {18, 19, 21});
}

/// `count` parts of one kind on an evenly lit tray with sensor noise, rendered from `seed`.
cv::Mat PlainTray(int seed, int kind, int count, cv::Size size, double part_scale,
                  std::vector<cv::Rect>* boxes) {
  TrayStyle style;
  style.kind = kind;
  style.noise_sigma = 3;
  style.size = size;
  style.part_scale = part_scale;
  cv::RNG rng(seed);
  return RenderTray(count, style, rng, boxes);
}

/// Sensor noise (sigma 3) drawn from `seed`, for what a test draws around a rendered tray.
void AddNoise(cv::Mat& img, int seed) {
  cv::Mat noise(img.size(), CV_8UC3);
  cv::RNG(seed).fill(noise, cv::RNG::NORMAL, 0, 3);
  img += noise;
}

/// 10 parts of `kind` rendered from `seed` (`PlainTray`, `parts_size`) below `top` rows of their
/// own surface with sensor noise, where a test draws a tray's rim; the true boxes move with them.
cv::Mat PartsBelowARim(int seed, int kind, cv::Size parts_size, int top,
                       std::vector<cv::Rect>* boxes) {
  const cv::Mat parts = PlainTray(seed, kind, 10, parts_size, 1.0, boxes);
  cv::Mat tray(top + parts.rows, parts.cols, CV_8UC3,
               cv::mean(parts.rowRange(parts.rows - 4, parts.rows)));
  AddNoise(tray, seed);
  parts.copyTo(tray.rowRange(top, tray.rows));
  for (cv::Rect& b : *boxes) b.y += top;
  return tray;
}

/// A rim's colour that stands out from the tray's surface (its bottom rows): dark on a light
/// surface, light on a dark one.
cv::Scalar RimStandingOutFrom(const cv::Mat& tray) {
  const cv::Scalar surface = cv::mean(tray.rowRange(tray.rows - 4, tray.rows));
  return surface[1] > 128 ? cv::Scalar(40, 40, 40) : cv::Scalar(215, 215, 215);
}

TEST(CoderAccuracyTest, TheTraysRimIsNotParts) {
  // Regression: real photos of tablets on a steel tray counted the tray's rim: the band the
  // frame cuts along an edge and the inner rim line came out as a row of "parts" (p05, p06, p07
  // of dev/real: 33 for 30, 35 for 23, 13 for 7). Here the far side of a tray, rim and inner rim
  // line drawn above 10 parts, counted 16 on each of these seeds. Foreground running along the
  // border for longer than 2.5 part lengths, and a strip longer than that and thinner than a part,
  // are no parts.
  for (int seed : {1, 4, 11}) {
    std::vector<cv::Rect> boxes;
    cv::Mat tray = PartsBelowARim(seed, seed % 3, {400, 256}, 44, &boxes);
    const cv::Scalar rim(40, 40, 40);
    cv::rectangle(tray, {0, 0}, {tray.cols - 1, 5}, rim, cv::FILLED);  // cut by the frame
    cv::rectangle(tray, {20, 22}, {380, 33}, rim, cv::FILLED);         // the inner rim line
    cv::GaussianBlur(tray, tray, cv::Size(), 0.8);
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectExactWithObjects(CountTray(tray), boxes, tray.size());
  }
}

TEST(CoderAccuracyTest, PiecesOfAThinRimLineAreNotParts) {
  // Regression: where glare breaks a tray's thin inner rim line into pieces shorter than the
  // strip rule's 2.5 part lengths, each piece counted as a part (dev/real p07: 8 for 7, the
  // pieces of the rim along its top edge). Here three 8 x 70 px pieces of a line lie above 10
  // nuts: 13 on each seed. A thin piece (under 0.6 part widths, 8 times as long as wide) lying
  // along the frame's direction is a rim or an edge, not a part.
  for (int seed : {1, 7, 10}) {
    std::vector<cv::Rect> boxes;
    cv::Mat tray = PartsBelowARim(seed, 1, {400, 256}, 44, &boxes);
    const cv::Scalar rim(40, 40, 40);
    for (int x0 : {20, 150, 290}) cv::rectangle(tray, {x0, 20}, {x0 + 70, 27}, rim, cv::FILLED);
    cv::GaussianBlur(tray, tray, cv::Size(), 0.8);
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectExactWithObjects(CountTray(tray), boxes, tray.size());
  }
}

TEST(CoderAccuracyTest, ALongRimLineTwoThirdsAsWideAsAPartIsNotAPart) {
  // Regression: a real photo of 30 tablets on a steel tray (dev/real p05) counted the tray's far
  // rim, a straight light line 210 x 21 px, as a tablet: 0.62 of a tablet's width, just over the
  // 0.6 that makes a thin piece a rim. Here a 300 x 20 px line lies above 10 nuts (about 30 px
  // wide): 16, 16 and 17 on these seeds before, the line counted by its area as six or seven
  // nuts. A piece longer than 2.5 part lengths, eight times as long as wide and lying along the
  // frame's direction is a rim up to 0.75 part widths.
  for (int seed : {1, 7, 10}) {
    std::vector<cv::Rect> boxes;
    cv::Mat tray = PartsBelowARim(seed, 1, {400, 256}, 54, &boxes);
    cv::rectangle(tray, {50, 16}, {349, 35}, cv::Scalar(215, 215, 215), cv::FILLED);
    cv::GaussianBlur(tray, tray, cv::Size(), 0.8);
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectExactWithObjects(CountTray(tray), boxes, tray.size());
  }
}

TEST(CoderAccuracyTest, ACurvedRimBandAndShortThinRimLinesAreNotParts) {
  // Regression: a real photo of 8 tablets on a steel tray (dev/real p08) counted 14: the tray's
  // near rim, a light band across the frame that sags and thickens towards its middle, is too
  // wide over its whole length for the strip rule's minimum-area rectangle, and three short
  // thin rim reflections below it are shorter than eight times their width. Here such a band
  // and three 6 x 40 px lines lie above 10 nuts: 20, 19 and 19 on these seeds before. A blob
  // or piece longer than six part lengths whose mean width (area over length) is under 0.6
  // part widths is a strip; a piece under 0.3 part widths lying along the frame's direction is
  // a rim line from five times as long as wide.
  for (int seed : {1, 4, 11}) {
    std::vector<cv::Rect> boxes;
    cv::Mat tray = PartsBelowARim(seed, 1, {400, 250}, 70, &boxes);
    const cv::Scalar rim = RimStandingOutFrom(tray);
    std::vector<cv::Point> band;  // top edge left to right, then the bottom edge back
    for (int x = 0; x < 400; x += 10) {
      const double t = x / 399.0, sag = 4.0 * t * (1.0 - t);  // 0 at the ends, 1 mid-way
      band.emplace_back(x, int(std::lround(14 + 8 * t + 6 * sag)));
    }
    for (int x = 399; x >= 0; x -= 10) {
      const double t = x / 399.0, sag = 4.0 * t * (1.0 - t);
      band.emplace_back(x, int(std::lround(14 + 8 * t + 6 * sag + 7 + 12 * sag)));
    }
    cv::fillPoly(tray, std::vector<std::vector<cv::Point>>{band}, rim);
    for (int x0 : {40, 170, 300}) cv::rectangle(tray, {x0, 52}, {x0 + 40, 57}, rim, cv::FILLED);
    cv::GaussianBlur(tray, tray, cv::Size(), 0.8);
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectExactWithObjects(CountTray(tray), boxes, tray.size());
  }
}

/// A pile of 26 capsules, each touching one placed before it, on a 400 x 400 surface under a
/// lighting ramp (bright at the top right, a third as bright at the bottom left) with a dark band
/// along the right border: a tighter, larger version of a real photo (dev/real p12).
cv::Mat CapsulePile(int seed, std::vector<cv::Rect>* boxes) {
  cv::RNG rng(seed);
  cv::Mat surface(400, 400, CV_32FC3);
  for (int y = 0; y < 400; ++y)
    for (int x = 0; x < 400; ++x) {
      const float light = 1.15f - 0.75f * float((399 - x) + y) / 798.0f;
      surface.at<cv::Vec3f>(y, x) = cv::Vec3f(125, 120, 115) * light;
    }
  surface.colRange(388, 400).setTo(cv::Scalar::all(35));
  cv::Mat taken(surface.size(), CV_8U, cv::Scalar(0));
  std::vector<std::pair<cv::Point, cv::Point>> caps;
  for (int tries = 0; caps.size() < 26 && tries < 20000; ++tries) {
    const cv::Point2d c(rng.uniform(80.0, 320.0), rng.uniform(80.0, 320.0));
    const double angle = rng.uniform(0.0, CV_PI);
    const cv::Point2d half(18 * std::cos(angle), 18 * std::sin(angle));
    const cv::Point a(c - half), b(c + half);
    cv::Mat cap(surface.size(), CV_8U, cv::Scalar(0));
    cv::line(cap, a, b, 1, 26);
    const int shared = cv::countNonZero(cap & taken);
    if (shared > 60 || (!caps.empty() && shared == 0)) continue;  // touching, not lying on
    taken |= cap;
    caps.emplace_back(a, b);
  }
  boxes->clear();
  for (const auto& [a, b] : caps) {
    cv::line(surface, a, b, cv::Scalar(30, 95, 125), 26, cv::LINE_AA);  // the shaded rim
    cv::line(surface, a, b, cv::Scalar(45, 165, 210), 22, cv::LINE_AA);
    boxes->push_back(cv::Rect(a, b) + cv::Size(1, 1) + cv::Point(-13, -13) + cv::Size(26, 26));
  }
  cv::GaussianBlur(surface, surface, cv::Size(), 0.8);
  cv::Mat tray;
  surface.convertTo(tray, CV_8UC3);
  AddNoise(tray, seed);
  return tray;
}

/// Counts the capsule pile of each seed: exact, with its objects, or (`or_not_confident`) at
/// least not confident.
void ExpectEachPile(std::initializer_list<int> seeds, bool or_not_confident = false) {
  for (int seed : seeds) {
    std::vector<cv::Rect> boxes;
    const cv::Mat tray = CapsulePile(seed, &boxes);
    ASSERT_EQ(boxes.size(), 26u);
    SCOPED_TRACE("seed " + std::to_string(seed));
    const json line = CountTray(tray);
    if (or_not_confident)
      ExpectExactOrNotConfident(line, boxes, tray.size());
    else
      ExpectExactWithObjects(line, boxes, tray.size());
  }
}

TEST(CoderAccuracyTest, APileWiderThanTheMeshUnderALightRampIsNotTakenForTheSurface) {
  // Regression: a real photo of 19 capsules in one touching pile on a board under a lighting
  // ramp (dev/real p12) counted 24. The border (light board, dark corner, a dark band) gave no
  // first guess of the parts, nor did the whole image's split (the pile joined the dark corner),
  // so the first local background was the mesh of cells' median colours, which took the pile's
  // colour where it filled a cell and its neighbours. Of seeds 1-16 of this pile, 2 were exact
  // and seeds 7 and 15 counted 2 and 4 at confidence 0.84 and 0.81. A smooth field fitted to the
  // cells it explains is now the first guess when what stands out from it holds a blob of two
  // cells' area: 4 of the 16 seeds exact, the others below 0.8 (the seams between touching
  // capsules are not always found; see TwoCapsulesLyingSideBySideCountTwo).
  ExpectEachPile({7}, /*or_not_confident=*/true);
  ExpectEachPile({15, 16});
}

TEST(CoderAccuracyTest, TwoCapsulesLyingSideBySideCountTwo) {
  // Regression: in a pile of capsules, two lying side by side along their length make one piece
  // with no neck, about twice as thick as a capsule and half as elongated; the area rule took it
  // for a larger capsule (area allowed to grow with the square of the thickness) and counted
  // one: 24, 23 and 22 for 26 on these seeds. A larger part of a kind keeps its proportions:
  // where the typical part is long, a piece as thick as two and about half as elongated is
  // counted by its area alone (7 of seeds 1-16 exact, from 4).
  ExpectEachPile({2, 3, 11});
}

TEST(CoderAccuracyTest, APileTheBackgroundModelMisreadsIsCountedByItsOutlines) {
  // Regression: these piles counted 27 and 24 for 26 at confidence 0.40 and 0.00 (seeds 1-40: 18
  // exact), and a real photo of 19 touching capsules (dev/real p12) 17 at 0.39. Every capsule's
  // outline is closed and convex, of one size and colour: a count without confidence is now
  // replaced by the count of such outlines when they describe the whole scene (25 of seeds
  // 1-40 exact, none worse). It has no second estimate to agree with, so it is reported below
  // the default min_confidence.
  for (int seed : {1, 10}) {
    std::vector<cv::Rect> boxes;
    const cv::Mat tray = CapsulePile(seed, &boxes);
    SCOPED_TRACE("seed " + std::to_string(seed));
    const json line = CountTray(tray);
    ExpectExactWithObjects(line, boxes, tray.size());
    EXPECT_LT(line["confidence"].get<double>(), 0.5) << line.dump();
  }
}

TEST(CoderAccuracyTest, ATraySeenWithTheTableAroundItIsCountedOnTheTray) {
  // Regression: a tray of 20 parts seen through a wider frame, a light table along the top and
  // left and a dark band along the bottom and right, counted 22, 30 and 16 on these seeds (the
  // last at confidence 0.85). The border's median colour is a mix of table and band: the whole
  // tray stood out from it, and the table's colour, close to the light parts', became their
  // background. The parts' surface is the flat region holding the most part-sized blobs; the
  // table and band are scene, never background and never parts.
  for (int seed : {1, 4, 9}) {
    std::vector<cv::Rect> boxes;
    const cv::Mat parts = PlainTray(seed, seed % 4, 20, {360, 270}, 1.6, &boxes);
    cv::Mat view(400, 400, CV_8UC3, cv::Scalar(205, 210, 215));
    cv::rectangle(view, {0, 385}, {399, 399}, cv::Scalar(25, 25, 25), cv::FILLED);
    cv::rectangle(view, {385, 0}, {399, 399}, cv::Scalar(25, 25, 25), cv::FILLED);
    parts.copyTo(view(cv::Rect(20, 115, 360, 270)));
    for (cv::Rect& b : boxes) b += cv::Point(20, 115);
    AddNoise(view, seed);
    cv::GaussianBlur(view, view, cv::Size(), 0.8);
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectExactWithObjects(CountTray(view), boxes, view.size());
  }
}

TEST(CoderAccuracyTest, AVignettedTrayOnADarkTableIsCountedOnTheTray) {
  // Regression: 8 washers on a vignetted tray that reaches the top of the view, a dark green
  // table on the other sides, counted 2, 1 and 1 on these seeds (the second at confidence 0.97):
  // the tray's darkened rim ramps into the table, so the flood fills found one surface, tray
  // and table together, and the tray itself passed for a part. The blob that stands out from
  // the border's colour (the table's) with a sharp rim, holding nothing part-sized outside it,
  // is now the tray.
  TrayStyle style;
  style.kind = 2;
  style.size = {300, 260};
  style.vignette = 0.4;
  style.light_gradient = 0.3;
  style.surround.left = 55;
  style.surround.right = 40;
  style.surround.bottom = 55;
  style.surround.table = {35, 50, 20};
  ExpectEachSeedExact(style, 8, {11, 14, 17});
}

/// Nuts light on a dark tray under four glare spots, with sensor noise.
TrayStyle LightNutsUnderGlare() {
  TrayStyle style;
  style.kind = 1;
  style.glare_spots = 4;
  style.tone = TrayTone::kLightOnDark;
  style.noise_sigma = 3;
  return style;
}

TEST(CoderAccuracyTest, APartLyingInAGlareSpotIsCounted) {
  // Regression: 12 light nuts on a dark tray under four glare spots counted 11 on these seeds
  // (two at confidence 0.77): a nut inside a spot made one blob with it, whose outer rim is the
  // glare's soft fringe, and the blob was dropped as lighting. Each dropped blob is now searched
  // against a background that follows the spot; the nut stands out there with a sharp rim.
  ExpectEachSeedExact(LightNutsUnderGlare(), 12, {14, 18, 31});
}

TEST(CoderAccuracyTest, APartWhoseBlobCarriesAGlareSkirtIsCountedOnce) {
  // Regression: a nut lying in a glare spot keeps its own sharp rim, so its blob was kept, and
  // the spot's soft fringe hung on it as a skirt: the blob came out too large and was counted
  // as two parts (13 for 12 on each seed; seed 35 at confidence 0.97). A blob whose outline is
  // soft over half its length is searched for a sharp-rimmed part against the spot's own light,
  // and the part found replaces it when it accounts for the blob's sharp rim.
  ExpectEachSeedExact(LightNutsUnderGlare(), 12, {30, 35, 46});
}

TEST(CoderAccuracyTest, ALongBoltAmongShortOnesCountsOne) {
  // Regression: in a mixed tray of two sizes (12 parts), a bolt of the larger size with no other
  // like it was counted as two or three parts by its area against the typical (small) part:
  // 13, 15 and 14 on these seeds. A piece with the proportions of a smaller single part
  // (elongation, area over thickness squared) is that part at a larger size.
  TrayStyle style;
  style.kind = 3;
  style.size_mix = 0.3;
  style.noise_sigma = 3;
  ExpectEachSeedExact(style, 12, {10, 35, 47});
}

TEST(CoderAccuracyTest, LargeWashersAmongSmallOnesCountOnePerHole) {
  // Regression: washers of two sizes (10 per tray) counted 13, 13 and 14 on these seeds: a
  // large washer's hole, bigger than the limit set by the typical (small) part's area, was not
  // taken for a hole, and its ring was cut into pieces at the maxima of its distance transform.
  // A round hole larger than that limit is a hole when the part around it is at least 1.7 times
  // its area.
  TrayStyle style;
  style.kind = 2;
  style.size_mix = 0.3;
  style.noise_sigma = 3;
  ExpectEachSeedExact(style, 10, {18, 28, 59});
}

TEST(CoderAccuracyTest, TheGapBetweenFourTouchingNutsIsNoPart) {
  // Regression: 16 nuts in touching groups counted 17 on these seeds (the first two at
  // confidence 0.8 and 0.85): the gap enclosed by four nuts in a square is round and convex,
  // it passed for a nut's hole, and the disc around it made one more part. Holes are now taken
  // in order of how much their part looks like a holed part, and one whose rim lies mostly
  // inside parts already taken is a gap between them.
  TrayStyle style;
  style.kind = 1;
  style.clusters = 3;
  style.noise_sigma = 3;
  ExpectEachSeedExact(style, 16, {15, 49, 1});
}

/// A mixed tray of two part sizes (nominal x 0.7 and x 1.3) in three touching groups, with
/// sensor noise.
TrayStyle MixedSizesInGroups() {
  TrayStyle style;
  style.kind = 3;
  style.size_mix = 0.3;
  style.clusters = 3;
  style.noise_sigma = 3;
  return style;
}

TEST(CoderAccuracyTest, ASmallNutTouchingALargePartKeepsItsHole) {
  // Regression: in a mixed tray of two sizes with touching groups, a small nut against a large
  // part was counted with it, 11 for 12 on these seeds at confidence 0.9, 0.92 and 0.89: its
  // hole, under 0.58 of the median hole's radius, was dropped as a gap between three touching
  // parts. A small hole is a gap only when its rays also run on through the parts around it
  // (over four times its radius); a small part's hole keeps its part's proportions.
  ExpectEachSeedExact(MixedSizesInGroups(), 12, {3, 21, 55});
}

TEST(CoderAccuracyTest, BoltsLyingAgainstEachOtherCountOneCopyOfALoneBoltEach) {
  // Regression: 10 bolts, two touching groups among lone ones, counted 12, 8 and 9 on these
  // seeds: where a head lies against another bolt's shaft or two shafts lie side by side the
  // distance transform finds no neck, and a group's area spreads with the bolts' sizes. A group
  // is now counted by laying copies of a lone bolt's silhouette on it, each boxed where it lies.
  ExpectEachSeedExact(BoltsInTwoTouchingGroups(), 10, {3, 21, 22});
}

TEST(CoderAccuracyTest, ACopyLaidAcrossTwoTouchingBoltsMovesOntoOne) {
  // Regression: the copies of a lone bolt were laid one at a time, each where it covered most of
  // the group, and never moved: the first, sized up, often lay across two touching bolts and
  // left room for neither, laying stopped a bolt or two short of the group, and the pieces'
  // count stood (8, 8 and 7 for 6 on these seeds). Every copy is now laid again where it fits
  // best given the others, and the number of copies is where one more no longer explains a
  // fifth of a bolt's area.
  ExpectEachSeedExact(BoltsInTwoTouchingGroups(), 6, {8, 9, 26});
}

TEST(CoderAccuracyTest, TouchingBoltsAreCutAtTheirNecksNotWrappedRoundEachOther) {
  // Regression: clusters of touching bolts were split by cv2.watershed on the distance
  // transform, which floods by the difference between neighbouring pixels (the transform's
  // slope, about the same everywhere), not by the transform itself: one piece ran along the
  // level lines round its neighbours and took in another bolt's head and shaft, and 6 bolts
  // counted 5 on each of these seeds. The pieces now flood the transform from its top down
  // and meet at its saddles, and a shaft's end beyond a slight narrowing joins its bolt.
  ExpectEachSeedExact(BoltsInTwoTouchingGroups(), 6, {50, 54});
}

TEST(CoderAccuracyTest, ALargeBoltsShaftBeyondANarrowingStaysWithItsHead) {
  // Regression: a large bolt's shaft is up to 0.8 times as thick as its head, and where it
  // narrows slightly near the head the watershed gave it a piece of its own, too thick for the
  // join of a thin shaft piece (under 0.65 of its neighbour): one bolt counted two, 13 for 12 on
  // these seeds of a mixed tray of two sizes in touching groups (h31337 t084 of the generated
  // set: 6 for 5 at confidence 0.83). A shaft-shaped piece (over twice as long as wide) joins a
  // neighbour up to 0.8 times as thick across a cut at least half as thick as itself, when it
  // runs along that neighbour's length (a small bolt lying across a large one's end stays).
  ExpectEachSeedExact(MixedSizesInGroups(), 12, {23, 56, 79});
}

/// Tray `index` of `roilens accuracy --gauges 0 --seed SEED --trays TRAYS` (it renders them in
/// order from one RNG; the trays from index `trays` on are the wider views, the table around
/// them). The default leaves every tray a plain one; 0 makes every tray a wider view (`--trays 0
/// --wider N`).
cv::Mat AccuracyTray(int seed, int index, std::vector<cv::Rect>* boxes,
                     int trays = std::numeric_limits<int>::max()) {
  cv::RNG rng(seed);
  cv::Mat tray;
  for (int i = 0; i <= index; ++i) {
    TrayStyle style = RandomTrayStyle(rng);
    if (i >= trays) {
      style.border_parts = 0;
      style.surround = RandomTraySurround(rng);
    }
    const int count = rng.uniform(1, 26);
    boxes->clear();
    tray = RenderTray(count, style, rng, boxes);
  }
  return tray;
}

/// What a tray's answer is held to: exact with every box on a part; that or not confident;
/// exact and confident (>= 0.8); or exact or not confident, and within one part of the truth.
enum class Contract {
  kExact,
  kExactOrNotConfident,
  kExactAndConfident,
  kWithinOneAndExactOrNotConfident
};

/// Counts tray `index` of AccuracyTray(seed, index, trays), which must hold `parts` parts, and
/// holds the answer to `contract`.
void ExpectAccuracyTray(int seed, int index, std::size_t parts, Contract contract,
                        int trays = std::numeric_limits<int>::max()) {
  SCOPED_TRACE("seed " + std::to_string(seed) + " tray " + std::to_string(index));
  std::vector<cv::Rect> boxes;
  const cv::Mat tray = AccuracyTray(seed, index, &boxes, trays);
  ASSERT_EQ(boxes.size(), parts);
  const json line = CountTray(tray);
  if (contract == Contract::kWithinOneAndExactOrNotConfident) {
    EXPECT_NEAR(line["count"].get<int>(), int(parts), 1) << line.dump();
  }
  if (contract == Contract::kExactOrNotConfident ||
      contract == Contract::kWithinOneAndExactOrNotConfident) {
    ExpectExactOrNotConfident(line, boxes, tray.size());
    return;
  }
  ExpectExactWithObjects(line, boxes, tray.size());
  if (contract == Contract::kExactAndConfident) {
    EXPECT_GE(line["confidence"].get<double>(), 0.8) << line.dump();
  }
}

TEST(CoderAccuracyTest, ATaperingRimBandAlongTheFrameIsNotParts) {
  // Regression: a tray's near rim that widens from one end to the other, seen whole, is as wide
  // as a part at its wide end (so its minimum-area rectangle is a part wide) and on average 0.65
  // of a part wide (dev/real p08, once all 8 tablets are found: the band 427 x 42 px, 11,892 px,
  // beside tablets 43 px wide, counted by its area as seven tablets). Here a band 360 px long,
  // 10 to 28 px wide, lies above 10 nuts about 30 px wide. A strip longer than six part lengths
  // that lies along the frame's direction is a rim up to 0.75 part widths on average, as a
  // thin piece is (rim_like); one lying askew must still be under 0.6.
  for (int seed : {1, 4, 11}) {
    std::vector<cv::Rect> boxes;
    cv::Mat tray = PartsBelowARim(seed, 1, {400, 256}, 60, &boxes);
    const cv::Scalar rim = RimStandingOutFrom(tray);
    const std::vector<cv::Point> band = {{20, 14}, {380, 14}, {380, 42}, {20, 24}};
    cv::fillPoly(tray, std::vector<std::vector<cv::Point>>{band}, rim);
    cv::GaussianBlur(tray, tray, cv::Size(), 0.8);
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectExactWithObjects(CountTray(tray), boxes, tray.size());
  }
}

TEST(CoderAccuracyTest, AWasherDimOnOneSideStaysARing) {
  // Regression: tray 170 of `roilens accuracy --gauges 0 --trays 200 --seed 90210` (19 mixed
  // parts under a light ramp) counted 18 at confidence 0.82: a dark washer's wall was dimmer on
  // one side, the cut at half its contrast (which trims blur halos off every blob) broke the ring
  // open, its hole was no longer enclosed, and the two arcs left were dropped as thin. A part-sized
  // blob enclosing one round hole keeps its ring when the cut would open it.
  ExpectAccuracyTray(90210, 170, 19, Contract::kExact);
}

TEST(CoderAccuracyTest, ANutCutByTheBorderStaysARingWhenItsWallIsDimOnOneSide) {
  // Regression: tray 109 of `roilens accuracy --gauges 0 --trays 150 --wider 50 --seed 662607`
  // (13 mixed parts under a light ramp) counted 12 at confidence 0.89. A nut cut by the top
  // border lay under a glare spot that dimmed one side of its wall; the cut at half its contrast
  // broke the arc, and the 9 x 16 px sliver left was dropped as thin, with nothing to lower the
  // confidence. Its ring was open to the border, so the rule that keeps a dim-sided washer's ring
  // did not see a hole to keep, and the nut, smaller than the tray's median blob (a bolt's), was
  // not taken for a part of one part's size. The border closes a cut ring's hole, and a ring of
  // any smaller size keeps it.
  ExpectAccuracyTray(662607, 109, 13, Contract::kExact, /*trays=*/150);
}

TEST(CoderAccuracyTest, ABorderPieceThatIsInOrOutByItsKindIsNotAConfidentCount) {
  // Regression: tray 144 of `roilens accuracy --gauges 0 --trays 200 --wider 50 --seed 1414` (7
  // nuts and washers of two sizes) counted 8 at confidence 0.85, and tray 172 of seed 2236 (13
  // of them) counted 14 at 0.97. A large nut cut by the left border, a third of it in and a
  // corner pointing into the image, follows a small circle that lies three quarters inside, and
  // small nuts of that circle's size lie in the tray: the border rule took it in with nothing to
  // lower the confidence, where its area (under half a typical part's) said it was out. When
  // the circle and the area fall on either side of half, the piece is in or out by its kind.
  ExpectAccuracyTray(1414, 144, 7, Contract::kExactOrNotConfident, /*trays=*/200);
  ExpectAccuracyTray(2236, 172, 13, Contract::kExactOrNotConfident, /*trays=*/200);
}

TEST(CoderAccuracyTest, ASmallGlareSpotAmongDarkPartsIsNotAConfidentPart) {
  // Regression: tray 221 of `roilens accuracy --gauges 0 --trays 200 --wider 50 --seed 1414` (a
  // wider view: 17 dark bolts of little contrast on a green tray, one small round glare spot)
  // counted 18 at confidence 0.93. The spot, half a bolt's area, had a rim as sharp as the
  // bolts' and was counted as a part. It is the only piece lighter than the surface around it
  // where every other piece is darker: a decision the count rests on.
  ExpectAccuracyTray(1414, 221, 17, Contract::kExactOrNotConfident, /*trays=*/200);
}

TEST(CoderAccuracyTest, APieceSplitIntoManyPartsByItsAreaAloneIsAnUncertainCount) {
  // Regression: tray 237 of `roilens accuracy --gauges 0 --trays 200 --wider 50 --seed 9973` (a
  // wider view: 21 nuts and washers on a pale tray, its shadow an L-shaped band along two sides)
  // counted 36 at confidence 0.73, above the default min_confidence: the band, one piece of
  // about 15 typical parts' area without a neck, was split by its area alone into 15 parts, and
  // that split weighed as one decision, as a split into two does. Each part a split by area
  // adds is a decision of its own.
  std::vector<cv::Rect> boxes;
  const cv::Mat tray = AccuracyTray(9973, 237, &boxes, /*trays=*/200);
  ASSERT_EQ(boxes.size(), 21u);
  const json line = CountTray(tray);
  if (line["count"].get<int>() != 21) {
    EXPECT_LT(line["confidence"].get<double>(), 0.5) << line.dump();
  }
}

TEST(CoderAccuracyTest, APartCutByTheBorderBesideABoltsEndIsNotAConfidentCount) {
  // Regression: tray 160 of `roilens accuracy --gauges 0 --trays 200 --wider 50 --seed 7303` (a
  // washer, and another cut by the bottom border beside the end of a bolt that lies beyond it)
  // counted 1 at confidence 0.97. With one whole part in view, the cut washer and the bolt's end
  // together ran along the border for longer than 2.5 of its lengths and went as a rim, with
  // nothing to lower the confidence. A part-like piece dropped that way is a decision the count
  // rests on.
  ExpectAccuracyTray(7303, 160, 2, Contract::kExactOrNotConfident, /*trays=*/200);
}

TEST(CoderAccuracyTest, NutsInTheTraysCornerAreNotCutByTheTable) {
  // Regression: tray 206 of `roilens accuracy --gauges 0 --trays 200 --wider 50 --seed 7303` (a
  // wider view: 3 nuts, two of them touching in the tray's corner) counted 2 at confidence 0.97.
  // The nuts cut the corner off the tray's convex outline, whatever lay beyond it was taken for
  // the scene (the table), and half of each nut went with it: one piece, without a hole, left.
  ExpectAccuracyTray(7303, 206, 3, Contract::kExact, /*trays=*/200);
}

TEST(CoderAccuracyTest, APieceTheTablesEdgeCutIsNotAConfidentPart) {
  // Regression: tray 201 of `roilens accuracy --gauges 0 --trays 200 --wider 50 --seed 1414` (a
  // wider view, 3 parts) counted 2 at confidence 0.9: a piece under a part's area touched the
  // scene (the table beside the tray), whose edge had cut a part there. Whether what is left of
  // such a part is counted rests on the border rule's kind of decision, with no circle or hole
  // to tell.
  ExpectAccuracyTray(1414, 201, 3, Contract::kExactOrNotConfident, /*trays=*/200);
}

TEST(CoderAccuracyTest, TwoBoltsEndToEndAreNotAConfidentSinglePart) {
  // Regression: tray 242 of `roilens accuracy --gauges 0 --trays 200 --wider 50 --seed 7101` (a
  // wider view, 14 mixed parts) counted 13 at confidence 0.97: a small bolt's shaft touched
  // another's head, and the whole bolt (its own head at the far end) was joined to the other as
  // its shaft's end. A join that takes in a piece with a head is a decision the count rests on.
  ExpectAccuracyTray(7101, 242, 14, Contract::kExactOrNotConfident, /*trays=*/200);
}

TEST(CoderAccuracyTest, PartsInADimCornerDroppedWithItAreNotAConfidentCount) {
  // Regression: tray 202 of `roilens accuracy --gauges 0 --trays 200 --wider 50 --seed 7101` (a
  // wider view, 16 mixed parts, the tray dim in the corner the frame cuts) counted 12 at
  // confidence 0.89: the dim corner stood out with the four parts lying in it, one piece along
  // the border, and went as a structure the frame cuts, with nothing to lower the confidence.
  ExpectAccuracyTray(7101, 202, 16, Contract::kExactOrNotConfident, /*trays=*/200);
}

TEST(CoderAccuracyTest, ARimOrAHeadAtTheBorderWithoutItsHoleOrShaftIsNotAPart) {
  // Regression: tray 172 of `roilens accuracy --gauges 0 --trays 200 --wider 50 --seed 2236`
  // (13 nuts, washers and bolts) counted 14, and tray 34 of seed 6700 (11 of them) counted 12:
  // a bolt's head at the border, its shaft beyond it (under a third of the bolt in the image),
  // was taken for a part more than half in, being larger than the typical nut. A nut or washer
  // half in shows its hole and a bolt its shaft; a compact piece with neither, in a tray whose
  // every whole part has one, is the smaller part of a part.
  ExpectAccuracyTray(2236, 172, 13, Contract::kExact, /*trays=*/200);
  ExpectAccuracyTray(6700, 34, 11, Contract::kExact, /*trays=*/200);
  // and a bolt at the border with its head and part of its shaft in (tray 173 of seed 6700) is
  // still a part: the shaft leaves a notch beside the head
  ExpectAccuracyTray(6700, 173, 7, Contract::kExactOrNotConfident, /*trays=*/200);
}

TEST(CoderAccuracyTest, ClustersMergingInOnePassDoNotWidenTheNextBackground) {
  // Regression: tray 171 of `roilens accuracy --gauges 0 --seed 16180` (7 washers of low contrast
  // on green, four of them touching) counted 6 at confidence 0.76. The second pass found the
  // cluster as a few large blobs, their median made a part's diameter 2.8 times the first
  // pass's, and the next background, averaged over that width, took in the shading round the
  // washers. A pass's diameter is now at most twice the last's.
  ExpectAccuracyTray(16180, 171, 7, Contract::kExact);
}

TEST(CoderAccuracyTest, ALonePartOfLittleContrastIsNotCutIntoFragments) {
  // Regression: tray 176 of `roilens accuracy --gauges 0 --seed 5001` (21 washers on green, the
  // dark ones of little contrast) counted 20. Each blob is cut at half its own contrast to trim
  // blur halos and open necks, but never below the strong threshold: a dark washer that the
  // hysteresis' weak level took in was cut to fragments, dropped as thin. A convex blob of one
  // part's size has no neck and now keeps the weak level (the same bug lost two ancient coins
  // under a lighter patch of cloth in a real photograph: 22 for 24).
  ExpectAccuracyTray(5001, 176, 21, Contract::kExact);
}

TEST(CoderAccuracyTest, ABoltCutWhereItsShaftRunsIntoGlareIsNotAConfidentCount) {
  // Regression: tray 27 of `roilens accuracy --gauges 0 --trays 0 --wider 150 --seed 2` (9 bolts
  // on a dark tray, one shaft running into a glare spot) counted 10 at confidence 0.90: the
  // bolt was cut at its neck into a head and a shaft-and-spot piece of a part's size, a clean
  // split by area. The spot was taken in whole, never dropped as glare, so the tray passed for
  // glare-free. A piece whose outline is soft over most of its length makes the split odd.
  ExpectAccuracyTray(2, 27, 9, Contract::kExactOrNotConfident, /*trays=*/0);
}

TEST(CoderAccuracyTest, ABoltCutAtItsNeckIntoALoneBoltsLookalikeIsOneBolt) {
  // Regression: tray 131 of `roilens accuracy --gauges 0 --seed 16180` (20 light bolts on a dark
  // tray) counted 21 at confidence 0.58: one bolt's shaft, nearly as thick as its head, was cut
  // from the head at its neck, and join_shaft_pieces kept the two apart (a shaft that thick may
  // be a part of its own). The two pieces together look like the bolts lying alone in the tray
  // (area, thickness, elongation), where two parts touching cover twice a lone one's area: they
  // are one bolt. Tray 35 of seed 2718 (3 bolts, a glare spot widening one shaft, counted 4 at
  // confidence 0.88 before the split at a clean neck lowered it) is the same cut; it was held to
  // exact-or-not-confident and is now held to exact.
  ExpectAccuracyTray(16180, 131, 20, Contract::kExact);
  ExpectAccuracyTray(2718, 35, 3, Contract::kExact);
}

TEST(CoderAccuracyTest, OfAPartAndAGlareSpotTheSpotIsTheSofterOne) {
  // Regression: tray 109 of `roilens accuracy --gauges 0 --seed 57721` (one nut on a blue tray
  // under three glare spots) counted 2 at confidence 0.91. The two large spots were dropped for
  // their soft rims; the small one, a nut's size, was kept: a piece is glare when its rim is
  // twice as wide as the median piece's, and the median of two pieces, the nut (2.5 px) and the
  // spot (5.2 px), was their mean. The median of an even number of pieces is now the sharper of
  // the two middle ones (the same bug counted 2 for 1 on tray 132 of seed 5001).
  ExpectAccuracyTray(57721, 109, 1, Contract::kExact);
}

TEST(CoderAccuracyTest, PartsAcrossAVignettedTrayCornerLeaveTheTrayTheSurface) {
  // Regression: tray 44 of `roilens accuracy --gauges 0 --trays 0 --wider 100 --seed 909` (a
  // light, vignetted tray on a grey table, 14 dark bolts in three clusters, one across the
  // tray's dark lower-left corner) counted 20: that cluster was not enclosed by the tray's blob,
  // so it passed for parts outside the tray, the tray was not taken as the parts' surface, and
  // its light face was counted as parts. A part-sized blob lying mostly inside the outline of a
  // convex tray is the tray's. (13 now: the clusters of touching bolts are the hard part left.)
  ExpectAccuracyTray(909, 44, 14, Contract::kWithinOneAndExactOrNotConfident, /*trays=*/0);
}

TEST(CoderAccuracyTest, PartsInAVignettedTraysCornersSetAsideWithTheSceneAreNotAConfidentCount) {
  // Regression: tray 159 of `roilens accuracy --gauges 0 --trays 150 --wider 50 --seed 662607`
  // (22 mixed parts on a light, vignetted tray on a grey table) counted 20 at confidence 0.92.
  // The tray's blob ended short of its dark upper corners, and two dark nuts lying there, no
  // lighter than the table, were left out with the scene outside its outline. The blob grown
  // over what stands out from the table's noise reaches those corners; what stands out there
  // against the local light like a part is a part the count may have missed.
  ExpectAccuracyTray(662607, 159, 22, Contract::kExactOrNotConfident, /*trays=*/150);
}

TEST(CoderAccuracyTest, FaintRingsLeftOutForTheirOutlineAreNotAConfidentCount) {
  // Regression: tray 55 of `roilens accuracy --gauges 0 --trays 0 --wider 100 --seed 11235` (11
  // washers on a dark green tray, five of them dark) counted 6 at confidence 0.87. The threshold
  // lay between the light washers and the dark ones, and two dark ones' rings, which stand out
  // above the noise, failed the faint-ring rule's compactness at 0.70 and 0.75 of their convex
  // outline: the rule measured the ring's own pixels, and a washer's wide hole leaves out a
  // quarter of its outline. It measures the ring with its hole now (both are counted), and a
  // ring that still fails there, at 60% or more, is a near miss. The other three dark washers,
  // touching light ones, are still missed.
  std::vector<cv::Rect> boxes;
  const cv::Mat tray = AccuracyTray(11235, 55, &boxes, /*trays=*/0);
  ASSERT_EQ(boxes.size(), 11u);
  const json line = CountTray(tray);
  EXPECT_GE(line["count"].get<int>(), 8) << line.dump();
  ExpectExactOrNotConfident(line, boxes, tray.size());
}

TEST(CoderAccuracyTest, ATrayDimmingTowardsTheTablesColourStaysTheSurface) {
  // Regression: tray 131 of `roilens accuracy --gauges 0 --trays 100 --wider 40 --seed 16807`
  // (20 light bolts on a brown tray on a dark olive table, the tray's right side dim) counted 3
  // at confidence 0.77, and tray 35 of `--trays 0 --wider 150 --seed 2` (25 dark bolts on a
  // cream tray on a grey table, its left side shaded towards the grey) counted 30. The tray's dim
  // side stood out from the table less than the parts' threshold, so the parts lying there seemed
  // to lie outside the tray, and no surface was taken; the flood fills ran from table to tray
  // across the soft rim. The tray's blob grows over what stands out from the table's own noise.
  ExpectAccuracyTray(16807, 131, 20, Contract::kExact, /*trays=*/100);
  ExpectAccuracyTray(2, 35, 25, Contract::kExact, /*trays=*/0);
}

TEST(CoderAccuracyTest, AnUncertainCountIsOutvotedByTwoFinerReadsThatAgree) {
  // Regression: trays 44 and 46 of `roilens accuracy --gauges 0 --trays 200 --seed 1123581`
  // counted 12 for 13 (light bolts touching in a group under uneven light, confidence 0.54) and
  // 5 for 6 (yellow bolts lying across each other beside a washer, 0.47). One read smoothed as
  // much as the first attempt's strategy merges two of the touching parts. Read again smoothed
  // 0.7 times as much, and enlarged 1.25 times, both find every part; when those two agree on a
  // count that the first read missed, it is taken (the confidence stays low).
  ExpectAccuracyTray(1123581, 44, 13, Contract::kExact);
  ExpectAccuracyTray(1123581, 46, 6, Contract::kExact);
}

TEST(CoderAccuracyTest, ATraysRimShadowIsNoPart) {
  // Regression: tray 100 of `roilens accuracy --gauges 0 --trays 100 --wider 50 --seed 777` (4
  // bolts on a light tray on a lilac table) counted 6: the shadow line along the tray's right
  // and bottom rims, an L a few pixels wide, stood out from the tray, was cut in two near its
  // corner, and both pieces counted. The corner piece is no rim_like strip (its rectangle is as
  // wide as the tray), and neither lies at the image border. A piece under 0.4 times as thick
  // as a part and longer than 2.5 part lengths is a line: a rim's shadow, a cable or a crack.
  ExpectAccuracyTray(777, 100, 4, Contract::kExact, /*trays=*/100);
}

TEST(CoderAccuracyTest, TheTableBesideATrayOfTwoPartsIsNoPart) {
  // Regression: tray 123 of `roilens accuracy --gauges 0 --trays 0 --wider 150 --seed 2` (2
  // parts on a tray with the table along its side) counted 3: a band of the table's edge running
  // along the image border was counted. Structures the frame cuts were dropped only with three
  // parts or more away from the border, to measure a typical part against; with fewer, the
  // border runs are measured against the longest of them.
  ExpectAccuracyTray(2, 123, 2, Contract::kExact, /*trays=*/0);
}

TEST(CoderAccuracyTest, ASurfaceThatStandsOutFromTheBorderIsNoPart) {
  // Regression: tray 72 of `roilens accuracy --gauges 0 --trays 0 --wider 100 --seed 1729` (one
  // washer on a vignetted grey tray, the table along the top and bottom) counted 4, then 2 once
  // the table's edge along the border was dropped. Against the border's colour (table and tray)
  // the tray's darkened lower half stood out in one blob, 27% of the image: under the 30% that
  // made the counter look for the parts' surface, so its pieces were counted. A blob of a tenth
  // of the image reaching the border is a surface, not a part: it now makes the counter look too.
  ExpectAccuracyTray(1729, 72, 1, Contract::kExact, /*trays=*/0);
}

TEST(CoderAccuracyTest, ABorderOfTrayAndTableMakesTheCounterLookForTheTray) {
  // Regression: tray 33 of `roilens accuracy --gauges 0 --trays 0 --wider 100 --seed 1729` (4
  // washers on a dark tray, a light table along its left side) counted 7. The border's median
  // colour lay between table and tray, so both stood out from it alike and neither made a
  // surface of its own; the local background then averaged the table into the tray's edge,
  // which stood out as a band from top to bottom and was counted. A border of two distinct
  // colours is two surfaces: the counter now looks for the parts' surface there too.
  ExpectAccuracyTray(1729, 33, 4, Contract::kExact, /*trays=*/0);
}

TEST(CoderAccuracyTest, TheTablesGrainBesideATrayIsNoPart) {
  // Regression: tray 149 of `roilens accuracy --gauges 0 --trays 100 --wider 50 --seed 60221`
  // (18 washers on a light tray between two strips of wooden table) counted 19 at confidence
  // 0.89. Nothing stood out from the border's median colour, so the first guess was the whole
  // image's two-class split, which took a stripe of the grain for a part. A border of two
  // colours makes the counter look for the parts' surface whatever the first guess.
  ExpectAccuracyTray(60221, 149, 18, Contract::kExact, /*trays=*/100);
}

TEST(CoderAccuracyTest, ATraysDarkHalfIsNoPart) {
  // Regression: tray 122 of `roilens accuracy --gauges 0 --trays 100 --wider 50 --seed 99991`
  // (12 mixed parts on a tray lit from the left, on a light table) counted 24. The tray's light
  // half had the table's colour, so only its dark half stood out from the border: a blob of a
  // fifth of the image that did not reach the border, which the counter did not take for a
  // surface. It was kept as foreground and counted as a pile of parts.
  ExpectAccuracyTray(99991, 122, 12, Contract::kExact, /*trays=*/100);
}

TEST(CoderAccuracyTest, ATrayLitToTheTablesColourInOnePlaceIsStillTheTray) {
  // Regression: tray 105 of `roilens accuracy --gauges 0 --trays 100 --wider 50 --seed 99991`
  // (21 washers on a grey tray on a lighter table) counted 33. Light on the tray's lower middle
  // matched the table, so the tray stood out from the border round a bay, with washers in it.
  // The counter took the tray for the parts' surface only when that blob filled 85% of its
  // convex outline; here it filled 74%, the tray stayed foreground and its edge was counted.
  ExpectAccuracyTray(99991, 105, 21, Contract::kExact, /*trays=*/100);
}

TEST(CoderAccuracyTest, AFaintGlareSpotAmongBoltsIsNoPart) {
  // Regression: tray 69 of `roilens accuracy --gauges 0 --trays 100 --wider 50 --seed 2357`
  // (23 bolts on a blue tray with three glare spots) counted 24 at confidence 0.81: a small
  // glare spot stood out at under half the bolts' contrast, its rim 1.49 times as soft as the
  // median piece's, just under the 1.5 that makes a peaked light piece a highlight. A faint
  // piece is a highlight from 1.3 times.
  ExpectAccuracyTray(2357, 69, 23, Contract::kExact, /*trays=*/100);
}

TEST(CoderAccuracyTest, DarkNutsAmongLightOnesAreParts) {
  // Regression: tray 57 of `roilens accuracy --gauges 0 --seed 1618` (14 nuts on a green tray,
  // four of them dark) counted 10 at confidence 0.91. The dark nuts stood out from the tray at
  // 0.7 to 0.9 of the threshold, which the light nuts had set: rings of a nut's size, well
  // above the noise, that the threshold left out.
  ExpectAccuracyTray(1618, 57, 14, Contract::kExact);
}

TEST(CoderAccuracyTest, AShaftsEndBeyondAWasherIsNoConfidentPart) {
  // Regression: tray 115 of `roilens accuracy --gauges 0 --trays 100 --wider 50 --seed 2357`
  // (9 parts, two bolts crossing under a washer) counted 10 at confidence 0.96: the end of a
  // bolt's shaft beyond the washer lying across it was cut off as a piece of its own, under a
  // third of a typical part, and counted as a small part. Such a piece may be either.
  ExpectAccuracyTray(2357, 115, 9, Contract::kExactOrNotConfident, /*trays=*/100);
}

TEST(CoderAccuracyTest, AShaftBulgingWhereANeighbourTouchesItJoinsItsHead) {
  // Regression: tray 116 of `roilens accuracy --gauges 0 --trays 100 --wider 50 --seed 777` (13
  // parts, bolts lying against each other) counted 14: a bolt was cut at a narrowing of its
  // shaft, and the shaft's end, 11 px wide along most of its 30 px, bulged to 15 px where
  // another bolt touched it. Measured by that bulge it was as thick as a stubby part, neither
  // thin enough nor long enough to be its head's shaft, and it was counted as a part. The
  // spread of its pixels says it is twice as long as wide: a shaft.
  ExpectAccuracyTray(777, 116, 13, Contract::kExact, /*trays=*/100);
}

TEST(CoderAccuracyTest, AWholeBoltTouchingAClusterWithItsShaftStaysAPart) {
  // Guards the shaft test above: tray 199 of `roilens accuracy --gauges 0 --seed 6174` (8 bolts,
  // four of them crossing in a cluster). A whole bolt touches the cluster with its shaft's end
  // and is as elongated as a shaft's end cut off its head; taken for one, it was joined to the
  // cluster (4 for 8). Its head end is 1.55 times as wide as its median width: a head.
  // The first read counts 8 at confidence 0.48; the two finer reads of the vote (count_parts)
  // both find 7 and outvote it, one of the trays the vote breaks. Held to within one part and
  // not confident, which the joined count (4) is not.
  ExpectAccuracyTray(6174, 199, 8, Contract::kWithinOneAndExactOrNotConfident);
}

TEST(CoderAccuracyTest, AWasherInAGlareSpotAmongClustersIsAPart) {
  // Regression: tray 96 of `roilens accuracy --gauges 0 --trays 100 --wider 50 --seed 60221` (18
  // nuts, washers and bolts, most of them in three clusters) counted 17. A bright washer lay in
  // a glare spot, and the two made one blob with a soft rim, dropped as glare. The part inside
  // was searched for at half to 2.5 times the median blob's area, but the median blob was a
  // cluster of five parts. The search now goes down to half the smaller blobs' size (their lower
  // quartile).
  ExpectAccuracyTray(60221, 96, 18, Contract::kExact, /*trays=*/100);
}

TEST(CoderAccuracyTest, ANutAgainstTheRimsShadowIsAPart) {
  // Regression: tray 3 of `roilens accuracy --gauges 0 --trays 0 --wider 120 --seed 31415` (22
  // nuts on a light tray seen with the table around it) counted 21 at confidence 0.87. One nut
  // touched the shadow along the tray's bottom rim, and the two made one blob, long and thin on
  // average: a strip, all of whose pieces were dropped. A piece with a hole of its own in such a
  // blob is a nut or washer lying against the rim, and stays.
  ExpectAccuracyTray(31415, 3, 22, Contract::kExact, /*trays=*/0);
}

TEST(CoderAccuracyTest, ALoneBoltAmongNutsIsOnePart) {
  // Regression: tray 79 of `roilens accuracy --gauges 0 --seed 424242` (four nuts and one bolt,
  // none touching) counted 6: the bolt covers about twice a nut's area, the typical part here,
  // and with no other bolt to compare it with it was split in two by area. Touching nuts keep
  // their holes and are counted one per hole, so a long piece without a hole among holed parts
  // is another kind of part.
  ExpectAccuracyTray(424242, 79, 5, Contract::kExact);
}

TEST(CoderAccuracyTest, TwoSmallBoltsInAVAmongNutsAreTwoParts) {
  // Regression: tray 195 of `roilens accuracy --gauges 0 --seed 14142` (18 mixed parts, most of
  // them nuts and washers) counted 17: two small bolts touching in a V made one piece of three
  // quarters of a typical part's area, so one part by area, though far from convex (0.60 of its
  // convex outline). Among holed parts, a piece without a hole that is far from convex and not
  // long is two parts; a lone bolt is long (over 2.3 times as long as wide) and stays one.
  ExpectAccuracyTray(14142, 195, 18, Contract::kExact);
}

TEST(CoderAccuracyTest, ABoltsShaftCutAtANeighboursHeadJoinsItsOwnHead) {
  // Regression: tray 43 of `roilens accuracy --gauges 0 --seed 57721` (ten parts; two bolts
  // crossing, the head of one against the other's neck) counted 11: the watershed cut the
  // second bolt's shaft from its head, and the shaft piece was deepest at that cut, where the
  // first bolt's head widens the foreground, so it passed for as thick as a head (9.0 against
  // 10.0) and was never joined back. A piece's thickness is now measured clear of its cuts.
  ExpectAccuracyTray(57721, 43, 10, Contract::kExact);
}

TEST(CoderAccuracyTest, ABoltTouchingAnotherPartAtItsHeadIsNotItsShaft) {
  // Tray 189 of `roilens accuracy --gauges 0 --seed 31337` (13 parts) counted 14 before the
  // rule above, and 14 again with it alone: measured clear of the cut, a whole bolt whose head
  // touches a larger part is thin beside it (9.6 against 13.0), as a shaft's end is beside its
  // head, and it was joined to that part. A piece that is itself a head and a shaft (its far
  // end under three quarters as thick as its end at the cut, its outline well short of filling
  // its length times its width) is a part of its own. AGlareSpotIsNotCountedAsAPart (seed 80)
  // checks the same for a bolt touching a glare spot at its head.
  ExpectAccuracyTray(31337, 189, 13, Contract::kExact);
}

TEST(CoderAccuracyTest, ABorderPieceJustUnderHalfAPartLeavesACleanCountConfident) {
  // Regression (confidence that reaches 0.8 where the evidence holds): tray 123 of `roilens
  // accuracy --gauges 0 --seed 424242` (5 bolts alone on a dark tray; a sixth bolt's shaft end
  // shows at the right border, under half a part, so not counted) counted 5 at confidence 0.77:
  // the border decision, close to its threshold, weighed more than a doubtful piece. Over 2,050
  // harness trays the counts with such decisions and no doubtful piece or split were right 62
  // times of 67, the wrong ones held below 0.8 by other evidence; alone, one now leaves 0.81.
  ExpectAccuracyTray(424242, 123, 5, Contract::kExactAndConfident);
}

TEST(CoderAccuracyTest, APieceRoundASlitIsNotAConfidentSinglePart) {
  // Regression: two bolts lying side by side, head to tail, make one blob with a slit between
  // their shafts; alone on the tray, with no other part to measure a part's size by, the blob
  // counted one at confidence 0.96 (tray 79 of `roilens accuracy --gauges 0 --seed 2718`, a seed
  // the counter was never tuned on; 0.92 on tray 196 of seed 16180). A part's own holes are
  // round: a piece counted as one part round a slit-shaped gap is a close decision.
  ExpectAccuracyTray(2718, 79, 2, Contract::kExactOrNotConfident);
}

TEST(CoderAccuracyTest, ABoltsShaftIsNotCutLengthwiseIntoTwoParts) {
  // Regression: a bolt whose shaft narrows slightly along its length (a highlight eats an edge)
  // has a second maximum of its distance transform there, and the watershed from the head and
  // from that maximum flooded the shaft's flat ridge from both ends: the two pieces met along
  // the shaft, not across a neck, and one bolt counted two (13 for 12 on these seeds of a mixed
  // tray in touching groups, two sizes). The watershed now floods the distance transform from
  // its top down, so the two pieces meet across the shaft, and the shaft's end joins its bolt
  // (join_shaft_pieces; the join of pieces cut along a shaft that fixed this first is gone).
  ExpectEachSeedExact(MixedSizesInGroups(), 12, {34, 35, 41});
}

TEST(CoderAccuracyTest, RoundPartsCutByTheBorderCountByTheirOwnCircle) {
  // Regression: in a mixed tray of two sizes, nuts and washers cut off by the border but two
  // thirds visible were left out (8 for 9 on seeds 3 and 44, 9 for 10 on seed 52): the border
  // rule compared their visible area with a typical part of another kind and size. A round
  // part's outline away from the border now gives its own circle, and the share of that circle
  // inside the image decides.
  TrayStyle style;
  style.kind = 3;
  style.size_mix = 0.25;
  style.border_parts = 3;
  style.noise_sigma = 3;
  ExpectEachSeedExact(style, 8, {3, 44, 52});
}

TEST(CoderAccuracyTest, CoinsFillingAPhotoWithAMixedBorderAreCounted) {
  // Regression: a real photo of 24 coins (tests/data/real/coins.png, dev/real p01) counted 5.
  // Its border holds dark corners and lit stretches: their spread, taken for the noise, left no
  // first guess of the parts, and the mesh background that followed took in the coins, which
  // fill much of every cell. A first guess from the whole image's two-class split finds them.
  const cv::Mat photo =
      cv::imread(testing::SourceDir() + "/tests/data/real/coins.png", cv::IMREAD_COLOR);
  ASSERT_FALSE(photo.empty());
  const json line = CountTray(photo);
  const int count = line["count"].get<int>();
  EXPECT_NEAR(count, 24, 2) << line.dump();
  if (count != 24) {
    EXPECT_LT(line["confidence"].get<double>(), 0.8) << line.dump();
  }
}

TEST(CoderAccuracyTest, ACoinWithAReliefOffItsCentreCountsOne) {
  // Regression: a dark relief mark on a coin, off its centre and as dark as the cloth, passes for
  // a washer's hole; the part drawn round that hole missed the coin's far side, which counted
  // as a second part: 24 for these 12 coins at confidence over 0.9 (dev/real p16: 36 for 31 euro
  // coins). A crescent hugging a holed part and closing a convex whole with it is that part.
  for (int seed : {1, 2}) {
    cv::Mat tray(360, 480, CV_8UC3, cv::Scalar(60, 60, 60));
    cv::RNG rng(seed);
    std::vector<cv::Rect> boxes;
    for (int i = 0; i < 12; ++i) {
      const cv::Point c(70 + i % 4 * 110, 70 + i / 4 * 110);
      const int r = 30 + (i % 4 + i / 4) % 3 * 4;
      cv::circle(tray, c, r, cv::Scalar(80, 160, 190), cv::FILLED, cv::LINE_AA);
      const double a = rng.uniform(0.0, 2 * CV_PI), off = rng.uniform(0.3, 0.45) * r;
      const cv::Point mark(c.x + cvRound(off * std::cos(a)), c.y + cvRound(off * std::sin(a)));
      cv::circle(tray, mark, rng.uniform(5, 9), cv::Scalar(62, 62, 62), cv::FILLED, cv::LINE_AA);
      boxes.emplace_back(c.x - r, c.y - r, 2 * r + 1, 2 * r + 1);
    }
    cv::GaussianBlur(tray, tray, cv::Size(), 1.0);
    AddNoise(tray, seed);
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectExactWithObjects(CountTray(tray), boxes, tray.size());
  }
}

TEST(CoderAccuracyTest, PartsOfTwoLobesCutAtTheirWaistCountOneEach) {
  // Regression: a double cross (two crosses fused side by side, a toy or a fitting) is cut at its
  // waist into two crosses, and with no lone part like it in view each counted as a part: 15 for
  // these 6 double crosses and 3 discs (dev/real heldout2 r02: 19 for 14). Three blobs or more
  // cut in two whose wholes have one shape, where no lone part has the shape of a piece, are
  // that shape: two parts touching lie at a new angle each time.
  for (int seed : {1, 2}) {
    cv::RNG rng(seed);
    cv::Mat tray(360, 480, CV_8UC3, cv::Scalar(225, 225, 225));
    std::vector<cv::Rect> boxes;
    for (int i = 0; i < 6; ++i) {
      const cv::Point2f c(80 + i % 3 * 150, 90 + i / 3 * 170);
      const float turn = float(rng.uniform(0.0, 180.0));
      const float a = turn * float(CV_PI) / 180.f;
      std::vector<cv::Point> all;
      for (float side : {-17.f, 17.f}) {
        const cv::Point2f centre = c + side * cv::Point2f(std::cos(a), std::sin(a));
        for (float bar : {0.f, 90.f}) {
          cv::Point2f corners[4];
          cv::RotatedRect(centre, cv::Size2f(45, 17), turn + bar).points(corners);
          const std::vector<cv::Point> poly(std::begin(corners), std::end(corners));
          cv::fillConvexPoly(tray, poly, cv::Scalar(50, 55, 60), cv::LINE_AA);
          all.insert(all.end(), poly.begin(), poly.end());
        }
      }
      boxes.push_back(cv::boundingRect(all));
    }
    for (int i = 0; i < 3; ++i) {
      const cv::Point c(60 + i * 150, 330);
      cv::circle(tray, c, 18, cv::Scalar(60, 60, 60), cv::FILLED, cv::LINE_AA);
      boxes.emplace_back(c.x - 18, c.y - 18, 37, 37);
    }
    cv::GaussianBlur(tray, tray, cv::Size(), 1.0);
    AddNoise(tray, seed);
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectExactWithObjects(CountTray(tray), boxes, tray.size());
  }
}

TEST(CoderAccuracyTest, TheShadowsLightTabletsCastAreNotParts) {
  // Regression: tablets lit from one side cast soft shadows on the cloth, darker than the cloth
  // and of its colour; each shadow between two tablets was cut off as a piece of its own and
  // counted: 40 for these 20 tablets (dev/real p13: 38 for 30 Advil tablets on a dark cloth). Where
  // the parts are lighter than the surface, a smaller piece darker than it and of its colour is
  // a shadow.
  for (int seed : {1, 2}) {
    cv::RNG rng(seed);
    const int r = 30;
    std::vector<cv::Point> centres;
    for (int i = 0; i < 20; ++i)
      centres.emplace_back(100 + i % 5 * 76 + i / 5 % 2 * 38 + rng.uniform(-2, 3),
                           70 + i / 5 * 66 + rng.uniform(-2, 3));
    cv::Mat shade(360, 560, CV_32F, cv::Scalar(0));
    for (const cv::Point& c : centres) cv::circle(shade, c + cv::Point(-18, 5), r, 1.0, cv::FILLED);
    cv::GaussianBlur(shade, shade, cv::Size(), 5);
    cv::Mat tray(shade.size(), CV_8UC3);
    for (int y = 0; y < tray.rows; ++y)
      for (int x = 0; x < tray.cols; ++x)
        tray.at<cv::Vec3b>(y, x) =
            cv::Vec3b::all(cv::saturate_cast<uchar>(55 * (1 - 0.6 * shade.at<float>(y, x))));
    std::vector<cv::Rect> boxes;
    for (const cv::Point& c : centres) {
      cv::circle(tray, c, r, cv::Scalar(70, 100, 190), cv::FILLED, cv::LINE_AA);
      boxes.emplace_back(c.x - r, c.y - r, 2 * r + 1, 2 * r + 1);
    }
    cv::GaussianBlur(tray, tray, cv::Size(), 1.5);
    // camera noise both ways (AddNoise's only lightens)
    cv::Mat noisy, noise(tray.size(), CV_16SC3);
    rng.fill(noise, cv::RNG::NORMAL, 0, 3);
    tray.convertTo(noisy, CV_16SC3);
    noisy += noise;
    noisy.convertTo(tray, CV_8UC3);
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectExactWithObjects(CountTray(tray), boxes, tray.size());
  }
}

/// 0 .. n-1 in a random order (Fisher-Yates, drawing from `rng`): the places of a drawn scene.
std::vector<int> Shuffled(int n, cv::RNG& rng) {
  std::vector<int> out(static_cast<std::size_t>(n));
  std::iota(out.begin(), out.end(), 0);
  for (int i = n - 1; i > 0; --i) std::swap(out[i], out[rng.uniform(0, i + 1)]);
  return out;
}

/// A rotated rectangle's corners in the fixed point of drawing calls with shift 4 (1/16 px).
std::vector<cv::Point> Corners16(const cv::RotatedRect& r) {
  cv::Point2f corners[4];
  r.points(corners);
  std::vector<cv::Point> out;
  for (const cv::Point2f& p : corners) out.emplace_back(cvRound(p.x * 16), cvRound(p.y * 16));
  return out;
}

/// A scene drawn in floating point (BGR) as a camera sees it: through a lens and a sensor
/// (blurred 1.2 px, noise of 3 levels both ways), in 8 bits.
cv::Mat ThroughTheLens(const cv::Mat& scene, cv::RNG& rng) {
  cv::Mat seen, noise(scene.size(), CV_32FC3);
  cv::GaussianBlur(scene, seen, cv::Size(), 1.2);
  rng.fill(noise, cv::RNG::NORMAL, 0, 3);
  seen += noise;
  seen.convertTo(seen, CV_8UC3);
  return seen;
}

/// Such a scene is counted exactly, its boxes on the true parts, at >= 0.8.
void ExpectExactAndConfidentThroughTheLens(const cv::Mat& scene, const std::vector<cv::Rect>& boxes,
                                           cv::RNG& rng) {
  const cv::Mat seen = ThroughTheLens(scene, rng);
  const json line = CountTray(seen);
  ExpectExactWithObjects(line, boxes, seen.size());
  EXPECT_GE(line["confidence"].get<double>(), 0.8) << line.dump();
}

TEST(CoderAccuracyTest, ShadowsNearlyAsLargeAsTheBeansOnABlueClothAreNotParts) {
  // Regression: beans on a blue cloth lit low from one side cast hard shadows nearly as large as
  // themselves, parted from them by the beans' dark rims: the shadows counted as parts, 35 and 40
  // for these 20 beans on the first two seeds, the second at 0.97 (dev/real/heldout q10: 37 for
  // 25 beans). The shadows, dark blue, were too far from the cloth's colour for the shadow test
  // (chroma offset over 12) and too large (over 0.6 of a bean). A shadow is the cloth under less
  // light: its chroma shrinks with its lightness; and a cast shadow nearly a part's size lies
  // beside the part casting it.
  for (int seed : {1, 2, 3}) {
    cv::RNG rng(seed);
    const cv::Size size(560, 400);
    cv::Mat shade(size, CV_32F, cv::Scalar(0));
    struct Bean {
      cv::Point centre;
      cv::Size axes;
      double angle;
    };
    std::vector<Bean> beans;
    for (int i = 0; i < 20; ++i) {
      const cv::Point c(70 + i % 5 * 105 + rng.uniform(-4, 5),
                        60 + i / 5 * 95 + rng.uniform(-4, 5));
      const cv::Size axes(rng.uniform(12, 15), rng.uniform(16, 19));
      beans.push_back({c, axes, rng.uniform(0.0, 180.0)});
      cv::ellipse(shade, c + cv::Point(9, 8), axes + cv::Size(3, 3), beans.back().angle, 0, 360,
                  1.0, cv::FILLED);
    }
    const cv::Vec3f cloth(67, 36, 15);
    cv::Mat tray(size, CV_32FC3);
    for (int y = 0; y < tray.rows; ++y)
      for (int x = 0; x < tray.cols; ++x)
        tray.at<cv::Vec3f>(y, x) = cloth * (1.0f - 0.7f * shade.at<float>(y, x));
    std::vector<cv::Rect> boxes;
    for (const Bean& b : beans) {
      cv::ellipse(tray, b.centre, b.axes, b.angle, 0, 360, cv::Scalar(72, 99, 117), cv::FILLED,
                  cv::LINE_AA);
      cv::ellipse(tray, b.centre, b.axes, b.angle, 0, 360, cv::Scalar(50, 50, 50), 2, cv::LINE_AA);
      boxes.push_back(cv::RotatedRect(b.centre,
                                      cv::Size2f(2.0f * b.axes.width, 2.0f * b.axes.height),
                                      float(b.angle))
                          .boundingRect());
    }
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectExactAndConfidentThroughTheLens(tray, boxes, rng);
  }
}

TEST(CoderAccuracyTest, ADiesPipsAreMarksOnOnePartNotWashersHoles) {
  // Regression: every round hole was taken for a ring's hole, one part each, so a die counted
  // once per pip and its face between the pips again (dev/real/heldout q03: 30 for 7 dice; a
  // similar set drawn apart from this test: 26 for 8 dice on two seeds of three). Here the
  // first read failed on every seed and the outlines' count stood in for it, right but at 0.45
  // (uncertain), where nothing is in doubt. Touching rings leave notches
  // in their outline: holes of one size in one convex piece are marks on one part.
  const std::vector<std::vector<cv::Point>> pips = {
      {{0, 0}},
      {{-1, -1}, {1, 1}},
      {{-1, -1}, {0, 0}, {1, 1}},
      {{-1, -1}, {1, -1}, {-1, 1}, {1, 1}},
      {{-1, -1}, {1, -1}, {0, 0}, {-1, 1}, {1, 1}},
      {{-1, -1}, {1, -1}, {-1, 0}, {1, 0}, {-1, 1}, {1, 1}}};
  for (int seed : {1, 2, 3}) {
    cv::RNG rng(seed);
    cv::Mat table(400, 560, CV_32FC3, cv::Scalar(45, 42, 40));
    std::vector<cv::Rect> boxes;
    for (int i = 0; i < 8; ++i) {
      const cv::Point2f c(80 + i % 4 * 130 + rng.uniform(-8, 9),
                          100 + i / 4 * 200 + rng.uniform(-8, 9));
      const float angle = float(rng.uniform(0.0, 90.0));
      const cv::RotatedRect face(c, cv::Size2f(60, 60), angle);
      cv::Point2f corners[4];
      face.points(corners);
      std::vector<cv::Point> outline(corners, corners + 4);
      cv::fillConvexPoly(table, outline, cv::Scalar(225, 230, 232), cv::LINE_AA);
      cv::polylines(table, outline, true, cv::Scalar(225, 230, 232), 6, cv::LINE_AA);
      const double ca = std::cos(angle * CV_PI / 180), sa = std::sin(angle * CV_PI / 180);
      for (const cv::Point& p : pips[i % 6])
        cv::circle(table,
                   cv::Point(cvRound(c.x + 17 * (p.x * ca - p.y * sa)),
                             cvRound(c.y + 17 * (p.x * sa + p.y * ca))),
                   6, cv::Scalar(40, 40, 45), cv::FILLED, cv::LINE_AA);
      boxes.push_back(face.boundingRect() + cv::Point(-3, -3) + cv::Size(6, 6));
    }
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectExactAndConfidentThroughTheLens(table, boxes, rng);
  }
}

TEST(CoderAccuracyTest, ABlockWhoseHoleLiesOffItsCentreIsOnePart) {
  // Regression: a ring's part was the disc its hole's rays reach, and a block whose hole lies
  // off its centre (a sliding nut, a tube with a hole across it) kept its far end out of that
  // disc, counted as a second part: 17 for these 10 parts at 0.94 on every seed (held-out
  // photo r01 of dev/real/heldout2: 23 for 20). Parts touching leave notches in their outline:
  // the only hole in a piece without one is that piece's, however far the piece reaches.
  for (int seed : {1, 2, 3}) {
    cv::RNG rng(seed);
    const cv::Scalar light(205, 205, 200), dark(45, 45, 50);
    cv::Mat table(400, 560, CV_32FC3, light);
    auto disc = [&](cv::Point2f c, double r, const cv::Scalar& colour) {
      cv::circle(table, cv::Point(cvRound(c.x * 16), cvRound(c.y * 16)), cvRound(r * 16), colour,
                 cv::FILLED, cv::LINE_AA, 4);
    };
    std::vector<cv::Rect> boxes;
    for (int i = 0; i < 10; ++i) {
      const cv::Point2f c =
          i < 8 ? cv::Point2f(75 + i % 4 * 135 + rng.uniform(-8, 9),
                              80 + i / 4 * 125 + rng.uniform(-8, 9))
                : cv::Point2f(140 + (i - 8) * 270 + rng.uniform(-8, 9), 330 + rng.uniform(-8, 9));
      if (i % 3 == 2) {  // a washer
        disc(c, 22, dark);
        disc(c, 10, light);
        boxes.emplace_back(cvRound(c.x) - 22, cvRound(c.y) - 22, 45, 45);
        continue;
      }
      const float angle = float(rng.uniform(0.0, 180.0));
      const cv::RotatedRect block(c, cv::Size2f(72, 46), angle);
      const std::vector<cv::Point> outline = Corners16(block);
      cv::fillConvexPoly(table, outline, dark, cv::LINE_AA, 4);
      const cv::Point2f along(std::cos(angle * float(CV_PI) / 180),
                              std::sin(angle * float(CV_PI) / 180));
      disc(c - 12 * along, 13, light);  // the large hole, off the centre
      disc(c + 24 * along, 4, light);   // and a small one at the other end
      boxes.push_back(block.boundingRect());
    }
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectExactAndConfidentThroughTheLens(table, boxes, rng);
  }
}

TEST(CoderAccuracyTest, LargePartsFillingTheViewAreCountedWithinTheSandboxsTimeLimit) {
  // Regression: parts over 200 px across leave little background between them, and the local
  // background's widest blur (six times a part's diameter) ran a kernel many times the image's
  // size: this scene took 79 s (the sandbox stops a program at 30 s), a real photo of seven
  // biscuits 30 s (dev/real/heldout2 r07; the retry that followed counted 1 at 0.97). Wide blurs
  // now run on a shrunk copy: 3 s.
  cv::RNG rng(1);
  cv::Mat table(630, 900, CV_32FC3, cv::Scalar(225, 225, 225));
  std::vector<cv::Rect> boxes;
  // seven biscuits in three rows, 285 x 170 px each, about 20 px apart
  const cv::Point2f places[] = {{150, 94.5f},  {450, 94.5f},  {750, 94.5f}, {150, 283.5f},
                                {750, 283.5f}, {150, 491.4f}, {450, 491.4f}};
  for (const cv::Point2f& c : places) {
    const cv::RotatedRect biscuit(
        c + cv::Point2f(float(rng.uniform(-4, 5)), float(rng.uniform(-4, 5))), cv::Size2f(285, 170),
        float(rng.uniform(-2.0, 2.0)));
    const std::vector<cv::Point> outline = Corners16(biscuit);
    cv::fillConvexPoly(table, outline, cv::Scalar::all(110 + rng.uniform(-8, 8)), cv::LINE_AA, 4);
    boxes.push_back(biscuit.boundingRect());
  }
  // a baked, grainy surface
  cv::Mat grain(table.size(), CV_32F);
  rng.fill(grain, cv::RNG::NORMAL, 0, 1);
  cv::GaussianBlur(grain, grain, cv::Size(), 2);
  cv::Mat channels[3];
  cv::split(table, channels);
  grain *= 25.0;
  grain.setTo(0, channels[0] >= 180);
  for (cv::Mat& c : channels) c += grain;
  cv::merge(channels, 3, table);
  // CountTray runs the program in the sandbox with its 30 s limit and expects it to finish
  ExpectExactWithObjects(CountTray(ThroughTheLens(table, rng)), boxes, table.size());
}

TEST(CoderAccuracyTest, SmallRingsLyingAloneBesideLargePartsAreParts) {
  // Regression: a piece under 0.15 of a typical part's area was noise, and small rubber rings
  // beside pads seven times their area were dropped: 6 for these 9 parts at 0.97 on every seed
  // (dev/real/heldout2 r03: 6 for 8). A ring lying alone, its round hole and all, is a part.
  for (int seed : {1, 2, 3}) {
    cv::RNG rng(seed);
    const cv::Scalar paper(235, 235, 232);
    cv::Mat table(400, 600, CV_32FC3, paper);
    const std::vector<int> cells = Shuffled(12, rng);
    std::vector<cv::Rect> boxes;
    for (int j = 0; j < 9; ++j) {  // three rings, six pads
      const cv::Point c(80 + cells[j] % 4 * 145 + rng.uniform(-10, 11),
                        70 + cells[j] / 4 * 130 + rng.uniform(-10, 11));
      if (j < 3) {
        cv::circle(table, c * 16, 11 * 16, cv::Scalar(40, 40, 42), cv::FILLED, cv::LINE_AA, 4);
        cv::circle(table, c * 16, 5 * 16, paper, cv::FILLED, cv::LINE_AA, 4);
        boxes.emplace_back(c.x - 11, c.y - 11, 23, 23);
        continue;
      }
      const cv::RotatedRect pad(c, cv::Size2f(82, 62), float(rng.uniform(0.0, 180.0)));
      const std::vector<cv::Point> outline = Corners16(pad);
      cv::fillConvexPoly(table, outline, cv::Scalar(50, 50, 52), cv::LINE_AA, 4);
      boxes.push_back(pad.boundingRect());
    }
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectExactAndConfidentThroughTheLens(table, boxes, rng);
  }
}

TEST(CoderAccuracyTest, LongPartsLyingAcrossEachOtherCountOneEach) {
  // Regression: two sticks lying across each other make one piece, 1.8 sticks' area, whose
  // largest inscribed circle (where they cross) is 1.35 to 1.46 times a stick's: the count took
  // it for one larger stick (area grows with the square of thickness), and the crossings, alike,
  // for a larger kind of part: 14, 13 and 14 for these 17 sticks on seeds 1, 2 and 4. A larger
  // part of a kind keeps its proportions; crossed long parts make a piece far stubbier and far
  // less convex.
  for (int seed : {1, 2, 3, 4}) {
    cv::RNG rng(seed);
    cv::Mat table(420, 600, CV_32FC3, cv::Scalar(150, 160, 168));
    const std::vector<int> cells = Shuffled(15, rng);
    const cv::Scalar colour = seed % 2 ? cv::Scalar(60, 70, 190) : cv::Scalar(200, 200, 205);
    std::vector<cv::Rect> boxes;
    for (int j = 0; j < 13; ++j) {  // the first four places hold two crossed sticks each
      const cv::Point2f c(70 + cells[j] % 5 * 115 + rng.uniform(-8, 9),
                          75 + cells[j] / 5 * 135 + rng.uniform(-8, 9));
      const float angle = float(rng.uniform(0.0, 180.0));
      for (int k = 0; k < (j < 4 ? 2 : 1); ++k) {
        const cv::Point2f shift =
            j < 4 ? cv::Point2f(float(rng.uniform(-8.0, 8.0)), float(rng.uniform(-8.0, 8.0)))
                  : cv::Point2f(0, 0);
        const float turn = k ? float(rng.uniform(50.0, 130.0)) : 0.0f;
        const cv::RotatedRect stick(c + shift, cv::Size2f(80, 14), angle + turn);
        const std::vector<cv::Point> outline = Corners16(stick);
        cv::fillConvexPoly(table, outline, colour, cv::LINE_AA, 4);
        cv::polylines(table, outline, true, colour * 0.7, 1, cv::LINE_AA, 4);
        boxes.push_back(stick.boundingRect());
      }
    }
    SCOPED_TRACE("seed " + std::to_string(seed));
    // each crossing is split by area alone, a decision the count rests on: exact, not confident
    ExpectExactWithObjects(CountTray(ThroughTheLens(table, rng)), boxes, table.size());
  }
}

/// Draws a disc of radius `r` px centred at `c` (to a sixteenth of a pixel) in `colour`; returns
/// its box, 2r + 1 px square round the centre's pixel.
cv::Rect DrawDisc(cv::Mat& scene, cv::Point2d c, int r, const cv::Scalar& colour) {
  cv::circle(scene, cv::Point(cvRound(c.x * 16), cvRound(c.y * 16)), r * 16, colour, cv::FILLED,
             cv::LINE_AA, 4);
  return cv::Rect(cvRound(c.x) - r, cvRound(c.y) - r, 2 * r + 1, 2 * r + 1);
}

/// Draws `n` discs 45 px across in `colour`, each in its own cell of a `grid` (columns, rows)
/// taken in a shuffled order: centred `pitch` apart from `origin`, moved by up to `jitter` px.
/// Returns their boxes.
std::vector<cv::Rect> DiscsInShuffledCells(cv::Mat& scene, cv::RNG& rng, int n, cv::Size grid,
                                           cv::Point origin, cv::Size pitch, cv::Size jitter,
                                           const cv::Scalar& colour) {
  const std::vector<int> cells = Shuffled(grid.area(), rng);
  std::vector<cv::Rect> boxes;
  for (int j = 0; j < n; ++j) {
    const int dx = rng.uniform(-jitter.width, jitter.width + 1);
    const int dy = rng.uniform(-jitter.height, jitter.height + 1);
    const cv::Point c(origin.x + cells[j] % grid.width * pitch.width + dx,
                      origin.y + cells[j] / grid.width * pitch.height + dy);
    boxes.push_back(DrawDisc(scene, c, 22, colour));
  }
  return boxes;
}

TEST(CoderAccuracyTest, PartsInABrightReflectionAcrossASteelTrayAreCounted) {
  // Regression: pale tablets on a dark steel tray with a broad bright reflection across it stand
  // out from the dark steel twice as much as from the reflection; the threshold, taken half way
  // to the parts' contrast, lay above the ones in the reflection, and they were left out of a
  // confident count: 3 to 6 for these 10 at 0.92 (dev/real p08: 5 for 8 yellow tablets).
  // A blob above the noise, away from the parts found, of a part's area, elongation, solidity
  // and edge width is a part left out.
  for (int seed : {1, 2, 3}) {
    cv::RNG rng(seed);
    cv::Mat tray(400, 600, CV_32FC3, cv::Scalar(55, 52, 58));
    const double angle = rng.uniform(0.3, 0.6), offset = rng.uniform(150.0, 250.0);
    for (int y = 0; y < tray.rows; ++y)
      for (int x = 0; x < tray.cols; ++x) {
        const double d = (x * std::cos(angle) - y * std::sin(angle) - offset) / 110.0;
        tray.at<cv::Vec3f>(y, x) += cv::Vec3f(150, 152, 146) * float(std::exp(-0.5 * d * d));
      }
    const std::vector<cv::Rect> boxes = DiscsInShuffledCells(
        tray, rng, 10, {5, 3}, {70, 70}, {115, 130}, {12, 12}, cv::Scalar(150, 215, 220));
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectExactWithObjects(CountTray(ThroughTheLens(tray, rng)), boxes, tray.size());
  }
}

/// What a strong lens vignette does to a scene (CV_32FC3): its light falls to 1 - 0.55 r^2 (r = 1
/// at the middle of each side), no lower than a fifth in the corners.
void DarkenTheCorners(cv::Mat& scene) {
  const double cx = 0.5 * scene.cols, cy = 0.5 * scene.rows;
  for (int y = 0; y < scene.rows; ++y)
    for (int x = 0; x < scene.cols; ++x) {
      const double dx = (x - cx) / cx, dy = (y - cy) / cy;
      scene.at<cv::Vec3f>(y, x) *= float(std::max(0.2, 1.0 - 0.55 * (dx * dx + dy * dy)));
    }
}

TEST(CoderAccuracyTest, PartsInTheMarginOfAStronglyVignettedTrayAreNotAConfidentCount) {
  // Regression: a tray filling the view through a lens that darkens the corners to a fifth of
  // the centre's light: the lit middle stood out from the dark border and was taken for a tray
  // on a dark table, and the parts in the dark margin for the table's: 6, 9 and 4 for these 12,
  // the last at 0.97. Part-like blobs in the scene beside such a tray are parts left out.
  for (int seed : {1, 2, 3}) {
    cv::RNG rng(seed);
    cv::Mat scene(420, 600, CV_32FC3, cv::Scalar(170, 175, 180));
    const std::vector<cv::Rect> boxes = DiscsInShuffledCells(
        scene, rng, 12, {5, 4}, {60, 55}, {120, 103}, {12, 8}, cv::Scalar(60, 60, 65));
    DarkenTheCorners(scene);
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectExactOrNotConfident(CountTray(ThroughTheLens(scene, rng)), boxes, scene.size());
  }
}

TEST(CoderAccuracyTest, OnePartInTheMarginOfAStronglyVignettedTrayIsNotAConfidentCount) {
  // Regression: five parts in the lit middle and one in a darkened corner: the corner's part,
  // set aside with the scene beside the tray, weighed as a near miss and the count of 5 for 6
  // stood at 0.81 in every corner (dev/harness/families.py, vignette: three scenes of 18).
  for (int corner = 0; corner < 4; ++corner) {
    cv::RNG rng(corner + 1);
    cv::Mat scene(420, 600, CV_32FC3, cv::Scalar(170, 175, 180));
    const cv::Scalar dark(60, 60, 65);
    std::vector<cv::Rect> boxes =
        DiscsInShuffledCells(scene, rng, 5, {3, 2}, {180, 158}, {120, 103}, {12, 8}, dark);
    const cv::Point at(corner % 2 ? 545 : 55, corner / 2 ? 365 : 55);
    boxes.push_back(DiscsInShuffledCells(scene, rng, 1, {1, 1}, at, {1, 1}, {8, 8}, dark)[0]);
    DarkenTheCorners(scene);
    SCOPED_TRACE("corner " + std::to_string(corner));
    ExpectExactOrNotConfident(CountTray(ThroughTheLens(scene, rng)), boxes, scene.size());
  }
}

TEST(CoderAccuracyTest, DiscsPackedInABlockBesideLoneOnesCountOneEach) {
  // Regression: discs packed in a hexagonal block, each touching up to six others, leave a small
  // round gap between every three; the gaps were taken for nuts' or washers' holes (one part
  // each) and the rest of the block for one or two parts by its thickness: 7 for 12 and 10 for
  // 16 (dev/harness/families.py, packed). Where the typical hole's part runs on past 8 of its
  // radii the holes are gaps; the block is counted against the lone discs beside it.
  for (int seed : {1, 2, 3, 4}) {
    cv::RNG rng(seed);
    cv::Mat scene(420, 600, CV_32FC3, cv::Scalar(60, 120, 60));
    std::vector<cv::Rect> boxes;
    const auto disc = [&](double x, double y) {
      boxes.push_back(DrawDisc(scene, {x, y}, 20, cv::Scalar(210, 215, 220)));
    };
    const int rows = 2 + seed / 3, cols = 3 + seed % 2;  // 2 x 4, 2 x 3, 3 x 4, 3 x 3
    const double x0 = rng.uniform(150.0, 250.0), y0 = rng.uniform(120.0, 200.0);
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j) disc(x0 + j * 40 + i % 2 * 20, y0 + i * 20 * std::sqrt(3.0));
    for (const cv::Point& c :
         {cv::Point(480, 70), cv::Point(545, 215), cv::Point(470, 350), cv::Point(80, 360)})
      disc(c.x + rng.uniform(-15, 16), c.y + rng.uniform(-15, 16));
    SCOPED_TRACE("seed " + std::to_string(seed) + ", a block of " + std::to_string(rows) + " x " +
                 std::to_string(cols));
    ExpectExactWithObjects(CountTray(ThroughTheLens(scene, rng)), boxes, scene.size());
  }
}

TEST(CoderAccuracyTest, ADiscJustOverHalfInTheViewLeavesACleanCountConfident) {
  // A disc cut by the border with 0.6 to 0.65 of it in view counts (the border rule: half of it),
  // a decision near the rule's threshold. One that left a disc out so near it weighed as a near
  // miss and left a clean count at 0.81; one that counted the disc weighed as an ambiguous piece
  // and took the count to 0.79 on every side. Both now weigh as a near miss.
  for (int side = 0; side < 4; ++side) {
    cv::RNG rng(side + 1);
    cv::Mat scene(420, 600, CV_32FC3, cv::Scalar(50, 45, 45));
    const cv::Scalar light(200, 205, 210);
    std::vector<cv::Rect> boxes =
        DiscsInShuffledCells(scene, rng, 8, {4, 3}, {120, 100}, {120, 110}, {12, 8}, light);
    const double in = rng.uniform(3.5, 5.0);  // the centre's distance inside the border, px
    const cv::Point2d c = side == 0   ? cv::Point2d(in, 210)
                          : side == 1 ? cv::Point2d(599 - in, 200)
                          : side == 2 ? cv::Point2d(300, in)
                                      : cv::Point2d(290, 419 - in);
    boxes.push_back(DrawDisc(scene, c, 22, light) & cv::Rect(0, 0, scene.cols, scene.rows));
    SCOPED_TRACE("side " + std::to_string(side));
    ExpectExactAndConfidentThroughTheLens(scene, boxes, rng);
  }
}

TEST(CoderAccuracyTest, BlurredTouchingWashersCountOnePerHoleAndSaySo) {
  // Regression: blurred, low-contrast washers in touching pairs were split along their rings by
  // the distance transform (7 for 6) and no count reached confidence 0.8; every round hole is
  // now one part bounded by its own rim.
  for (int seed = 1; seed <= 5; ++seed) {
    TrayStyle style;
    style.kind = 2;
    style.clusters = 2;
    style.blur_sigma = 1.2;
    style.contrast = 0.55;
    style.tone = TrayTone::kLightOnDark;
    cv::RNG rng(seed);
    std::vector<cv::Rect> boxes;
    const cv::Mat tray = RenderTray(6, style, rng, &boxes);
    SCOPED_TRACE("seed " + std::to_string(seed));
    const json line = CountTray(tray);
    ExpectExactWithObjects(line, boxes, tray.size());
    EXPECT_GE(line["confidence"].get<double>(), 0.8) << line.dump();
  }
}

TEST(CoderAccuracyTest, TwoPartsBesideCutOffOnesCountTwo) {
  // Regression: with few whole parts, the parts cut off by the border dragged the typical part's
  // area down and every whole nut or washer counted as several (15 and 11 instead of 2).
  TrayStyle style;
  style.border_parts = 3;
  style.noise_sigma = 3;
  style.kind = 1;  // nuts
  ExpectEachSeedExact(style, 2, {7});
  style.kind = 2;  // washers
  ExpectEachSeedExact(style, 2, {12});
}

TEST(CoderAccuracyTest, ACountRestingOnANearBorderDecisionIsNotConfident) {
  // Regression: a part cut off by the border whose visible share came out near the border
  // rule's limit was dropped (8 for 9) and the count still said confidence 0.85; a decision that
  // close to its threshold now weighs as much as a part-sized soft drop.
  TrayStyle style;
  style.kind = 3;
  style.border_parts = 4;
  style.noise_sigma = 3;
  cv::RNG rng(79);
  std::vector<cv::Rect> boxes;
  const cv::Mat tray = RenderTray(8, style, rng, &boxes);
  const json line = CountTray(tray);
  ExpectExactOrNotConfident(line, boxes, tray.size());
}

/// Bolts on a dark grey tray under three glare spots, with sensor noise.
TrayStyle BoltsOnADarkTrayUnderGlare() {
  TrayStyle style;
  style.kind = 0;
  style.glare_spots = 3;
  style.noise_sigma = 3;
  style.tray = cv::Scalar(40, 40, 40);
  return style;
}

TEST(CoderAccuracyTest, ABoltsEndRunningIntoGlareIsNotASecondPart) {
  // Regression: a bolt whose end runs into a glare spot makes one blob with it, cut at the neck
  // between them into the bolt and a piece of its end with the spot, and each counted as a
  // part: 9 for 8 on these seeds (0.77), the most common overcount in the harness's trays
  // under glare. Of a blob cut in two, a piece whose outline is soft over most of its length
  // (the other's is not) is glare.
  ExpectEachSeedExact(BoltsOnADarkTrayUnderGlare(), 8, {10, 70});
}

TEST(CoderAccuracyTest, ABoltCutInTwoThatOneLargerCopyCoversCountsOne) {
  // Regression: a bolt larger than the lone one the copies are cut from, or one with a glare
  // spot over its neck, is cut by the distance transform into head and shaft. One copy sized to
  // the blob covers it (intersection over union 0.8 or more), which was taken to mean "a larger
  // part, leave it", and the two pieces stood: 10 for 9 on tray 3 of `roilens accuracy --seed
  // 424242`, 9 for 8 on seed 49 of bolts under glare. Where the copies laid on it are also one,
  // the blob is now one part.
  ExpectEachSeedExact(BoltsOnADarkTrayUnderGlare(), 8, {49});
  ExpectAccuracyTray(424242, 3, 9, Contract::kExact);
}

TEST(CoderAccuracyTest, ACountRestingOnOneCloseDecisionIsNotConfident) {
  // Regression: bolts on a dark tray under glare spots. A small spot with a soft rim counted as
  // a part (seed 43: 9 for 8; since AGlareSpotIsNotCountedAsAPart, exact) and a bolt with glare at
  // its neck counted as two (seed 50: 9 for 8), each a close decision that scored its object 0.6
  // or 0.7, and the counts still said 0.80 and 0.85. Over the 1000 generated trays a count resting
  // on one such decision was right 11 times of 13: not the 99% that 0.8 promises. One close
  // decision now takes a count below 0.8.
  ExpectEachSeedExactOrNotConfident(BoltsOnADarkTrayUnderGlare(), 8, {43, 50});
}

TEST(CoderAccuracyTest, ACountWithAPartCutNearGlareIsNotConfident) {
  // Regression: a bolt whose shaft runs into a glare spot makes one blob with it, and the blob
  // is cut into the head and a shaft-and-spot piece, each the size of a part: 9 for 8 on these
  // seeds at confidence 0.80 to 0.85, since a split into part-sized pieces weighed little. Where
  // the tray has glare a piece's outline may be the glare's, and such a split weighs as an odd
  // one.
  ExpectEachSeedExactOrNotConfident(BoltsOnADarkTrayUnderGlare(), 8, {26, 42, 52, 53});
}

TEST(CoderAccuracyTest, APieceFarFromConvexIsNotAConfidentSinglePart) {
  // Regression: two bolts crossing, or lying in a V, make one piece with no neck to cut it at
  // and an area within a single larger bolt's; it counted as one part and the count of 13 for
  // 14 said 0.87-0.96 on these seeds. A single part's piece fills at least 0.65 of its convex
  // hull (bolts measured 0.68 and up); a piece counted as one part below that scores 0.6.
  ExpectEachSeedExactOrNotConfident(MixedSizesInGroups(), 14, {29, 68});
  TrayStyle touching = MixedSizesInGroups();
  touching.touch_chance = 0.15;
  ExpectEachSeedExactOrNotConfident(touching, 14, {68});
}

TEST(CoderAccuracyTest, AGlareSpotIsNotCountedAsAPart) {
  // Regression: a glare spot a part across, bright enough to pass the threshold and not soft
  // enough to be dropped as lighting (its rim 1.5 to 2 times as wide as the median part's), was
  // counted as a part at score 0.6: bolts on a dark tray, seed 43, 9 for 8 at 0.74; a mixed tray
  // under four spots, seed 80, 13 for 12 at 0.79 (15 such boxes over the 1400 generated trays of
  // the closing notes). A piece with such a rim that is lighter than the tray around it, no larger
  // than a part and peaked like a light spot, not level like a part's face, is glare.
  ExpectEachSeedExact(BoltsOnADarkTrayUnderGlare(), 8, {43});
  TrayStyle mixed;
  mixed.kind = 3;
  mixed.glare_spots = 4;
  mixed.noise_sigma = 3;
  ExpectEachSeedExact(mixed, 12, {80});
}

TEST(CoderAccuracyTest, UnevenLightCountsExactly) {
  TrayStyle style;
  style.kind = 3;
  style.light_gradient = 0.4;
  style.vignette = 0.4;
  style.glare_spots = 2;
  style.noise_sigma = 3;
  cv::RNG rng(43);
  std::vector<cv::Rect> boxes;
  const cv::Mat tray = RenderTray(14, style, rng, &boxes);
  ASSERT_EQ(boxes.size(), 14u);
  // A nut under one of the glare spots is lost with the spot (its rim lies inside the glare's
  // soft rim). The count used to come out right only because the other glare spot counted as a
  // part; glare is now dropped, so the count is one short, and the confidence must say so.
  const json line = CountTray(tray);
  ExpectExactOrNotConfident(line, boxes, tray.size());
}

TEST(CoderAccuracyTest, RevisesAfterAFailedRun) {
  auto coder = MakeCvCoder();
  const ProgramRunner real = Runner();
  std::atomic<int> runs{0};
  std::vector<std::string> codes;
  // the first execution fails the way a broken environment would; the revision must recover
  ProgramRunner flaky = [&](const SandboxJob& job) {
    codes.push_back(job.code);
    if (runs.fetch_add(1) == 0) {
      SandboxResult r;
      r.exit_code = 1;
      r.stderr_text =
          "Traceback (most recent call last):\nModuleNotFoundError: No module named 'scipy'\n";
      r.error = "exit code 1";
      return r;
    }
    return real(job);
  };
  CoderEvalOptions options;
  options.gauges = 1;
  options.trays = 0;
  options.seed = 5;
  options.workers = 1;
  const CoderEvalReport r = EvaluateCoder(*coder, flaky, options);
  ASSERT_EQ(r.cases.size(), 1u);
  EXPECT_FALSE(r.cases[0].failed) << r.cases[0].error;
  EXPECT_EQ(r.cases[0].attempts, 2);
  ASSERT_EQ(codes.size(), 2u);
  EXPECT_NE(codes[0], codes[1]);
  EXPECT_LE(r.cases[0].error_pct, 3.0);
}

TEST(CoderAccuracyTest, GivesUpWithAnErrorAfterFiveFailures) {
  auto coder = MakeCvCoder();
  int runs = 0;
  ProgramRunner broken = [&](const SandboxJob&) {
    ++runs;
    SandboxResult r;
    r.timed_out = true;
    r.error = "timed out after 30 s";
    return r;
  };
  CoderEvalOptions options;
  options.gauges = 0;
  options.trays = 1;
  options.workers = 1;
  const CoderEvalReport r = EvaluateCoder(*coder, broken, options);
  EXPECT_EQ(runs, 5);
  ASSERT_EQ(r.cases.size(), 1u);
  EXPECT_TRUE(r.cases[0].failed);
  EXPECT_NE(r.cases[0].error.find("timed out"), std::string::npos) << r.cases[0].error;
}

/// A coder that keeps the text of every input it is asked to solve and answers nothing.
class RecordingCoder : public Coder {
 public:
  CoderProgram Write(const CoderInput& input, int, const std::vector<CoderObservation>&) override {
    texts.push_back(input.text);
    return {};
  }
  std::string Answer(const CoderInput&, const std::vector<CoderObservation>&) override {
    return "{}";
  }
  std::vector<std::string> texts;
};

TEST(CoderAccuracyTest, GeneratedSetSendsThePipelinesPrompt) {
  // The generated set is scored on the prompt a station would send for the same ROI (the real
  // set's path), not on a hand-built one: rebuild each ROI from the spec the prompt carries and
  // render it the pipeline's way.
  RecordingCoder coder;
  ProgramRunner ok = [](const SandboxJob&) {
    SandboxResult r;
    r.ok = true;
    return r;
  };
  CoderEvalOptions options;
  options.gauges = 6;
  options.trays = 2;
  options.seed = 77;
  options.workers = 1;
  options.max_attempts = 1;
  (void)EvaluateCoder(coder, ok, options);
  ASSERT_EQ(coder.texts.size(), 8u);
  for (const std::string& text : coder.texts) {
    const auto open = text.find("```json\n");
    ASSERT_NE(open, std::string::npos) << text;
    const auto close = text.find("\n```", open + 8);
    ASSERT_NE(close, std::string::npos) << text;
    const json spec = json::parse(text.substr(open + 8, close - open - 8));
    json roi = {{"name", "x"}, {"task", spec["task"]}, {"rect", {0, 0, 10, 10}}};
    if (spec["task"] == "read_gauge") roi["gauge"] = spec["calibration"];
    if (spec["task"] == "count") roi["object"] = spec["object"];
    auto config = ParseStationConfig(json{{"rois", {roi}}}.dump(), "test");
    ASSERT_TRUE(config.ok()) << config.status().message();
    EXPECT_EQ(text, RenderTaskPrompt(config->rois[0]));
  }
}

TEST(CoderAccuracyTest, ZoomAnnotateAndAskProgramsRunAndDraw) {
  auto coder = MakeCvCoder();
  const ProgramRunner run = Runner();
  cv::RNG rng(3);
  std::vector<std::uint8_t> png;
  cv::imencode(".png", RenderTray(4, RandomTrayStyle(rng), rng), png);
  const json specs[] = {
      {{"task", "zoom"}, {"region", {0.25, 0.25, 0.5, 0.5}}, {"zoom", 3}},
      {{"task", "annotate"}, {"prompt", "Circle the 'largest' part \"now\""}},
      {{"task", "ask"}, {"prompt", "What colour is the tray?"}},
  };
  for (const json& spec : specs) {
    CoderInput in;
    in.text = "Do the task.\n```json\n" + spec.dump() + "\n```";
    in.images.push_back({"image/png", png});
    const CoderProgram p = coder->Write(in, 0, {});
    SandboxJob job;
    job.code = p.code;
    job.inputs.push_back({"input_0.png", png});
    const SandboxResult result = run(job);
    ASSERT_TRUE(result.ok) << spec.dump() << "\n" << result.error << "\n" << result.stderr_text;
    EXPECT_FALSE(result.images.empty()) << spec.dump();
    const std::string answer = coder->Answer(in, {{result}});
    const json line = json::parse(answer.substr(answer.rfind('\n') + 1));
    ASSERT_TRUE(line.contains("text")) << answer;
    EXPECT_FALSE(line["text"].get<std::string>().empty());
  }
}

/// Runs the coder's gauge program on `img` with `calibration` in the spec; returns the answer
/// line the backend would return (and, when `raw` is given, the sandbox's result: its images).
json ReadGauge(const cv::Mat& img, const json& calibration, SandboxResult* raw = nullptr) {
  auto coder = MakeCvCoder();
  std::vector<std::uint8_t> png;
  cv::imencode(".png", img, png);
  CoderInput in;
  in.text = "Read the gauge.\n```json\n" +
            json({{"task", "read_gauge"}, {"calibration", calibration}}).dump() + "\n```";
  in.images.push_back({"image/png", png});
  SandboxJob job;
  job.code = coder->Write(in, 0, {}).code;
  job.inputs.push_back({"input_0.png", png});
  const SandboxResult result = Runner()(job);
  EXPECT_TRUE(result.ok) << result.error << "\n" << result.stderr_text;
  const std::string answer = coder->Answer(in, {{result}});
  if (raw != nullptr) *raw = result;
  return json::parse(answer.substr(answer.rfind('\n') + 1));
}

json Calibration(const GaugeStyle& s) {
  json c = {{"min_value", s.min_value},
            {"max_value", s.max_value},
            {"min_angle_deg", s.min_angle_deg},
            {"max_angle_deg", s.max_angle_deg},
            {"unit", s.unit}};
  for (const auto& [v, a] : s.scale) c["scale"].push_back({v, a});
  return c;
}

/// Gauge `index` of `roilens accuracy --seed seed`, rendered as the accuracy set renders it
/// (style, value, image, in one RNG's order).
struct AccuracySetGauge {
  GaugeStyle style;
  double value = 0;
  cv::Mat image;
};
AccuracySetGauge AccuracySetGaugeAt(std::uint64_t seed, int index) {
  cv::RNG rng(seed);
  AccuracySetGauge g;
  for (int i = 0; i <= index; ++i) {
    g.style = RandomGaugeStyle(rng);
    g.value = g.style.min_value + rng.uniform(0.0, 1.0) * (g.style.max_value - g.style.min_value);
    g.image = RenderGauge(g.style, g.value, rng);  // the renderer draws from rng too
  }
  return g;
}

/// The answer's error in % of the gauge's span.
double ErrorPct(const json& answer, const AccuracySetGauge& g) {
  return std::abs(answer["value"].get<double>() - g.value) /
         (g.style.max_value - g.style.min_value) * 100.0;
}

TEST(CoderGaugeTest, NonLinearScaleIsReadThroughItsCalibration) {
  GaugeStyle s;  // 0-10 bar, compressed near zero: 0-2 takes 25 deg, 5-10 takes 155 deg
  s.scale = {{0, 225}, {2, 200}, {5, 110}, {10, -45}};
  s.noise_sigma = 3;
  for (double value : {1.0, 2.0, 3.5, 7.5}) {
    cv::RNG rng(11);
    const json a = ReadGauge(RenderGauge(s, value, rng), Calibration(s));
    ASSERT_TRUE(a.contains("value")) << a.dump();
    // read linearly, 2 bar (200 deg) would come out 0.93 bar: 10.7% of span off
    EXPECT_NEAR(a["value"].get<double>(), value, 0.15) << a.dump();
  }
}

TEST(CoderGaugeTest, GivenPivotIsUsed) {
  GaugeStyle s;
  s.pivot_offset = {0.1, -0.12};  // pivot up and right of the face centre
  s.face_text = "MANOMETER";
  s.logo = true;
  cv::RNG rng(12);
  const cv::Mat img = RenderGauge(s, 6.3, rng);
  const double n = img.cols;
  const double px = 0.5 + s.pivot_offset.x * s.radius_fraction;
  const double py = 0.5 + s.pivot_offset.y * s.radius_fraction;
  json cal = Calibration(s);
  cal["pivot"] = {px, py};
  cal["radius"] = 0.95 * s.radius_fraction * (1 - std::hypot(0.1, -0.12));
  const json a = ReadGauge(img, cal);
  ASSERT_TRUE(a.contains("pivot")) << a.dump();
  EXPECT_NEAR(a["pivot"][0].get<double>(), px, 1.0 / n) << a.dump();
  EXPECT_NEAR(a["pivot"][1].get<double>(), py, 1.0 / n) << a.dump();
  EXPECT_NEAR(a["value"].get<double>(), 6.3, 0.15) << a.dump();
  EXPECT_GE(a["confidence"].get<double>(), 0.8) << a.dump();
}

TEST(CoderGaugeTest, RedZoneInnerScaleAndOffsetPivotAreNotTheNeedle) {
  GaugeStyle s;  // red needle, red zone over the top 30%, a red inner psi scale, pivot offset
  s.zone_fraction = 0.3;
  s.inner_factor = 14.5;
  s.inner_colour = {30, 30, 200};
  s.pivot_offset = {-0.12, 0.1};
  s.face_text = "EN 837-1";
  for (double value : {0.8, 4.4, 8.6}) {
    cv::RNG rng(13);
    const json a = ReadGauge(RenderGauge(s, value, rng), Calibration(s));
    ASSERT_TRUE(a.contains("value")) << a.dump();
    EXPECT_NEAR(a["value"].get<double>(), value, 0.2) << a.dump();
    ASSERT_TRUE(a.contains("pivot")) << a.dump();
    // the pivot found, not the face centre (0.05 and 0.04 away)
    EXPECT_NEAR(a["pivot"][0].get<double>(), 0.5 - 0.12 * s.radius_fraction, 0.025) << a.dump();
    EXPECT_NEAR(a["pivot"][1].get<double>(), 0.5 + 0.1 * s.radius_fraction, 0.025) << a.dump();
  }
}

TEST(CoderGaugeTest, LitAndShadedPartsOfTheFaceAreNotTheNeedle) {
  // A dial under a window: the face above a straight line just below the pivot is lit, below it
  // in shade. The shaded part cuts the face region (an ellipse fitted to that outline is no rim
  // to undo) and its edge looks like a long straight feature; the thin dark needle is what must
  // be read. (Before the rim's support was checked this read 1.5 as 9.98.)
  GaugeStyle s;
  s.needle_colour = {40, 40, 40};
  s.needle_width_fraction = 0.035;
  s.face = {200, 200, 200};
  s.face_text = "THERMO";
  for (double value : {1.5, 4.0, 8.5}) {
    cv::RNG rng(15);
    cv::Mat img = RenderGauge(s, value, rng);
    const int edge = int(img.rows * (0.5 + 0.1 * s.radius_fraction));
    img.rowRange(edge, img.rows) *= 0.55;
    const json a = ReadGauge(img, Calibration(s));
    ASSERT_TRUE(a.contains("value")) << a.dump();
    EXPECT_NEAR(a["value"].get<double>(), value, 0.3) << a.dump();
    // read with the evidence of a clear needle, not left uncertain
    EXPECT_GE(a["confidence"].get<double>(), 0.8) << a.dump();
  }
}

TEST(CoderGaugeTest, DoubleEndedNeedleReadsItsPointerWithConfidence) {
  // A bimetal thermometer's needle: a thin pointer and, behind a light hub cap, a wide tail
  // reaching well past the hub. The tail is part of the needle (its polar peak opposite the
  // pointer is no rival reading); the long thin end is the pointer.
  GaugeStyle s;
  s.needle_colour = {30, 30, 30};
  s.needle = NeedleShape::kLine;
  s.needle_width_fraction = 0.03;
  for (double value : {1.0, 3.0, 6.5, 9.0}) {
    cv::RNG rng(17);
    cv::Mat img = RenderGauge(s, value, rng);
    const cv::Point2d c(img.cols / 2.0, img.rows / 2.0);
    const double r = s.radius_fraction * img.cols;
    const double tail = (225.0 - value * 27.0 + 180.0) * CV_PI / 180.0;
    cv::line(img, c, c + cv::Point2d(std::cos(tail), -std::sin(tail)) * (0.55 * r),
             cv::Scalar(30, 30, 30), int(0.07 * r), cv::LINE_AA);
    cv::circle(img, c, int(0.09 * r), cv::Scalar(60, 170, 200), -1, cv::LINE_AA);
    const json a = ReadGauge(img, Calibration(s));
    ASSERT_TRUE(a.contains("value")) << a.dump();
    EXPECT_NEAR(a["value"].get<double>(), value, 0.3) << a.dump();
    EXPECT_GE(a["confidence"].get<double>(), 0.8) << a.dump();
  }
}

TEST(CoderGaugeTest, LargePhotoIsReadAtAWorkingSizeAndAnsweredInItsOwnPixels) {
  // A 1500-pixel crop (a real camera's ROI) is read at a bounded working size: the answer's
  // pivot is a fraction of the image as received, a calibrated pivot given as such a fraction
  // holds, and the drawing is made on the image as received.
  GaugeStyle s;
  s.pivot_offset = {0.1, -0.12};
  s.noise_sigma = 3;
  cv::RNG rng(19);
  cv::Mat img;
  cv::resize(RenderGauge(s, 6.3, rng), img, cv::Size(1500, 1500), 0, 0, cv::INTER_CUBIC);
  const double px = 0.5 + s.pivot_offset.x * s.radius_fraction;
  const double py = 0.5 + s.pivot_offset.y * s.radius_fraction;
  json cal = Calibration(s);
  cal["pivot"] = {px, py};
  cal["radius"] = 0.95 * s.radius_fraction * (1 - std::hypot(0.1, -0.12));
  SandboxResult result;
  const json a = ReadGauge(img, cal, &result);
  ASSERT_TRUE(result.ok) << result.error << "\n" << result.stderr_text;
  EXPECT_NEAR(a["value"].get<double>(), 6.3, 0.15) << a.dump();
  EXPECT_GE(a["confidence"].get<double>(), 0.8) << a.dump();
  ASSERT_TRUE(a.contains("pivot")) << a.dump();
  EXPECT_NEAR(a["pivot"][0].get<double>(), px, 0.003) << a.dump();
  EXPECT_NEAR(a["pivot"][1].get<double>(), py, 0.003) << a.dump();
  ASSERT_FALSE(result.images.empty());
  const cv::Mat drawn = cv::imdecode(result.images[0].bytes, cv::IMREAD_COLOR);
  EXPECT_EQ(drawn.size(), img.size());
}

TEST(CoderGaugeTest, EndTicksInLineThroughThePivotAreNotAConfidentNeedle) {
  // Gauges 97 and 172 of `roilens accuracy --seed 31337`: half-circle dials (180 to 0 deg),
  // whose two end ticks and the numerals beside them line up through the pivot. That line is
  // longer and straighter than a pale or short needle, and was read as the needle: 100 for
  // 31.9 % with confidence 0.98, and 399 for 66.3 kPa with confidence 0.86.
  for (int i : {97, 172}) {
    const AccuracySetGauge g = AccuracySetGaugeAt(31337, i);
    ASSERT_EQ(g.style.min_angle_deg, 180) << "the generator changed: gauge " << i;
    ASSERT_EQ(g.style.max_angle_deg, 0) << "the generator changed: gauge " << i;
    const json a = ReadGauge(g.image, Calibration(g.style));
    ASSERT_TRUE(a.contains("value")) << a.dump();
    // right, or not confident
    EXPECT_TRUE(ErrorPct(a, g) <= 3.0 || a["confidence"].get<double>() < 0.8)
        << "gauge " << i << ": truth " << g.value << ", " << a.dump();
  }
}

TEST(CoderGaugeTest, AColouredNeedleFainterThanThePrintIsRead) {
  // Gauges 73 and 105 of `roilens accuracy` (seed 1): a red needle on a navy face with white
  // numerals, and a pale blue needle on a white face with black ticks. On the face-distance and
  // local-contrast maps the print outweighs the needle: the first read 400 for 214.7 kPa (an
  // end tick), the second found no needle at all (147.9 for 106.6 psi). In hue and saturation
  // alone the needle stands out.
  for (int i : {73, 105}) {
    const AccuracySetGauge g = AccuracySetGaugeAt(1, i);
    ASSERT_EQ(g.style.unit, i == 73 ? "kPa" : "psi") << "the generator changed: gauge " << i;
    const json a = ReadGauge(g.image, Calibration(g.style));
    ASSERT_TRUE(a.contains("value")) << a.dump();
    EXPECT_LE(ErrorPct(a, g), 3.0) << "gauge " << i << ": truth " << g.value << ", " << a.dump();
    EXPECT_GE(a["confidence"].get<double>(), 0.5) << "gauge " << i << ": " << a.dump();
  }
}

TEST(CoderGaugeTest, PrintReadForARedNeedleIsNotAConfidentReading) {
  // Gauges 14 and 368 of `roilens accuracy --seed 9`: red needles on dark faces with white
  // print. Both other maps fitted the print with full confidence: 191 for 149.0 psi (1.0)
  // and 0.18 for 4.12 bar (0.991). The hue-and-saturation map sees the needle, and its read
  // either wins or counts against the print's.
  for (int i : {14, 368}) {
    const AccuracySetGauge g = AccuracySetGaugeAt(9, i);
    ASSERT_EQ(g.style.unit, i == 14 ? "psi" : "bar") << "the generator changed: gauge " << i;
    const json a = ReadGauge(g.image, Calibration(g.style));
    ASSERT_TRUE(a.contains("value")) << a.dump();
    EXPECT_TRUE(ErrorPct(a, g) <= 3.0 || a["confidence"].get<double>() < 0.8)
        << "gauge " << i << ": truth " << g.value << ", " << a.dump();
  }
}

TEST(CoderGaugeTest, ColouredPrintOnALineThroughThePivotIsNotTheNeedle) {
  // Gauge 79 of `roilens accuracy --seed 13`: a black needle on a white face with the red
  // numerals of an inner scale. On the hue-and-saturation map the numeral right of the pivot
  // is the longest straight feature, and it was read as the needle: 104.9 for 47.1 C with
  // confidence 0.92. It does not run out from the pivot, as a needle does.
  const AccuracySetGauge g = AccuracySetGaugeAt(13, 79);
  ASSERT_EQ(g.style.unit, "C") << "the generator changed: gauge 79 is another dial";
  const json a = ReadGauge(g.image, Calibration(g.style));
  ASSERT_TRUE(a.contains("value")) << a.dump();
  EXPECT_TRUE(ErrorPct(a, g) <= 3.0 || a["confidence"].get<double>() < 0.8)
      << "truth " << g.value << ", " << a.dump();
}

TEST(CoderGaugeTest, NoNeedleMeansLowConfidence) {
  GaugeStyle s;
  s.needle_colour = s.face;  // the needle is invisible; only the hub remains
  cv::RNG rng(14);
  const json a = ReadGauge(RenderGauge(s, 5.0, rng), Calibration(s));
  ASSERT_TRUE(a.contains("confidence")) << a.dump();
  EXPECT_LT(a["confidence"].get<double>(), 0.5) << a.dump();
}

}  // namespace
}  // namespace roilens::backend
