// Run statistics and the self-contained HTML report: both are computed from results.jsonl lines,
// so a resumed run's summary covers every process that contributed to the file.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <random>
#include <string>
#include <vector>

#include "roilens/client/status.h"
#include "roilens/config/config.h"
#include "roilens/stages/pipeline.h"

namespace roilens {

/// Accumulates summary numbers from results.jsonl lines. The counting rules follow the line
/// contract: a line made a model call iff latency_ms > 0 (cached/skipped lines carry 0 and a null
/// usage), so calls, latencies and tokens are counted exactly once per call.
/// Not thread-safe; memory is bounded (latencies are kept in a fixed-size reservoir).
class RunStats {
 public:
  /// Latency samples kept for the percentiles; beyond this a uniform reservoir sample is kept.
  static constexpr std::size_t kMaxLatencySamples = 1 << 16;

  void AddFrame() { ++frames_; }
  void AddLine(const nlohmann::json& line);
  PipelineSummary Summary() const;

 private:
  std::int64_t frames_ = 0, lines_ = 0, calls_ = 0, cache_hits_ = 0, errors_ = 0, skipped_ = 0,
               uncertain_ = 0;
  std::int64_t input_tokens_ = 0, output_tokens_ = 0, total_tokens_ = 0;
  std::vector<double> latencies_;
  std::int64_t latencies_seen_ = 0;
  std::mt19937_64 rng_{0x5eed};
};

/// Reads a results.jsonl file and returns its statistics; a line that is not JSON is an error
/// naming the file and line number.
StatusOr<PipelineSummary> SummarizeResultsFile(const std::string& path);
/// The same over several files read in order as one (output.rotate's rolled files, oldest first,
/// then the active one): a run's totals across every file it wrote. Memory stays bounded.
StatusOr<PipelineSummary> SummarizeResultsFiles(const std::vector<std::string>& paths);

/// An annotated crop shown in the report.
struct ReportCrop {
  std::string caption;  ///< e.g. "boiler, frame 120: 4.2 bar"
  cv::Mat image;        ///< BGR
};

struct ReportInputs {
  const StationConfig* config = nullptr;
  std::string title;         ///< e.g. the input file name
  std::string results_path;  ///< results.jsonl to chart
  /// Rolled-over results files (output.rotate), oldest first: read before results_path, so the
  /// report covers every frame of the run; the report names them.
  std::vector<std::string> earlier_results_paths;
  nlohmann::json summary;  ///< the summary.json object
  std::vector<ReportCrop> crops;
  /// Points per ROI chart; longer series are decimated as they are read (min/max kept per
  /// bucket of consecutive readings), so memory does not grow with the length of the run.
  std::size_t max_points = 1500;
};

/// Renders the self-contained report.html: a summary table, one inline-SVG line chart of the
/// readings (value or count) over time per ROI with the alarm bands shaded and uncertain readings
/// marked (hollow amber rings), per-ROI counts of ok/uncertain/cached/error/skipped lines, a table
/// of alarms, a table of where uncertain stretches began, and the crops as base64 PNG data URIs.
/// No external resources (no scripts, fonts or links).
StatusOr<std::string> RenderHtmlReport(const ReportInputs& inputs);

/// HTML-escapes text (&, <, >, ", ').
std::string HtmlEscape(const std::string& text);

}  // namespace roilens
