// Frame sources: folders of images (sorted, names as source, unreadable files as empty frames),
// video files through libav and OpenCV (container time stamps, variable frame rate, the same
// frames as OpenCV), skipping for resume, clear errors for missing or corrupt inputs, and the
// input pixel cap read from image headers before decoding.
#include "roilens/stages/source.h"

#include <gtest/gtest.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include "roilens/samples.h"
#include "testing/paths.h"

namespace roilens {
namespace {

/// CRC-32 as PNG chunks use it (bitwise; the test files are tiny).
std::uint32_t Crc32(const std::string& bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void PutBe32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xFF));
}

/// A PNG that is only a valid signature, an IHDR claiming width x height (8-bit RGB) with a
/// correct CRC, and IEND: what a hostile upload looks like to a header reader.
std::string PngClaiming(std::uint32_t width, std::uint32_t height) {
  auto chunk = [](const std::string& type, const std::string& data) {
    std::string out;
    PutBe32(out, static_cast<std::uint32_t>(data.size()));
    out += type + data;
    PutBe32(out, Crc32(type + data));
    return out;
  };
  std::string ihdr;
  PutBe32(ihdr, width);
  PutBe32(ihdr, height);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // depth 8, RGB, deflate, no filter/interlace
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IEND", "");
}

TEST(FrameSourceTest, FolderYieldsSortedImagesAndEmptyFramesForBrokenOnes) {
  const auto dir = testing::ScratchDir("folder");
  cv::imwrite((dir / "b.png").string(), cv::Mat(40, 60, CV_8UC3, cv::Scalar::all(20)));
  cv::imwrite((dir / "a.png").string(), cv::Mat(40, 60, CV_8UC3, cv::Scalar::all(10)));
  std::ofstream(dir / "c.jpg") << "not a jpeg";
  std::ofstream(dir / "notes.txt") << "ignored";
  auto source = FrameSource::Open(dir.string());
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_FALSE((*source)->info().video());
  EXPECT_EQ((*source)->info().total_frames, 3);
  EXPECT_EQ((*source)->info().frame_size, cv::Size(60, 40));
  std::vector<std::string> names;
  std::vector<bool> empty;
  while (auto frame = (*source)->Next()) {
    EXPECT_EQ(frame->index, static_cast<std::int64_t>(names.size()));
    names.push_back(frame->source);
    empty.push_back(frame->bgr.empty());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a.png", "b.png", "c.jpg"}));
  EXPECT_EQ(empty, (std::vector<bool>{false, false, true}));
}

TEST(FrameSourceTest, VideoFramesAreNumberedAndSkipCounts) {
  const auto path = testing::ScratchDir("video") / "v.avi";
  {
    cv::VideoWriter writer(path.string(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10,
                           cv::Size(64, 48));
    ASSERT_TRUE(writer.isOpened());
    for (int i = 0; i < 12; ++i) writer.write(cv::Mat(48, 64, CV_8UC3, cv::Scalar::all(i * 20)));
  }
  for (const char* decoder : {"auto", "ffmpeg", "opencv"}) {
    SCOPED_TRACE(decoder);
    SourceOptions options;
    options.decoder = decoder;
    auto source = FrameSource::Open(path.string(), options);
    ASSERT_TRUE(source.ok()) << source.status();
    EXPECT_TRUE((*source)->info().video());
    EXPECT_DOUBLE_EQ((*source)->info().fps, 10);
    EXPECT_EQ((*source)->info().total_frames, 12);
    EXPECT_EQ((*source)->info().decoder,
              std::string(decoder) == "opencv" ? "opencv" : "libav mjpeg");
    ASSERT_TRUE((*source)->Skip(5).ok());
    std::vector<std::int64_t> indices;
    while (auto frame = (*source)->Next()) {
      indices.push_back(frame->index);
      EXPECT_NEAR(frame->time_s, frame->index / 10.0, 1e-9);
      EXPECT_NEAR(cv::mean(frame->bgr)[0], frame->index * 20, 6);
    }
    EXPECT_EQ(indices, (std::vector<std::int64_t>{5, 6, 7, 8, 9, 10, 11}));
    EXPECT_EQ((*source)->Skip(1).code(), StatusCode::kOutOfRange);
  }
}

/// Writes an MPEG-4 Part 2 MP4 with libavformat directly whose frames are presented at
/// `times_ms` (a variable frame rate), frame i a flat grey of level 10 * i.
void WriteVariableRateMp4(const std::string& path, const std::vector<std::int64_t>& times_ms) {
  AVFormatContext* format = nullptr;
  ASSERT_GE(avformat_alloc_output_context2(&format, nullptr, "mp4", path.c_str()), 0);
  const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
  ASSERT_NE(codec, nullptr);
  AVCodecContext* encoder = avcodec_alloc_context3(codec);
  AVStream* stream = avformat_new_stream(format, nullptr);
  encoder->width = 64;
  encoder->height = 48;
  encoder->pix_fmt = AV_PIX_FMT_YUV420P;
  encoder->time_base = {1, 1000};  // milliseconds
  encoder->max_b_frames = 0;
  encoder->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  ASSERT_GE(avcodec_open2(encoder, codec, nullptr), 0);
  ASSERT_GE(avcodec_parameters_from_context(stream->codecpar, encoder), 0);
  stream->time_base = encoder->time_base;
  ASSERT_GE(avio_open(&format->pb, path.c_str(), AVIO_FLAG_WRITE), 0);
  ASSERT_GE(avformat_write_header(format, nullptr), 0);
  AVFrame* frame = av_frame_alloc();
  frame->format = encoder->pix_fmt;
  frame->width = encoder->width;
  frame->height = encoder->height;
  ASSERT_GE(av_frame_get_buffer(frame, 0), 0);
  AVPacket* packet = av_packet_alloc();
  auto drain = [&] {
    while (avcodec_receive_packet(encoder, packet) == 0) {
      // Each frame lasts until the next one (the last: 40 ms); without a duration the MP4's edit
      // list would end at the last frame's start and leave it out.
      const auto next = std::upper_bound(times_ms.begin(), times_ms.end(), packet->pts);
      packet->duration = next == times_ms.end() ? 40 : *next - packet->pts;
      av_packet_rescale_ts(packet, encoder->time_base, stream->time_base);
      packet->stream_index = stream->index;
      ASSERT_GE(av_interleaved_write_frame(format, packet), 0);
    }
  };
  for (std::size_t i = 0; i < times_ms.size(); ++i) {
    ASSERT_GE(av_frame_make_writable(frame), 0);
    for (int plane = 0; plane < 3; ++plane) {
      const int rows = plane == 0 ? frame->height : frame->height / 2;
      const int value = plane == 0 ? static_cast<int>(16 + 10 * i * 219 / 255) : 128;
      for (int y = 0; y < rows; ++y) {
        std::memset(frame->data[plane] + y * frame->linesize[plane], value,
                    static_cast<std::size_t>(frame->linesize[plane]));
      }
    }
    frame->pts = times_ms[i];
    ASSERT_GE(avcodec_send_frame(encoder, frame), 0);
    drain();
  }
  ASSERT_GE(avcodec_send_frame(encoder, nullptr), 0);
  drain();
  ASSERT_GE(av_write_trailer(format), 0);
  avio_closep(&format->pb);
  av_packet_free(&packet);
  av_frame_free(&frame);
  avcodec_free_context(&encoder);
  avformat_free_context(format);
}

TEST(FrameSourceTest, VariableFrameRateVideoKeepsTheContainersTimeStamps) {
  const auto path = (testing::ScratchDir("vfr") / "vfr.mp4").string();
  const std::vector<std::int64_t> times_ms = {0, 40, 100, 110, 250, 251, 400, 1000, 1033, 1500};
  ASSERT_NO_FATAL_FAILURE(WriteVariableRateMp4(path, times_ms));
  SourceOptions options;
  options.decoder = "ffmpeg";
  auto source = FrameSource::Open(path, options);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ((*source)->info().decoder, "libav mpeg4");
  EXPECT_EQ((*source)->info().total_frames, static_cast<std::int64_t>(times_ms.size()));
  EXPECT_EQ((*source)->info().frame_size, cv::Size(64, 48));
  std::vector<double> times;
  while (auto frame = (*source)->Next()) {
    EXPECT_EQ(frame->index, static_cast<std::int64_t>(times.size()));
    ASSERT_FALSE(frame->bgr.empty());
    EXPECT_NEAR(cv::mean(frame->bgr)[1], 10.0 * frame->index, 3) << "frame " << frame->index;
    times.push_back(frame->time_s);
  }
  ASSERT_EQ(times.size(), times_ms.size());
  for (std::size_t i = 0; i < times.size(); ++i) {
    EXPECT_NEAR(times[i], times_ms[i] / 1000.0, 1e-3) << "frame " << i;
  }

  // Resume: frames skipped keep their numbers and times.
  source = FrameSource::Open(path, options);
  ASSERT_TRUE(source.ok()) << source.status();
  ASSERT_TRUE((*source)->Skip(7).ok());
  auto frame = (*source)->Next();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->index, 7);
  EXPECT_NEAR(frame->time_s, 1.0, 1e-3);
  EXPECT_NEAR(cv::mean(frame->bgr)[1], 70, 3);
}

TEST(FrameSourceTest, LibavDecodesTheSampleVideoFrameForFrameLikeOpenCv) {
  const auto dir = testing::ScratchDir("sample-video");
  SampleOptions sample;
  sample.frames = 40;
  sample.stills = 0;
  auto manifest = WriteSamples(dir.string(), sample);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  const std::string video = (dir / "station.mp4").string();
  SourceOptions libav, opencv;
  libav.decoder = "ffmpeg";
  opencv.decoder = "opencv";
  auto a = FrameSource::Open(video, libav);
  auto b = FrameSource::Open(video, opencv);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*a)->info().total_frames, (*b)->info().total_frames);
  EXPECT_DOUBLE_EQ((*a)->info().fps, (*b)->info().fps);
  EXPECT_EQ((*a)->info().frame_size, (*b)->info().frame_size);
  std::int64_t frames = 0;
  for (;;) {
    auto x = (*a)->Next();
    auto y = (*b)->Next();
    ASSERT_EQ(x.has_value(), y.has_value()) << "after " << frames << " frames";
    if (!x) break;
    EXPECT_EQ(x->index, y->index);
    EXPECT_NEAR(x->time_s, y->time_s, 1e-9) << "a constant-rate file: the same times";
    ASSERT_EQ(x->bgr.size(), y->bgr.size());
    // The same decoder and conversion underneath: at most rounding apart.
    EXPECT_LE(cv::norm(x->bgr, y->bgr, cv::NORM_INF), 2) << "frame " << x->index;
    ++frames;
  }
  EXPECT_EQ(frames, manifest->frames);
}

TEST(FrameSourceTest, UnreadableVideoNamesTheFileAndAutoFallsBackToOpenCvOnce) {
  const auto corrupt = (testing::ScratchDir("fallback") / "garbage.mp4").string();
  std::ofstream(corrupt) << std::string(4096, 'x');
  SourceOptions options;
  options.decoder = "ffmpeg";
  ::testing::internal::CaptureStderr();
  auto libav_only = FrameSource::Open(corrupt, options);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  ASSERT_FALSE(libav_only.ok());
  EXPECT_EQ(libav_only.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(libav_only.status().message().find("input '" + corrupt + "'"), std::string::npos)
      << libav_only.status().message();
  EXPECT_NE(libav_only.status().message().find("libav: "), std::string::npos)
      << libav_only.status().message();

  // auto: libav's failure is logged once, then OpenCV gets the file (and fails too, naming it).
  options.decoder = "auto";
  ::testing::internal::CaptureStderr();
  auto fell_back = FrameSource::Open(corrupt, options);
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_FALSE(fell_back.ok());
  EXPECT_EQ(fell_back.status().message(), "input '" + corrupt + "': not a readable video or image");
  const std::string line = "decoding it with OpenCV instead";
  ASSERT_NE(log.find(line), std::string::npos) << log;
  EXPECT_EQ(log.find(line, log.find(line) + 1), std::string::npos) << "logged once: " << log;
  EXPECT_NE(log.find(corrupt), std::string::npos) << log;
}

TEST(FrameSourceTest, MissingAndCorruptInputsAreNamed) {
  auto missing = FrameSource::Open("/nonexistent/clip.mp4");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/clip.mp4"), std::string::npos);

  const auto corrupt = testing::ScratchDir("corrupt") / "clip.mp4";
  std::ofstream(corrupt) << std::string(4096, 'x');
  auto bad = FrameSource::Open(corrupt.string());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find(corrupt.string()), std::string::npos);

  const auto image = testing::ScratchDir("image") / "broken.png";
  std::ofstream(image) << "nope";
  EXPECT_EQ(FrameSource::Open(image.string()).status().code(), StatusCode::kInvalidArgument);
}

TEST(FrameSourceTest, PngWhoseHeaderClaimsAHugeSizeIsRefusedNamingIt) {
  const auto path = testing::ScratchDir("claims") / "claims-huge.png";
  std::ofstream(path, std::ios::binary) << PngClaiming(100000, 100000);
  auto header = ReadImageHeader(path.string());
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->format, "PNG");
  EXPECT_EQ(header->width, 100000);
  EXPECT_EQ(header->height, 100000);
  // Before: cv::imread's own size assertion escaped as a cv::Exception.
  auto source = FrameSource::Open(path.string());
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(source.status().message().find(path.string()), std::string::npos)
      << source.status().message();
  EXPECT_NE(source.status().message().find("100000x100000"), std::string::npos)
      << source.status().message();
}

TEST(FrameSourceTest, ReadsTheSizeFromEveryParsedHeaderFormat) {
  const auto dir = testing::ScratchDir("headers");
  const cv::Mat image(123, 217, CV_8UC3, cv::Scalar(10, 200, 30));
  const std::pair<const char*, const char*> formats[] = {{"a.png", "PNG"},   {"a.jpg", "JPEG"},
                                                         {"a.bmp", "BMP"},   {"a.ppm", "PNM"},
                                                         {"a.webp", "WebP"}, {"a.tiff", "TIFF"}};
  for (const auto& [name, format] : formats) {
    const std::string path = (dir / name).string();
    ASSERT_TRUE(cv::imwrite(path, image)) << name;
    auto header = ReadImageHeader(path);
    ASSERT_TRUE(header.has_value()) << name;
    EXPECT_EQ(header->format, format);
    EXPECT_EQ(header->width, 217) << name;
    EXPECT_EQ(header->height, 123) << name;
  }
  std::ofstream(dir / "text.png") << "not an image";
  EXPECT_FALSE(ReadImageHeader((dir / "text.png").string()).has_value());
  EXPECT_FALSE(ReadImageHeader((dir / "missing.png").string()).has_value());
}

TEST(FrameSourceTest, InputsAboveMaxInputPixelsAreRefusedNamingFileAndSize) {
  const auto dir = testing::ScratchDir("cap");
  const auto image = dir / "one.png";
  cv::imwrite(image.string(), cv::Mat(40, 60, CV_8UC3, cv::Scalar::all(9)));
  SourceOptions options;
  options.max_input_pixels = 60 * 40 - 1;
  auto refused = FrameSource::Open(image.string(), options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find(image.string()), std::string::npos);
  EXPECT_NE(refused.status().message().find("60x40"), std::string::npos)
      << refused.status().message();
  options.max_input_pixels = 60 * 40;
  EXPECT_TRUE(FrameSource::Open(image.string(), options).ok());

  // In a folder the large file becomes a frame with error lines that name it; the rest is read.
  const auto folder = dir / "folder";
  std::filesystem::create_directories(folder);
  cv::imwrite((folder / "a.png").string(), cv::Mat(40, 60, CV_8UC3, cv::Scalar::all(1)));
  cv::imwrite((folder / "b.png").string(), cv::Mat(80, 120, CV_8UC3, cv::Scalar::all(2)));
  std::ofstream((folder / "c.png").string(), std::ios::binary) << PngClaiming(100000, 100000);
  auto source = FrameSource::Open(folder.string(), options);
  ASSERT_TRUE(source.ok()) << source.status();
  std::vector<std::string> errors;
  while (auto frame = (*source)->Next()) {
    EXPECT_EQ(frame->bgr.empty(), !frame->error.empty()) << frame->source;
    errors.push_back(frame->error);
  }
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0], "");
  EXPECT_NE(errors[1].find("b.png' is 120x80 pixels"), std::string::npos) << errors[1];
  EXPECT_NE(errors[2].find("c.png' is 100000x100000 pixels"), std::string::npos) << errors[2];

  // A video whose frames are larger is refused when it is opened.
  const auto video = (dir / "v.avi").string();
  {
    cv::VideoWriter writer(video, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10,
                           cv::Size(64, 48));
    ASSERT_TRUE(writer.isOpened());
    for (int i = 0; i < 3; ++i) writer.write(cv::Mat(48, 64, CV_8UC3, cv::Scalar::all(i)));
  }
  options.max_input_pixels = 64 * 48 - 1;
  auto big_video = FrameSource::Open(video, options);
  ASSERT_FALSE(big_video.ok());
  EXPECT_NE(big_video.status().message().find("v.avi' has frames of 64x48 pixels"),
            std::string::npos)
      << big_video.status().message();
}

TEST(FrameSourceTest, RecognisesImageExtensions) {
  EXPECT_TRUE(IsImagePath("a/B.PNG"));
  EXPECT_TRUE(IsImagePath("x.jpeg"));
  EXPECT_FALSE(IsImagePath("x.mp4"));
  EXPECT_FALSE(IsImagePath("png"));
}

}  // namespace
}  // namespace roilens
