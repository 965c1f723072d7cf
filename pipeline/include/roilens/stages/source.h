// Frame sources: a video file, an image file, a folder of images, a camera index or a stream URL,
// behind one interface that yields FrameInput in order.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "roilens/client/status.h"
#include "roilens/stages/pipeline.h"

namespace roilens {

enum class SourceKind { kVideoFile, kImageFile, kImageFolder, kCamera, kStream };

struct SourceInfo {
  SourceKind kind = SourceKind::kVideoFile;
  std::string input;               ///< as given
  double fps = 0;                  ///< frames per second (images: 1, one frame per "second")
  std::int64_t total_frames = -1;  ///< -1 when unknown (camera, stream)
  cv::Size frame_size;             ///< size of the first frame
  /// What decodes the frames, for logs and summary.json: "libav h264" (libavcodec/libavformat),
  /// "opencv" (cv::VideoCapture) or "image" (cv::imread).
  std::string decoder;
  /// True for video file / camera / stream (output is a video), false for images.
  bool video() const { return kind != SourceKind::kImageFile && kind != SourceKind::kImageFolder; }
};

struct SourceOptions {
  /// An image (or a video's frames) with more pixels than this is refused before it is decoded:
  /// the size comes from the file's header (ReadImageHeader) or the video's stream parameters.
  /// From the config's pipeline.max_input_pixels.
  std::int64_t max_input_pixels = kDefaultMaxInputPixels;
  /// Video files: "auto" decodes with libavcodec/libavformat (threaded decode, time stamps from
  /// the container) and falls back to cv::VideoCapture, with one line on stderr, for a file libav
  /// cannot open; "ffmpeg" uses libav only (its error names the file); "opencv" uses
  /// cv::VideoCapture (time_s = index / fps). Cameras and stream URLs always use
  /// cv::VideoCapture. From the config's pipeline.decoder.
  std::string decoder = "auto";
};

/// Not thread-safe: one reader.
class FrameSource {
 public:
  /// Opens INPUT: digits = camera index; "scheme://..." = stream URL; a directory = its image
  /// files sorted by name; a file with an image extension = one image; any other file = video.
  /// The first frame is read here, so a missing, corrupt or too large input fails now with a
  /// message that names it (kNotFound: missing; kInvalidArgument: unreadable or larger than
  /// options.max_input_pixels). In a folder, a file that cannot be used becomes a frame with an
  /// empty `bgr` and an `error` naming it; the folder fails only when no file is usable.
  static StatusOr<std::unique_ptr<FrameSource>> Open(const std::string& input,
                                                     const SourceOptions& options = {});
  virtual ~FrameSource() = default;

  virtual const SourceInfo& info() const = 0;
  /// The next frame (index = position in the source, from 0); nullopt at the end. `time_s` of a
  /// video file's frame is its presentation time stamp relative to the stream's start (libav;
  /// variable frame-rate inputs keep their true times) or index / fps (OpenCV). A frame that
  /// cannot be decoded in the middle of the input comes back with an empty `bgr` (the pipeline
  /// turns it into error lines) and reading continues.
  virtual std::optional<FrameInput> Next() = 0;
  /// Skips the next `count` frames (resume), decoding them only as far as needed.
  virtual Status Skip(std::int64_t count) = 0;
};

/// True when `path` names a file whose extension is a still image format OpenCV reads.
bool IsImagePath(const std::string& path);

/// An image's dimensions as its file header states them (not checked against the pixel data).
struct ImageHeader {
  std::string format;  ///< "PNG", "JPEG", "BMP", "PNM", "WebP" or "TIFF"
  std::int64_t width = 0, height = 0;
};

/// Reads `path`'s header only (a few bytes; JPEG: its segment headers), without decoding pixels.
/// nullopt for other formats (JPEG 2000, ...) and for headers too short or malformed to say.
std::optional<ImageHeader> ReadImageHeader(const std::string& path);

}  // namespace roilens
