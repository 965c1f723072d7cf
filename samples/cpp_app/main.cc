// An ordinary OpenCV capture loop that adds roilens through the plugin facade: frames go in with
// Session::Submit, finished frames (annotated image + per-ROI JSON) come out in order.
//
//   roilens_sample_app VIDEO CONFIG [--plugin PATH] [--out results.jsonl] [--coder cv|echo]
//                      [--frames N]
// (No window: showing frames would need opencv_highgui and a display, which neither the facade
// nor a headless CI machine has; `roilens run` writes the annotated video instead.)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>
#include <sstream>
#include <string>

#include "roilens_plugin/roilens_plugin.hpp"

namespace {

constexpr const char* kUsage =
    "usage: roilens_sample_app VIDEO CONFIG [--plugin PATH] [--out results.jsonl]\n"
    "                          [--coder cv|echo] [--frames N]\n"
    "  VIDEO   anything cv::VideoCapture opens (file, camera index, stream URL)\n"
    "  CONFIG  roilens station config (JSON)\n"
    "  --plugin PATH  plugin library (default: $ROILENS_PLUGIN_PATH, then the built one,\n"
    "                 then libroilens_plugin.so.1 on the library path)\n"
    "  --out FILE     also write one results.jsonl line per frame and ROI\n"
    "  --coder NAME   local backend coder (endpoint \"local\" only)\n"
    "  --frames N     stop after N frames\n";

struct Args {
  std::string video, config, plugin, out, coder;
  long frames = -1;
};

bool ParseArgs(int argc, char** argv, Args& a) {
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](std::string& into) {
      if (i + 1 >= argc) return false;
      into = argv[++i];
      return true;
    };
    if (arg == "--plugin") {
      if (!value(a.plugin)) return false;
    } else if (arg == "--out") {
      if (!value(a.out)) return false;
    } else if (arg == "--coder") {
      if (!value(a.coder)) return false;
    } else if (arg == "--frames") {
      std::string n;
      if (!value(n)) return false;
      a.frames = std::stol(n);
    } else if (!arg.empty() && arg[0] == '-') {
      return false;
    } else if (positional == 0) {
      a.video = arg, ++positional;
    } else if (positional == 1) {
      a.config = arg, ++positional;
    } else {
      return false;
    }
  }
  return positional == 2;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One line per ROI: "frame 12  t=1.20s  boiler: 4.2 bar [ok]".
void PrintReadings(const roilens::plugin::Frame& frame, std::ofstream* out) {
  const auto results = nlohmann::json::parse(frame.results_json);
  for (const auto& r : results) {
    std::printf("frame %lld  t=%.2fs  %s: ", static_cast<long long>(frame.index), frame.time_s,
                r.value("roi", std::string("?")).c_str());
    if (r.contains("value") && r["value"].is_number()) {
      std::printf("%g %s", r["value"].get<double>(), r.value("unit", std::string()).c_str());
    } else if (r.contains("count") && r["count"].is_number()) {
      std::printf("%lld", r["count"].get<long long>());
    } else if (r.contains("text") && r["text"].is_string()) {
      std::printf("%s", r["text"].get<std::string>().c_str());
    } else if (r.contains("error") && r["error"].is_string()) {
      std::printf("error: %s", r["error"].get<std::string>().c_str());
    }
    std::printf(" [%s]\n", r.value("status", std::string("?")).c_str());
    if (out) *out << r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::cout << kUsage;
      return 0;
    }
  }
  Args args;
  try {
    if (!ParseArgs(argc, argv, args)) {
      std::cerr << kUsage;
      return 2;
    }
  } catch (const std::exception&) {
    std::cerr << kUsage;
    return 2;
  }
  try {
    std::string plugin_path = args.plugin;
#ifdef ROILENS_SAMPLE_DEFAULT_PLUGIN
    if (plugin_path.empty() && std::getenv("ROILENS_PLUGIN_PATH") == nullptr)
      plugin_path = ROILENS_SAMPLE_DEFAULT_PLUGIN;
#endif
    roilens::plugin::Library library(plugin_path);
    std::string options;
    if (!args.coder.empty()) options = nlohmann::json{{"coder", args.coder}}.dump();
    roilens::plugin::Session session(library, ReadFile(args.config), options);

    cv::VideoCapture capture(args.video);
    if (!capture.isOpened()) {
      std::cerr << "roilens_sample_app: cannot open video " << args.video << "\n";
      return 4;
    }
    std::ofstream out;
    if (!args.out.empty()) {
      out.open(args.out);
      if (!out) {
        std::cerr << "roilens_sample_app: cannot write " << args.out << "\n";
        return 4;
      }
    }
    std::ofstream* sink = out.is_open() ? &out : nullptr;
    const double fps = capture.get(cv::CAP_PROP_FPS) > 0 ? capture.get(cv::CAP_PROP_FPS) : 10;

    cv::Mat frame;
    std::int64_t index = 0;
    for (; args.frames < 0 || index < args.frames; ++index) {
      if (!capture.read(frame) || frame.empty()) break;
      session.Submit(frame, index, index / fps);
      // The loop never waits for the model: whatever is finished is shown now.
      while (auto done = session.TryTake()) PrintReadings(*done, sink);
    }
    session.Flush();
    while (auto done = session.Take()) PrintReadings(*done, sink);
    std::fprintf(stderr, "roilens_sample_app: %lld frames through %s (plugin %s, ABI %d, API %d)\n",
                 static_cast<long long>(index), library.path().c_str(),
                 library.library_version().c_str(), library.abi_version(), library.api_version());
    return 0;
  } catch (const roilens::plugin::Error& e) {
    std::cerr << "roilens_sample_app: " << e.what() << "\n";
    return e.code() == ROILENS_ERROR_CONFIG ? 3 : e.code() == ROILENS_ERROR_BACKEND ? 5 : 1;
  } catch (const std::exception& e) {
    std::cerr << "roilens_sample_app: " << e.what() << "\n";
    return 1;
  }
}
