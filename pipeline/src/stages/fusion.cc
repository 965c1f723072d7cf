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

namespace {

nlohmann::json Pairs(const auto& pairs) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [time_s, reading] : pairs) out.push_back({time_s, reading});
  return out;
}

/// [[time_s, reading], ...] from `state[key]`; false when it is not that.
bool ReadPairs(const nlohmann::json& state, const char* key,
               std::vector<std::pair<double, double>>& out) {
  auto it = state.find(key);
  if (it == state.end() || !it->is_array()) return false;
  for (const auto& pair : *it) {
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number() || !pair[1].is_number()) {
      return false;
    }
    out.emplace_back(pair[0].get<double>(), pair[1].get<double>());
  }
  return true;
}

}  // namespace

nlohmann::json ReadingFusion::Save() const {
  return {{"window", Pairs(window_)},
          {"current", current_ ? nlohmann::json(*current_) : nlohmann::json(nullptr)},
          {"current_time_s", current_time_s_},
          {"rejected", Pairs(rejected_)}};
}

Status ReadingFusion::Restore(const nlohmann::json& state) {
  std::vector<std::pair<double, double>> window, rejected;
  const auto current = state.is_object() ? state.find("current") : state.end();
  const auto current_time = state.is_object() ? state.find("current_time_s") : state.end();
  if (!state.is_object() || !ReadPairs(state, "window", window) ||
      !ReadPairs(state, "rejected", rejected) || current == state.end() ||
      !(current->is_null() || current->is_number()) || current_time == state.end() ||
      !current_time->is_number()) {
    return InvalidArgumentError(
        "fusion state: expected {window, current, current_time_s, "
        "rejected}, got " +
        state.dump().substr(0, 200));
  }
  window_.assign(window.begin(), window.end());
  rejected_ = std::move(rejected);
  current_ = current->is_null() ? std::nullopt : std::optional<double>(current->get<double>());
  current_time_s_ = current_time->get<double>();
  return OkStatus();
}

}  // namespace roilens
