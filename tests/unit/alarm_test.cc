// Readings you can act on: the alarm state machine on scripted sequences (duration, hysteresis,
// uncertain readings), temporal fusion with the rate check, ReadingMonitor on result lines, and
// the config keys that set them.
#include "roilens/stages/alarm.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "roilens/stages/fusion.h"

namespace roilens {
namespace {

using json = nlohmann::json;

/// Feeds (time_s, value) pairs and records the transitions as "raise low@t" / "clear low@t".
std::vector<std::string> Script(AlarmStateMachine& machine,
                                const std::vector<std::pair<double, double>>& readings) {
  std::vector<std::string> log;
  for (auto [t, v] : readings) {
    for (const AlarmTransition& tr : machine.Update(t, v)) {
      log.push_back(std::string(tr.raised ? "raise " : "clear ") + AlarmSideName(tr.side) + "@" +
                    std::to_string(static_cast<int>(t)));
    }
  }
  return log;
}

TEST(AlarmStateMachineTest, RaisesOnlyAfterTheConditionHeldForTheDuration) {
  AlarmConfig config;
  config.high = 8;
  config.min_duration_s = 3;
  AlarmStateMachine machine(config);
  // A 2 s excursion (t=1..3) is too short; the one from t=5 holds 3 s and raises at t=8.
  EXPECT_THAT(
      Script(machine,
             {{0, 5}, {1, 9}, {2, 9}, {3, 9}, {4, 5}, {5, 9}, {6, 9}, {7, 9}, {8, 9}, {9, 9}}),
      ::testing::ElementsAre("raise high@8"));
  EXPECT_EQ(machine.state(), AlarmSide::kHigh);
}

TEST(AlarmStateMachineTest, ClearsOnlyPastTheHysteresisBand) {
  AlarmConfig config;
  config.low = 2;
  config.hysteresis = 0.5;
  AlarmStateMachine machine(config);
  // Raised at once (no duration); 2.1 and 2.4 are inside the band (no clear, no chatter); 2.5
  // clears; 1.9 raises again.
  EXPECT_THAT(Script(machine, {{0, 3}, {1, 1.5}, {2, 2.1}, {3, 1.9}, {4, 2.4}, {5, 2.5}, {6, 1.9}}),
              ::testing::ElementsAre("raise low@1", "clear low@5", "raise low@6"));
}

TEST(AlarmStateMachineTest, AJumpFromLowToHighClearsThenRaises) {
  AlarmConfig config;
  config.low = 2;
  config.high = 8;
  AlarmStateMachine machine(config);
  EXPECT_THAT(Script(machine, {{0, 1}, {1, 9}}),
              ::testing::ElementsAre("raise low@0", "clear low@1", "raise high@1"));
}

TEST(AlarmStateMachineTest, BackInsideTheLimitsRestartsTheDuration) {
  AlarmConfig config;
  config.high = 8;
  config.min_duration_s = 2;
  AlarmStateMachine machine(config);
  EXPECT_THAT(Script(machine, {{0, 9}, {1, 7}, {2, 9}, {3, 9}, {4, 9}}),
              ::testing::ElementsAre("raise high@4"));
}

TEST(FusionTest, ReportsTheMedianOfTheWindow) {
  ReadingFusion fusion({/*window=*/3, /*window_s=*/0, /*max_rate=*/0}, 10);
  EXPECT_DOUBLE_EQ(fusion.Add(0, 5).value, 5);
  EXPECT_DOUBLE_EQ(fusion.Add(1, 9).value, 7);      // median of 5, 9
  EXPECT_DOUBLE_EQ(fusion.Add(2, 5.2).value, 5.2);  // of 5, 9, 5.2: one outlier does not move it
  EXPECT_DOUBLE_EQ(fusion.Add(3, 5.4).value, 5.4);  // 9, 5.2, 5.4 (5 left the window)
}

TEST(FusionTest, OldReadingsLeaveTheWindowByTime) {
  ReadingFusion fusion({/*window=*/5, /*window_s=*/2, /*max_rate=*/0}, 10);
  fusion.Add(0, 1);
  fusion.Add(1, 1);
  EXPECT_DOUBLE_EQ(fusion.Add(10, 6).value, 6);  // the two old ones are 9+ s old
}

TEST(FusionTest, AnImplausibleJumpIsFlaggedAndNotFusedIn) {
  // Span 10, at most 0.1 of it (1 unit) per second.
  ReadingFusion fusion({/*window=*/3, /*window_s=*/0, /*max_rate=*/0.1}, 10);
  fusion.Add(0, 5);
  fusion.Add(1, 5.5);                                    // 0.5/s: fine
  const ReadingFusion::Fused jump = fusion.Add(2, 9.5);  // 4 units in 1 s
  EXPECT_TRUE(jump.implausible);
  EXPECT_DOUBLE_EQ(jump.value, 5.25);  // unchanged estimate
  const ReadingFusion::Fused back = fusion.Add(3, 5.6);
  EXPECT_FALSE(back.implausible);
  EXPECT_DOUBLE_EQ(back.value, 5.5);  // 5, 5.5, 5.6: the jump never entered
  // Over a longer gap the same change is possible.
  EXPECT_FALSE(fusion.Add(10, 9.5).implausible);
}

TEST(FusionTest, ARealStepIsFollowedAfterAFewAgreeingReadings) {
  ReadingFusion fusion({/*window=*/3, /*window_s=*/0, /*max_rate=*/0.1}, 10);
  fusion.Add(0, 2);
  EXPECT_TRUE(fusion.Add(1, 8).implausible);
  EXPECT_TRUE(fusion.Add(2, 8.1).implausible);
  const ReadingFusion::Fused third = fusion.Add(3, 8.2);
  EXPECT_FALSE(third.implausible);  // kReacquireReadings agreeing readings: the new level
  EXPECT_DOUBLE_EQ(third.value, 8.1);
}

StationConfig GaugeStation(const std::string& alarm, const std::string& fusion,
                           const std::string& mode = "live") {
  auto config = ParseStationConfig(R"({"pipeline": {"mode": ")" + mode + R"("},
    "rois": [{"name": "p", "rect": [0, 0, 10, 10], "task": "read_gauge",
              "gauge": {"min_value": 0, "max_value": 10, "unit": "bar"},
              "alarm": )" + alarm + R"(, "fusion": )" +
                                   fusion + "}]}");
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  return *config;
}

RoiResult Line(int frame, const std::string& status, std::optional<double> value) {
  RoiResult r;
  r.frame = frame;
  r.time_s = frame;
  r.roi = "p";
  r.task = "read_gauge";
  r.rect = {0, 0, 10, 10};
  r.status = status;
  r.value = value;
  r.unit = "bar";
  return r;
}

TEST(ReadingMonitorTest, FusesRawValuesFlagsJumpsAndRaisesOnTheFusedValue) {
  ReadingMonitor monitor(GaugeStation(R"({"high": 8, "hysteresis": 1, "min_duration_s": 1})",
                                      R"({"window": 3, "max_rate": 0.2})"));
  std::vector<std::vector<json>> frames;
  std::vector<json> events;
  const std::vector<std::pair<std::string, double>> script = {
      {"ok", 7.5},      {"ok", 8.5}, {"ok", 8.6},   // fused 7.5, 8.0, 8.5 (> 8 since t=2)
      {"uncertain", 2}, {"ok", 8.7},                // t=3 ignored; t=4: held 2 s -> raise
      {"ok", 1.0},                                  // 7.7 in 1 s: implausible, not alarmed
      {"ok", 6.5},      {"ok", 6.8}, {"ok", 6.4}};  // fused 8.6, 6.8 (<= 7: clear), 6.5
  for (std::size_t i = 0; i < script.size(); ++i) {
    std::vector<RoiResult> lines = {Line(static_cast<int>(i), script[i].first, script[i].second)};
    for (json& e : monitor.Process(lines)) events.push_back(std::move(e));
    frames.push_back({ToJson(lines[0])});
  }
  EXPECT_EQ(frames[1][0]["value"], 8.0);
  EXPECT_EQ(frames[1][0]["raw_value"], 8.5);
  EXPECT_EQ(frames[3][0]["value"], 2.0);  // uncertain: its own reading, not fused, no alarm
  EXPECT_TRUE(frames[3][0]["alarm"].is_null());
  EXPECT_EQ(frames[4][0]["alarm"], "high");
  EXPECT_TRUE(frames[5][0]["implausible_jump"].get<bool>());
  EXPECT_EQ(frames[5][0]["raw_value"], 1.0);
  EXPECT_TRUE(frames[5][0]["alarm"].is_null());
  EXPECT_FALSE(frames[6][0]["implausible_jump"].get<bool>());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["event"], "raise");
  EXPECT_EQ(events[0]["alarm"], "high");
  EXPECT_EQ(events[0]["frame"], 4);
  EXPECT_EQ(events[0]["time_s"], 4.0);
  EXPECT_EQ(events[0]["roi"], "p");
  EXPECT_EQ(events[0]["type"], "alarm");
  EXPECT_EQ(events[0]["threshold"], 8.0);
  EXPECT_EQ(events[1]["event"], "clear");
  EXPECT_EQ(events[1]["frame"], 7);
  EXPECT_EQ(frames[8][0]["alarm"], nullptr);
}

TEST(ReadingMonitorTest, BatchModeDefaultsKeepTodaysPerReadingAlarms) {
  // No fusion, no rate check, no duration: each reading alarms on its own, as before.
  ReadingMonitor monitor(GaugeStation(R"({"low": 1, "high": 8})", "{}", "batch"));
  std::vector<std::string> alarms;
  for (double v : {0.5, 9.5, 5.0, 0.2}) {
    std::vector<RoiResult> lines = {Line(static_cast<int>(alarms.size()), "ok", v)};
    monitor.Process(lines);
    EXPECT_EQ(lines[0].value, v);
    alarms.push_back(lines[0].alarm);
  }
  EXPECT_THAT(alarms, ::testing::ElementsAre("low", "high", "", "low"));
}

/// Runs `script` (status, value) from frame `first` on; returns each frame's line and events.
std::vector<json> RunScript(ReadingMonitor& monitor,
                            const std::vector<std::pair<std::string, double>>& script,
                            std::size_t first, std::size_t end) {
  std::vector<json> out;
  for (std::size_t i = first; i < end; ++i) {
    std::vector<RoiResult> lines = {Line(static_cast<int>(i), script[i].first, script[i].second)};
    const std::vector<json> events = monitor.Process(lines);
    out.push_back({{"line", ToJson(lines[0])}, {"events", events}});
  }
  return out;
}

TEST(ReadingMonitorTest, SaveAndRestoreContinueExactlyWhereTheRunStopped) {
  const StationConfig config = GaugeStation(R"({"high": 8, "hysteresis": 1, "min_duration_s": 3})",
                                            R"({"window": 3, "max_rate": 0.2})");
  // Fusion window, an implausible run in progress and a high condition being timed at every
  // cut: raised at t=6 (fused > 8 since t=3), cleared at t=13.
  const std::vector<std::pair<std::string, double>> script = {
      {"ok", 7.0},      {"ok", 7.5}, {"ok", 8.2}, {"ok", 8.6}, {"ok", 8.7},
      {"ok", 1.0},      {"ok", 8.8}, {"ok", 8.9}, {"ok", 9.0}, {"ok", 8.4},
      {"uncertain", 2}, {"ok", 7.2}, {"ok", 6.5}, {"ok", 6.4}, {"ok", 6.0}};
  ReadingMonitor whole(config);
  const std::vector<json> expected = RunScript(whole, script, 0, script.size());
  int raises = 0;
  for (const json& frame : expected) raises += static_cast<int>(frame["events"].size());
  ASSERT_EQ(raises, 2) << "one raise and one clear in the script";

  for (std::size_t cut = 1; cut < script.size(); ++cut) {
    ReadingMonitor before(config);
    RunScript(before, script, 0, cut);
    // Through text, as the resume journal keeps it.
    const json saved = json::parse(before.Save().dump());
    ReadingMonitor after(config);
    ASSERT_TRUE(after.Restore(saved).ok()) << saved.dump();
    EXPECT_EQ(after.Save(), saved) << "cut " << cut;
    const std::vector<json> resumed = RunScript(after, script, cut, script.size());
    EXPECT_EQ(resumed, std::vector<json>(expected.begin() + cut, expected.end())) << "cut " << cut;
  }
  // Without the state the same frames go otherwise (the test can tell).
  ReadingMonitor fresh(config);
  EXPECT_NE(RunScript(fresh, script, 5, script.size()),
            std::vector<json>(expected.begin() + 5, expected.end()));
}

TEST(ReadingMonitorTest, RestoreRefusesStateOfAnotherShapeAndNullStartsFresh) {
  const StationConfig config = GaugeStation(R"({"high": 8})", R"({"window": 3})");
  ReadingMonitor monitor(config);
  std::vector<RoiResult> lines = {Line(0, "ok", 9)};
  monitor.Process(lines);
  const json saved = monitor.Save();
  EXPECT_EQ(saved["rois"]["p"]["alarm"]["state"], "high");

  json other_roi = saved;
  other_roi["rois"]["q"] = other_roi["rois"]["p"];
  json bad_side = saved;
  bad_side["rois"]["p"]["alarm"]["state"] = "low";  // the alarm has no low threshold
  json bad_window = saved;
  bad_window["rois"]["p"]["fusion"]["window"] = {{1, "x"}};
  for (const json& bad : {json(42), json{{"version", 2}, {"rois", json::object()}}, other_roi,
                          bad_side, bad_window}) {
    EXPECT_EQ(monitor.Restore(bad).code(), StatusCode::kInvalidArgument) << bad.dump();
    EXPECT_EQ(monitor.Save(), saved) << "a refused state changes nothing";
  }
  ASSERT_TRUE(monitor.Restore(nullptr).ok());
  EXPECT_EQ(monitor.Save()["rois"], json::object());
}

TEST(AlarmConfigTest, ParsesHysteresisDurationFusionAndDelivery) {
  auto config = ParseStationConfig(R"({
    "rois": [{"name": "p", "rect": [0, 0, 10, 10], "task": "read_gauge",
              "gauge": {"min_value": 0, "max_value": 10},
              "alarm": {"low": 1, "high": 8, "hysteresis": 0.5, "min_duration_s": 30},
              "fusion": {"window": 7, "window_s": 20, "max_rate": 0.05}}],
    "output": {"alarms": "a.jsonl",
               "mqtt": {"host": "broker", "port": 1884, "topic_prefix": "plant/st7/",
                        "client_id": "st7", "username": "u", "password_env": "MQTT_PW"},
               "webhook": {"url": "https://hooks.example/x", "retries": 5, "backoff_s": 0.5}}})");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const RoiConfig& roi = config->rois[0];
  EXPECT_EQ(roi.alarm.hysteresis, 0.5);
  EXPECT_EQ(roi.alarm.min_duration_s, 30);
  EXPECT_EQ(roi.fusion.window, 7);
  EXPECT_EQ(roi.fusion.window_s, 20);
  EXPECT_EQ(roi.fusion.max_rate, 0.05);
  EXPECT_EQ(config->output.alarms, "a.jsonl");
  EXPECT_EQ(config->output.mqtt.port, 1884);
  EXPECT_EQ(config->output.mqtt.topic_prefix, "plant/st7");
  EXPECT_EQ(config->output.mqtt.password_env, "MQTT_PW");
  EXPECT_EQ(config->output.webhook.retries, 5);

  for (const char* bad :
       {R"("alarm": {"high": 8, "hysteresis": -1})", R"("alarm": {"high": 8, "min_duration": 3})",
        R"("fusion": {"window": 0})"}) {
    auto c = ParseStationConfig(R"({"rois": [{"name": "p", "rect": [0, 0, 10, 10],
        "task": "read_gauge", "gauge": {"min_value": 0, "max_value": 10}, )" +
                                std::string(bad) + "}]}");
    EXPECT_FALSE(c.ok()) << bad;
  }
}

}  // namespace
}  // namespace roilens
