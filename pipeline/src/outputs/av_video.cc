// libav writer, in-process segment remux and container probe.
#include "roilens/outputs/av_video.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <mutex>
#include <opencv2/videoio.hpp>

#include "roilens/outputs/sinks.h"

namespace roilens {
namespace {

/// libav prints progress and statistics to stderr by default (x264's per-run report, the
/// muxer's second pass); our callers get every failure as a Status naming the file instead.
void QuietLibav() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_level(AV_LOG_FATAL); });
}

std::string AvError(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, text, sizeof text);
  return text;
}

Status AvFailure(const std::string& what, const std::string& path, int code) {
  return InternalError(what + " '" + path + "': " + AvError(code));
}

struct FormatInput {
  AVFormatContext* ctx = nullptr;
  ~FormatInput() { avformat_close_input(&ctx); }
};

struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;

/// Opens `path` and finds its first video stream; the error names the file.
StatusOr<int> OpenVideoInput(const std::string& path, FormatInput& in) {
  if (int rc = avformat_open_input(&in.ctx, path.c_str(), nullptr, nullptr); rc < 0) {
    return AvFailure("cannot open video", path, rc);
  }
  if (int rc = avformat_find_stream_info(in.ctx, nullptr); rc < 0) {
    return AvFailure("cannot read stream info of video", path, rc);
  }
  const int stream = av_find_best_stream(in.ctx, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (stream < 0) return InvalidArgumentError("no video stream in '" + path + "'");
  return stream;
}

/// True when the MP4's top-level 'moov' box precedes 'mdat'.
bool MoovBeforeMdat(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::uint64_t offset = 0;
  for (int boxes = 0; boxes < 64 && file; ++boxes) {
    unsigned char header[16];
    file.seekg(static_cast<std::streamoff>(offset));
    if (!file.read(reinterpret_cast<char*>(header), 8)) return false;
    std::uint64_t size = (std::uint64_t{header[0]} << 24) | (std::uint64_t{header[1]} << 16) |
                         (std::uint64_t{header[2]} << 8) | header[3];
    const std::string type(reinterpret_cast<char*>(header) + 4, 4);
    if (type == "moov") return true;
    if (type == "mdat") return false;
    if (size == 1) {
      if (!file.read(reinterpret_cast<char*>(header) + 8, 8)) return false;
      size = 0;
      for (int i = 8; i < 16; ++i) size = (size << 8) | header[i];
    }
    if (size < 8) return false;
    offset += size;
  }
  return false;
}

/// OpenCV's writer behind the FrameWriter interface (output.video_backend "opencv", and the
/// fallback when libav has no usable encoder).
class OpenCvFrameWriter : public FrameWriter {
 public:
  static StatusOr<std::unique_ptr<FrameWriter>> Open(const std::string& path, cv::Size size,
                                                     double fps) {
    std::string fourcc;
    auto writer = OpenMp4Writer(path, fps, size, &fourcc);
    if (!writer.ok()) return writer.status();
    return std::unique_ptr<FrameWriter>(
        new OpenCvFrameWriter(std::move(*writer), "opencv " + fourcc));
  }
  Status Write(const cv::Mat& bgr) override {
    if (!writer_) return FailedPreconditionError("video writer is closed");
    writer_->write(bgr);
    return OkStatus();
  }
  Status Close() override {
    if (writer_) writer_->release();
    writer_.reset();
    return OkStatus();
  }
  std::string description() const override { return description_; }

 private:
  OpenCvFrameWriter(std::unique_ptr<cv::VideoWriter> writer, std::string description)
      : writer_(std::move(writer)), description_(std::move(description)) {}
  std::unique_ptr<cv::VideoWriter> writer_;
  std::string description_;
};

}  // namespace

struct AvVideoWriter::State {
  std::string path;
  cv::Size size;
  AVFormatContext* format = nullptr;
  AVCodecContext* codec = nullptr;
  AVStream* stream = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* packet = nullptr;
  SwsContext* sws = nullptr;
  std::int64_t next_pts = 0;
  bool header_written = false;
  bool closed = false;

  ~State() {
    sws_freeContext(sws);
    av_packet_free(&packet);
    av_frame_free(&frame);
    avcodec_free_context(&codec);
    if (format) {
      if (format->pb && !(format->oformat->flags & AVFMT_NOFILE)) avio_closep(&format->pb);
      avformat_free_context(format);
    }
  }

  /// Sends `f` (nullptr = flush) and writes every packet the encoder has ready.
  Status Encode(AVFrame* f) {
    if (int rc = avcodec_send_frame(codec, f); rc < 0) {
      return AvFailure("cannot encode a frame of", path, rc);
    }
    for (;;) {
      const int rc = avcodec_receive_packet(codec, packet);
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return OkStatus();
      if (rc < 0) return AvFailure("cannot encode a frame of", path, rc);
      av_packet_rescale_ts(packet, codec->time_base, stream->time_base);
      packet->stream_index = stream->index;
      const int written = av_interleaved_write_frame(format, packet);  // unrefs the packet
      if (written < 0) return AvFailure("cannot write video", path, written);
    }
  }
};

AvVideoWriter::AvVideoWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}

AvVideoWriter::~AvVideoWriter() { (void)Close(); }

StatusOr<std::unique_ptr<AvVideoWriter>> AvVideoWriter::Open(const std::string& path, cv::Size size,
                                                             double fps,
                                                             const VideoEncoderConfig& options,
                                                             bool faststart) {
  if (size.width <= 0 || size.height <= 0 || size.width % 2 || size.height % 2) {
    // 4:2:0 needs even sizes; callers pass frame sizes, which we round here.
    size = {std::max(2, size.width & ~1), std::max(2, size.height & ~1)};
  }
  if (!(fps > 0)) fps = 25;
  QuietLibav();
  auto s = std::make_unique<State>();
  s->path = path;
  s->size = size;
  if (int rc = avformat_alloc_output_context2(&s->format, nullptr, "mp4", path.c_str()); rc < 0) {
    return AvFailure("cannot create MP4 container for", path, rc);
  }
  const AVCodec* codec = avcodec_find_encoder_by_name(options.codec.c_str());
  std::string codec_name = options.codec;
  if (!codec) {
    codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
    codec_name = "mpeg4";
  }
  if (!codec) return UnavailableError("no video encoder '" + options.codec + "' nor mpeg4");
  s->codec = avcodec_alloc_context3(codec);
  s->stream = avformat_new_stream(s->format, nullptr);
  s->frame = av_frame_alloc();
  s->packet = av_packet_alloc();
  if (!s->codec || !s->stream || !s->frame || !s->packet) {
    return InternalError("out of memory opening video '" + path + "'");
  }
  const AVPixelFormat pix_fmt = av_get_pix_fmt(options.pix_fmt.c_str());
  if (pix_fmt == AV_PIX_FMT_NONE) {
    return InvalidArgumentError("output.video_encoder.pix_fmt: unknown pixel format \"" +
                                options.pix_fmt + "\"");
  }
  const AVRational rate = av_d2q(fps, 100000);
  s->codec->width = size.width;
  s->codec->height = size.height;
  s->codec->pix_fmt = pix_fmt;
  s->codec->time_base = av_inv_q(rate);
  s->codec->framerate = rate;
  s->codec->thread_count = options.threads;
  if (options.gop > 0) s->codec->gop_size = options.gop;
  if (s->format->oformat->flags & AVFMT_GLOBALHEADER) {
    s->codec->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  }
  std::string quality;
  if (options.bitrate_kbps > 0) {
    s->codec->bit_rate = std::int64_t{options.bitrate_kbps} * 1000;
    quality = std::to_string(options.bitrate_kbps) + " kb/s";
  }
  const bool x264 = codec_name == "libx264" || codec_name == "libx264rgb";
  if (x264) {
    if (!options.preset.empty())
      av_opt_set(s->codec->priv_data, "preset", options.preset.c_str(), 0);
    if (!options.tune.empty()) av_opt_set(s->codec->priv_data, "tune", options.tune.c_str(), 0);
    if (options.bitrate_kbps <= 0) {
      av_opt_set_int(s->codec->priv_data, "crf", options.crf, 0);
      quality = "crf " + std::to_string(options.crf);
    }
  } else if (options.bitrate_kbps <= 0) {
    // Encoders without crf: a fixed quantiser of similar visual quality.
    s->codec->flags |= AV_CODEC_FLAG_QSCALE;
    s->codec->global_quality = FF_QP2LAMBDA * 4;
    quality = "qscale 4";
  }
  if (int rc = avcodec_open2(s->codec, codec, nullptr); rc < 0) {
    return AvFailure("cannot open encoder " + codec_name + " for", path, rc);
  }
  if (int rc = avcodec_parameters_from_context(s->stream->codecpar, s->codec); rc < 0) {
    return AvFailure("cannot set stream parameters of", path, rc);
  }
  s->stream->time_base = s->codec->time_base;
  s->stream->avg_frame_rate = rate;
  if (int rc = avio_open(&s->format->pb, path.c_str(), AVIO_FLAG_WRITE); rc < 0) {
    return AvFailure("cannot create video file", path, rc);
  }
  AVDictionary* muxer_options = nullptr;
  if (faststart) av_dict_set(&muxer_options, "movflags", "+faststart", 0);
  const int header = avformat_write_header(s->format, &muxer_options);
  av_dict_free(&muxer_options);
  if (header < 0) return AvFailure("cannot write the header of video", path, header);
  s->header_written = true;

  s->frame->format = pix_fmt;
  s->frame->width = size.width;
  s->frame->height = size.height;
  if (int rc = av_frame_get_buffer(s->frame, 0); rc < 0) {
    return AvFailure("cannot allocate a frame for", path, rc);
  }
  s->sws = sws_getContext(size.width, size.height, AV_PIX_FMT_BGR24, size.width, size.height,
                          pix_fmt, SWS_BILINEAR, nullptr, nullptr, nullptr);
  if (!s->sws)
    return InternalError("cannot convert BGR to " + options.pix_fmt + " for '" + path + "'");

  std::string description = "libav " + codec_name;
  if (x264 && !options.preset.empty()) description += " " + options.preset;
  if (!quality.empty()) description += " " + quality;
  auto writer = std::unique_ptr<AvVideoWriter>(new AvVideoWriter(std::move(s)));
  writer->description_ = std::move(description);
  return writer;
}

Status AvVideoWriter::Write(const cv::Mat& bgr) {
  State& s = *state_;
  if (s.closed) return FailedPreconditionError("video '" + s.path + "' is closed");
  if (bgr.type() != CV_8UC3) {
    return InvalidArgumentError("video '" + s.path + "' takes 8-bit BGR frames");
  }
  cv::Mat input = bgr;
  if (bgr.size() != s.size) {
    // Only when the frame size was odd: the encoder's size is rounded down to even.
    input =
        bgr(cv::Rect(0, 0, std::min(bgr.cols, s.size.width), std::min(bgr.rows, s.size.height)));
    if (input.size() != s.size) {
      return InvalidArgumentError("video '" + s.path + "': frame of another size");
    }
  }
  // The encoder may still reference the buffer of the previous frame (lookahead): make_writable
  // copies only then.
  if (int rc = av_frame_make_writable(s.frame); rc < 0) {
    return AvFailure("cannot reuse a frame buffer of", s.path, rc);
  }
  const std::uint8_t* src[1] = {input.data};
  const int stride[1] = {static_cast<int>(input.step[0])};
  sws_scale(s.sws, src, stride, 0, input.rows, s.frame->data, s.frame->linesize);
  s.frame->pts = s.next_pts++;
  return s.Encode(s.frame);
}

Status AvVideoWriter::Close() {
  if (!state_ || state_->closed) return OkStatus();
  State& s = *state_;
  s.closed = true;
  Status status = s.Encode(nullptr);
  if (s.header_written) {
    if (int rc = av_write_trailer(s.format); rc < 0 && status.ok()) {
      status = AvFailure("cannot finish video", s.path, rc);
    }
  }
  if (s.format && s.format->pb) {
    if (int rc = avio_closep(&s.format->pb); rc < 0 && status.ok()) {
      status = AvFailure("cannot close video", s.path, rc);
    }
  }
  // Frees the encoder now (its lookahead buffers), not at destruction.
  sws_freeContext(s.sws);
  s.sws = nullptr;
  av_frame_free(&s.frame);
  avcodec_free_context(&s.codec);
  return status;
}

StatusOr<std::unique_ptr<FrameWriter>> OpenFrameWriter(const std::string& path, cv::Size size,
                                                       double fps, const OutputConfig& config,
                                                       bool faststart) {
  if (config.video_backend == "ffmpeg") {
    auto av = AvVideoWriter::Open(path, size, fps, config.video_encoder, faststart);
    if (av.ok()) return std::unique_ptr<FrameWriter>(std::move(*av));
    if (av.status().code() != StatusCode::kUnavailable) return av.status();
  }
  return OpenCvFrameWriter::Open(path, size, fps);
}

Status RemuxConcat(const std::vector<std::string>& segments, const std::string& out,
                   bool faststart) {
  if (segments.empty()) return InvalidArgumentError("no video segments to join into '" + out + "'");
  QuietLibav();
  AVFormatContext* output = nullptr;
  if (int rc = avformat_alloc_output_context2(&output, nullptr, "mp4", out.c_str()); rc < 0) {
    return AvFailure("cannot create MP4 container for", out, rc);
  }
  struct OutputGuard {
    AVFormatContext*& ctx;
    ~OutputGuard() {
      if (ctx) {
        if (ctx->pb) avio_closep(&ctx->pb);
        avformat_free_context(ctx);
      }
    }
  } guard{output};
  AVStream* out_stream = nullptr;
  PacketPtr packet(av_packet_alloc());
  std::int64_t offset = 0;  // added to each segment's time stamps, in out_stream->time_base
  std::int64_t last_dts = std::numeric_limits<std::int64_t>::min();
  std::int64_t end = 0;  // max pts + duration written so far
  bool header = false;
  for (const auto& segment : segments) {
    FormatInput in;
    auto stream_index = OpenVideoInput(segment, in);
    if (!stream_index.ok()) return stream_index.status();
    AVStream* in_stream = in.ctx->streams[*stream_index];
    if (!out_stream) {
      out_stream = avformat_new_stream(output, nullptr);
      if (!out_stream) return InternalError("out of memory joining into '" + out + "'");
      if (int rc = avcodec_parameters_copy(out_stream->codecpar, in_stream->codecpar); rc < 0) {
        return AvFailure("cannot copy codec parameters from", segment, rc);
      }
      out_stream->codecpar->codec_tag = 0;
      out_stream->time_base = in_stream->time_base;
      out_stream->avg_frame_rate = in_stream->avg_frame_rate;
      if (int rc = avio_open(&output->pb, out.c_str(), AVIO_FLAG_WRITE); rc < 0) {
        return AvFailure("cannot create video file", out, rc);
      }
      AVDictionary* options = nullptr;
      if (faststart) av_dict_set(&options, "movflags", "+faststart", 0);
      const int rc = avformat_write_header(output, &options);
      av_dict_free(&options);
      if (rc < 0) return AvFailure("cannot write the header of video", out, rc);
      header = true;
    } else if (in_stream->codecpar->codec_id != out_stream->codecpar->codec_id ||
               in_stream->codecpar->width != out_stream->codecpar->width ||
               in_stream->codecpar->height != out_stream->codecpar->height) {
      return InvalidArgumentError("video segment '" + segment +
                                  "' has another codec or frame size than the first segment");
    }
    bool first_packet = true;
    std::int64_t segment_end = end;
    for (;;) {
      const int rc = av_read_frame(in.ctx, packet.get());
      if (rc == AVERROR_EOF) break;
      if (rc < 0) return AvFailure("cannot read video segment", segment, rc);
      if (packet->stream_index != *stream_index) {
        av_packet_unref(packet.get());
        continue;
      }
      av_packet_rescale_ts(packet.get(), in_stream->time_base, out_stream->time_base);
      if (first_packet) {
        // Continue where the previous segment ended; B-frames make a segment's first dts
        // negative, so never step back behind the last dts written.
        const std::int64_t first_dts = packet->dts != AV_NOPTS_VALUE ? packet->dts : packet->pts;
        offset = end;
        if (last_dts != std::numeric_limits<std::int64_t>::min() &&
            first_dts + offset <= last_dts) {
          offset = last_dts + 1 - first_dts;
        }
        first_packet = false;
      }
      if (packet->pts != AV_NOPTS_VALUE) packet->pts += offset;
      if (packet->dts != AV_NOPTS_VALUE) {
        packet->dts += offset;
        last_dts = packet->dts;
      }
      if (packet->pts != AV_NOPTS_VALUE) {
        segment_end =
            std::max(segment_end, packet->pts + std::max<std::int64_t>(packet->duration, 1));
      }
      packet->stream_index = out_stream->index;
      packet->pos = -1;
      if (int w = av_interleaved_write_frame(output, packet.get()); w < 0) {
        return AvFailure("cannot write video", out, w);
      }
    }
    end = segment_end;
  }
  if (header) {
    if (int rc = av_write_trailer(output); rc < 0) return AvFailure("cannot finish video", out, rc);
  }
  if (int rc = avio_closep(&output->pb); rc < 0) return AvFailure("cannot close video", out, rc);
  return OkStatus();
}

StatusOr<VideoProbe> ProbeVideo(const std::string& path) {
  QuietLibav();
  FormatInput in;
  auto stream_index = OpenVideoInput(path, in);
  if (!stream_index.ok()) return stream_index.status();
  AVStream* stream = in.ctx->streams[*stream_index];
  VideoProbe probe;
  probe.codec = avcodec_get_name(stream->codecpar->codec_id);
  probe.size = {stream->codecpar->width, stream->codecpar->height};
  PacketPtr packet(av_packet_alloc());
  std::int64_t min_pts = std::numeric_limits<std::int64_t>::max(), end_pts = 0;
  for (;;) {
    const int rc = av_read_frame(in.ctx, packet.get());
    if (rc == AVERROR_EOF) break;
    if (rc < 0) return AvFailure("cannot read video", path, rc);
    if (packet->stream_index == *stream_index) {
      ++probe.frames;
      if (packet->pts != AV_NOPTS_VALUE) {
        min_pts = std::min(min_pts, packet->pts);
        end_pts = std::max(end_pts, packet->pts + packet->duration);
      }
    }
    av_packet_unref(packet.get());
  }
  if (probe.frames > 0 && min_pts != std::numeric_limits<std::int64_t>::max()) {
    probe.duration_s = static_cast<double>(end_pts - min_pts) * av_q2d(stream->time_base);
  }
  probe.faststart = MoovBeforeMdat(path);
  return probe;
}

}  // namespace roilens
