// Rollover of results.jsonl and the annotated video by size or age (output.rotate).
#include "roilens/outputs/rotating_sink.h"

#include <cctype>
#include <cstdio>
#include <ctime>
#include <filesystem>

namespace roilens {
namespace {

namespace fs = std::filesystem;

WallClock OrSystemClock(WallClock clock) {
  if (clock) return clock;
  return [] { return std::chrono::system_clock::now(); };
}

}  // namespace

RotationPolicy::RotationPolicy(RotateConfig config, WallClock clock)
    : config_(config), clock_(OrSystemClock(std::move(clock))), started_(clock_()) {}

bool RotationPolicy::Due(std::uint64_t bytes) const {
  if (bytes == 0 || !enabled()) return false;
  if (config_.max_bytes > 0 && bytes >= config_.max_bytes) return true;
  return config_.max_seconds > 0 &&
         std::chrono::duration<double>(clock_() - started_).count() >= config_.max_seconds;
}

void RotationPolicy::Restart() { started_ = clock_(); }

std::string RotatedName(const std::string& path, int sequence,
                        std::chrono::system_clock::time_point began) {
  const fs::path p(path);
  const std::time_t t = std::chrono::system_clock::to_time_t(began);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  char seq[16];
  std::snprintf(seq, sizeof seq, "%06d", sequence);
  return (p.parent_path() / (p.stem().string() + "-" + seq + "-" + stamp + p.extension().string()))
      .string();
}

bool IsRotatedName(const std::string& name, const std::string& base) {
  const fs::path b(base);
  const std::string prefix = b.stem().string() + "-";
  const std::string ext = b.extension().string();
  // stem-NNNNNN-YYYYMMDDTHHMMSSZ.ext
  constexpr std::size_t kMiddle = 6 + 1 + 16;
  if (name.size() != prefix.size() + kMiddle + ext.size()) return false;
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  if (name.compare(name.size() - ext.size(), ext.size(), ext) != 0) return false;
  const std::string middle = name.substr(prefix.size(), kMiddle);
  for (std::size_t i = 0; i < middle.size(); ++i) {
    const char c = middle[i];
    const bool ok = i == 6    ? c == '-'
                    : i == 15 ? c == 'T'
                    : i == 22 ? c == 'Z'
                              : std::isdigit(static_cast<unsigned char>(c)) != 0;
    if (!ok) return false;
  }
  return true;
}

StatusOr<std::unique_ptr<RotatingResultsWriter>> RotatingResultsWriter::Open(
    const std::string& path, RotateConfig config, WallClock clock, std::uint64_t keep_bytes) {
  auto writer = ResultsWriter::Open(path, keep_bytes);
  if (!writer.ok()) return writer.status();
  return std::unique_ptr<RotatingResultsWriter>(new RotatingResultsWriter(
      path, RotationPolicy(config, std::move(clock)), std::move(*writer)));
}

Status RotatingResultsWriter::WriteFrame(const std::vector<RoiResult>& results) {
  std::vector<nlohmann::json> lines;
  lines.reserve(results.size());
  for (const RoiResult& result : results) lines.push_back(ToJson(result));
  return WriteFrame(lines);
}

Status RotatingResultsWriter::WriteFrame(const std::vector<nlohmann::json>& lines) {
  if (policy_.Due(writer_->bytes())) {
    if (Status s = writer_->Sync(); !s.ok()) return s;
    writer_.reset();  // closes the file
    const std::string target =
        RotatedName(path_, static_cast<int>(rotated_.size()) + 1, policy_.started());
    std::error_code ec;
    fs::rename(path_, target, ec);
    if (ec) return InternalError("cannot roll '" + path_ + "' over: " + ec.message());
    rotated_.push_back(target);
    policy_.Restart();
    auto reopened = ResultsWriter::Open(path_);
    if (!reopened.ok()) return reopened.status();
    writer_ = std::move(*reopened);
  }
  return writer_->WriteFrame(lines);
}

VideoRotator::VideoRotator(std::string video_path, double fps, RotateConfig config, WallClock clock)
    : video_path_(std::move(video_path)), fps_(fps), policy_(config, std::move(clock)) {}

std::vector<std::string> ExistingFiles(const std::vector<std::string>& paths) {
  std::vector<std::string> existing;
  std::error_code ec;
  for (const auto& path : paths) {
    if (fs::exists(path, ec)) existing.push_back(path);
  }
  return existing;
}

StatusOr<std::string> VideoRotator::MaybeRoll(const std::vector<std::string>& segments) {
  const std::vector<std::string> closed_segments = ExistingFiles(segments);
  std::uint64_t bytes = 0;
  std::error_code ec;
  for (const auto& segment : closed_segments) bytes += fs::file_size(segment, ec);
  if (closed_segments.empty() || !policy_.Due(bytes)) return std::string();
  const std::string target =
      RotatedName(video_path_, static_cast<int>(rotated_.size()) + 1, policy_.started());
  std::string method;
  if (Status s = ConcatSegments(closed_segments, target, fps_, &method); !s.ok()) return s;
  for (const auto& segment : closed_segments) fs::remove(segment, ec);
  rotated_.push_back(target);
  policy_.Restart();
  return target;
}

}  // namespace roilens
