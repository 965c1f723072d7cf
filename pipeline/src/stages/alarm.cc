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

namespace {

/// AlarmSideName's inverse; false for any other text.
bool SideFromName(const json& name, AlarmSide& side) {
  if (!name.is_string()) return false;
  const std::string& text = name.get_ref<const std::string&>();
  if (text.empty()) {
    side = AlarmSide::kNone;
  } else if (text == "low") {
    side = AlarmSide::kLow;
  } else if (text == "high") {
    side = AlarmSide::kHigh;
  } else {
    return false;
  }
  return true;
}

}  // namespace

json AlarmStateMachine::Save() const {
  return {{"state", AlarmSideName(state_)},
          {"pending", AlarmSideName(pending_)},
          {"pending_since_s", pending_since_s_}};
}

Status AlarmStateMachine::Restore(const json& state) {
  AlarmSide raised = AlarmSide::kNone, pending = AlarmSide::kNone;
  const auto since = state.is_object() ? state.find("pending_since_s") : state.end();
  if (!state.is_object() || !SideFromName(state.value("state", json()), raised) ||
      !SideFromName(state.value("pending", json()), pending) || since == state.end() ||
      !since->is_number()) {
    return InvalidArgumentError("alarm state: expected {state, pending, pending_since_s}, got " +
                                state.dump().substr(0, 200));
  }
  // A side the config has no threshold for cannot be cleared: the state is not this config's.
  for (AlarmSide side : {raised, pending}) {
    if ((side == AlarmSide::kLow && !config_.low) || (side == AlarmSide::kHigh && !config_.high)) {
      return InvalidArgumentError("alarm state: '" + AlarmSideName(side) +
                                  "' but the alarm has no such threshold");
    }
  }
  state_ = raised;
  pending_ = pending;
  pending_since_s_ = since->get<double>();
  return OkStatus();
}

ReadingMonitor::ReadingMonitor(const StationConfig& config)
    : mode_(config.pipeline.mode), rois_(config.rois) {
  for (const RoiConfig& roi : rois_) configs_[roi.name] = &roi;
}

ReadingMonitor::RoiState ReadingMonitor::MakeState(const RoiConfig& config) const {
  RoiState state;
  if (config.task == TaskKind::kReadGauge) {
    state.fusion = std::make_unique<ReadingFusion>(FusionOptions::Resolve(config.fusion, mode_),
                                                   config.gauge.max_value - config.gauge.min_value);
  }
  if (config.alarm.low || config.alarm.high) {
    state.alarm = std::make_unique<AlarmStateMachine>(config.alarm);
  }
  return state;
}

ReadingMonitor::RoiState& ReadingMonitor::StateFor(const std::string& instance,
                                                   const RoiConfig& config) {
  auto it = states_.find(instance);
  if (it == states_.end()) it = states_.emplace(instance, MakeState(config)).first;
  return it->second;
}

json ReadingMonitor::Save() const {
  json rois = json::object();
  for (const auto& [instance, state] : states_) {
    json saved = {{"last_fresh_implausible", state.last_fresh_implausible}};
    if (state.fusion) saved["fusion"] = state.fusion->Save();
    if (state.alarm) saved["alarm"] = state.alarm->Save();
    rois[instance] = std::move(saved);
  }
  return {{"version", 1}, {"rois", std::move(rois)}};
}

Status ReadingMonitor::Restore(const json& saved) {
  std::map<std::string, RoiState> states;
  if (!saved.is_null()) {
    if (!saved.is_object() || saved.value("version", 0) != 1 || !saved.contains("rois") ||
        !saved["rois"].is_object()) {
      return InvalidArgumentError("reading monitor state: expected {\"version\": 1, \"rois\"}");
    }
    for (const auto& [instance, entry] : saved["rois"].items()) {
      const auto config = configs_.find(instance.substr(0, instance.find('#')));
      if (config == configs_.end()) {
        return InvalidArgumentError("reading monitor state: ROI '" + instance +
                                    "' is not in the config");
      }
      RoiState state = MakeState(*config->second);
      const auto implausible =
          entry.is_object() ? entry.find("last_fresh_implausible") : entry.end();
      if (implausible == entry.end() || !implausible->is_boolean() ||
          entry.contains("fusion") != (state.fusion != nullptr) ||
          entry.contains("alarm") != (state.alarm != nullptr)) {
        return InvalidArgumentError("reading monitor state of ROI '" + instance +
                                    "' does not match its config");
      }
      state.last_fresh_implausible = implausible->get<bool>();
      if (state.fusion) {
        if (Status s = state.fusion->Restore(entry["fusion"]); !s.ok()) {
          return InvalidArgumentError("ROI '" + instance + "': " + s.message());
        }
      }
      if (state.alarm) {
        if (Status s = state.alarm->Restore(entry["alarm"]); !s.ok()) {
          return InvalidArgumentError("ROI '" + instance + "': " + s.message());
        }
      }
      states.emplace(instance, std::move(state));
    }
  }
  states_ = std::move(states);
  return OkStatus();
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
