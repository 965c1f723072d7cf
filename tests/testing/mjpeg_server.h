// A loopback MJPEG-over-HTTP camera for live-mode tests: serves multipart/x-mixed-replace JPEG
// frames of one solid colour at /stream.mjpg until stopped; a new one can be started on the port
// of a stopped one (the camera "comes back").
#pragma once

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <opencv2/core.hpp>
#include <string>
#include <thread>

namespace roilens::testing {

/// Thread-safe. The destructor stops it.
class MjpegServer {
 public:
  /// `color`: BGR of every frame; `fps`: pacing of the frames sent.
  MjpegServer(cv::Scalar color, double fps = 50, cv::Size size = {64, 48});
  ~MjpegServer();
  /// Binds 127.0.0.1 on `port` (0: any free one); false when it cannot.
  bool Start(int port = 0);
  /// Ends every open stream (the client sees the connection close) and stops listening.
  void Stop();
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/stream.mjpg"; }
  /// Frames sent so far over all connections.
  long frames_sent() const { return frames_sent_.load(); }

 private:
  httplib::Server server_;
  std::string jpeg_;
  double fps_;
  int port_ = -1;
  std::thread thread_;
  std::atomic<long> frames_sent_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace roilens::testing
