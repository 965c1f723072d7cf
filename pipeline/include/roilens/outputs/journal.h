// The resume journal: an append-only JSON-lines file in the output directory recording, after
// the fact, which frames are completely and durably written (results lines + video segment).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "roilens/client/status.h"

namespace roilens {

/// What a journal belongs to; a resume with a different input or config is refused.
struct JournalHeader {
  int version = 1;
  std::string input;
  std::string config_digest;  ///< FNV-1a of the config text and the flags that change outputs
  int segment_frames = 0;     ///< frames per checkpoint
};

/// Everything up to here is on disk: frames [0, frames_done) have their results lines in the
/// first results_bytes bytes of results.jsonl, their alarm events in the first alarms_bytes bytes
/// of alarms.jsonl and their video frames in segments [0, segments); monitor_state is the fusion
/// and alarm state after frame frames_done - 1, so a resume continues it instead of starting over.
struct JournalCheckpoint {
  std::int64_t frames_done = 0;
  std::uint64_t results_bytes = 0;
  int segments = 0;
  /// nullopt in journals written before alarms.jsonl was checkpointed: its size is then unknown.
  std::optional<std::uint64_t> alarms_bytes;
  /// ReadingMonitor::Save(); null when not recorded (older journals): a fresh monitor.
  nlohmann::json monitor_state;
};

/// Not thread-safe (one writer).
class Journal {
 public:
  struct State {
    JournalHeader header;
    std::optional<JournalCheckpoint> last;  ///< last complete checkpoint
    /// The checkpoints the last one builds on, oldest first (last == checkpoints.back()); a
    /// resumed run that redid frames replaces the checkpoints it went back behind.
    std::vector<JournalCheckpoint> checkpoints;
    bool finished = false;  ///< the run completed (outputs final)
  };

  /// Starts a new journal at `path` (replacing any) holding only the header.
  static StatusOr<std::unique_ptr<Journal>> Create(const std::string& path,
                                                   const JournalHeader& header);
  /// Reads a journal. A torn last line (crash while appending) is ignored; kNotFound when there
  /// is no journal.
  static StatusOr<State> Load(const std::string& path);
  /// Reopens an existing journal for appending (resume).
  static StatusOr<std::unique_ptr<Journal>> Append(const std::string& path);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  /// Appends a checkpoint and fsyncs. Call only after what it describes is durable.
  Status Record(const JournalCheckpoint& checkpoint);
  /// Marks the run finished.
  Status RecordFinished();

 private:
  Journal(std::string path, std::FILE* file) : path_(std::move(path)), file_(file) {}
  Status AppendLine(const std::string& line);
  std::string path_;
  std::FILE* file_;
};

/// 64-bit FNV-1a as 16 hex digits (stable across builds, unlike std::hash).
std::string Fnv1aHex(const std::string& data);

}  // namespace roilens
