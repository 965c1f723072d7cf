// Helpers for the local backend tests (see backend_fixture.h).
#include "testing/backend_fixture.h"

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "roilens/client/interactions.h"

namespace roilens::testing {

backend::BackendOptions EchoBackendOptions() {
  backend::BackendOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.coder = "echo";
  options.threads = 8;
  return options;
}

std::unique_ptr<backend::LocalBackend> StartBackend(backend::BackendOptions options) {
  auto backend = backend::LocalBackend::Start(std::move(options));
  if (!backend.ok()) {
    ADD_FAILURE() << "LocalBackend::Start failed: " << backend.status();
    return nullptr;
  }
  return std::move(*backend);
}

std::unique_ptr<httplib::Client> ClientFor(const backend::LocalBackend& backend) {
  auto client = std::make_unique<httplib::Client>("127.0.0.1", backend.port());
  client->set_keep_alive(true);
  client->set_tcp_nodelay(true);  // as libcurl does; avoids Nagle + delayed-ACK stalls
  client->set_connection_timeout(10);
  client->set_read_timeout(120);
  client->set_write_timeout(60);
  return client;
}

httplib::Result PostJson(httplib::Client& client, const std::string& path,
                         const nlohmann::json& body, const httplib::Headers& headers) {
  return client.Post(path.c_str(), headers, body.dump(), "application/json");
}

std::vector<std::uint8_t> TestPng(int width, int height) {
  cv::Mat image(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      image.at<cv::Vec3b>(y, x) =
          cv::Vec3b(static_cast<uchar>(x * 255 / width), static_cast<uchar>(y * 255 / height), 80);
    }
  }
  cv::circle(image, {width / 2, height / 2}, std::min(width, height) / 4, cv::Scalar::all(255),
             cv::FILLED);
  std::vector<std::uint8_t> png;
  cv::imencode(".png", image, png);
  return png;
}

std::string Base64(const std::vector<std::uint8_t>& bytes) {
  return wire::Base64Encode(bytes.data(), bytes.size());
}

std::vector<SseEvent> ParseSse(const std::string& body) {
  std::vector<SseEvent> events;
  SseEvent current;
  bool any = false;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      if (any) events.push_back(current);
      current = {};
      any = false;
      continue;
    }
    if (line.rfind("event:", 0) == 0) {
      current.event = line.substr(line.find_first_not_of(' ', 6));
      any = true;
    } else if (line.rfind("data:", 0) == 0) {
      std::string data = line.size() > 5 ? line.substr(line[5] == ' ' ? 6 : 5) : "";
      current.data += (current.data.empty() ? "" : "\n") + data;
      any = true;
    }
  }
  if (any) events.push_back(current);
  return events;
}

}  // namespace roilens::testing
