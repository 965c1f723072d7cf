// Resume journal: checkpoints survive a reload, a torn last line is ignored, a finished run is
// recognised.
#include "roilens/outputs/journal.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "testing/paths.h"

namespace roilens {
namespace {

std::string TempPath(const std::string& name) {
  static const auto dir = testing::ScratchDir("journal");
  return (dir / name).string();
}

JournalCheckpoint Checkpoint(std::int64_t frames_done, std::uint64_t results_bytes, int segments) {
  JournalCheckpoint checkpoint;
  checkpoint.frames_done = frames_done;
  checkpoint.results_bytes = results_bytes;
  checkpoint.segments = segments;
  return checkpoint;
}

TEST(JournalTest, ReloadGivesTheLastCheckpoint) {
  const std::string path = TempPath("a");
  JournalHeader header;
  header.input = "in.mp4";
  header.config_digest = Fnv1aHex("config");
  header.segment_frames = 25;
  {
    auto journal = Journal::Create(path, header);
    ASSERT_TRUE(journal.ok()) << journal.status();
    ASSERT_TRUE((*journal)->Record(Checkpoint(25, 1000, 1)).ok());
    ASSERT_TRUE((*journal)->Record(Checkpoint(50, 2100, 2)).ok());
  }
  auto state = Journal::Load(path);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->header.input, "in.mp4");
  EXPECT_EQ(state->header.config_digest, header.config_digest);
  EXPECT_EQ(state->header.segment_frames, 25);
  ASSERT_TRUE(state->last);
  EXPECT_EQ(state->last->frames_done, 50);
  EXPECT_EQ(state->last->results_bytes, 2100u);
  EXPECT_EQ(state->last->segments, 2);
  EXPECT_FALSE(state->finished);

  // Appending after a reload continues the same file; finishing is recorded.
  auto again = Journal::Append(path);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE((*again)->Record(Checkpoint(75, 3000, 3)).ok());
  ASSERT_TRUE((*again)->RecordFinished().ok());
  state = Journal::Load(path);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->last->frames_done, 75);
  EXPECT_TRUE(state->finished);
}

TEST(JournalTest, CheckpointKeepsAlarmsSizeAndMonitorStateAndOldLinesStillLoad) {
  const std::string path = TempPath("alarms");
  const nlohmann::json monitor = {
      {"version", 1},
      {"rois",
       {{"boiler",
         {{"alarm", {{"state", ""}, {"pending", "high"}, {"pending_since_s", 0.1}}},
          {"last_fresh_implausible", false}}}}}};
  {
    auto journal = Journal::Create(path, JournalHeader{});
    ASSERT_TRUE(journal.ok());
    JournalCheckpoint checkpoint = Checkpoint(10, 500, 1);
    checkpoint.alarms_bytes = 0;
    checkpoint.monitor_state = monitor;
    ASSERT_TRUE((*journal)->Record(checkpoint).ok());
  }
  auto state = Journal::Load(path);
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_TRUE(state->last);
  EXPECT_EQ(state->last->alarms_bytes, std::optional<std::uint64_t>(0));
  EXPECT_EQ(state->last->monitor_state, monitor);
  EXPECT_EQ(state->checkpoints.back().monitor_state, monitor);

  // A journal written before these fields: the checkpoint loads, with neither.
  {
    std::ofstream out(path, std::ios::app);
    out << R"({"frames_done":20,"results_bytes":900,"segments":2})"
        << "\n";
  }
  state = Journal::Load(path);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->last->frames_done, 20);
  EXPECT_FALSE(state->last->alarms_bytes.has_value());
  EXPECT_TRUE(state->last->monitor_state.is_null());
}

TEST(JournalTest, TornLastLineIsIgnored) {
  const std::string path = TempPath("b");
  {
    auto journal = Journal::Create(path, JournalHeader{});
    ASSERT_TRUE(journal.ok());
    ASSERT_TRUE((*journal)->Record(Checkpoint(10, 500, 1)).ok());
  }
  {
    std::ofstream out(path, std::ios::app);
    out << R"({"frames_done": 20, "results_by)";  // killed mid-write
  }
  auto state = Journal::Load(path);
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_TRUE(state->last);
  EXPECT_EQ(state->last->frames_done, 10);
}

TEST(JournalTest, MissingJournalIsNotFoundAndEmptyOneIsDataLoss) {
  EXPECT_EQ(Journal::Load(TempPath("none")).status().code(), StatusCode::kNotFound);
  const std::string path = TempPath("empty");
  std::ofstream(path) << "";
  EXPECT_EQ(Journal::Load(path).status().code(), StatusCode::kDataLoss);
}

TEST(JournalTest, Fnv1aIsStableAndSensitive) {
  EXPECT_EQ(Fnv1aHex(""), "cbf29ce484222325");
  EXPECT_EQ(Fnv1aHex("a"), "af63dc4c8601ec8c");
  EXPECT_NE(Fnv1aHex("config-1"), Fnv1aHex("config-2"));
}

}  // namespace
}  // namespace roilens
