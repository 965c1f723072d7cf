// A long synthetic live run in-process (embedded backend, echo coder, no video encoder), with
// the process's resident memory sampled along the way: `roilens bench --which live-rss` and the
// soak test that checks memory stays flat.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "roilens/client/status.h"

namespace roilens::cli {

struct LiveSoakOptions {
  std::int64_t frames = 100000;
  int rois = 4;
  int width = 640, height = 360;
  std::int64_t sample_every = 5000;  ///< frames between RSS samples
  /// Where results.jsonl goes (rolled over every 8 MiB, as a station would); "" = no file.
  std::string out_dir;
};

struct RssSample {
  std::int64_t frames = 0;  ///< frames delivered when sampled
  double rss_mib = 0;       ///< VmRSS
};

/// The current resident set of this process (VmRSS) in MiB; -1 where /proc does not say.
double CurrentRssMib();

/// Runs the soak and returns the RSS curve (first sample after the first frame, last at the end).
/// Not thread-safe with other pipelines' FramePool users in the process (shares its pool).
StatusOr<std::vector<RssSample>> RunLiveSoak(const LiveSoakOptions& options);

}  // namespace roilens::cli
