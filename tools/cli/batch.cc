// Batch manifest, shard assignment and the run-level merge (see batch.h).
#include "batch.h"

#include <glob.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "remote_input.h"
#include "roilens/outputs/journal.h"
#include "roilens/outputs/report.h"

namespace roilens::cli {
namespace {

namespace fs = std::filesystem;

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string Trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

bool IsUrl(const std::string& input) { return input.find("://") != std::string::npos; }

/// Parses a whole non-negative decimal int ("" and "1x" are not).
std::optional<int> ParseCount(const std::string& text) {
  int value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value < 0) return std::nullopt;
  return value;
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The JSON object in `path`, or null when the file is missing or not (yet) JSON.
nlohmann::json ReadJsonFile(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return nullptr;
  auto json = nlohmann::json::parse(ReadText(path), nullptr, /*allow_exceptions=*/false);
  return json.is_discarded() ? nlohmann::json(nullptr) : json;
}

std::int64_t Int(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<std::int64_t>() : 0;
}

/// The stem a folder is named after: the last path segment without its extension (for a URL,
/// the last segment of its path without query).
std::string Stem(const std::string& input) {
  std::string path = input;
  if (IsUrl(path)) {
    path = path.substr(path.find("://") + 3);
    path = path.substr(0, path.find_first_of("?#"));
  }
  while (!path.empty() && path.back() == '/') path.pop_back();
  std::string stem = fs::path(path).stem().string();
  for (char& c : stem) {
    const bool keep =
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    if (!keep) c = '_';
  }
  return stem;
}

/// Names the output root uses itself (a file folder may not take them).
bool Reserved(const std::string& name, const BatchManifest& names) {
  return name.empty() || name[0] == '.' || name == kShardsDir || name == kManifestName ||
         name == names.summary_name || name == names.report_name;
}

}  // namespace

StatusOr<std::vector<std::string>> ReadInputList(const std::string& list_path) {
  std::ifstream in(list_path);
  if (!in) return NotFoundError("input list '" + list_path + "' cannot be read");
  const fs::path base = fs::path(list_path).parent_path();
  std::vector<std::string> inputs;
  std::map<std::string, int> line_of;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string entry = Trim(line);
    if (entry.empty() || entry[0] == '#') continue;
    std::string path = entry;
    if (!IsUrl(entry) && fs::path(entry).is_relative()) {
      path = (base / entry).lexically_normal().string();
    }
    auto [it, inserted] = line_of.emplace(path, number);
    if (!inserted) {
      return InvalidArgumentError(list_path + ":" + std::to_string(number) + ": '" + entry +
                                  "' is already listed on line " + std::to_string(it->second));
    }
    inputs.push_back(path);
  }
  if (in.bad()) return InternalError("input list '" + list_path + "' cannot be read");
  if (inputs.empty()) return InvalidArgumentError("input list '" + list_path + "' names no input");
  return inputs;
}

bool IsVideoPath(const std::string& path) {
  static const char* const kExtensions[] = {".mp4", ".m4v",  ".mov", ".mkv", ".avi", ".webm",
                                            ".mpg", ".mpeg", ".ts",  ".mts", ".wmv", ".flv"};
  const std::string ext = Lower(fs::path(path).extension().string());
  return std::any_of(std::begin(kExtensions), std::end(kExtensions),
                     [&](const char* e) { return ext == e; });
}

std::vector<std::string> VideosInFolder(const std::string& dir) {
  std::vector<std::string> videos;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec) && IsVideoPath(entry.path().string())) {
      videos.push_back(entry.path().string());
    }
  }
  std::sort(videos.begin(), videos.end());
  return videos;
}

bool LooksLikeGlob(const std::string& input) {
  std::error_code ec;
  return !IsUrl(input) && input.find_first_of("*?[") != std::string::npos && !fs::exists(input, ec);
}

StatusOr<std::vector<std::string>> ExpandGlob(const std::string& pattern) {
  glob_t matches{};
  const int rc = ::glob(pattern.c_str(), 0, nullptr, &matches);
  std::vector<std::string> files;
  if (rc == 0) {
    for (std::size_t i = 0; i < matches.gl_pathc; ++i) {
      std::error_code ec;
      if (fs::is_regular_file(matches.gl_pathv[i], ec)) files.emplace_back(matches.gl_pathv[i]);
    }
  }
  globfree(&matches);
  if (rc != 0 && rc != GLOB_NOMATCH) {
    return InvalidArgumentError("pattern '" + pattern + "' cannot be expanded");
  }
  if (files.empty()) return NotFoundError("pattern '" + pattern + "' matches no file");
  std::sort(files.begin(), files.end());
  return files;
}

StatusOr<std::vector<BatchInput>> PlanInputs(const std::vector<std::string>& paths) {
  std::map<std::string, int> stems;
  std::set<std::string> seen;
  for (const std::string& path : paths) {
    if (!seen.insert(path).second) {
      return InvalidArgumentError("input '" + path + "' is named twice");
    }
    ++stems[Lower(Stem(path))];  // folders differing only in case collide on some filesystems
  }
  const BatchManifest defaults;
  std::vector<BatchInput> inputs;
  std::set<std::string> folders;
  for (const std::string& path : paths) {
    BatchInput input;
    input.path = path;
    input.shown = IsRemoteInput(path) ? RedactUrl(path) : path;
    const std::string stem = Stem(path);
    input.folder = stem;
    if (stems[Lower(stem)] > 1 || Reserved(stem, defaults)) {
      input.folder = (stem.empty() ? "input" : stem) + "-" + Fnv1aHex(input.shown).substr(0, 8);
    }
    std::error_code ec;
    if (IsRemoteInput(path)) {
      // Every shard asks the same server, so every shard plans with the same sizes.
      const auto size = RemoteSize(path);
      input.bytes = size.ok() ? static_cast<std::uintmax_t>(*size) : 0;
    } else if (!IsUrl(path)) {
      const auto size = fs::file_size(path, ec);
      input.bytes = ec ? 0 : size;
    }
    if (!folders.insert(Lower(input.folder)).second) {
      return InvalidArgumentError("inputs '" + path + "' and another one map to the same folder '" +
                                  input.folder + "'; rename one of them");
    }
    inputs.push_back(std::move(input));
  }
  return inputs;
}

StatusOr<ShardSpec> ParseShard(const std::string& text) {
  const auto slash = text.find('/');
  const auto index = slash == std::string::npos ? std::nullopt : ParseCount(text.substr(0, slash));
  const auto count = slash == std::string::npos ? std::nullopt : ParseCount(text.substr(slash + 1));
  if (!index || !count) {
    return InvalidArgumentError("--shard '" + text + "': expected K/N with 0 <= K < N (e.g. 0/4)");
  }
  if (*count < 1 || *index >= *count) {
    return InvalidArgumentError("--shard '" + text + "': K must be below N and N at least 1");
  }
  return ShardSpec{*index, *count};
}

StatusOr<std::optional<ShardSpec>> ShardFromEnvironment(
    const std::function<const char*(const char*)>& getenv) {
  const char* index_text = getenv("JOB_COMPLETION_INDEX");
  const char* count_text = getenv("JOB_COMPLETIONS");
  if (!index_text && !count_text) return std::optional<ShardSpec>();
  if (!index_text || !count_text) {
    return InvalidArgumentError(
        std::string("JOB_COMPLETION_INDEX and JOB_COMPLETIONS must be set together (only ") +
        (index_text ? "JOB_COMPLETION_INDEX" : "JOB_COMPLETIONS") + " is set)");
  }
  const auto index = ParseCount(index_text);
  const auto count = ParseCount(count_text);
  if (!count || *count < 1) {
    return InvalidArgumentError(std::string("JOB_COMPLETIONS='") + count_text +
                                "': expected a shard count of at least 1");
  }
  if (!index || *index >= *count) {
    return InvalidArgumentError(std::string("JOB_COMPLETION_INDEX='") + index_text +
                                "': expected a shard index from 0 to JOB_COMPLETIONS-1 (" +
                                std::to_string(*count - 1) + ")");
  }
  return std::optional<ShardSpec>(ShardSpec{*index, *count});
}

std::vector<int> AssignShards(const std::vector<BatchInput>& inputs, int count) {
  std::vector<std::size_t> order(inputs.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (inputs[a].bytes != inputs[b].bytes) return inputs[a].bytes > inputs[b].bytes;
    return inputs[a].path < inputs[b].path;
  });
  std::vector<int> shard_of(inputs.size(), 0);
  std::vector<std::uintmax_t> load(static_cast<std::size_t>(std::max(count, 1)), 0);
  // Longest-processing-time-first: each file to the least-loaded shard. Bytes stand in for
  // decode + model time; the file count per shard does not matter.
  std::vector<std::size_t> files(load.size(), 0);
  for (std::size_t i : order) {
    std::size_t best = 0;
    for (std::size_t s = 1; s < load.size(); ++s) {
      // Zero-byte inputs (URLs, unreadable files) go round-robin by count instead.
      const bool lighter = inputs[i].bytes > 0 ? load[s] < load[best] : files[s] < files[best];
      if (lighter) best = s;
    }
    shard_of[i] = static_cast<int>(best);
    load[best] += inputs[i].bytes;
    ++files[best];
  }
  return shard_of;
}

nlohmann::json BatchManifest::ToJson() const {
  nlohmann::json files = nlohmann::json::array();
  for (const BatchInput& input : inputs) {
    files.push_back({{"input", input.shown}, {"folder", input.folder}, {"bytes", input.bytes}});
  }
  return {{"kind", "roilens batch"}, {"version", 1},
          {"files", files},          {"summary", summary_name},
          {"report", report_name},   {"results", results_name},
          {"alarms", alarms_name},   {"config_digest", config_digest}};
}

StatusOr<BatchManifest> BatchManifest::FromJson(const nlohmann::json& json) {
  try {
    BatchManifest manifest;
    if (json.at("kind") != "roilens batch") return InvalidArgumentError("not a roilens batch");
    for (const auto& file : json.at("files")) {
      BatchInput input;
      input.path = input.shown = file.at("input").get<std::string>();
      input.folder = file.at("folder").get<std::string>();
      input.bytes = file.at("bytes").get<std::uintmax_t>();
      manifest.inputs.push_back(std::move(input));
    }
    manifest.summary_name = json.at("summary").get<std::string>();
    manifest.report_name = json.at("report").get<std::string>();
    manifest.results_name = json.at("results").get<std::string>();
    manifest.alarms_name = json.at("alarms").get<std::string>();
    manifest.config_digest = json.value("config_digest", "");
    return manifest;
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgumentError(std::string("malformed batch manifest: ") + e.what());
  }
}

Status WriteFileAtomically(const std::string& path, const std::string& text) {
  static std::atomic<unsigned> counter{0};
  // Unique per process, thread and call: two shards (or two merges) never share a temp file.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." +
                          std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id())) +
                          "." + std::to_string(counter.fetch_add(1));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out.good()) {
      std::error_code ec;
      fs::remove(tmp, ec);
      return InternalError("cannot write '" + path + "'");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return InternalError("cannot write '" + path + "': " + ec.message());
  }
  return OkStatus();
}

Status WriteOrCheckManifest(const std::string& out_root, const BatchManifest& manifest) {
  const fs::path path = fs::path(out_root) / kManifestName;
  const std::string text = manifest.ToJson().dump(2) + "\n";
  std::error_code ec;
  if (fs::exists(path, ec)) {
    const std::string existing = ReadText(path);
    if (existing == text) return OkStatus();
    return FailedPreconditionError(
        "'" + path.string() +
        "' belongs to a batch over other inputs or another config; use another --out, or the "
        "same inputs and config in every shard");
  }
  fs::create_directories(out_root, ec);
  if (ec) return InternalError("cannot create output directory '" + out_root + "'");
  // Shards racing here all write the same bytes: whichever rename lands last changes nothing.
  return WriteFileAtomically(path.string(), text);
}

StatusOr<BatchManifest> ReadManifest(const std::string& out_root) {
  const fs::path path = fs::path(out_root) / kManifestName;
  const nlohmann::json json = ReadJsonFile(path);
  if (json.is_null()) {
    return NotFoundError("'" + out_root + "' holds no batch (no readable " +
                         std::string(kManifestName) + ")");
  }
  auto manifest = BatchManifest::FromJson(json);
  if (!manifest.ok())
    return InvalidArgumentError(path.string() + ": " + manifest.status().message());
  return manifest;
}

namespace {

/// Alarm raise events listed in the run-level summary; beyond this only counted.
constexpr std::size_t kMaxListedAlarms = 500;

std::string RenderBatchReport(const nlohmann::json& summary, const BatchManifest& manifest) {
  std::ostringstream html;
  const auto& totals = summary["totals"];
  html << "<!doctype html><html><head><meta charset=\"utf-8\"><title>roilens batch</title>"
          "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
          ".failed{background:#fdd}.partial,.pending{background:#ffd}</style></head><body>"
       << "<h1>roilens batch: " << Int(totals, "files") << " files</h1><p>";
  for (const char* key : {"ok", "failed", "partial", "pending"}) {
    html << HtmlEscape(key) << ": " << Int(totals, key) << " &nbsp; ";
  }
  html << "</p><table><tr>";
  for (const char* key : {"frames", "roi_results", "calls", "cache_hits", "uncertain", "errors",
                          "skipped", "total_tokens", "alarms"}) {
    html << "<th>" << key << "</th>";
  }
  html << "</tr><tr>";
  for (const char* key : {"frames", "roi_results", "calls", "cache_hits", "uncertain", "errors",
                          "skipped", "total_tokens", "alarms"}) {
    html << "<td>" << Int(totals, key) << "</td>";
  }
  html << "</tr></table><h2>Files</h2><table><tr><th>input</th><th>status</th><th>frames</th>"
          "<th>ROI results</th><th>errors</th><th>alarms</th><th>elapsed s</th><th>error</th></tr>";
  for (const auto& row : summary["files"]) {
    const std::string status = row["status"];
    const std::string folder = row["folder"];
    html << "<tr class=\"" << HtmlEscape(status) << "\"><td>";
    if (status == "ok") {
      html << "<a href=\"" << HtmlEscape(folder + "/" + manifest.report_name) << "\">"
           << HtmlEscape(row["input"].get<std::string>()) << "</a>";
    } else {
      html << HtmlEscape(row["input"].get<std::string>());
    }
    html << "</td><td>" << HtmlEscape(status) << "</td><td>" << Int(row, "frames") << "</td><td>"
         << Int(row, "roi_results") << "</td><td>" << Int(row, "errors") << "</td><td>"
         << Int(row, "alarms") << "</td><td>";
    if (row["elapsed_s"].is_number()) html << row["elapsed_s"].get<double>();
    html << "</td><td>"
         << (row["error"].is_string() ? HtmlEscape(row["error"].get<std::string>()) : "")
         << "</td></tr>";
  }
  html << "</table><h2>Alarms</h2><table><tr><th>input</th><th>ROI</th><th>alarm</th>"
          "<th>frame</th><th>value</th></tr>";
  for (const auto& alarm : summary["alarms"]) {
    html << "<tr><td>" << HtmlEscape(alarm.value("input", "")) << "</td><td>"
         << HtmlEscape(alarm.value("roi", "")) << "</td><td>"
         << HtmlEscape(alarm.value("alarm", "")) << "</td><td>" << Int(alarm, "frame")
         << "</td><td>"
         << (alarm.contains("value") && alarm.at("value").is_number() ? alarm.at("value").dump()
                                                                      : "")
         << "</td></tr>";
  }
  html << "</table></body></html>\n";
  return html.str();
}

}  // namespace

StatusOr<nlohmann::json> MergeBatch(const std::string& out_root) {
  auto manifest = ReadManifest(out_root);
  if (!manifest.ok()) return manifest.status();
  const fs::path root(out_root);
  nlohmann::json files = nlohmann::json::array();
  nlohmann::json alarms = nlohmann::json::array();
  std::map<std::string, std::int64_t> totals;
  for (const char* key : {"files", "ok", "failed", "partial", "pending", "frames", "roi_results",
                          "calls", "cache_hits", "uncertain", "errors", "skipped", "input_tokens",
                          "output_tokens", "total_tokens", "alarms"}) {
    totals[key] = 0;
  }
  for (const BatchInput& input : manifest->inputs) {
    const fs::path dir = root / input.folder;
    nlohmann::json row = {{"input", input.shown}, {"folder", input.folder},
                          {"bytes", input.bytes}, {"status", "pending"},
                          {"frames", 0},          {"roi_results", 0},
                          {"errors", 0},          {"alarms", 0},
                          {"elapsed_s", nullptr}, {"error", nullptr}};
    std::error_code ec;
    const nlohmann::json done = ReadJsonFile(dir / kDoneMarker);
    const nlohmann::json failed = ReadJsonFile(dir / kFailedMarker);
    if (done.is_object()) {
      // The marker is renamed into place after summary.json: that file is final.
      const nlohmann::json summary = ReadJsonFile(dir / manifest->summary_name);
      row["status"] = "ok";
      row["exit_code"] = done.value("exit_code", 0);
      if (summary.is_object()) {
        for (const char* key :
             {"frames", "roi_results", "calls", "cache_hits", "uncertain", "errors", "skipped",
              "input_tokens", "output_tokens", "total_tokens"}) {
          row[key] = Int(summary, key);
          totals[key] += Int(summary, key);
        }
        row["elapsed_s"] = summary.value("wall_time_s", 0.0);
        // find(), not operator[]: on a const json a missing key is undefined behaviour.
        if (auto it = summary.find("fatal_error"); it != summary.end() && it->is_string()) {
          row["error"] = *it;
        }
      }
      std::ifstream events(dir / manifest->alarms_name);
      std::string line;
      std::int64_t raised = 0;
      while (std::getline(events, line)) {
        auto event = nlohmann::json::parse(line, nullptr, false);
        if (event.is_discarded() || event.value("event", "") != "raise") continue;
        ++raised;
        if (alarms.size() < kMaxListedAlarms) {
          alarms.push_back({{"input", input.shown},
                            {"folder", input.folder},
                            {"roi", event.value("roi", "")},
                            {"alarm", event.value("alarm", "")},
                            {"frame", event.value("frame", std::int64_t{0})},
                            {"time_s", event.value("time_s", 0.0)},
                            {"value", event.contains("value") ? event["value"] : nullptr}});
        }
      }
      row["alarms"] = raised;
      totals["alarms"] += raised;
    } else if (failed.is_object()) {
      row["status"] = "failed";
      row["exit_code"] = failed.value("exit_code", 1);
      row["error"] = failed.value("error", "");
    } else if (fs::exists(dir, ec)) {
      // Under way (or stopped): the frames durably done so far, from the resume journal.
      row["status"] = "partial";
      auto journal = Journal::Load((dir / ".roilens-journal").string());
      if (journal.ok() && journal->last) row["frames"] = journal->last->frames_done;
    }
    ++totals["files"];
    ++totals[row["status"].get<std::string>()];
    files.push_back(std::move(row));
  }
  nlohmann::json shards = nlohmann::json::array();
  std::error_code ec;
  std::vector<fs::path> shard_files;
  for (const auto& entry : fs::directory_iterator(root / kShardsDir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() == ".json" && name.find(".tmp.") == std::string::npos) {
      shard_files.push_back(entry.path());
    }
  }
  std::sort(shard_files.begin(), shard_files.end());
  for (const fs::path& path : shard_files) {
    nlohmann::json shard = ReadJsonFile(path);
    if (!shard.is_object()) continue;
    shards.push_back({{"file", (fs::path(kShardsDir) / path.filename()).string()},
                      {"state", shard.value("state", "")},
                      {"files", shard.contains("files") ? shard["files"].size() : 0}});
    if (shard.contains("stopped")) shards.back()["stopped"] = shard["stopped"];
  }
  nlohmann::json totals_json = nlohmann::json::object();
  for (const auto& [key, value] : totals) totals_json[key] = value;
  nlohmann::json summary = {
      {"kind", "roilens batch"}, {"complete", totals["partial"] == 0 && totals["pending"] == 0},
      {"totals", totals_json},   {"files", files},
      {"alarms", alarms},        {"alarms_listed", alarms.size()},
      {"shards", shards}};
  if (Status s =
          WriteFileAtomically((root / manifest->summary_name).string(), summary.dump(2) + "\n");
      !s.ok()) {
    return s;
  }
  if (Status s = WriteFileAtomically((root / manifest->report_name).string(),
                                     RenderBatchReport(summary, *manifest));
      !s.ok()) {
    return s;
  }
  return summary;
}

}  // namespace roilens::cli
