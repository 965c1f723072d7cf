// Temporal fusion of one gauge's readings: the reported value is the median of the last few
// fresh readings, and a reading that moved faster than the gauge physically can is set aside.
#pragma once

#include <cstddef>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>
#include <vector>

#include "roilens/client/status.h"
#include "roilens/config/config.h"

namespace roilens {

/// FusionConfig with the mode's defaults filled in (see FusionConfig).
struct FusionOptions {
  int window = 1;
  double window_s = 0;
  double max_rate = 0;
  static FusionOptions Resolve(const FusionConfig& config, PipelineMode mode);
};

/// After this many consecutive implausible readings that agree with one another (each within the
/// rate limit of the one before), they are taken as the gauge's new level and the window restarts
/// from them: a real step (a valve opened during an outage) is followed after a few frames
/// instead of being rejected for ever.
inline constexpr std::size_t kReacquireReadings = 3;

/// Not thread-safe; feed one ROI's fresh readings in frame order.
class ReadingFusion {
 public:
  /// `span`: the gauge's max_value - min_value (> 0), the unit of FusionOptions::max_rate.
  ReadingFusion(FusionOptions options, double span) : options_(options), span_(span) {}

  struct Fused {
    double value = 0;          ///< the fused estimate after this reading
    bool implausible = false;  ///< the reading was not fused in (value is the previous estimate)
  };
  /// One fresh, certain reading at frame time `time_s` (seconds, non-decreasing).
  Fused Add(double time_s, double reading);
  /// The current estimate; nullopt before the first accepted reading.
  std::optional<double> current() const { return current_; }

  /// What the readings so far left behind (the window, the estimate and its time, the current run
  /// of implausible readings) as JSON, so a resumed run fuses on as if it had never stopped:
  /// {"window": [[time_s, reading], ...], "current": number|null, "current_time_s", "rejected":
  /// [[time_s, reading], ...]}. Numbers round-trip exactly. The options and span are not in it:
  /// they come from the config.
  nlohmann::json Save() const;
  /// Replaces the state with one Save() wrote; kInvalidArgument (state unchanged) when `state` is
  /// not of that shape.
  Status Restore(const nlohmann::json& state);

 private:
  bool Plausible(double from_time, double from_value, double time_s, double value) const;
  double Median() const;

  FusionOptions options_;
  double span_;
  std::deque<std::pair<double, double>> window_;  ///< accepted (time_s, reading), oldest first
  std::optional<double> current_;
  double current_time_s_ = 0;                        ///< time of the last accepted reading
  std::vector<std::pair<double, double>> rejected_;  ///< the current run of implausible ones
};

}  // namespace roilens
