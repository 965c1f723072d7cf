// Private to the library: the libav (libavformat + libavcodec + libswscale) video file source
// behind FrameSource::Open, and the input pixel-cap helpers both sources share.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "roilens/client/status.h"
#include "roilens/stages/source.h"

namespace roilens::internal {

/// True when a width x height frame has more pixels than `max_pixels` (0 sizes: unknown, false).
bool TooLarge(std::int64_t width, std::int64_t height, std::int64_t max_pixels);

/// "input 'a.png' is 100000x100000 pixels (10000 MP), more than ..." (the error for a refused
/// image or video); `what` is "is" or "has frames of".
std::string TooLargeMessage(const std::string& name, std::int64_t width, std::int64_t height,
                            std::int64_t max_pixels, const char* what);

/// Opens the video file `input` with libav: demux, threaded decode (as many threads as
/// libavcodec picks for the cores; no hardware decoder, so it works the same everywhere),
/// swscale to BGR into buffers from FramePool::Shared(), and time_s from each frame's
/// best-effort time stamp relative to the stream's start. The first frame is decoded here.
/// Errors name the file (kInvalidArgument). `*may_fall_back` is set to false when another
/// decoder would fail the same way (the frames exceed options.max_input_pixels), true otherwise.
StatusOr<std::unique_ptr<FrameSource>> OpenAvFrameSource(const std::string& input,
                                                         const SourceOptions& options,
                                                         bool* may_fall_back);

}  // namespace roilens::internal
