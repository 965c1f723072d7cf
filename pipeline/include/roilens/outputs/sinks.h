// Output sinks of a run: results.jsonl, the annotated video (written as closed segments so an
// interrupted run keeps everything it finished), and annotated images.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>
#include <string>
#include <vector>

#include "roilens/client/status.h"
#include "roilens/config/config.h"
#include "roilens/outputs/av_video.h"
#include "roilens/stages/roi_result.h"

namespace roilens {

/// Writes results.jsonl: one JSON object a line, flushed after every frame so readers see
/// progress; Sync() makes it durable (fsync) before a journal checkpoint refers to it.
/// Not thread-safe.
class ResultsWriter {
 public:
  /// Opens `path` keeping its first `keep_bytes` bytes (resume; 0 = start empty).
  static StatusOr<std::unique_ptr<ResultsWriter>> Open(const std::string& path,
                                                       std::uint64_t keep_bytes = 0);
  ~ResultsWriter();
  ResultsWriter(const ResultsWriter&) = delete;
  ResultsWriter& operator=(const ResultsWriter&) = delete;

  /// Appends one frame's lines and flushes them to the OS.
  Status WriteFrame(const std::vector<nlohmann::json>& lines);
  /// Appends one frame's results, each line ToJson(result).
  Status WriteFrame(const std::vector<RoiResult>& results);
  /// fsync: everything written so far survives a crash.
  Status Sync();
  /// Bytes in the file (the resume offset after the last written frame).
  std::uint64_t bytes() const { return bytes_; }

 private:
  ResultsWriter(std::string path, std::FILE* file, std::uint64_t bytes)
      : path_(std::move(path)), file_(file), bytes_(bytes) {}
  std::string path_;
  std::FILE* file_;
  std::uint64_t bytes_;
};

/// Opens a cv::VideoWriter for an .mp4, trying H.264 ('avc1') first, then MPEG-4 Part 2 ('mp4v').
/// `fourcc` receives the one that opened.
StatusOr<std::unique_ptr<cv::VideoWriter>> OpenMp4Writer(const std::string& path, double fps,
                                                         cv::Size size, std::string* fourcc);

/// The annotated video as numbered segment files in `dir` (segment-000000.mp4, ...). A segment
/// is closed and fsynced by CloseSegment(), after which it is a complete playable file, so a run
/// killed at any moment loses only the open segment. Frames of another size are resized; an empty
/// frame (unreadable input frame) is written as a black frame, so the video keeps every frame.
/// Not thread-safe.
class SegmentedVideoWriter {
 public:
  struct Options {
    std::string dir;
    double fps = 10;
    cv::Size size;
    int first_segment = 0;  ///< number of the first segment written (resume continues)
    /// video_backend and video_encoder choose and tune the encoder (libav by default).
    OutputConfig output;
  };
  explicit SegmentedVideoWriter(Options options) : options_(std::move(options)) {}

  Status Write(const cv::Mat& frame);
  /// Closes the open segment (no-op when none is open) and makes it durable.
  Status CloseSegment();
  /// Every closed segment so far, including those of earlier runs (numbers below first_segment).
  std::vector<std::string> Segments() const;
  /// The encoder that opened ("libav libx264 veryfast crf 23", "opencv avc1", ...); empty
  /// before the first frame.
  const std::string& encoder() const { return encoder_; }
  static std::string SegmentPath(const std::string& dir, int number);

 private:
  Options options_;
  std::unique_ptr<FrameWriter> writer_;
  std::string open_path_;
  int next_segment_ = -1;
  std::string encoder_;
};

/// Joins segment files into `out`, in order, with the index at the front (faststart): by stream
/// copy in-process with libavformat (no re-encoding, no ffmpeg program), or, when the segments
/// cannot be remuxed (another codec or size), by decoding and re-encoding with OpenCV. The
/// segments are left in place (an unfinished run may still be resumed; callers remove them).
/// `method` receives "libav stream copy" or "opencv re-encode (FOURCC)".
Status ConcatSegments(const std::vector<std::string>& segments, const std::string& out, double fps,
                      std::string* method);

/// Frames in a video file, counted by decoding (the container's count can be an estimate).
StatusOr<std::int64_t> CountVideoFrames(const std::string& path);

/// fsyncs a file (and, for directories, their entries).
Status SyncPath(const std::string& path);

}  // namespace roilens
