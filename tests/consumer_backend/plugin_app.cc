// plugin_app CONFIG VIDEO FRAMES: as backend_app, through the plugin facade with no library path
// given (the installed plugin is the facade's default). Prints "library <path>", "package
// <ROILENS_PLUGIN_LIBRARY>", then "frame <JSON array of the frame's result objects>" per frame.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <opencv2/videoio.hpp>
#include <roilens_plugin/roilens_plugin.hpp>
#include <string>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: plugin_app CONFIG VIDEO FRAMES\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  const std::string config((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    roilens::plugin::Library library;
    std::cout << "library " << library.path() << "\n";
    std::cout << "package " << CONSUMER_PLUGIN_LIBRARY << "\n";
    roilens::plugin::Session session(library, config);
    cv::VideoCapture video(argv[2]);
    const int frames = std::atoi(argv[3]);
    cv::Mat frame;
    for (int i = 0; i < frames && video.read(frame); ++i) session.Submit(frame, i, i / 10.0);
    session.Flush();  // fewer frames than the session's queue: nothing waits on Take
    while (auto out = session.Take()) std::cout << "frame " << out->results_json << "\n";
  } catch (const roilens::plugin::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
