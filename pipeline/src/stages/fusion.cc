// ReadingFusion: windowed median with a rate-of-change plausibility check.
#include "roilens/stages/fusion.h"

#include <algorithm>
#include <cmath>

namespace roilens {

FusionOptions FusionOptions::Resolve(const FusionConfig& config, PipelineMode mode) {
  const bool live = mode == PipelineMode::kLive;
  FusionOptions o;
  o.window = config.window.value_or(live ? 5 : 1);
  o.window_s = config.window_s.value_or(live ? 10 : 0);
  o.max_rate = config.max_rate.value_or(live ? 0.5 : 0);
  return o;
}

bool ReadingFusion::Plausible(double from_time, double from_value, double time_s,
                              double value) const {
  if (options_.max_rate <= 0 || !(span_ > 0)) return true;
  const double dt = time_s - from_time;
  // No time between the two (two readings of one frame time) says nothing about the rate.
  if (!(dt > 0)) return true;
  return std::abs(value - from_value) <= options_.max_rate * span_ * dt;
}

double ReadingFusion::Median() const {
  std::vector<double> values;
  values.reserve(window_.size());
  for (const auto& entry : window_) values.push_back(entry.second);
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

ReadingFusion::Fused ReadingFusion::Add(double time_s, double reading) {
  if (current_ && !Plausible(current_time_s_, *current_, time_s, reading)) {
    if (!rejected_.empty() &&
        !Plausible(rejected_.back().first, rejected_.back().second, time_s, reading)) {
      rejected_.clear();  // not the same new level: start a new run
    }
    rejected_.emplace_back(time_s, reading);
    if (rejected_.size() < kReacquireReadings) return {*current_, true};
    window_.assign(rejected_.begin(), rejected_.end());
  } else {
    window_.emplace_back(time_s, reading);
  }
  rejected_.clear();
  while (window_.size() > static_cast<std::size_t>(std::max(1, options_.window))) {
    window_.pop_front();
  }
  if (options_.window_s > 0) {
    while (window_.size() > 1 && window_.front().first < time_s - options_.window_s) {
      window_.pop_front();
    }
  }
  current_ = Median();
  current_time_s_ = time_s;
  return {*current_, false};
}

}  // namespace roilens
