// RunStats counting rules, results-file summaries and the self-contained HTML report.
#include "roilens/outputs/report.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "testing/paths.h"

namespace roilens {
namespace {

nlohmann::json Line(std::int64_t frame, const std::string& roi, const std::string& status,
                    double latency_ms, std::optional<double> value = std::nullopt,
                    const std::string& alarm = "") {
  nlohmann::json usage = nullptr;
  if (latency_ms > 0) {
    usage = {{"total_input_tokens", 10}, {"total_output_tokens", 5}, {"total_tokens", 15}};
  }
  return {{"frame", frame},
          {"source", ""},
          {"time_s", frame * 0.1},
          {"roi", roi},
          {"task", "read_gauge"},
          {"rect", {10, 10, 50, 50}},
          {"status", status},
          {"value", value ? nlohmann::json(*value) : nlohmann::json()},
          {"unit", "bar"},
          {"count", nullptr},
          {"text", nullptr},
          {"confidence", nullptr},
          {"alarm", alarm.empty() ? nlohmann::json() : nlohmann::json(alarm)},
          {"error", nullptr},
          {"attempts", 1},
          {"latency_ms", latency_ms},
          {"interaction_id", "i"},
          {"usage", usage}};
}

TEST(RunStatsTest, ALineMadeACallIffItHasLatency) {
  RunStats stats;
  stats.AddFrame();
  stats.AddLine(Line(0, "a", "ok", 100));
  stats.AddLine(Line(0, "b", "error", 300));
  stats.AddFrame();
  stats.AddLine(Line(1, "a", "cached", 0));
  stats.AddLine(Line(1, "b", "error", 0));  // shows the failed call of frame 0
  stats.AddFrame();
  stats.AddLine(Line(2, "a", "skipped", 0));
  stats.AddLine(Line(2, "b", "ok", 200));
  const PipelineSummary s = stats.Summary();
  EXPECT_EQ(s.frames, 3);
  EXPECT_EQ(s.roi_results, 6);
  EXPECT_EQ(s.calls, 3);
  EXPECT_EQ(s.cache_hits, 1);
  EXPECT_EQ(s.errors, 2);
  EXPECT_EQ(s.skipped, 1);
  EXPECT_DOUBLE_EQ(s.latency_p50_ms, 200);
  EXPECT_DOUBLE_EQ(s.latency_p95_ms, 290);  // linear interpolation between 200 and 300
  EXPECT_EQ(s.input_tokens, 30);
  EXPECT_EQ(s.output_tokens, 15);
  EXPECT_EQ(s.total_tokens, 45);
  const auto json = s.ToJson();
  EXPECT_EQ(json["calls"], 3);
  EXPECT_EQ(json["cache_hits"], 1);
}

TEST(RunStatsTest, UncertainLinesAreCountedApart) {
  RunStats stats;
  stats.AddFrame();
  stats.AddLine(Line(0, "a", "uncertain", 100, 4.0));
  stats.AddLine(Line(0, "b", "ok", 50, 2.0));
  stats.AddFrame();
  stats.AddLine(Line(1, "a", "uncertain", 0, 4.0));  // a reused uncertain reading: no call
  stats.AddLine(Line(1, "b", "cached", 0, 2.0));
  const PipelineSummary s = stats.Summary();
  EXPECT_EQ(s.uncertain, 2);
  EXPECT_EQ(s.cache_hits, 1);
  EXPECT_EQ(s.calls, 2);
  EXPECT_EQ(s.errors, 0);
  EXPECT_EQ(s.ToJson()["uncertain"], 2);
}

std::string WriteResults(const std::vector<nlohmann::json>& lines) {
  // One directory for the process (ScratchDir empties it when asked again), a file per call.
  static const auto dir = testing::ScratchDir("report");
  static int n = 0;
  auto path = dir / ("results-" + std::to_string(++n) + ".jsonl");
  std::ofstream out(path);
  for (const auto& l : lines) out << l.dump() << "\n";
  return path.string();
}

TEST(RunStatsTest, SummarizeResultsFileCountsFramesAndRejectsGarbage) {
  const std::string path = WriteResults({Line(0, "a", "ok", 5), Line(0, "b", "ok", 6),
                                         Line(1, "a", "cached", 0), Line(1, "b", "cached", 0)});
  auto summary = SummarizeResultsFile(path);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->frames, 2);
  EXPECT_EQ(summary->roi_results, 4);
  EXPECT_EQ(summary->calls, 2);
  std::ofstream(path, std::ios::app) << "{not json\n";
  auto bad = SummarizeResultsFile(path);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(":5:"), std::string::npos) << bad.status();
}

TEST(RunStatsTest, SummarizeResultsFilesCountsEveryRotatedFileAndSkipsGapLines) {
  nlohmann::json gap = Line(2, "a", "gap", 0);
  gap["error"] = "stream outage after frame 1: ...";
  const std::string first = WriteResults({Line(0, "a", "ok", 5), Line(1, "a", "ok", 6)});
  const std::string second = WriteResults({gap, Line(2, "a", "ok", 7), Line(3, "a", "error", 8)});
  auto summary = SummarizeResultsFiles({first, second});
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->frames, 4);
  EXPECT_EQ(summary->roi_results, 4) << "the gap line is not a reading";
  EXPECT_EQ(summary->calls, 4);
  EXPECT_EQ(summary->errors, 1);
  EXPECT_FALSE(SummarizeResultsFiles({first, first + ".missing"}).ok());
}

TEST(HtmlReportTest, ReadsEveryRotatedFileInBoundedPoints) {
  std::vector<nlohmann::json> early, late;
  for (int i = 0; i < 5000; ++i) {
    (i < 2500 ? early : late).push_back(Line(i, "boiler", "ok", 10, i == 1234 ? 9.5 : 5.0));
  }
  ReportInputs inputs;
  inputs.earlier_results_paths = {WriteResults(early)};
  inputs.results_path = WriteResults(late);
  inputs.max_points = 100;
  auto html = RenderHtmlReport(inputs);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_NE(html->find("<h3>boiler</h3><p>ok 5000,"), std::string::npos);
  EXPECT_NE(html->find("Results read from 2 files"), std::string::npos);
  std::size_t markers = 0;
  for (std::size_t at = 0; (at = html->find("class='fresh'", at)) != std::string::npos; ++at) {
    ++markers;
  }
  EXPECT_LE(markers, 100u);
  EXPECT_GE(markers, 25u);
  EXPECT_NE(html->find(">9.5"), std::string::npos) << "the spike in the first file stays";
}

TEST(HtmlReportTest, IsSelfContainedWithChartsAlarmsAndCrops) {
  std::vector<nlohmann::json> lines;
  for (int f = 0; f < 50; ++f) {
    const double v = f < 40 ? 5 : 9;
    lines.push_back(
        Line(f, "boiler", f == 0 ? "ok" : "cached", f == 0 ? 10 : 0, v, v > 8 ? "high" : ""));
  }
  StationConfig config;
  RoiConfig roi;
  roi.name = "boiler";
  roi.task = TaskKind::kReadGauge;
  roi.alarm.high = 8;
  config.rois.push_back(roi);
  ReportInputs inputs;
  inputs.config = &config;
  inputs.title = "station <1>.mp4";
  inputs.results_path = WriteResults(lines);
  inputs.summary = {{"calls", 1}};
  inputs.crops.push_back({"boiler, frame 0", cv::Mat(20, 30, CV_8UC3, cv::Scalar(0, 0, 255))});
  auto html = RenderHtmlReport(inputs);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_NE(html->find("<svg"), std::string::npos);
  EXPECT_NE(html->find("<polyline"), std::string::npos);
  EXPECT_NE(html->find("data:image/png;base64,iVBOR"), std::string::npos);
  EXPECT_NE(html->find("station &lt;1&gt;.mp4"), std::string::npos);
  EXPECT_NE(html->find("<td>high</td>"), std::string::npos);
  EXPECT_NE(html->find("10 result lines in alarm"), std::string::npos);
  // No external resources: no scripts, stylesheets, or http(s) references except the SVG
  // namespace identifier.
  EXPECT_EQ(html->find("<script"), std::string::npos);
  EXPECT_EQ(html->find("<link"), std::string::npos);
  std::string without_ns = *html;
  for (std::size_t p; (p = without_ns.find("http://www.w3.org/2000/svg")) != std::string::npos;) {
    without_ns.erase(p, 26);
  }
  EXPECT_EQ(without_ns.find("http"), std::string::npos);
}

TEST(HtmlReportTest, AFatalErrorComesFirst) {
  StationConfig config;
  RoiConfig roi;
  roi.name = "boiler";
  roi.task = TaskKind::kReadGauge;
  config.rois.push_back(roi);
  ReportInputs inputs;
  inputs.config = &config;
  inputs.title = "station.mp4";
  inputs.results_path = WriteResults({Line(0, "boiler", "error", 10)});
  inputs.summary = {{"calls", 1}, {"fatal_error", "the API key is missing or was <rejected>"}};
  auto html = RenderHtmlReport(inputs);
  ASSERT_TRUE(html.ok()) << html.status();
  const auto banner = html->find("Run stopped: the API key is missing or was &lt;rejected&gt;");
  ASSERT_NE(banner, std::string::npos) << *html;
  EXPECT_LT(banner, html->find("<h2>Summary</h2>"));

  inputs.summary["fatal_error"] = nullptr;  // a run that did not stop: no banner
  html = RenderHtmlReport(inputs);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_EQ(html->find("Run stopped"), std::string::npos);
}

TEST(HtmlReportTest, UncertainReadingsAreCountedAndMarkedApart) {
  std::vector<nlohmann::json> lines;
  for (int f = 0; f < 10; ++f) {
    const bool uncertain = f >= 4 && f < 7;
    nlohmann::json line = Line(f, "boiler",
                               uncertain ? "uncertain"
                               : f == 0  ? "ok"
                                         : "cached",
                               f == 0 || f == 4 ? 10 : 0, uncertain ? 9.5 : 5.0);
    if (uncertain) line["confidence"] = 0.25;
    lines.push_back(line);
  }
  StationConfig config;
  RoiConfig roi;
  roi.name = "boiler";
  roi.task = TaskKind::kReadGauge;
  roi.alarm.high = 8;
  config.rois.push_back(roi);
  ReportInputs inputs;
  inputs.config = &config;
  inputs.title = "station.mp4";
  inputs.results_path = WriteResults(lines);
  inputs.summary = {{"calls", 2}, {"uncertain", 3}};
  auto html = RenderHtmlReport(inputs);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_NE(html->find("<p>ok 1, uncertain <span class='uncertain'>3</span>, cached 6, errors 0"),
            std::string::npos)
      << *html;
  // Each uncertain point is a hollow ring on the chart, and where the stretch began is listed.
  std::size_t rings = 0;
  for (std::size_t p = 0; (p = html->find("<circle class='uncertain'", p)) != std::string::npos;
       ++p) {
    ++rings;
  }
  EXPECT_EQ(rings, 3u);
  EXPECT_NE(html->find("3 result lines uncertain"), std::string::npos);
  EXPECT_NE(html->find("<tr class='uncertain'><td>boiler</td><td>4</td>"), std::string::npos)
      << *html;
  EXPECT_NE(html->find("<td>9.5?</td><td>0.25</td>"), std::string::npos) << *html;
  EXPECT_NE(html->find("No alarms."), std::string::npos) << "uncertain readings never alarm";
}

/// How many times `needle` occurs in `text`.
std::size_t Occurrences(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t p = 0; (p = text.find(needle, p)) != std::string::npos; p += needle.size()) ++n;
  return n;
}

TEST(HtmlReportTest, SummaryIsATableOfRoundedFiguresWithUnits) {
  ReportInputs inputs;
  inputs.title = "station.mp4";
  inputs.results_path = WriteResults({Line(0, "boiler", "ok", 10, 5.0)});
  inputs.summary = {{"frames", 300},
                    {"calls", 42},
                    {"latency_p50_ms", 123.456789},
                    {"latency_p95_ms", 987.654321},
                    {"wall_time_s", 12.3456},
                    {"fps", 24.31234},
                    {"peak_rss_mib", 87.654},
                    {"interrupted", false},
                    {"fatal_error", nullptr},
                    {"resumed_from_frame", nullptr}};
  auto html = RenderHtmlReport(inputs);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_NE(html->find("<tr><th>call latency p50</th><td>123 ms</td></tr>"), std::string::npos)
      << *html;
  EXPECT_NE(html->find("<td>988 ms</td>"), std::string::npos);
  EXPECT_NE(html->find("<tr><th>wall time</th><td>12.3 s</td></tr>"), std::string::npos);
  EXPECT_NE(html->find("<td>24.3 frames/s</td>"), std::string::npos);
  EXPECT_NE(html->find("<td>88 MiB</td>"), std::string::npos);
  EXPECT_NE(html->find("<tr><th>frames</th><td>300</td></tr>"), std::string::npos);
  EXPECT_NE(html->find("<tr><th>interrupted</th><td>no</td></tr>"), std::string::npos);
  // No raw JSON digits anywhere.
  EXPECT_EQ(html->find("123.456"), std::string::npos);
  EXPECT_EQ(html->find("24.312"), std::string::npos);
  EXPECT_EQ(html->find(">null<"), std::string::npos);
}

TEST(HtmlReportTest, FreshAndCachedReadingsAreMarkedDifferently) {
  std::vector<nlohmann::json> lines;
  for (int f = 0; f < 10; ++f) {
    const bool fresh = f % 4 == 0;  // frames 0, 4, 8 called the model
    lines.push_back(Line(f, "boiler", fresh ? "ok" : "cached", fresh ? 10 : 0, 3.0 + f % 4));
  }
  ReportInputs inputs;
  inputs.title = "station.mp4";
  inputs.results_path = WriteResults(lines);
  auto html = RenderHtmlReport(inputs);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_EQ(Occurrences(*html, "<circle class='fresh'"), 3u) << *html;
  EXPECT_EQ(Occurrences(*html, "<rect class='cached'"), 7u) << *html;
  EXPECT_NE(html->find("class='legend'"), std::string::npos);
}

TEST(HtmlReportTest, TheFirstErrorOfAFailedRunIsShownAtTheTop) {
  std::vector<nlohmann::json> lines = {Line(0, "boiler", "ok", 10, 5.0),
                                       Line(1, "boiler", "error", 10),
                                       Line(2, "boiler", "error", 10)};
  lines[1]["error"] = "sandbox: program exceeded 30 s <timeout>";
  lines[2]["error"] = "a later error";
  ReportInputs inputs;
  inputs.title = "station.mp4";
  inputs.results_path = WriteResults(lines);
  inputs.summary = {{"errors", 2}};
  auto html = RenderHtmlReport(inputs);
  ASSERT_TRUE(html.ok()) << html.status();
  const auto banner = html->find(
      "<p class='first-error'>2 result lines failed. First error "
      "(boiler, frame 1, 0.10 s): sandbox: program exceeded 30 s "
      "&lt;timeout&gt;</p>");
  ASSERT_NE(banner, std::string::npos) << *html;
  EXPECT_LT(banner, html->find("<h2>Summary</h2>"));
  EXPECT_EQ(html->find("a later error"), std::string::npos);

  inputs.results_path = WriteResults({Line(0, "boiler", "ok", 10, 5.0)});
  html = RenderHtmlReport(inputs);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_EQ(html->find("first-error'>"), std::string::npos) << "no error, no banner";
}

TEST(HtmlReportTest, CountAxesHaveWholeNumberTicks) {
  std::vector<nlohmann::json> lines;
  const int counts[] = {3, 4, 5, 4, 3, 4};
  for (int f = 0; f < 6; ++f) {
    nlohmann::json line = Line(f, "tray", "ok", 10);
    line["task"] = "count";
    line["unit"] = nullptr;
    line["count"] = counts[f];
    lines.push_back(line);
  }
  ReportInputs inputs;
  inputs.title = "station.mp4";
  inputs.results_path = WriteResults(lines);
  auto html = RenderHtmlReport(inputs);
  ASSERT_TRUE(html.ok()) << html.status();
  const std::regex tick("class='ytick'[^>]*>([^<]*)<");
  std::vector<std::string> labels;
  for (auto it = std::sregex_iterator(html->begin(), html->end(), tick);
       it != std::sregex_iterator(); ++it) {
    labels.push_back((*it)[1]);
  }
  ASSERT_GE(labels.size(), 2u) << *html;
  for (const auto& label : labels) {
    EXPECT_EQ(label.find_first_not_of("-0123456789"), std::string::npos) << label;
  }
  EXPECT_EQ(labels.front(), "3");
  EXPECT_EQ(labels.back(), "5");
}

TEST(HtmlReportTest, EscapesText) {
  EXPECT_EQ(HtmlEscape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
}

}  // namespace
}  // namespace roilens
