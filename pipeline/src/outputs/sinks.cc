// results.jsonl writer, segmented annotated video and segment joining.
#include "roilens/outputs/sinks.h"

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <opencv2/imgproc.hpp>

namespace roilens {
namespace {

namespace fs = std::filesystem;

Status ErrnoError(const std::string& what) {
  return InternalError(what + ": " + std::strerror(errno));
}

}  // namespace

Status SyncPath(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return ErrnoError("cannot open '" + path + "' to sync");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoError("cannot sync '" + path + "'");
  return OkStatus();
}

StatusOr<std::unique_ptr<ResultsWriter>> ResultsWriter::Open(const std::string& path,
                                                             std::uint64_t keep_bytes) {
  std::error_code ec;
  if (keep_bytes > 0) {
    const auto size = fs::file_size(path, ec);
    if (ec || size < keep_bytes) {
      return Status(StatusCode::kDataLoss, "results file '" + path + "' is shorter than the " +
                                               std::to_string(keep_bytes) +
                                               " bytes the journal recorded");
    }
    fs::resize_file(path, keep_bytes, ec);
    if (ec) return InternalError("cannot truncate '" + path + "': " + ec.message());
  }
  std::FILE* file = std::fopen(path.c_str(), keep_bytes > 0 ? "ab" : "wb");
  if (!file) return ErrnoError("cannot open results file '" + path + "'");
  return std::unique_ptr<ResultsWriter>(new ResultsWriter(path, file, keep_bytes));
}

ResultsWriter::~ResultsWriter() {
  if (file_) std::fclose(file_);
}

Status ResultsWriter::WriteFrame(const std::vector<nlohmann::json>& lines) {
  std::string text;
  for (const auto& line : lines) {
    text += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text += '\n';
  }
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size() || std::fflush(file_) != 0) {
    return ErrnoError("cannot write results file '" + path_ + "'");
  }
  bytes_ += text.size();
  return OkStatus();
}

Status ResultsWriter::WriteFrame(const std::vector<RoiResult>& results) {
  std::vector<nlohmann::json> lines;
  lines.reserve(results.size());
  for (const RoiResult& result : results) lines.push_back(ToJson(result));
  return WriteFrame(lines);
}

Status ResultsWriter::Sync() {
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) {
    return ErrnoError("cannot sync results file '" + path_ + "'");
  }
  return OkStatus();
}

StatusOr<std::unique_ptr<cv::VideoWriter>> OpenMp4Writer(const std::string& path, double fps,
                                                         cv::Size size, std::string* fourcc) {
  for (const char* codec : {"avc1", "mp4v"}) {
    auto writer = std::make_unique<cv::VideoWriter>();
    if (writer->open(path, cv::CAP_FFMPEG,
                     cv::VideoWriter::fourcc(codec[0], codec[1], codec[2], codec[3]), fps, size)) {
      if (fourcc) *fourcc = codec;
      return writer;
    }
  }
  return UnavailableError("cannot open a video writer for '" + path +
                          "' (neither avc1 nor mp4v encoder is available)");
}

std::string SegmentedVideoWriter::SegmentPath(const std::string& dir, int number) {
  char name[32];
  std::snprintf(name, sizeof name, "segment-%06d.mp4", number);
  return (fs::path(dir) / name).string();
}

Status SegmentedVideoWriter::Write(const cv::Mat& frame) {
  if (!writer_) {
    if (next_segment_ < 0) next_segment_ = options_.first_segment;
    open_path_ = SegmentPath(options_.dir, next_segment_);
    // Segments are intermediate files: the joined video gets the index at the front.
    auto writer = OpenFrameWriter(open_path_, options_.size, options_.fps, options_.output,
                                  /*faststart=*/false);
    if (!writer.ok()) return writer.status();
    writer_ = std::move(*writer);
    encoder_ = writer_->description();
  }
  if (frame.empty()) {
    return writer_->Write(cv::Mat(options_.size, CV_8UC3, cv::Scalar::all(0)));
  }
  if (frame.size() != options_.size) {
    cv::Mat resized;
    cv::resize(frame, resized, options_.size, 0, 0, cv::INTER_AREA);
    return writer_->Write(resized);
  }
  return writer_->Write(frame);
}

Status SegmentedVideoWriter::CloseSegment() {
  if (!writer_) return OkStatus();
  const Status closed = writer_->Close();
  writer_.reset();
  if (!closed.ok()) return closed;
    // The encoder just freed its buffers: 62-80 MB for x264 at 640x360 (lookahead frames),
    // measured with one VideoWriter per 250 frames. glibc keeps freed memory in the arenas, and the
    // next segment's encoder rarely lands on the same pages, so without this the process grew by
    // ~10 MiB every few segments of a long run (bench rss). Measured 4-14 ms per segment.
#ifdef __GLIBC__
  malloc_trim(0);
#endif
  ++next_segment_;
  return SyncPath(open_path_);
}

std::vector<std::string> SegmentedVideoWriter::Segments() const {
  const int end = next_segment_ < 0 ? options_.first_segment : next_segment_;
  std::vector<std::string> segments;
  for (int i = 0; i < end; ++i) segments.push_back(SegmentPath(options_.dir, i));
  return segments;
}

Status ConcatSegments(const std::vector<std::string>& segments, const std::string& out, double fps,
                      std::string* method) {
  if (segments.empty()) return InvalidArgumentError("no video segments to join into '" + out + "'");
  const Status remuxed = RemuxConcat(segments, out, /*faststart=*/true);
  if (remuxed.ok()) {
    if (method) *method = "libav stream copy";
    return OkStatus();
  }
  std::fprintf(stderr, "roilens: joining video segments by stream copy failed (%s); re-encoding\n",
               remuxed.message().c_str());
  // Fallback: decode every segment and encode one file.
  std::unique_ptr<cv::VideoWriter> writer;
  std::string fourcc;
  cv::Size first_size;
  for (const auto& segment : segments) {
    cv::VideoCapture capture(segment, cv::CAP_FFMPEG);
    if (!capture.isOpened()) return InternalError("cannot read video segment '" + segment + "'");
    cv::Mat frame;
    while (capture.read(frame)) {
      if (!writer) {
        first_size = frame.size();
        auto opened = OpenMp4Writer(out, fps, frame.size(), &fourcc);
        if (!opened.ok()) return opened.status();
        writer = std::move(*opened);
      }
      if (frame.size() != first_size) {
        // cv::VideoWriter drops frames of another size without a word.
        cv::resize(frame, frame, first_size, 0, 0, cv::INTER_AREA);
      }
      writer->write(frame);
    }
  }
  if (!writer) return InternalError("video segments hold no frames");
  writer->release();
  if (method) *method = "opencv re-encode (" + fourcc + ")";
  return OkStatus();
}

StatusOr<std::int64_t> CountVideoFrames(const std::string& path) {
  cv::VideoCapture capture(path, cv::CAP_FFMPEG);
  if (!capture.isOpened()) return InvalidArgumentError("cannot open video '" + path + "'");
  std::int64_t frames = 0;
  while (capture.grab()) ++frames;
  return frames;
}

}  // namespace roilens
