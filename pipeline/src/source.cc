// Frame sources on cv::VideoCapture (video, camera, stream) and cv::imread (images).
#include "roilens/source.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <deque>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include "roilens/frame_pool.h"

namespace roilens {
namespace {

namespace fs = std::filesystem;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// Video file, camera or stream: frames from cv::VideoCapture.
class CaptureSource final : public FrameSource {
 public:
  CaptureSource(SourceInfo info, cv::VideoCapture capture, cv::Mat first)
      : info_(std::move(info)), capture_(std::move(capture)), start_(Clock::now()) {
    pending_.push_back(std::move(first));
  }

  const SourceInfo& info() const override { return info_; }

  std::optional<FrameInput> Next() override {
    if (pending_.empty() && !ReadMore()) return std::nullopt;
    FrameInput frame;
    frame.index = next_index_++;
    frame.time_s = info_.kind == SourceKind::kVideoFile
                       ? static_cast<double>(frame.index) / info_.fps
                       : std::chrono::duration<double>(Clock::now() - start_).count();
    frame.bgr = std::move(pending_.front());
    pending_.pop_front();
    return frame;
  }

  Status Skip(std::int64_t count) override {
    for (std::int64_t i = 0; i < count; ++i) {
      if (!pending_.empty()) {
        pending_.pop_front();
      } else if (!capture_.grab()) {
        return Status(StatusCode::kOutOfRange, "input '" + info_.input + "' ended after " +
                                                   std::to_string(next_index_) + " frames");
      }
      ++next_index_;
    }
    return OkStatus();
  }

 private:
  using Clock = std::chrono::steady_clock;

  /// Reads the next frame into pending_. A failed read is only an unreadable frame if a later
  /// read succeeds (a video file with frames left); trailing failures are the end of the input.
  bool ReadMore() {
    if (ended_) return false;
    // Consecutive failures tolerated before the input is considered finished.
    constexpr int kMaxConsecutiveFailures = 8;
    int failures = 0;
    while (true) {
      cv::Mat frame = FramePool::NewMat();  // decoded into a recycled buffer
      if (capture_.read(frame) && !frame.empty()) {
        for (int i = 0; i < failures; ++i) pending_.emplace_back();  // unreadable frames
        pending_.push_back(std::move(frame));
        return true;
      }
      ++failures;
      const bool frames_left =
          info_.total_frames > 0 && next_index_ + failures < info_.total_frames;
      if (!frames_left || failures >= kMaxConsecutiveFailures) {
        ended_ = true;
        return false;
      }
    }
  }

  SourceInfo info_;
  cv::VideoCapture capture_;
  std::deque<cv::Mat> pending_;
  std::int64_t next_index_ = 0;
  bool ended_ = false;
  Clock::time_point start_;
};

/// One image file or a folder of them.
class ImageSource final : public FrameSource {
 public:
  ImageSource(SourceInfo info, std::vector<fs::path> files)
      : info_(std::move(info)), files_(std::move(files)) {}

  const SourceInfo& info() const override { return info_; }

  std::optional<FrameInput> Next() override {
    if (next_ >= files_.size()) return std::nullopt;
    FrameInput frame;
    frame.index = static_cast<std::int64_t>(next_);
    frame.time_s = static_cast<double>(next_);
    frame.source = files_[next_].filename().string();
    frame.bgr = cv::imread(files_[next_].string(), cv::IMREAD_COLOR);  // empty when unreadable
    ++next_;
    return frame;
  }

  Status Skip(std::int64_t count) override {
    if (next_ + count > files_.size()) {
      return Status(StatusCode::kOutOfRange, "input '" + info_.input + "' has only " +
                                                 std::to_string(files_.size()) + " images");
    }
    next_ += static_cast<std::size_t>(count);
    return OkStatus();
  }

 private:
  SourceInfo info_;
  std::vector<fs::path> files_;
  std::size_t next_ = 0;
};

StatusOr<std::unique_ptr<FrameSource>> OpenImages(const std::string& input,
                                                  std::vector<fs::path> files, SourceKind kind) {
  if (files.empty()) {
    return InvalidArgumentError("input '" + input + "': folder holds no image files");
  }
  std::sort(files.begin(), files.end());
  SourceInfo info;
  info.kind = kind;
  info.input = input;
  info.fps = 1;
  info.total_frames = static_cast<std::int64_t>(files.size());
  // The first readable image gives the frame size; unreadable ones become error lines later.
  for (const auto& file : files) {
    cv::Mat first = cv::imread(file.string(), cv::IMREAD_COLOR);
    if (!first.empty()) {
      info.frame_size = first.size();
      break;
    }
  }
  if (info.frame_size.area() == 0) {
    return InvalidArgumentError(
        "input '" + input + "': " +
        (kind == SourceKind::kImageFile ? "not a readable image" : "no readable image in folder"));
  }
  return std::unique_ptr<FrameSource>(std::make_unique<ImageSource>(info, std::move(files)));
}

}  // namespace

bool IsImagePath(const std::string& path) {
  static const char* const kExtensions[] = {".png",  ".jpg",  ".jpeg", ".bmp", ".tif",
                                            ".tiff", ".webp", ".ppm",  ".pgm", ".jp2"};
  const std::string ext = Lower(fs::path(path).extension().string());
  return std::any_of(std::begin(kExtensions), std::end(kExtensions),
                     [&](const char* e) { return ext == e; });
}

StatusOr<std::unique_ptr<FrameSource>> FrameSource::Open(const std::string& input) {
  if (input.empty()) return InvalidArgumentError("input is empty");
  SourceInfo info;
  info.input = input;
  cv::VideoCapture capture;
  const bool digits =
      std::all_of(input.begin(), input.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
  if (digits && !fs::exists(input)) {
    info.kind = SourceKind::kCamera;
    if (!capture.open(std::stoi(input))) {
      return InvalidArgumentError("input '" + input + "': camera cannot be opened");
    }
  } else if (input.find("://") != std::string::npos) {
    info.kind = SourceKind::kStream;
    if (!capture.open(input, cv::CAP_FFMPEG)) {
      return InvalidArgumentError("input '" + input + "': stream cannot be opened");
    }
  } else {
    std::error_code ec;
    if (!fs::exists(input, ec)) {
      return NotFoundError("input '" + input + "': no such file or directory");
    }
    if (fs::is_directory(input, ec)) {
      std::vector<fs::path> files;
      for (const auto& entry : fs::directory_iterator(input, ec)) {
        if (entry.is_regular_file() && IsImagePath(entry.path().string())) {
          files.push_back(entry.path());
        }
      }
      return OpenImages(input, std::move(files), SourceKind::kImageFolder);
    }
    if (IsImagePath(input)) return OpenImages(input, {fs::path(input)}, SourceKind::kImageFile);
    info.kind = SourceKind::kVideoFile;
    if (!capture.open(input, cv::CAP_FFMPEG)) {
      return InvalidArgumentError("input '" + input + "': not a readable video or image");
    }
  }
  cv::Mat first;
  if (!capture.read(first) || first.empty()) {
    return InvalidArgumentError("input '" + input + "': no frame could be decoded");
  }
  info.frame_size = first.size();
  info.fps = capture.get(cv::CAP_PROP_FPS);
  if (!(info.fps > 0 && info.fps < 1000)) info.fps = 25;  // unknown: a common camera rate
  if (info.kind == SourceKind::kVideoFile) {
    const double count = capture.get(cv::CAP_PROP_FRAME_COUNT);
    info.total_frames = count > 0 ? static_cast<std::int64_t>(count) : -1;
  }
  return std::unique_ptr<FrameSource>(
      std::make_unique<CaptureSource>(std::move(info), std::move(capture), std::move(first)));
}

}  // namespace roilens
