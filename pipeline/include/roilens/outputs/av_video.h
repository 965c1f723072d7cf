// Video output on FFmpeg's libraries (libavcodec, libavformat, libswscale): an H.264/MP4 writer
// with the encoder options OpenCV's VideoWriter does not expose, segment joining by stream copy
// inside the process, and a probe that tells a complete segment from one cut by a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "roilens/client/status.h"
#include "roilens/config/config.h"

namespace roilens {

/// Writes frames to one video file. Implementations: libav (AvVideoWriter) and OpenCV's
/// cv::VideoWriter (the fallback). Not thread-safe.
class FrameWriter {
 public:
  virtual ~FrameWriter() = default;
  /// `bgr` is CV_8UC3 of the size the writer was opened with.
  virtual Status Write(const cv::Mat& bgr) = 0;
  /// Flushes the encoder and finishes the file; further writes fail. Idempotent.
  virtual Status Close() = 0;
  /// What encodes, for logs and summary.json: "libav libx264 veryfast crf 23", "opencv avc1".
  virtual std::string description() const = 0;
};

/// An H.264 (or the configured codec) MP4 writer on libavcodec/libavformat. Frames are converted
/// from BGR with one reused swscale context into one reused AVFrame; time stamps are frame
/// numbers at `fps`. With `faststart` the index (moov) is moved before the media data on Close,
/// so a browser plays the file while it downloads.
class AvVideoWriter : public FrameWriter {
 public:
  static StatusOr<std::unique_ptr<AvVideoWriter>> Open(const std::string& path, cv::Size size,
                                                       double fps,
                                                       const VideoEncoderConfig& options,
                                                       bool faststart);
  ~AvVideoWriter() override;
  AvVideoWriter(const AvVideoWriter&) = delete;
  AvVideoWriter& operator=(const AvVideoWriter&) = delete;

  Status Write(const cv::Mat& bgr) override;
  Status Close() override;
  std::string description() const override { return description_; }

 private:
  struct State;
  explicit AvVideoWriter(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
  std::string description_;
};

/// Opens the writer `config.video_backend` names ("ffmpeg": AvVideoWriter; "opencv":
/// cv::VideoWriter trying avc1 then mp4v). An ffmpeg writer that cannot open (codec missing)
/// falls back to OpenCV; `description()` says which one is writing.
StatusOr<std::unique_ptr<FrameWriter>> OpenFrameWriter(const std::string& path, cv::Size size,
                                                       double fps, const OutputConfig& config,
                                                       bool faststart);

/// Joins video files with identical codec parameters into `out` by stream copy (no re-encoding),
/// in order, time stamps continued across files, with the index at the front when `faststart`.
/// Fails, naming the file, when a segment cannot be read or its codec differs from the first.
Status RemuxConcat(const std::vector<std::string>& segments, const std::string& out,
                   bool faststart);

/// What a video file holds, read from its container (no decoding).
struct VideoProbe {
  std::string codec;        ///< "h264", "mpeg4", ...
  std::int64_t frames = 0;  ///< video packets (= frames for these codecs)
  double duration_s = 0;    ///< from the video stream's time stamps
  cv::Size size;
  bool faststart = false;  ///< MP4: the 'moov' box comes before 'mdat'
};

/// Probes `path`; an error (naming the file) when it is not a complete, readable video, e.g. an
/// MP4 segment cut off by kill -9 before its index was written.
StatusOr<VideoProbe> ProbeVideo(const std::string& path);

}  // namespace roilens
