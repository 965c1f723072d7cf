// AlarmStateMachine (duration + hysteresis) and ReadingMonitor (fusion + alarms on result lines).
#include "roilens/stages/alarm.h"

namespace roilens {

using json = nlohmann::json;

std::string AlarmSideName(AlarmSide side) {
  switch (side) {
    case AlarmSide::kLow:
      return "low";
    case AlarmSide::kHigh:
      return "high";
    case AlarmSide::kNone:
      break;
  }
  return "";
}

AlarmSide AlarmStateMachine::Condition(double value) const {
  if (config_.low && value < *config_.low) return AlarmSide::kLow;
  if (config_.high && value > *config_.high) return AlarmSide::kHigh;
  return AlarmSide::kNone;
}

std::vector<AlarmTransition> AlarmStateMachine::Update(double time_s, double value) {
  std::vector<AlarmTransition> out;
  if ((state_ == AlarmSide::kLow && value >= *config_.low + config_.hysteresis) ||
      (state_ == AlarmSide::kHigh && value <= *config_.high - config_.hysteresis)) {
    out.push_back({false, state_});
    state_ = AlarmSide::kNone;
    pending_ = AlarmSide::kNone;
  }
  if (state_ != AlarmSide::kNone) return out;
  const AlarmSide condition = Condition(value);
  if (condition != pending_) {
    pending_ = condition;
    pending_since_s_ = time_s;
  }
  if (pending_ != AlarmSide::kNone && time_s - pending_since_s_ >= config_.min_duration_s) {
    state_ = pending_;
    out.push_back({true, state_});
  }
  return out;
}

ReadingMonitor::ReadingMonitor(const StationConfig& config)
    : mode_(config.pipeline.mode), rois_(config.rois) {
  for (const RoiConfig& roi : rois_) configs_[roi.name] = &roi;
}

ReadingMonitor::RoiState& ReadingMonitor::StateFor(const std::string& instance,
                                                   const RoiConfig& config) {
  auto [it, inserted] = states_.try_emplace(instance);
  if (inserted) {
    if (config.task == TaskKind::kReadGauge) {
      it->second.fusion =
          std::make_unique<ReadingFusion>(FusionOptions::Resolve(config.fusion, mode_),
                                          config.gauge.max_value - config.gauge.min_value);
    }
    if (config.alarm.low || config.alarm.high) {
      it->second.alarm = std::make_unique<AlarmStateMachine>(config.alarm);
    }
  }
  return it->second;
}

std::vector<json> ReadingMonitor::Process(std::vector<RoiResult>& results) {
  std::vector<json> events;
  for (RoiResult& line : results) {
    const std::string& instance = line.roi;
    const auto config_it = configs_.find(instance.substr(0, instance.find('#')));
    line.raw_value = line.value;
    line.implausible_jump = false;
    if (config_it == configs_.end()) continue;
    const RoiConfig& config = *config_it->second;
    if (config.task != TaskKind::kReadGauge && config.task != TaskKind::kCount) continue;
    RoiState& state = StateFor(instance, config);
    const std::string& status = line.status;
    const double time_s = line.time_s;

    std::optional<double> reading;  // what the alarm sees: the fused value or the count
    bool certain = status == "ok" || status == "cached";
    if (config.task == TaskKind::kReadGauge && line.value) {
      const double raw = *line.value;
      if (status == "ok") {
        const ReadingFusion::Fused fused = state.fusion->Add(time_s, raw);
        state.last_fresh_implausible = fused.implausible;
        line.value = fused.value;
        line.implausible_jump = fused.implausible;
      } else if (status == "cached") {
        // The same reading again: not fresh evidence, but the estimate (and a jump's flag) stand.
        if (std::optional<double> current = state.fusion->current()) line.value = *current;
        line.implausible_jump = state.last_fresh_implausible;
      }
      if (line.implausible_jump) certain = false;
      reading = line.value;
    } else if (config.task == TaskKind::kCount && line.count) {
      reading = static_cast<double>(*line.count);
    }
    if (!state.alarm) continue;
    if (!certain || !reading) {
      line.alarm.clear();
      continue;
    }
    for (const AlarmTransition& t : state.alarm->Update(time_s, *reading)) {
      json event = {
          {"type", "alarm"},
          {"event", t.raised ? "raise" : "clear"},
          {"roi", instance},
          {"task", TaskName(config.task)},
          {"alarm", AlarmSideName(t.side)},
          {"value", *reading},
          {"unit", line.unit.empty() ? json(nullptr) : json(line.unit)},
          {"threshold", t.side == AlarmSide::kLow ? *config.alarm.low : *config.alarm.high},
          {"time_s", time_s},
          {"frame", line.frame},
          {"source", line.source.empty() ? json(nullptr) : json(line.source)},
          {"rect", {line.rect.x, line.rect.y, line.rect.width, line.rect.height}}};
      events.push_back(std::move(event));
    }
    line.alarm = AlarmSideName(state.alarm->state());
  }
  return events;
}

}  // namespace roilens
