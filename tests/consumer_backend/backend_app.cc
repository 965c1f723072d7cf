// backend_app CONFIG VIDEO FRAMES: runs the first FRAMES frames of VIDEO through a pipeline whose
// config says endpoint "local", with the embedded backend from the installed roilens::backend.
// Prints one results.jsonl object per line, then "summary <json>".
#include <roilens/backend/local_pipeline.h>

#include <cstdlib>
#include <iostream>
#include <opencv2/videoio.hpp>
#include <string>
#include <type_traits>

namespace {

// A result as one JSON line, whether FrameOutput::results holds JSON or a typed result with ToJson.
template <typename Result>
std::string Line(const Result& r) {
  if constexpr (std::is_convertible_v<const Result&, const nlohmann::json&>) {
    return nlohmann::json(r).dump();
  } else {
    return ToJson(r).dump();
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: backend_app CONFIG VIDEO FRAMES\n";
    return 2;
  }
  auto config = roilens::LoadStationConfig(argv[1]);
  if (!config.ok()) {
    std::cerr << config.status() << "\n";
    return 1;
  }
  auto pipeline = roilens::backend::CreatePipeline(std::move(*config), {});
  if (!pipeline.ok()) {
    std::cerr << pipeline.status() << "\n";
    return 1;
  }
  cv::VideoCapture video(argv[2]);
  if (!video.isOpened()) {
    std::cerr << "cannot open " << argv[2] << "\n";
    return 1;
  }
  const int frames = std::atoi(argv[3]);
  for (int i = 0; i < frames; ++i) {
    roilens::FrameInput in;
    in.index = i;
    in.time_s = i / 10.0;
    if (!video.read(in.bgr)) break;
    if (auto s = (*pipeline)->Submit(std::move(in)); !s.ok()) {
      std::cerr << s << "\n";
      return 1;
    }
  }
  (*pipeline)->Flush();
  while (auto out = (*pipeline)->Take()) {
    for (const auto& r : out->results) std::cout << Line(r) << "\n";
  }
  std::cout << "summary " << (*pipeline)->summary().ToJson().dump() << "\n";
  return 0;
}
