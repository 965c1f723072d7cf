// MjpegServer: cpp-httplib chunked multipart stream of one JPEG, paced at fps.
#include "testing/mjpeg_server.h"

#include <opencv2/imgcodecs.hpp>
#include <vector>

namespace roilens::testing {

MjpegServer::MjpegServer(cv::Scalar color, double fps, cv::Size size) : fps_(fps) {
  std::vector<unsigned char> bytes;
  cv::imencode(".jpg", cv::Mat(size, CV_8UC3, color), bytes);
  jpeg_.assign(bytes.begin(), bytes.end());
  server_.Get("/stream.mjpg", [this](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider(
        "multipart/x-mixed-replace;boundary=frame", [this](std::size_t, httplib::DataSink& sink) {
          const std::string part = "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                                   std::to_string(jpeg_.size()) + "\r\n\r\n" + jpeg_ + "\r\n";
          {
            std::lock_guard lock(mu_);
            if (stopping_) return false;  // the camera dies: connection closed mid-stream
          }
          if (!sink.write(part.data(), part.size())) return false;
          ++frames_sent_;
          // Pacing only (a camera's frame rate); nothing waits on it for ordering.
          std::unique_lock lock(mu_);
          cv_.wait_for(lock, std::chrono::duration<double>(1.0 / fps_), [&] { return stopping_; });
          return !stopping_;
        });
  });
}

MjpegServer::~MjpegServer() { Stop(); }

bool MjpegServer::Start(int port) {
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  if (port == 0) {
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) return false;
  } else {
    if (!server_.bind_to_port("127.0.0.1", port)) return false;
    port_ = port;
  }
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  // Wait for the accept loop so a Stop() right after Start() is not lost (httplib 0.11).
  while (!server_.is_running()) std::this_thread::yield();
  return true;
}

void MjpegServer::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  server_.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace roilens::testing
