// Batch runs of `roilens run` over many inputs (a list file, a folder of videos or a glob): the
// manifest, the deterministic size-balanced shard assignment, per-file state markers and the
// run-level summary that `roilens merge` builds from whatever has finished.
//
// Concurrency model: shards (processes, maybe on other machines sharing the output root) never
// coordinate. Each writes only its own files' folders, its own shards/K-of-N.json, and the
// shared manifest.json (identical bytes from every shard) and run-level summary, always through
// a temporary file renamed into place, so a reader sees a whole old or a whole new file.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "roilens/client/status.h"

namespace roilens::cli {

/// One input of a batch and the folder (a single name under the output root) its outputs go to.
struct BatchInput {
  std::string path;  ///< as the run opens it (list entries resolved against the list)
  /// `path` as printed and stored (manifest, markers, summaries): a URL without the credentials
  /// and query string a signed URL carries its secret in (RedactUrl); a local path unchanged.
  std::string shown;
  std::string folder;  ///< unique, deterministic: the file stem, "-<hash>" when ambiguous
  /// File size; for an http(s) URL the server's (RemoteSize). 0 when it cannot be learnt: the
  /// run then records why.
  std::uintmax_t bytes = 0;
};

/// Reads a list file: one input a line, `#` starts a comment line, blank lines are skipped,
/// relative paths are relative to the list's folder (URLs are kept as they are). An unreadable
/// list, an empty one, or an input listed twice is an error naming the file (and line).
StatusOr<std::vector<std::string>> ReadInputList(const std::string& list_path);

/// True for the video file extensions a folder is scanned for (.mp4, .mov, .mkv, .avi, ...).
bool IsVideoPath(const std::string& path);

/// The video files directly in `dir`, sorted by path (empty when it holds none).
std::vector<std::string> VideosInFolder(const std::string& dir);

/// True when `input` is a glob pattern (has *, ? or [) that is not itself an existing path.
bool LooksLikeGlob(const std::string& input);

/// The regular files `pattern` matches (glob(3)), sorted; an error when none match.
StatusOr<std::vector<std::string>> ExpandGlob(const std::string& pattern);

/// Sizes and folder names for `paths` (in this order). Folder names: the file stem with every
/// character outside [A-Za-z0-9._-] replaced by '_'; when two inputs share a stem (or the stem
/// is empty or a name the output root uses itself) "-" and 8 hex digits of the FNV-1a of the
/// whole path are appended. An input listed twice is an error.
StatusOr<std::vector<BatchInput>> PlanInputs(const std::vector<std::string>& paths);

/// Shard K of N (0 <= K < N).
struct ShardSpec {
  int index = 0;
  int count = 1;
};

/// Parses "K/N" (--shard). Errors say what is wrong with the value.
StatusOr<ShardSpec> ParseShard(const std::string& text);

/// The Kubernetes Indexed Job shard: JOB_COMPLETION_INDEX (K) and JOB_COMPLETIONS (N), read with
/// `getenv`. nullopt when neither is set; an error when only one is or a value is malformed.
StatusOr<std::optional<ShardSpec>> ShardFromEnvironment(
    const std::function<const char*(const char*)>& getenv);

/// The shard (0..count-1) of each input, in input order. Deterministic, and the same in every
/// process given the same inputs: inputs sorted by size (largest first, then by path) are
/// assigned greedily to the shard with the fewest bytes so far (the lowest index on a tie).
std::vector<int> AssignShards(const std::vector<BatchInput>& inputs, int count);

/// Names under the output root.
inline constexpr const char* kManifestName = "manifest.json";
inline constexpr const char* kShardsDir = "shards";
/// In a file's folder: written (by rename) once its summary is final; --resume skips it.
inline constexpr const char* kDoneMarker = ".roilens-done";
/// In a file's folder: why its run failed; --resume retries it.
inline constexpr const char* kFailedMarker = ".roilens-failed";

/// What a batch's output root holds besides the file folders: the manifest every shard writes
/// (and merge reads) and the per-file output names from the config.
struct BatchManifest {
  std::vector<BatchInput> inputs;
  std::string summary_name = "summary.json";  ///< config output.summary (per file and root)
  std::string report_name = "report.html";    ///< config output.report
  std::string results_name = "results.jsonl";
  std::string alarms_name = "alarms.jsonl";
  std::string config_digest;  ///< Fnv1aHex of the config file's text: shards must share it
  nlohmann::json ToJson() const;
  static StatusOr<BatchManifest> FromJson(const nlohmann::json& json);
};

/// Writes `text` to `path` through a temporary file in the same folder, unique to this process
/// and call, renamed over `path`: concurrent writers never interleave, readers see whole files.
Status WriteFileAtomically(const std::string& path, const std::string& text);

/// Writes the manifest to OUT_ROOT/manifest.json, or checks that the one there is the same
/// (another shard of this batch wrote it); a different manifest is an error (another batch's
/// root: its inputs would be mixed with these).
Status WriteOrCheckManifest(const std::string& out_root, const BatchManifest& manifest);

/// Reads OUT_ROOT/manifest.json.
StatusOr<BatchManifest> ReadManifest(const std::string& out_root);

/// Builds the run-level summary (per-file rows with status ok/failed/partial/pending, totals,
/// alarms, the shard files present) from what is on disk, and writes OUT_ROOT/<summary> and
/// OUT_ROOT/<report> atomically. Only reads finished files and markers, so it is safe (and
/// idempotent) while shards still run; returns the summary written.
StatusOr<nlohmann::json> MergeBatch(const std::string& out_root);

}  // namespace roilens::cli
