// Frame sources on libav (video files; av_source.cc), cv::VideoCapture (cameras, streams, video
// files libav cannot open) and cv::imread (images), with the input pixel cap checked from image
// headers before anything is decoded.
#include "roilens/stages/source.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <sstream>

#include "roilens/stages/frame_pool.h"
#include "stages/av_source.h"

namespace roilens {
namespace internal {

std::string TooLargeMessage(const std::string& name, std::int64_t width, std::int64_t height,
                            std::int64_t max_pixels, const char* what) {
  std::ostringstream text;
  text.precision(3);
  text << "input '" << name << "' " << what << " " << width << "x" << height << " pixels ("
       << static_cast<double>(width) * static_cast<double>(height) / 1e6
       << " MP), more than pipeline.max_input_pixels (" << max_pixels
       << "); refused before decoding. Raise pipeline.max_input_pixels or shrink the input";
  return text.str();
}

bool TooLarge(std::int64_t width, std::int64_t height, std::int64_t max_pixels) {
  // Each side fits in 32 bits, so the product fits in 64.
  return width > 0 && height > 0 && width * height > max_pixels;
}

}  // namespace internal

namespace {

namespace fs = std::filesystem;
using internal::TooLarge;
using internal::TooLargeMessage;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::uint32_t Be16(const unsigned char* p) { return (std::uint32_t{p[0]} << 8) | p[1]; }
std::uint32_t Le16(const unsigned char* p) { return (std::uint32_t{p[1]} << 8) | p[0]; }
std::uint32_t Be32(const unsigned char* p) { return (Be16(p) << 16) | Be16(p + 2); }
std::uint32_t Le32(const unsigned char* p) { return (Le16(p + 2) << 16) | Le16(p); }
std::uint32_t Le24(const unsigned char* p) { return (std::uint32_t{p[2]} << 16) | Le16(p); }

/// JPEG: the frame header (SOFn) holds the size; walk the segments before it by their lengths
/// (EXIF and ICC segments can make it lie well past the first kilobytes).
std::optional<ImageHeader> JpegHeader(std::istream& in) {
  in.seekg(2);  // past SOI
  for (int segments = 0; segments < 4096; ++segments) {
    int byte = in.get();
    if (byte != 0xFF) return std::nullopt;
    while (byte == 0xFF) byte = in.get();  // fill bytes
    if (byte == EOF) return std::nullopt;
    const int marker = byte;
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;
    if (marker == 0xD9 || marker == 0xDA) return std::nullopt;  // end or scan before any SOF
    unsigned char length_bytes[2];
    if (!in.read(reinterpret_cast<char*>(length_bytes), 2)) return std::nullopt;
    const std::uint32_t length = Be16(length_bytes);
    if (length < 2) return std::nullopt;
    const bool frame_header =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (frame_header) {
      unsigned char sof[5];  // precision, height, width
      if (length < 7 || !in.read(reinterpret_cast<char*>(sof), 5)) return std::nullopt;
      const std::uint32_t height = Be16(sof + 1), width = Be16(sof + 3);
      if (height == 0 || width == 0) return std::nullopt;  // height 0: given later (DNL)
      return ImageHeader{"JPEG", width, height};
    }
    in.seekg(length - 2, std::ios::cur);
  }
  return std::nullopt;
}

/// PNM (P1..P6): magic, then width and height as text, with '#' comments between tokens.
std::optional<ImageHeader> PnmHeader(const std::string& head) {
  std::int64_t values[2] = {0, 0};
  std::size_t pos = 2;
  for (std::int64_t& value : values) {
    while (pos < head.size() &&
           (std::isspace(static_cast<unsigned char>(head[pos])) || head[pos] == '#')) {
      if (head[pos] == '#') {
        while (pos < head.size() && head[pos] != '\n') ++pos;
      } else {
        ++pos;
      }
    }
    const std::size_t start = pos;
    while (pos < head.size() && std::isdigit(static_cast<unsigned char>(head[pos])) &&
           pos - start < 12) {
      value = value * 10 + (head[pos++] - '0');
    }
    if (pos == start) return std::nullopt;
  }
  return ImageHeader{"PNM", values[0], values[1]};
}

/// TIFF: the first IFD's ImageWidth (256) and ImageLength (257) entries.
std::optional<ImageHeader> TiffHeader(std::istream& in, bool little_endian) {
  auto u16 = [&](const unsigned char* p) { return little_endian ? Le16(p) : Be16(p); };
  auto u32 = [&](const unsigned char* p) { return little_endian ? Le32(p) : Be32(p); };
  unsigned char buffer[12];
  in.seekg(4);
  if (!in.read(reinterpret_cast<char*>(buffer), 4)) return std::nullopt;
  in.seekg(u32(buffer));
  if (!in.read(reinterpret_cast<char*>(buffer), 2)) return std::nullopt;
  const std::uint32_t entries = std::min<std::uint32_t>(u16(buffer), 4096);
  std::int64_t width = 0, height = 0;
  for (std::uint32_t i = 0; i < entries && (width == 0 || height == 0); ++i) {
    if (!in.read(reinterpret_cast<char*>(buffer), 12)) return std::nullopt;
    const std::uint32_t tag = u16(buffer), type = u16(buffer + 2);
    if (tag != 256 && tag != 257) continue;
    const std::int64_t value = type == 3 ? u16(buffer + 8) : type == 4 ? u32(buffer + 8) : 0;
    (tag == 256 ? width : height) = value;
  }
  if (width == 0 || height == 0) return std::nullopt;
  return ImageHeader{"TIFF", width, height};
}

/// Decodes one image file, refusing it before decoding when its header gives more than
/// `max_pixels`. OpenCV's own failures (its size limits assert) become errors naming the file.
StatusOr<cv::Mat> ReadImage(const fs::path& path, std::int64_t max_pixels) {
  const std::string name = path.string();
  if (auto header = ReadImageHeader(name);
      header && TooLarge(header->width, header->height, max_pixels)) {
    return InvalidArgumentError(
        TooLargeMessage(name, header->width, header->height, max_pixels, "is"));
  }
  cv::Mat image;
  try {
    image = cv::imread(name, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    return InvalidArgumentError("input '" + name + "': not a readable image (" + e.err + ")");
  }
  if (image.empty()) return InvalidArgumentError("input '" + name + "': not a readable image");
  // A format whose header was not read: the cap still holds for what comes out.
  if (TooLarge(image.cols, image.rows, max_pixels)) {
    return InvalidArgumentError(TooLargeMessage(name, image.cols, image.rows, max_pixels, "is"));
  }
  return image;
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
  ImageSource(SourceInfo info, std::vector<fs::path> files, std::int64_t max_pixels)
      : info_(std::move(info)), files_(std::move(files)), max_pixels_(max_pixels) {}

  const SourceInfo& info() const override { return info_; }

  std::optional<FrameInput> Next() override {
    if (next_ >= files_.size()) return std::nullopt;
    FrameInput frame;
    frame.index = static_cast<std::int64_t>(next_);
    frame.time_s = static_cast<double>(next_);
    frame.source = files_[next_].filename().string();
    auto image = ReadImage(files_[next_], max_pixels_);
    if (image.ok()) {
      frame.bgr = std::move(*image);
    } else {
      frame.error = image.status().message();  // the frame's lines say which file and why
    }
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
  std::int64_t max_pixels_;
  std::size_t next_ = 0;
};

StatusOr<std::unique_ptr<FrameSource>> OpenImages(const std::string& input,
                                                  std::vector<fs::path> files, SourceKind kind,
                                                  std::int64_t max_pixels) {
  if (files.empty()) {
    return InvalidArgumentError("input '" + input + "': folder holds no image files");
  }
  std::sort(files.begin(), files.end());
  SourceInfo info;
  info.kind = kind;
  info.input = input;
  info.fps = 1;
  info.decoder = "image";
  info.total_frames = static_cast<std::int64_t>(files.size());
  // The first usable image gives the frame size; the others become error lines later.
  Status first_error;
  for (const auto& file : files) {
    auto first = ReadImage(file, max_pixels);
    if (first.ok()) {
      info.frame_size = first->size();
      break;
    }
    if (first_error.ok()) first_error = first.status();
  }
  if (info.frame_size.area() == 0) {
    if (kind == SourceKind::kImageFile) return first_error;  // names the file and why
    return InvalidArgumentError(
        "input '" + input + "': no usable image in folder (first: " + first_error.message() + ")");
  }
  return std::unique_ptr<FrameSource>(
      std::make_unique<ImageSource>(info, std::move(files), max_pixels));
}

}  // namespace

bool IsImagePath(const std::string& path) {
  static const char* const kExtensions[] = {".png",  ".jpg",  ".jpeg", ".bmp", ".tif",
                                            ".tiff", ".webp", ".ppm",  ".pgm", ".jp2"};
  const std::string ext = Lower(fs::path(path).extension().string());
  return std::any_of(std::begin(kExtensions), std::end(kExtensions),
                     [&](const char* e) { return ext == e; });
}

std::optional<ImageHeader> ReadImageHeader(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::array<unsigned char, 64> head{};
  in.read(reinterpret_cast<char*>(head.data()), head.size());
  const auto n = static_cast<std::size_t>(in.gcount());
  in.clear();
  const unsigned char* h = head.data();
  auto starts = [&](const char* magic, std::size_t at = 0) {
    const std::size_t len = std::strlen(magic);
    return n >= at + len && std::memcmp(h + at, magic, len) == 0;
  };
  if (starts("\x89PNG\r\n\x1a\n") && starts("IHDR", 12) && n >= 24) {
    return ImageHeader{"PNG", Be32(h + 16), Be32(h + 20)};
  }
  if (n >= 3 && h[0] == 0xFF && h[1] == 0xD8 && h[2] == 0xFF) return JpegHeader(in);
  if (starts("BM") && n >= 26) {
    if (Le32(h + 14) == 12) return ImageHeader{"BMP", Le16(h + 18), Le16(h + 20)};  // OS/2
    const auto width = static_cast<std::int32_t>(Le32(h + 18));
    const auto height = static_cast<std::int32_t>(Le32(h + 22));  // negative: top-down rows
    return ImageHeader{"BMP", std::abs(std::int64_t{width}), std::abs(std::int64_t{height})};
  }
  if (n >= 3 && h[0] == 'P' && h[1] >= '1' && h[1] <= '6' &&
      std::isspace(static_cast<unsigned char>(h[2]))) {
    std::string text(4096, '\0');
    in.seekg(0);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    return PnmHeader(text);
  }
  if (starts("RIFF") && starts("WEBP", 8) && n >= 30) {
    if (starts("VP8 ", 12) && h[23] == 0x9D && h[24] == 0x01 && h[25] == 0x2A) {
      return ImageHeader{"WebP", Le16(h + 26) & 0x3FFF, Le16(h + 28) & 0x3FFF};
    }
    if (starts("VP8L", 12) && h[20] == 0x2F) {
      const std::uint32_t bits = Le32(h + 21);
      return ImageHeader{"WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
    }
    if (starts("VP8X", 12)) return ImageHeader{"WebP", Le24(h + 24) + 1, Le24(h + 27) + 1};
    return std::nullopt;
  }
  if (starts("II*") && n >= 4 && h[3] == 0) return TiffHeader(in, true);
  if (starts("MM") && n >= 4 && h[2] == 0 && h[3] == '*') return TiffHeader(in, false);
  return std::nullopt;
}

StatusOr<std::unique_ptr<FrameSource>> FrameSource::Open(const std::string& input,
                                                         const SourceOptions& options) {
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
      return OpenImages(input, std::move(files), SourceKind::kImageFolder,
                        options.max_input_pixels);
    }
    if (IsImagePath(input)) {
      return OpenImages(input, {fs::path(input)}, SourceKind::kImageFile, options.max_input_pixels);
    }
    info.kind = SourceKind::kVideoFile;
    if (options.decoder != "opencv") {
      bool may_fall_back = true;
      auto av = internal::OpenAvFrameSource(input, options, &may_fall_back);
      if (av.ok() || options.decoder == "ffmpeg" || !may_fall_back) return av;
      std::fprintf(stderr, "roilens: %s; decoding it with OpenCV instead\n",
                   av.status().message().c_str());
    }
    if (!capture.open(input, cv::CAP_FFMPEG)) {
      return InvalidArgumentError("input '" + input + "': not a readable video or image");
    }
  }
  // The stream's frame size, before the first frame is decoded; a check on that frame covers
  // inputs that do not say.
  const auto width = static_cast<std::int64_t>(capture.get(cv::CAP_PROP_FRAME_WIDTH));
  const auto height = static_cast<std::int64_t>(capture.get(cv::CAP_PROP_FRAME_HEIGHT));
  if (TooLarge(width, height, options.max_input_pixels)) {
    return InvalidArgumentError(
        TooLargeMessage(input, width, height, options.max_input_pixels, "has frames of"));
  }
  cv::Mat first;
  if (!capture.read(first) || first.empty()) {
    return InvalidArgumentError("input '" + input + "': no frame could be decoded");
  }
  if (TooLarge(first.cols, first.rows, options.max_input_pixels)) {
    return InvalidArgumentError(
        TooLargeMessage(input, first.cols, first.rows, options.max_input_pixels, "has frames of"));
  }
  info.frame_size = first.size();
  info.decoder = "opencv";
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
