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
#include "roilens/status.h"

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
  double confidence = 0;      ///< the answer's confidence (0 when failed or absent)
  bool uneven_light = false;  ///< trays: gradient, vignette or glare spots
  bool clustered = false;     ///< trays: holds clusters of touching parts
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
  int trays_uneven = 0, trays_clustered = 0;
  double count_exact_uneven_pct = 0;     ///< % exact among trays with uneven light
  double count_exact_clustered_pct = 0;  ///< % exact among trays with touching clusters
  double seconds = 0;
};

/// Generates the images from `options.seed` and scores `coder` on them. Never sees the style:
/// the coder gets the image and the calibration spec only.
CoderEvalReport EvaluateCoder(Coder& coder, const ProgramRunner& runner,
                              const CoderEvalOptions& options);

}  // namespace roilens::backend
