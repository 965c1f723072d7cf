// The local backend against hostile or careless clients, over real sockets on loopback: deeply
// nested JSON, chunked bodies past the size cap, idle and slowloris connections, the connection
// cap, blank API keys, and methods a path does not serve.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "roilens/backend/server.h"
#include "testing/backend_fixture.h"

namespace roilens::backend {
namespace {

using nlohmann::json;
using testing::ClientFor;
using testing::EchoBackendOptions;
using testing::PostJson;
using testing::StartBackend;

// Safety nets only (a broken server must fail the test, not hang it); nothing asserts on time.
constexpr int kSafetySeconds = 60;

/// A raw loopback TCP connection to `port` (-1 when it cannot connect).
int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval timeout{kSafetySeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

/// Reads until the peer closes or the safety timeout; returns what arrived.
std::string ReadUntilClosed(int fd) {
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0;) text.append(buffer, n);
  return text;
}

/// The status code of a raw HTTP response ("HTTP/1.1 403 ..."), 0 when there is none.
int StatusOf(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return 0;
  return std::atoi(response.c_str() + 9);
}

/// True while the server has neither closed `fd` nor sent anything on it.
bool StillOpenAndSilent(int fd) {
  char byte;
  const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

json ErrorOf(const httplib::Result& res) {
  if (!res) return json();
  json body = json::parse(res->body, nullptr, false);
  return body.is_object() && body.contains("error") ? body["error"] : json();
}

// ---- 1: nesting depth -----------------------------------------------------------------------

std::string Nested(int depth) {
  return R"({"model":"m","input":)" + std::string(depth, '[') + std::string(depth, ']') + "}";
}

// Regression: a 200 KB body nesting arrays 100,000 deep crashed the server (stack exhaustion).
TEST(ServerHardeningTest, DeeplyNestedBodyIsRefusedAndTheServerSurvives) {
  auto backend = StartBackend(EchoBackendOptions());
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  for (int depth : {100000, 257}) {
    SCOPED_TRACE(depth);
    auto res = client->Post("/v1beta/interactions", Nested(depth), "application/json");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 400) << res->body;
    EXPECT_EQ(ErrorOf(res).value("status", ""), "INVALID_ARGUMENT") << res->body;
    EXPECT_NE(res->body.find("deeper than 256"), std::string::npos) << res->body;
  }
  // Within the limit the body is parsed (and refused for its shape, not its depth).
  auto shallow = client->Post("/v1beta/interactions", Nested(200), "application/json");
  ASSERT_TRUE(shallow);
  EXPECT_EQ(shallow->status, 400);
  EXPECT_EQ(shallow->body.find("nested deeper"), std::string::npos) << shallow->body;
  auto ok = PostJson(*client, "/v1beta/interactions", {{"model", "m"}, {"input", "still here"}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
}

// ---- 2: chunked bodies ----------------------------------------------------------------------

struct ChunkedUpload {
  int status = 0;              ///< of the answer
  std::size_t bytes_sent = 0;  ///< body bytes the client got into the socket
  bool server_cut_it = false;  ///< a send failed: the server closed the connection
};

/// Sends a chunked POST of up to `limit` bytes of 'a' (64 KiB chunks) while a second thread
/// reads the answer, as a client that watches for an early answer does.
ChunkedUpload UploadChunked(int port, const std::string& extra_headers, std::size_t limit) {
  ChunkedUpload result;
  const int fd = Connect(port);
  if (fd < 0) return result;
  std::string response;
  std::thread reader([&] { response = ReadUntilClosed(fd); });
  const std::string chunk_data(64 << 10, 'a');
  std::string chunk = "10000\r\n" + chunk_data + "\r\n";
  bool ok = SendAll(fd, "POST /v1beta/interactions HTTP/1.1\r\nHost: test\r\n" + extra_headers +
                            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
  while (ok && result.bytes_sent < limit) {
    ok = SendAll(fd, chunk);
    if (ok) result.bytes_sent += chunk_data.size();
  }
  if (ok) ok = SendAll(fd, "0\r\n\r\n");
  result.server_cut_it = !ok;
  if (ok) ::shutdown(fd, SHUT_WR);
  reader.join();
  ::close(fd);
  result.status = StatusOf(response);
  return result;
}

// Regression: chunked bodies skipped the size cap and were read whole before the key was
// checked (1,000 MB with no key took the process to 1.16 GB, then 403).
TEST(ServerHardeningTest, ChunkedBodiesAreCappedAndAuthenticatedBeforeReading) {
  auto options = EchoBackendOptions();
  options.api_keys = {"k1"};
  options.max_request_bytes = 1 << 20;
  auto backend = StartBackend(options);
  ASSERT_TRUE(backend);
  // The server stops reading long before this (it reads at most the cap, or nothing, plus what
  // it drains before closing); the old server read all of it.
  const std::size_t offered = std::size_t{256} << 20;

  ChunkedUpload anonymous = UploadChunked(backend->port(), "", offered);
  EXPECT_EQ(anonymous.status, 403);
  EXPECT_TRUE(anonymous.server_cut_it);
  EXPECT_LT(anonymous.bytes_sent, offered / 2);
  std::cout << "[ chunked ] no key: answered " << anonymous.status << " after the client sent "
            << (anonymous.bytes_sent >> 20) << " MiB of " << (offered >> 20) << " MiB\n";

  ChunkedUpload too_large = UploadChunked(backend->port(), "x-goog-api-key: k1\r\n", offered);
  EXPECT_EQ(too_large.status, 413);
  EXPECT_TRUE(too_large.server_cut_it);
  EXPECT_LT(too_large.bytes_sent, offered / 2);
  std::cout << "[ chunked ] with key: answered " << too_large.status << " after the client sent "
            << (too_large.bytes_sent >> 20) << " MiB of " << (offered >> 20) << " MiB\n";

  // A chunked body under the cap is served.
  auto client = ClientFor(*backend);
  const std::string body = json{{"model", "m"}, {"input", "chunked hello"}}.dump();
  auto res = client->Post(
      "/v1beta/interactions", httplib::Headers{{"x-goog-api-key", "k1"}},
      [&](std::size_t offset, httplib::DataSink& sink) {
        if (offset < body.size()) {
          sink.write(body.data() + offset, std::min<std::size_t>(7, body.size() - offset));
        } else {
          sink.done();
        }
        return true;
      },
      "application/json");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_NE(res->body.find("echo: chunked hello"), std::string::npos);
}

// ---- 4: idle and slowloris connections ------------------------------------------------------

// Regression: with 200 idle sockets open, an ordinary request took 59 s (it waited for the idle
// ones to time out and free a worker).
/// One ordinary create request on a fresh connection; prints how long the answer took (for the
/// record, never asserted), e.g. "[ ordinary request ] with 200 idle sockets open: 12 ms".
httplib::Result OrdinaryRequest(int port, const std::string& situation) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(kSafetySeconds);
  client.set_read_timeout(kSafetySeconds);
  const auto t0 = std::chrono::steady_clock::now();
  auto res =
      client.Post("/v1beta/interactions", R"({"model":"m","input":"hi"})", "application/json");
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "[ ordinary request ] " << situation << ": answered in " << ms << " ms\n";
  return res;
}

TEST(ServerHardeningTest, IdleSocketsDoNotDelayARequest) {
  auto options = EchoBackendOptions();
  // Long enough that the idle sockets are certainly still open when the request is answered,
  // however slow this machine is (the old server's 5 s keep-alive timeout closed them first).
  options.idle_timeout = std::chrono::seconds(kSafetySeconds);
  auto backend = StartBackend(options);
  ASSERT_TRUE(backend);
  std::vector<int> idle;
  for (int i = 0; i < 200; ++i) {
    const int fd = Connect(backend->port());
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  auto res = OrdinaryRequest(backend->port(), "with 200 idle sockets open");
  EXPECT_TRUE(res) << httplib::to_string(res.error());
  if (res) {
    EXPECT_EQ(res->status, 200);
  }
  // It was answered while every idle socket was still open: it did not wait for them to close.
  int open = 0;
  for (int fd : idle) open += StillOpenAndSilent(fd);
  EXPECT_EQ(open, 200);
  for (int fd : idle) ::close(fd);
}

struct Slowloris {
  std::atomic<int> started{0};
  std::atomic<int> cut_off{0};  ///< disconnected (or answered) by the server
};

/// Sends a request line, then one header line every `interval`, never finishing the headers,
/// until the server answers or closes (or the safety deadline).
void RunSlowloris(int port, std::chrono::milliseconds interval, Slowloris& stats) {
  const int fd = Connect(port);
  if (fd < 0) return;
  bool ok = SendAll(fd, "POST /v1beta/interactions HTTP/1.1\r\nHost: test\r\n");
  ++stats.started;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(kSafetySeconds);
  for (int line = 0; ok && std::chrono::steady_clock::now() < give_up; ++line) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(interval.count())) != 0) break;  // answered or closed
    ok = SendAll(fd, "X-Slow-" + std::to_string(line) + ": 1\r\n");
  }
  pollfd p{fd, POLLIN, 0};
  if (!ok || ::poll(&p, 1, 0) == 1) ++stats.cut_off;
  ::close(fd);
}

// Regression: 40 clients sending a header line every 2 s held every worker, so every ordinary
// request timed out; the per-recv read timeout never fired.
TEST(ServerHardeningTest, SlowlorisClientsAreCutOffAndOthersServed) {
  auto backend = StartBackend(EchoBackendOptions());
  ASSERT_TRUE(backend);
  constexpr int kAttackers = 40;
  Slowloris stats;
  std::vector<std::thread> attackers;
  for (int i = 0; i < kAttackers; ++i) {
    attackers.emplace_back(
        [&] { RunSlowloris(backend->port(), std::chrono::milliseconds(500), stats); });
  }
  while (stats.started < kAttackers) std::this_thread::yield();

  auto res = OrdinaryRequest(backend->port(),
                             "during " + std::to_string(kAttackers) + " slowloris clients");
  EXPECT_TRUE(res) << httplib::to_string(res.error());  // not ASSERT: the attackers are joined
  if (res) {
    EXPECT_EQ(res->status, 200);
  }

  for (auto& t : attackers) t.join();
  // Each kept sending well within any per-read timeout; only a total header deadline ends them.
  EXPECT_EQ(stats.cut_off.load(), kAttackers);
}

TEST(ServerHardeningTest, IdleConnectionsAreClosedAfterTheIdleTimeout) {
  auto options = EchoBackendOptions();
  options.idle_timeout = std::chrono::milliseconds(200);
  auto backend = StartBackend(options);
  ASSERT_TRUE(backend);
  const int fd = Connect(backend->port());
  ASSERT_GE(fd, 0);
  EXPECT_EQ(ReadUntilClosed(fd), "");  // closed by the server, with nothing sent
  ::close(fd);
}

TEST(ServerHardeningTest, ConnectionsBeyondTheCapAreAnswered503) {
  auto options = EchoBackendOptions();
  options.threads = 1;
  options.max_connections = 4;
  options.idle_timeout = std::chrono::seconds(kSafetySeconds);
  auto backend = StartBackend(options);
  ASSERT_TRUE(backend);
  std::vector<int> held;
  for (int i = 0; i < options.max_connections; ++i) {
    held.push_back(Connect(backend->port()));
    ASSERT_GE(held.back(), 0);
  }
  // Accepted in order, so the first four hold every connection slot. The fifth is answered
  // without its request being read (so this one sends none: a request arriving after the
  // server closed may turn the answer into a reset, which refuses it just as well).
  const int extra = Connect(backend->port());
  ASSERT_GE(extra, 0);
  const std::string refused = ReadUntilClosed(extra);
  ::close(extra);
  EXPECT_EQ(StatusOf(refused), 503) << refused;
  EXPECT_NE(refused.find("\"UNAVAILABLE\""), std::string::npos) << refused;
  EXPECT_NE(refused.find("max_connections"), std::string::npos) << refused;

  // A slot frees as soon as a held connection ends; then requests are served again.
  ::close(held.back());
  held.pop_back();
  int status = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(kSafetySeconds);
  while (status != 200 && std::chrono::steady_clock::now() < give_up) {
    httplib::Client client("127.0.0.1", backend->port());
    auto res =
        client.Post("/v1beta/interactions", R"({"model":"m","input":"hi"})", "application/json");
    status = res ? res->status : 0;
    if (status != 200 && status != 0) {
      EXPECT_EQ(status, 503);  // until the slot is seen free (0: refused by a reset)
    }
  }
  EXPECT_EQ(status, 200);
  for (int fd : held) ::close(fd);
}

// ---- 5: API keys ----------------------------------------------------------------------------

// Regression: a key of blanks was accepted (and then `?key=%20` authenticated), and keys were
// compared untrimmed.
TEST(ServerHardeningTest, ApiKeysAreTrimmedAndBlankKeysRefused) {
  auto options = EchoBackendOptions();
  options.api_keys = {" "};
  auto blank = LocalBackend::Start(options);
  ASSERT_FALSE(blank.ok());
  EXPECT_EQ(blank.status().code(), StatusCode::kInvalidArgument);
  options.host = "0.0.0.0";
  EXPECT_FALSE(LocalBackend::Start(options).ok());

  options = EchoBackendOptions();
  options.api_keys = {"k1", " k2"};
  auto backend = StartBackend(options);
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  const json request = {{"model", "m"}, {"input", "hi"}};
  auto status = [&](const std::string& path, const httplib::Headers& headers) {
    auto res = PostJson(*client, path, request, headers);
    return res ? res->status : 0;
  };
  EXPECT_EQ(status("/v1beta/interactions", {{"x-goog-api-key", "k2"}}), 200);
  EXPECT_EQ(status("/v1beta/interactions", {{"x-goog-api-key", " k1 "}}), 200);
  EXPECT_EQ(status("/v1beta/interactions?key=%20k2", {}), 200);
  EXPECT_EQ(status("/v1beta/interactions?key=%20", {}), 403);
  EXPECT_EQ(status("/v1beta/interactions", {{"x-goog-api-key", "  "}}), 403);
  EXPECT_EQ(status("/v1beta/interactions", {{"x-goog-api-key", "k3"}}), 400);
}

// ---- 6: methods -----------------------------------------------------------------------------

// Regression: PUT/PATCH/OPTIONS on known paths answered 404.
TEST(ServerHardeningTest, MethodsAPathDoesNotServeAre405WithAllow) {
  auto backend = StartBackend(EchoBackendOptions());
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  struct Case {
    std::string method, path, allow;
  };
  for (const Case& c : std::vector<Case>{
           {"PUT", "/v1beta/interactions", "POST"},
           {"PATCH", "/v1beta/interactions", "POST"},
           {"OPTIONS", "/v1beta/interactions", "POST"},
           {"GET", "/v1beta/interactions", "POST"},
           {"PUT", "/v1/interactions/abc", "GET, HEAD, DELETE"},
           {"POST", "/proxy/v1beta/interactions/abc", "GET, HEAD, DELETE"},
           {"GET", "/v1beta/interactions/abc:cancel", "POST"},
       }) {
    SCOPED_TRACE(c.method + " " + c.path);
    httplib::Request req;
    req.method = c.method;
    req.path = c.path;
    if (c.method != "GET" && c.method != "OPTIONS") {
      req.body = R"({"model":"m","input":"x"})";
      req.set_header("Content-Type", "application/json");
    }
    auto res = client->send(req);
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 405) << res->body;
    EXPECT_EQ(res->get_header_value("Allow"), c.allow);
    const json error = ErrorOf(res);
    EXPECT_EQ(error.value("code", 0), 405) << res->body;
    EXPECT_FALSE(error.value("status", "").empty());
    EXPECT_TRUE(error.contains("details"));
  }
  // Unknown paths stay 404, and the connection still serves afterwards.
  auto unknown = client->Put("/v1beta/other", "{}", "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  auto ok = PostJson(*client, "/v1beta/interactions", {{"model", "m"}, {"input", "hi"}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

}  // namespace
}  // namespace roilens::backend
