// Resume journal: JSON lines, appended and fsynced one checkpoint at a time.
#include "roilens/outputs/journal.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

namespace roilens {

std::string Fnv1aHex(const std::string& data) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(hash));
  return out;
}

StatusOr<std::unique_ptr<Journal>> Journal::Create(const std::string& path,
                                                   const JournalHeader& header) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) {
    return InternalError("cannot create journal '" + path + "': " + std::strerror(errno));
  }
  std::unique_ptr<Journal> journal(new Journal(path, file));
  nlohmann::json line = {{"version", header.version},
                         {"input", header.input},
                         {"config_digest", header.config_digest},
                         {"segment_frames", header.segment_frames}};
  if (Status s = journal->AppendLine(line.dump()); !s.ok()) return s;
  return journal;
}

StatusOr<std::unique_ptr<Journal>> Journal::Append(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "ab");
  if (!file) {
    return InternalError("cannot open journal '" + path + "': " + std::strerror(errno));
  }
  return std::unique_ptr<Journal>(new Journal(path, file));
}

StatusOr<Journal::State> Journal::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("no journal at '" + path + "'");
  State state;
  std::string text;
  bool have_header = false;
  while (std::getline(in, text)) {
    if (text.empty()) continue;
    auto line = nlohmann::json::parse(text, nullptr, false);
    if (line.is_discarded() || !line.is_object()) continue;  // torn write at the end
    if (!have_header) {
      if (!line.contains("version")) break;
      state.header.version = line.value("version", 0);
      state.header.input = line.value("input", "");
      state.header.config_digest = line.value("config_digest", "");
      state.header.segment_frames = line.value("segment_frames", 0);
      have_header = true;
      continue;
    }
    if (line.value("finished", false)) {
      state.finished = true;
      continue;
    }
    if (!line.contains("frames_done") || !line.contains("results_bytes")) continue;
    JournalCheckpoint checkpoint;
    checkpoint.frames_done = line.value("frames_done", std::int64_t{0});
    checkpoint.results_bytes = line.value("results_bytes", std::uint64_t{0});
    checkpoint.segments = line.value("segments", 0);
    if (auto alarms = line.find("alarms_bytes"); alarms != line.end() && alarms->is_number()) {
      checkpoint.alarms_bytes = alarms->get<std::uint64_t>();
    }
    if (auto state = line.find("monitor_state"); state != line.end()) {
      checkpoint.monitor_state = std::move(*state);
    }
    while (!state.checkpoints.empty() &&
           state.checkpoints.back().frames_done >= checkpoint.frames_done) {
      state.checkpoints.pop_back();
    }
    state.checkpoints.push_back(checkpoint);
    state.last = checkpoint;
  }
  if (!have_header) return Status(StatusCode::kDataLoss, "journal '" + path + "' has no header");
  if (state.header.version != 1) {
    return FailedPreconditionError("journal '" + path + "' has unsupported version " +
                                   std::to_string(state.header.version));
  }
  return state;
}

Journal::~Journal() {
  if (file_) std::fclose(file_);
}

Status Journal::AppendLine(const std::string& line) {
  const std::string text = line + "\n";
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size() || std::fflush(file_) != 0 ||
      ::fsync(::fileno(file_)) != 0) {
    return InternalError("cannot write journal '" + path_ + "': " + std::strerror(errno));
  }
  return OkStatus();
}

Status Journal::Record(const JournalCheckpoint& checkpoint) {
  nlohmann::json line = {{"frames_done", checkpoint.frames_done},
                         {"results_bytes", checkpoint.results_bytes},
                         {"segments", checkpoint.segments}};
  if (checkpoint.alarms_bytes) line["alarms_bytes"] = *checkpoint.alarms_bytes;
  if (!checkpoint.monitor_state.is_null()) line["monitor_state"] = checkpoint.monitor_state;
  return AppendLine(line.dump());
}

Status Journal::RecordFinished() { return AppendLine(R"({"finished":true})"); }

}  // namespace roilens
