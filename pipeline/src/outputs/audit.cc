// The audit trail writer (a background thread over content-addressed blobs and rotated JSON-line
// record files) and its readers for `roilens replay`.
#include "roilens/outputs/audit.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "roilens/outputs/alarm_sinks.h"

namespace roilens {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ------------------------------------------------------------------------------------ SHA-256
constexpr std::array<std::uint32_t, 64> kSha256K = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

std::uint32_t Rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void Sha256Block(std::array<std::uint32_t, 8>& h, const unsigned char* block) {
  std::uint32_t w[64];
  for (int i = 0; i < 16; ++i) {
    w[i] = (std::uint32_t{block[4 * i]} << 24) | (std::uint32_t{block[4 * i + 1]} << 16) |
           (std::uint32_t{block[4 * i + 2]} << 8) | std::uint32_t{block[4 * i + 3]};
  }
  for (int i = 16; i < 64; ++i) {
    const std::uint32_t s0 = Rotr(w[i - 15], 7) ^ Rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const std::uint32_t s1 = Rotr(w[i - 2], 17) ^ Rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
  for (int i = 0; i < 64; ++i) {
    const std::uint32_t s1 = Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25);
    const std::uint32_t ch = (e & f) ^ (~e & g);
    const std::uint32_t t1 = k + s1 + ch + kSha256K[i] + w[i];
    const std::uint32_t s0 = Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22);
    const std::uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    const std::uint32_t t2 = s0 + maj;
    k = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

// ------------------------------------------------------------------------------------ helpers
std::string UtcNow() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string RecordFileName(std::int64_t number) {
  char name[40];
  std::snprintf(name, sizeof(name), "records-%06lld.jsonl", static_cast<long long>(number));
  return name;
}

fs::path BlobPath(const std::string& dir, const std::string& hash) {
  return fs::path(dir) / "blobs" / hash.substr(0, 2) / hash;
}

bool IsHash(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

/// Every blob hash a record line references (the fields AuditLog writes).
void CollectBlobs(const json& record, std::vector<std::string>& out) {
  auto add = [&](const json& v) {
    if (v.is_string() && IsHash(v.get<std::string>())) out.push_back(v.get<std::string>());
  };
  for (const char* key : {"roi_config", "prompt", "final_text"}) {
    if (auto it = record.find(key); it != record.end()) add(*it);
  }
  if (auto it = record.find("crop"); it != record.end() && it->is_object())
    add(it->value("blob", json()));
  if (auto it = record.find("images"); it != record.end() && it->is_array()) {
    for (const auto& image : *it) {
      if (image.is_object()) add(image.value("blob", json()));
    }
  }
  if (auto it = record.find("code_runs"); it != record.end() && it->is_array()) {
    for (const auto& run : *it) {
      if (!run.is_object()) continue;
      add(run.value("code", json()));
      add(run.value("result", json()));
    }
  }
}

std::vector<json> ReadLines(const fs::path& path) {
  std::vector<json> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      lines.push_back(json::parse(line));
    } catch (const json::exception&) {
      // A torn line (the process died mid-write): the record is lost, the trail is not.
    }
  }
  return lines;
}

std::vector<fs::path> RecordFiles(const std::string& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("records-", 0) == 0 && entry.path().extension() == ".jsonl") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  std::array<std::uint32_t, 8> h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t full = data.size() / 64;
  for (std::size_t i = 0; i < full; ++i) Sha256Block(h, bytes + 64 * i);
  unsigned char tail[128] = {};
  const std::size_t rest = data.size() - 64 * full;
  std::copy(bytes + 64 * full, bytes + data.size(), tail);
  tail[rest] = 0x80;
  const std::size_t tail_size = rest + 1 + 8 <= 64 ? 64 : 128;
  const std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8;
  for (int i = 0; i < 8; ++i) tail[tail_size - 1 - i] = static_cast<unsigned char>(bits >> (8 * i));
  Sha256Block(h, tail);
  if (tail_size == 128) Sha256Block(h, tail + 64);
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  hex.reserve(64);
  for (std::uint32_t word : h) {
    for (int shift = 28; shift >= 0; shift -= 4) hex.push_back(kHex[(word >> shift) & 0xf]);
  }
  return hex;
}

json AuditAnswerJson(const RoiAnswer& answer) {
  auto opt = [](const auto& v) { return v ? json(*v) : json(); };
  json objects = json::array();
  for (const CountedObject& o : answer.objects) {
    objects.push_back(
        {{"box", {o.box.x, o.box.y, o.box.width, o.box.height}}, {"score", opt(o.score)}});
  }
  return {{"status", answer.status},     {"value", opt(answer.value)},
          {"unit", answer.unit},         {"count", opt(answer.count)},
          {"text", answer.text},         {"confidence", opt(answer.confidence)},
          {"alarm", answer.alarm},       {"error", answer.error},
          {"attempts", answer.attempts}, {"objects", std::move(objects)}};
}

json AuditRoiConfig(const RoiConfig& roi) {
  json j = {
      {"name", roi.name}, {"task", TaskName(roi.task)}, {"rect", {0, 0, 1, 1}}, {"zoom", roi.zoom}};
  if (roi.task == TaskKind::kReadGauge) {
    const GaugeCalibration& g = roi.gauge;
    json gauge = {{"min_value", g.min_value}, {"max_value", g.max_value}, {"unit", g.unit}};
    if (g.scale.empty()) {
      gauge["min_angle_deg"] = g.min_angle_deg;
      gauge["max_angle_deg"] = g.max_angle_deg;
    } else {
      gauge["scale"] = json::array();
      for (const ScalePoint& p : g.scale) gauge["scale"].push_back({p.value, p.angle_deg});
    }
    if (g.pivot) gauge["pivot"] = {g.pivot->x, g.pivot->y};
    if (g.radius) gauge["radius"] = *g.radius;
    j["gauge"] = std::move(gauge);
  }
  if (roi.task == TaskKind::kCount) j["object"] = roi.object;
  if (!roi.prompt.empty()) j["prompt"] = roi.prompt;
  if (roi.min_confidence) j["min_confidence"] = *roi.min_confidence;
  if (roi.task == TaskKind::kReadGauge || roi.task == TaskKind::kCount) {
    json alarm = json::object();
    if (roi.alarm.low) alarm["low"] = *roi.alarm.low;
    if (roi.alarm.high) alarm["high"] = *roi.alarm.high;
    if (!alarm.empty()) j["alarm"] = std::move(alarm);
  }
  return j;
}

// ----------------------------------------------------------------------------------- AuditLog
AuditLog::AuditLog(AuditOptions options) : options_(std::move(options)) {}

StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(AuditOptions options) {
  if (options.dir.empty()) return InvalidArgumentError("audit: no directory given");
  if (options.max_bytes == 0) return InvalidArgumentError("audit: max_bytes must be > 0");
  std::error_code ec;
  fs::create_directories(fs::path(options.dir) / "blobs", ec);
  if (ec) {
    return InvalidArgumentError("audit: cannot create '" + options.dir + "': " + ec.message());
  }
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(options)));
  if (Status s = log->Load(); !s.ok()) return s;
  log->writer_ = std::thread([raw = log.get()] { raw->Run(); });
  return log;
}

Status AuditLog::Load() {
  // Continue an existing trail: count its references, start a new record file after its last.
  for (const fs::path& path : RecordFiles(options_.dir)) {
    RecordFile file;
    file.path = path.string();
    std::error_code ec;
    file.bytes = fs::file_size(path, ec);
    for (const json& record : ReadLines(path)) CollectBlobs(record, file.blobs);
    for (const std::string& hash : file.blobs) ++blob_refs_[hash];
    total_bytes_ += file.bytes;
    const std::string stem = path.stem().string();  // records-NNNNNN
    try {
      next_file_number_ = std::max<std::int64_t>(next_file_number_, std::stoll(stem.substr(8)) + 1);
    } catch (const std::exception&) {
    }
    files_.push_back(std::move(file));
  }
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(fs::path(options_.dir) / "blobs", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const std::string hash = it->path().filename().string();
    if (!blob_refs_.count(hash)) {
      // Written for a record that never made it to disk: nothing can reference it.
      std::error_code remove_ec;
      fs::remove(it->path(), remove_ec);
      continue;
    }
    std::error_code size_ec;
    const std::uint64_t size = it->file_size(size_ec);
    blob_size_[hash] = size;
    total_bytes_ += size;
  }
  StartRecordFile();
  std::lock_guard lock(mu_);
  stats_.bytes = total_bytes_;
  return OkStatus();
}

AuditLog::~AuditLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    work_cv_.notify_all();
  }
  if (writer_.joinable()) writer_.join();
}

void AuditLog::Record(AuditCall call) {
  std::lock_guard lock(mu_);
  if (queue_.size() >= options_.max_queued) {
    ++stats_.dropped;
    ++dropped_unreported_;
    return;
  }
  queue_.push_back(std::move(call));
  work_cv_.notify_one();
}

void AuditLog::Drain() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

AuditStats AuditLog::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void AuditLog::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stopping, and everything is written
    AuditCall call = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    const std::int64_t dropped_before = dropped_unreported_;
    dropped_unreported_ = 0;
    lock.unlock();
    Status status;
    try {
      status = Write(call, dropped_before);
    } catch (const std::exception& e) {
      status = InternalError(std::string("audit: ") + e.what());
    }
    lock.lock();
    busy_ = false;
    stats_.bytes = total_bytes_;
    if (status.ok()) {
      ++stats_.records;
    } else {
      ++stats_.dropped;
      dropped_unreported_ += 1 + dropped_before;
      stats_.last_error = status;
    }
    if (queue_.empty()) idle_cv_.notify_all();
  }
  idle_cv_.notify_all();
}

std::string AuditLog::Scrub(std::string text) const {
  const std::string& secret = options_.redact;
  if (secret.empty()) return text;
  for (std::size_t p = text.find(secret); p != std::string::npos; p = text.find(secret, p)) {
    text.replace(p, secret.size(), "[redacted]");
  }
  return text;
}

StatusOr<std::string> AuditLog::PutBlob(const std::string& content) {
  const std::string hash = Sha256Hex(content);
  RecordFile& active = files_.back();
  if (!blob_size_.count(hash)) {
    const fs::path path = BlobPath(options_.dir, hash);
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    // Written under a temporary name and renamed: a blob file is whole or absent.
    const fs::path temp = path.string() + ".tmp";
    {
      std::ofstream out(temp, std::ios::binary | std::ios::trunc);
      out.write(content.data(), static_cast<std::streamsize>(content.size()));
      if (!out) return InternalError("audit: cannot write blob '" + temp.string() + "'");
    }
    fs::rename(temp, path, ec);
    if (ec)
      return InternalError("audit: cannot store blob '" + path.string() + "': " + ec.message());
    blob_size_[hash] = content.size();
    total_bytes_ += content.size();
    active.weight += content.size();
    std::lock_guard lock(mu_);
    ++stats_.blobs_written;
  }
  ++blob_refs_[hash];
  active.blobs.push_back(hash);
  return hash;
}

Status AuditLog::Write(AuditCall& call, std::int64_t dropped_before) {
  if (Status s = RollIfFull(); !s.ok()) return s;
  json record = {{"v", 1},
                 {"recorded_at", UtcNow()},
                 {"frame", call.frame},
                 {"time_s", call.time_s},
                 {"roi", call.roi},
                 {"roi_index", call.roi_index},
                 {"rect", {call.rect.x, call.rect.y, call.rect.width, call.rect.height}},
                 {"model", call.model},
                 {"endpoint", call.endpoint.empty() ? "" : RedactedUrl(call.endpoint)},
                 {"coder", call.coder},
                 {"latency_ms", call.latency_ms},
                 {"reissues", call.reissues}};
  auto put = [&](const std::string& content) -> StatusOr<std::string> { return PutBlob(content); };
  auto roi_config = put(Scrub(call.roi_config.dump()));
  if (!roi_config.ok()) return roi_config.status();
  record["roi_config"] = *roi_config;
  auto prompt = put(Scrub(call.prompt));
  if (!prompt.ok()) return prompt.status();
  record["prompt"] = *prompt;
  if (!call.crop_base64.empty()) {
    auto bytes = wire::Base64Decode(call.crop_base64);
    if (!bytes.ok()) return bytes.status();
    auto crop = put(std::string(bytes->begin(), bytes->end()));
    if (!crop.ok()) return crop.status();
    record["crop"] = {{"blob", *crop}, {"mime_type", call.crop_mime_type}};
  } else {
    record["crop"] = nullptr;
  }
  record["status"] = call.status.ok() ? std::string("ok") : Scrub(call.status.ToString());
  json code_runs = json::array();
  json images = json::array();
  if (call.interaction) {
    const wire::Interaction& interaction = *call.interaction;
    record["interaction_id"] = interaction.id;
    record["interaction_status"] = interaction.status;
    for (const wire::CodeRun& run : interaction.CodeRuns()) {
      auto code = put(Scrub(run.code));
      if (!code.ok()) return code.status();
      json entry = {{"code", *code}, {"language", run.language}, {"is_error", run.is_error}};
      if (run.has_result) {
        auto result = put(Scrub(run.result));
        if (!result.ok()) return result.status();
        entry["result"] = *result;
      } else {
        entry["result"] = nullptr;
      }
      code_runs.push_back(std::move(entry));
    }
    auto final_text = put(Scrub(interaction.FinalText()));
    if (!final_text.ok()) return final_text.status();
    record["final_text"] = *final_text;
    for (const wire::Step& step : interaction.steps) {
      if (step.type != "model_output") continue;
      for (const wire::ContentBlock& block : step.content) {
        if (block.type != "image" || block.data.empty()) continue;
        auto bytes = wire::Base64Decode(block.data);
        if (!bytes.ok()) continue;  // the parser skipped it too
        auto image = put(std::string(bytes->begin(), bytes->end()));
        if (!image.ok()) return image.status();
        images.push_back({{"blob", *image}, {"mime_type", block.mime_type}});
      }
    }
  } else {
    record["interaction_id"] = nullptr;
    record["interaction_status"] = nullptr;
    record["final_text"] = nullptr;
  }
  record["code_runs"] = std::move(code_runs);
  record["images"] = std::move(images);
  record["answer"] = std::move(call.answer);
  record["dropped_before"] = dropped_before;

  RecordFile& active = files_.back();
  const std::string line = Scrub(record.dump()) + "\n";
  {
    std::ofstream out(active.path, std::ios::binary | std::ios::app);
    out << line;
    out.flush();
    if (!out) return InternalError("audit: cannot append to '" + active.path + "'");
  }
  active.bytes += line.size();
  active.weight += line.size();
  total_bytes_ += line.size();
  Shrink();
  return OkStatus();
}

void AuditLog::StartRecordFile() {
  RecordFile file;
  file.path = (fs::path(options_.dir) / RecordFileName(next_file_number_++)).string();
  files_.push_back(std::move(file));
}

Status AuditLog::RollIfFull() {
  // An eighth of the bound per file: deleting the oldest frees a useful share, and the trail
  // keeps most of its budget's worth of history.
  const std::uint64_t roll_at = std::max<std::uint64_t>(options_.max_bytes / 8, 1);
  if (files_.back().weight < roll_at || files_.back().bytes == 0) return OkStatus();
  StartRecordFile();
  return OkStatus();
}

void AuditLog::Shrink() {
  while (total_bytes_ > options_.max_bytes && files_.size() > 1) DeleteFile(0);
}

void AuditLog::DeleteFile(std::size_t index) {
  RecordFile file = std::move(files_[index]);
  files_.erase(files_.begin() + static_cast<std::ptrdiff_t>(index));
  std::error_code ec;
  fs::remove(file.path, ec);
  total_bytes_ -= std::min(total_bytes_, file.bytes);
  for (const std::string& hash : file.blobs) {
    auto it = blob_refs_.find(hash);
    if (it == blob_refs_.end() || --it->second > 0) continue;
    blob_refs_.erase(it);
    fs::remove(BlobPath(options_.dir, hash), ec);
    total_bytes_ -= std::min(total_bytes_, blob_size_[hash]);
    blob_size_.erase(hash);
  }
  std::lock_guard lock(mu_);
  ++stats_.files_deleted;
}

StatusOr<std::vector<json>> ReadAuditRecords(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return NotFoundError("'" + dir + "' is not an audit directory (no such directory)");
  }
  const std::vector<fs::path> files = RecordFiles(dir);
  if (files.empty()) {
    return NotFoundError("'" + dir + "' is not an audit directory (no records-*.jsonl in it)");
  }
  std::vector<json> records;
  for (const fs::path& path : files) {
    for (json& record : ReadLines(path)) records.push_back(std::move(record));
  }
  return records;
}

StatusOr<std::string> ReadAuditBlob(const std::string& dir, const std::string& hash) {
  if (!IsHash(hash)) return Status(StatusCode::kDataLoss, "audit: bad blob name '" + hash + "'");
  const fs::path path = BlobPath(dir, hash);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(StatusCode::kDataLoss, "audit: blob " + hash + " is missing");
  std::ostringstream content;
  content << in.rdbuf();
  std::string bytes = content.str();
  if (Sha256Hex(bytes) != hash) {
    return Status(StatusCode::kDataLoss, "audit: blob " + hash + " does not match its hash");
  }
  return bytes;
}

}  // namespace roilens
