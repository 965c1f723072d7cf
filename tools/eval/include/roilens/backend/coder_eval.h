// Accuracy of the classical-CV coder on synthetic gauges and trays (roilens::RenderGauge /
// RenderTray): each image goes through the coder's Write -> run -> revise loop exactly as the
// local backend drives it, and the answer line is scored against the generator's truth.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "roilens/backend/coder.h"
#include "roilens/backend/sandbox.h"
#include "roilens/client/status.h"

namespace roilens::backend {

/// Runs one program (the sandbox, or a plain interpreter when isolation is unavailable).
/// Must be safe to call from several threads at once.
using ProgramRunner = std::function<SandboxResult(const SandboxJob&)>;

/// Runs `job` with `python` directly (no isolation) in a fresh temporary directory, with a
/// wall-clock limit. Only for our own generated programs when the sandbox cannot start; callers
/// must say so.
SandboxResult RunPythonDirectly(const SandboxJob& job,
                                const std::string& python = "/usr/bin/python3");

struct CoderEvalOptions {
  int gauges = 200;
  int trays = 100;
  std::uint64_t seed = 1;
  int workers = 2;       ///< programs run concurrently
  int max_attempts = 5;  ///< as the backend: revisions after a failed execution
  int min_parts = 1;     ///< trays hold min_parts..max_parts parts (uniform)
  int max_parts = 25;
  /// Further trays seen through a wider frame, the table around them (TraySurround), after the
  /// `trays` from the same seed; counted with the trays and reported apart too.
  int wider = 0;
};

/// Per-image outcome.
struct CoderEvalCase {
  std::string kind;  ///< "gauge" or "tray"
  int index = 0;
  double truth = 0;      ///< value or count
  double answer = 0;     ///< value or count read (0 when failed)
  double error_pct = 0;  ///< gauges: |answer - truth| / span * 100
  bool failed = false;   ///< no valid answer after all attempts
  int attempts = 0;
  std::string error;  ///< why it failed
  std::string final_text;
  double confidence = 0;      ///< the answer's "confidence" (0..1; 0 when failed or not given)
  std::string file;           ///< real set: the image, as named in truth.json
  bool uneven_light = false;  ///< trays: gradient, vignette or glare spots
  bool clustered = false;     ///< trays: holds clusters of touching parts
  bool wider_view = false;    ///< trays: seen with the table around the tray
  int objects = -1;           ///< trays: length of the answer's objects (-1: none given)
};

struct CoderEvalReport {
  std::vector<CoderEvalCase> cases;
  int gauges = 0, trays = 0;
  int gauge_failures = 0, tray_failures = 0;
  double gauge_mae_pct = 0;      ///< mean |error| as % of span (failures count as 100%)
  double gauge_within3_pct = 0;  ///< % of gauges within 3% of span
  double gauge_max_error_pct = 0;
  double count_exact_pct = 0;  ///< % of trays counted exactly
  int trays_uneven = 0, trays_clustered = 0, trays_wider = 0;
  double count_exact_uneven_pct = 0;     ///< % exact among trays with uneven light
  double count_exact_clustered_pct = 0;  ///< % exact among trays with touching clusters
  double count_exact_wider_pct = 0;      ///< % exact among trays seen in a wider view
  double seconds = 0;
};

/// One bin of the reliability table: readings whose confidence lies in [low, high) (the last
/// bin includes 1.0) and how many of them were right (gauges within 3% of span, counts exact).
struct ReliabilityBin {
  double low = 0, high = 1;
  int readings = 0;
  int right = 0;
};

/// Does confidence mean something: per-bin shares and the two goals of issue 10.
struct ReliabilityTable {
  std::vector<ReliabilityBin> bins;  ///< [0, 0.5), [0.5, 0.8), [0.8, 0.9), [0.9, 1.0]
  int confident = 0;                 ///< readings with confidence >= 0.8
  int confident_right = 0;           ///< of those, right
  int total = 0;
};

/// A case is right when it did not fail and its gauge reading is within 3% of span or its
/// count is exact.
bool CaseIsRight(const CoderEvalCase& c);

/// Bins `cases` by confidence (failures count with confidence 0). `kind` filters ("gauge",
/// "tray"); empty takes all.
ReliabilityTable MakeReliabilityTable(const std::vector<CoderEvalCase>& cases,
                                      const std::string& kind = {});

/// The table as text lines (bins, then "confidence >= 0.8: N readings, X% within 3% (goal >=
/// 99%)" and "share of readings with confidence >= 0.8: Y% (goal >= 90%)"); `right_word` says
/// what right means ("within 3%" or "exact").
std::string FormatReliabilityTable(const ReliabilityTable& table, const std::string& right_word);

/// Issue 10's targets that `report` misses, by name: for gauges a mean error over 1% of span
/// ("gauge mean error") or a reading beyond 3% ("gauges within 3%"); for counts an exact share
/// under `count_target_pct` ("exact counts"); and for each kind read, fewer than 99% right at
/// confidence >= 0.8 ("gauges right at >= 0.8", "counts right at >= 0.8") or fewer than 90% of
/// readings there ("gauges at >= 0.8", "counts at >= 0.8"). Empty: every target met.
std::vector<std::string> MissedTargets(const CoderEvalReport& report, double count_target_pct);

/// Scores `coder` on a folder of labelled real photographs: DIR/truth.json (format in README,
/// "roilens accuracy --real"). Each item's rect is cropped and its task spec is built by the
/// pipeline's own prompt code from a ROI whose `gauge` went through the config parser, so
/// scale/pivot/radius reach the coder exactly as in production. Gauge cases are kind "gauge",
/// count cases kind "tray". Errors: missing/invalid truth.json or image, rect outside the image,
/// an invalid gauge object (the item is named).
StatusOr<CoderEvalReport> EvaluateCoderOnRealSet(Coder& coder, const ProgramRunner& runner,
                                                 const std::string& dir,
                                                 const CoderEvalOptions& options);

/// Generates the images from `options.seed` and scores `coder` on them. Never sees the style:
/// the coder gets the image and the calibration spec only.
CoderEvalReport EvaluateCoder(Coder& coder, const ProgramRunner& runner,
                              const CoderEvalOptions& options);

}  // namespace roilens::backend
