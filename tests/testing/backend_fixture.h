// Helpers for tests that drive the local backend (LocalBackend) over HTTP: start it on
// 127.0.0.1 port 0, post JSON with cpp-httplib, make small PNGs, split SSE bodies.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "roilens/backend/server.h"

namespace roilens::testing {

/// Options for an echo-coder backend on 127.0.0.1, any port (tests tweak them before Start).
backend::BackendOptions EchoBackendOptions();

/// Starts the backend or fails the current test (ADD_FAILURE) and returns null.
std::unique_ptr<backend::LocalBackend> StartBackend(backend::BackendOptions options);

/// A client for `backend` with generous timeouts (keep-alive on).
std::unique_ptr<httplib::Client> ClientFor(const backend::LocalBackend& backend);

/// POSTs `body` as JSON to `path`; the result may be null on transport failure.
httplib::Result PostJson(httplib::Client& client, const std::string& path,
                         const nlohmann::json& body, const httplib::Headers& headers = {});

/// A `width` x `height` PNG (a gradient with a white disc), encoded with OpenCV.
std::vector<std::uint8_t> TestPng(int width = 64, int height = 48);
std::string Base64(const std::vector<std::uint8_t>& bytes);

/// One server-sent event: the `event:` name and the `data:` payload.
struct SseEvent {
  std::string event;
  std::string data;
};
/// Splits a text/event-stream body into events (blank-line separated, "data:" lines joined).
std::vector<SseEvent> ParseSse(const std::string& body);

}  // namespace roilens::testing
