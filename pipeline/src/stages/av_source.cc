// Video files decoded with FFmpeg's libraries: threaded decode, BGR through one cached swscale
// context into recycled buffers, and presentation times from the container (VFR keeps them).
#include "stages/av_source.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
}

#include <deque>

#include "roilens/stages/frame_pool.h"

namespace roilens::internal {
namespace {

std::string AvError(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, text, sizeof text);
  return text;
}

/// One frame the source will hand out, in order: a decoded frame (its pixels still in the
/// decoder's AVFrame, converted only when Next() takes it, so Skip() never converts) or a frame
/// that could not be decoded.
struct Pending {
  double time_s = 0;
  bool decoded = false;
};

class AvFrameSource final : public FrameSource {
 public:
  ~AvFrameSource() override {
    sws_freeContext(sws_);
    av_frame_free(&frame_);
    av_packet_free(&packet_);
    avcodec_free_context(&codec_);
    avformat_close_input(&format_);
  }

  /// Opens, checks the stream's size and decodes the first frame (see OpenAvFrameSource).
  static StatusOr<std::unique_ptr<FrameSource>> Open(const std::string& input,
                                                     const SourceOptions& options,
                                                     bool* may_fall_back) {
    *may_fall_back = true;
    // libav logs every concealed error to stderr; failures reach the caller as a Status instead.
    // Set at each open: OpenCV's videoio sets its own level when it first opens a file.
    av_log_set_level(AV_LOG_FATAL);
    auto source = std::unique_ptr<AvFrameSource>(new AvFrameSource());
    AvFrameSource& s = *source;
    s.info_.kind = SourceKind::kVideoFile;
    s.info_.input = input;
    auto fail = [&](const std::string& what, int code) {
      return InvalidArgumentError("input '" + input + "': " + what +
                                  (code < 0 ? " (libav: " + AvError(code) + ")" : ""));
    };
    if (int rc = avformat_open_input(&s.format_, input.c_str(), nullptr, nullptr); rc < 0) {
      return fail("not a readable video", rc);
    }
    if (int rc = avformat_find_stream_info(s.format_, nullptr); rc < 0) {
      return fail("not a readable video", rc);
    }
    const AVCodec* decoder = nullptr;
    s.stream_index_ = av_find_best_stream(s.format_, AVMEDIA_TYPE_VIDEO, -1, -1, &decoder, 0);
    if (s.stream_index_ < 0 || !decoder) return fail("no decodable video stream", s.stream_index_);
    for (unsigned i = 0; i < s.format_->nb_streams; ++i) {
      // Audio and data packets are dropped by the demuxer instead of being read and thrown away.
      if (static_cast<int>(i) != s.stream_index_) s.format_->streams[i]->discard = AVDISCARD_ALL;
    }
    AVStream* stream = s.format_->streams[s.stream_index_];
    const std::int64_t width = stream->codecpar->width, height = stream->codecpar->height;
    if (TooLarge(width, height, options.max_input_pixels)) {
      *may_fall_back = false;
      return InvalidArgumentError(
          TooLargeMessage(input, width, height, options.max_input_pixels, "has frames of"));
    }
    s.codec_ = avcodec_alloc_context3(decoder);
    s.frame_ = av_frame_alloc();
    s.packet_ = av_packet_alloc();
    if (!s.codec_ || !s.frame_ || !s.packet_) return fail("out of memory opening the decoder", 0);
    if (int rc = avcodec_parameters_to_context(s.codec_, stream->codecpar); rc < 0) {
      return fail("cannot set up the decoder", rc);
    }
    // 0: libavcodec picks a thread per core (plus one, at most 16). Frame threads decode
    // consecutive frames in parallel; each holds one frame in flight, so memory grows by a few
    // frames per thread, not with the input's length.
    s.codec_->thread_count = 0;
    s.codec_->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    if (int rc = avcodec_open2(s.codec_, decoder, nullptr); rc < 0) {
      return fail(std::string("cannot open the ") + decoder->name + " decoder", rc);
    }
    s.time_base_ = stream->time_base;
    s.start_pts_ = stream->start_time;
    // Frames per second as OpenCV reports it (the average rate, else the stream's base rate).
    double fps = av_q2d(stream->avg_frame_rate);
    if (!(fps > 0 && fps < 1000)) fps = av_q2d(stream->r_frame_rate);
    if (!(fps > 0 && fps < 1000)) fps = 25;
    s.info_.fps = fps;
    if (stream->nb_frames > 0) {
      s.info_.total_frames = stream->nb_frames;
    } else {
      double seconds =
          s.format_->duration > 0 ? static_cast<double>(s.format_->duration) / AV_TIME_BASE : 0;
      if (!(seconds > 0) && stream->duration > 0) {
        seconds = static_cast<double>(stream->duration) * av_q2d(stream->time_base);
      }
      s.info_.total_frames = seconds > 0 ? static_cast<std::int64_t>(seconds * fps + 0.5) : -1;
    }
    if (!s.ReadMore()) return fail("no frame could be decoded", s.error_);
    if (TooLarge(s.frame_->width, s.frame_->height, options.max_input_pixels)) {
      *may_fall_back = false;
      return InvalidArgumentError(TooLargeMessage(input, s.frame_->width, s.frame_->height,
                                                  options.max_input_pixels, "has frames of"));
    }
    s.info_.frame_size = {s.frame_->width, s.frame_->height};
    s.info_.decoder = std::string("libav ") + decoder->name;
    return std::unique_ptr<FrameSource>(std::move(source));
  }

  const SourceInfo& info() const override { return info_; }

  std::optional<FrameInput> Next() override {
    if (pending_.empty() && !ReadMore()) return std::nullopt;
    const Pending next = pending_.front();
    pending_.pop_front();
    FrameInput frame;
    frame.index = next_index_++;
    frame.time_s = next.time_s;
    if (next.decoded) frame.bgr = ConvertFrame();
    return frame;
  }

  Status Skip(std::int64_t count) override {
    for (std::int64_t i = 0; i < count; ++i) {
      if (pending_.empty() && !ReadMore()) {
        return Status(StatusCode::kOutOfRange, "input '" + info_.input + "' ended after " +
                                                   std::to_string(next_index_) + " frames");
      }
      if (pending_.front().decoded) av_frame_unref(frame_);  // decoded, never converted
      pending_.pop_front();
      ++next_index_;
    }
    return OkStatus();
  }

 private:
  enum class Got { kFrame, kBroken, kEnd };

  AvFrameSource() = default;

  /// Decodes until the decoder returns a frame (into frame_), a frame fails to decode, or the
  /// input (then the decoder's delayed frames) is exhausted.
  Got Receive() {
    for (;;) {
      int rc = avcodec_receive_frame(codec_, frame_);
      if (rc == 0) return Got::kFrame;
      if (rc == AVERROR_EOF) return Got::kEnd;
      if (rc != AVERROR(EAGAIN)) {
        error_ = rc;
        return Got::kBroken;
      }
      if (draining_) return Got::kEnd;
      rc = av_read_frame(format_, packet_);
      if (rc < 0) {
        // The end of the file, or a read error: either way the decoder gives up what it holds.
        if (rc != AVERROR_EOF) error_ = rc;
        draining_ = true;
        avcodec_send_packet(codec_, nullptr);
        continue;
      }
      if (packet_->stream_index != stream_index_) {
        av_packet_unref(packet_);
        continue;
      }
      rc = avcodec_send_packet(codec_, packet_);
      av_packet_unref(packet_);
      if (rc < 0 && rc != AVERROR(EAGAIN)) {
        error_ = rc;
        return Got::kBroken;
      }
    }
  }

  /// Appends the next decoded frame to pending_, preceded by one empty entry per frame that
  /// failed to decode before it. Failures with no decoded frame after them are the end of the
  /// input (as with cv::VideoCapture). False at the end.
  bool ReadMore() {
    if (ended_) return false;
    // Consecutive failures tolerated before the input is considered finished.
    constexpr int kMaxConsecutiveFailures = 64;
    int broken = 0;
    for (;;) {
      const Got got = Receive();
      if (got == Got::kBroken && ++broken <= kMaxConsecutiveFailures) continue;
      if (got != Got::kFrame) {
        ended_ = true;
        return false;
      }
      const double step = 1 / info_.fps;
      const double time_s = FrameTime(step * (broken + 1));
      for (int i = 0; i < broken; ++i) pending_.push_back({last_time_s_ + step * (i + 1), false});
      pending_.push_back({time_s, true});
      last_time_s_ = time_s;
      return true;
    }
  }

  /// frame_'s presentation time in seconds from the stream's start; when the container gives no
  /// time stamp, `step` after the previous frame.
  double FrameTime(double step) {
    const std::int64_t pts = frame_->best_effort_timestamp;
    if (pts == AV_NOPTS_VALUE) return have_time_ ? last_time_s_ + step : 0;
    if (!have_time_) {
      // The stream's declared start, unless the first frame comes before it.
      if (start_pts_ == AV_NOPTS_VALUE || start_pts_ > pts) start_pts_ = pts;
      have_time_ = true;
    }
    // One rounding (exact integer numerator, then one division): a constant-rate file gives
    // the same doubles as index / fps.
    return static_cast<double>((pts - start_pts_) * time_base_.num) / time_base_.den;
  }

  /// frame_ as BGR in a buffer from the frame pool; frame_ is released for the next decode.
  cv::Mat ConvertFrame() {
    cv::Mat bgr = FramePool::NewMat();
    sws_ = sws_getCachedContext(
        sws_, frame_->width, frame_->height, static_cast<AVPixelFormat>(frame_->format),
        frame_->width, frame_->height, AV_PIX_FMT_BGR24, SWS_BICUBIC, nullptr, nullptr, nullptr);
    if (sws_) {
      bgr.create(frame_->height, frame_->width, CV_8UC3);
      std::uint8_t* dst[1] = {bgr.data};
      const int dst_stride[1] = {static_cast<int>(bgr.step[0])};
      sws_scale(sws_, frame_->data, frame_->linesize, 0, frame_->height, dst, dst_stride);
    }
    av_frame_unref(frame_);
    return bgr;  // empty (an unreadable frame) when swscale has no such conversion
  }

  SourceInfo info_;
  AVFormatContext* format_ = nullptr;
  AVCodecContext* codec_ = nullptr;
  AVFrame* frame_ = nullptr;
  AVPacket* packet_ = nullptr;
  SwsContext* sws_ = nullptr;
  int stream_index_ = -1;
  AVRational time_base_{1, 1};
  std::int64_t start_pts_ = AV_NOPTS_VALUE;
  bool have_time_ = false;
  double last_time_s_ = 0;
  std::deque<Pending> pending_;
  std::int64_t next_index_ = 0;
  bool draining_ = false;
  bool ended_ = false;
  int error_ = 0;  ///< the last libav error, for the message when nothing decodes
};

}  // namespace

StatusOr<std::unique_ptr<FrameSource>> OpenAvFrameSource(const std::string& input,
                                                         const SourceOptions& options,
                                                         bool* may_fall_back) {
  return AvFrameSource::Open(input, options, may_fall_back);
}

}  // namespace roilens::internal
