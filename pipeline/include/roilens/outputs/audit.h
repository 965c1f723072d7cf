// The audit trail (output.audit): every model call's crop as sent, prompt, code, code output,
// returned images and parsed answer, stored content-addressed and bounded by size, so a reading
// can be traced to the code that produced it and re-run later (`roilens replay`).
//
// Layout of the directory:
//   records-NNNNNN.jsonl  one JSON object per call (see AuditLog), oldest file = lowest number
//   blobs/ab/abcd...      one file per distinct content, named by its SHA-256 (hex)
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "roilens/client/interactions.h"
#include "roilens/client/status.h"
#include "roilens/config/config.h"
#include "roilens/stages/answer.h"

namespace roilens {

/// SHA-256 (FIPS 180-4) of `data` as 64 lowercase hex digits. The blob names of the audit trail.
std::string Sha256Hex(std::string_view data);

/// One model call as the pipeline made it (the input of AuditLog::Record).
struct AuditCall {
  std::int64_t frame = 0;  ///< frame index of the frame that made the call
  double time_s = 0;       ///< that frame's time in the source, seconds
  std::string roi;         ///< ROI instance name
  int roi_index = 0;       ///< index in the config's rois
  cv::Rect rect;           ///< the ROI in original frame pixels
  /// The ROI's settings that decide how an answer is parsed (AuditRoiConfig), so a replay parses
  /// today's answer exactly as the run did.
  nlohmann::json roi_config;
  std::string model;
  std::string endpoint;     ///< base URL; written through RedactedUrl (no user info, no query)
  std::string coder;        ///< the embedded backend's coder ("cv", "echo"); "" when unknown
  std::string prompt;       ///< the request's text block
  std::string crop_base64;  ///< the request's image block exactly as sent (base64)
  std::string crop_mime_type;
  Status status;  ///< the call's outcome (not ok: `interaction` is empty)
  std::optional<wire::Interaction> interaction;
  nlohmann::json answer;  ///< AuditAnswerJson of the parsed answer
  double latency_ms = 0;
  int reissues = 0;  ///< times the pipeline sent the call again after the client gave up
};

/// The fields of an answer a replay compares: status, value, unit, count, text, confidence,
/// alarm, error, attempts, objects (crop pixels, [x, y, w, h] and score).
nlohmann::json AuditAnswerJson(const RoiAnswer& answer);

/// The ROI as a config object ({"name", "task", "rect", "zoom", "gauge", "object", "prompt",
/// "min_confidence", "alarm"}) that ParseStationConfig accepts inside "rois": what replay needs to
/// parse an answer the way the run did. The rect is a 1x1 placeholder (replay cuts nothing).
nlohmann::json AuditRoiConfig(const RoiConfig& roi);

struct AuditOptions {
  std::string dir;  ///< created when missing; an existing trail is continued
  /// Bound on the directory's size (record files + blobs), bytes; > 0.
  std::uint64_t max_bytes = std::uint64_t{1024} << 20;
  /// Scrubbed (replaced by "[redacted]") from every text stored, should a model or server have
  /// echoed it; "" = nothing to scrub. The API key never reaches disk.
  std::string redact;
  /// Calls queued for the writer thread beyond which Record drops (and counts) instead of
  /// growing memory: a disk slower than the model must not stall or bloat the pipeline.
  std::size_t max_queued = 256;
};

/// Counters of an AuditLog (for tests and the run summary).
struct AuditStats {
  std::int64_t records = 0;        ///< records written by this log
  std::int64_t dropped = 0;        ///< calls not recorded: queue full or a write failed
  std::int64_t blobs_written = 0;  ///< new blobs written (a blob already stored is not)
  std::int64_t files_deleted = 0;  ///< record files dropped by the size bound
  std::uint64_t bytes = 0;         ///< current size of the trail (records + blobs)
  Status last_error;               ///< the last write failure (ok when none)
};

/// Writes the audit trail. Record() only queues (thread-safe, never blocks on disk, callable from
/// oneTBB workers); a background thread hashes, writes blobs not yet stored and appends the
/// record line. A record file is closed once it and the blobs first written with it reach an
/// eighth of max_bytes; while the trail is over max_bytes, the oldest record file is deleted with
/// every blob no remaining record references (the newest file is always kept).
///
/// Each record line: {"v": 1, "recorded_at" (UTC ISO 8601), "frame", "time_s", "roi",
/// "roi_index", "rect" [x,y,w,h], "model", "endpoint", "coder", "latency_ms", "reissues",
/// "roi_config" (blob), "prompt" (blob), "crop": {"blob", "mime_type"}, "status" ("ok" or the
/// call's error), "interaction_id", "interaction_status", "code_runs": [{"code" (blob),
/// "language", "result" (blob: stdout, plus stderr on errors), "is_error"}], "final_text"
/// (blob), "images": [{"blob", "mime_type"}], "answer" (AuditAnswerJson), "dropped_before" (calls
/// dropped since the previous record)}. A blob field holds the SHA-256 hex of the content.
class AuditLog {
 public:
  static StatusOr<std::unique_ptr<AuditLog>> Open(AuditOptions options);
  /// Writes what is queued, then stops the writer thread.
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  /// Queues one call; drops it (counted in stats().dropped) when max_queued are waiting.
  void Record(AuditCall call);
  /// Blocks until everything queued so far is on disk.
  void Drain();
  AuditStats stats() const;

 private:
  explicit AuditLog(AuditOptions options);
  Status Load();
  void Run();
  Status Write(AuditCall& call, std::int64_t dropped_before);
  /// Stores `content` as a blob unless stored already; returns its hash. Counts a reference from
  /// the active record file.
  StatusOr<std::string> PutBlob(const std::string& content);
  std::string Scrub(std::string text) const;
  void StartRecordFile();
  Status RollIfFull();
  void Shrink();
  void DeleteFile(std::size_t index);

  struct RecordFile {
    std::string path;
    std::uint64_t bytes = 0;
    std::uint64_t weight = 0;        ///< bytes + blobs first written while it was active
    std::vector<std::string> blobs;  ///< one entry per reference
  };

  const AuditOptions options_;
  mutable std::mutex mu_;  ///< guards queue_, busy_, stopping_, stats_
  std::condition_variable work_cv_, idle_cv_;
  std::deque<AuditCall> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  AuditStats stats_;
  std::int64_t dropped_unreported_ = 0;

  // Writer thread only (and Load, before it starts).
  std::vector<RecordFile> files_;  ///< oldest first; back() is the active one
  std::int64_t next_file_number_ = 1;
  std::map<std::string, std::int64_t> blob_refs_;   ///< hash -> references from record files
  std::map<std::string, std::uint64_t> blob_size_;  ///< hash -> bytes on disk
  std::uint64_t total_bytes_ = 0;
  std::thread writer_;
};

/// Every record of the trail in `dir`, oldest first (a torn last line is skipped).
StatusOr<std::vector<nlohmann::json>> ReadAuditRecords(const std::string& dir);
/// The blob `hash` of the trail in `dir`; DataLoss when it is missing or does not match its hash.
StatusOr<std::string> ReadAuditBlob(const std::string& dir, const std::string& hash);

}  // namespace roilens
