// An in-process cpp-httplib server on 127.0.0.1, port 0, for tests: register handlers, Start(),
// point a client at base_url(). Records every request it receives. Also: a Gate to hold handlers
// until the test releases them, and a port that refuses connections.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace roilens::testing {

/// One request as the server saw it. Method, (decoded) path and headers are recorded on arrival;
/// the body once its handler has returned.
struct RecordedRequest {
  std::string method;
  std::string path;
  std::string body;
  httplib::Headers headers;
  std::string Header(const std::string& name) const;  ///< "" when absent
};

/// Thread-safe except for server(): register handlers before Start(). The destructor stops the
/// server and joins its threads; handlers blocked on a Gate must be released first (declare the
/// Gate after the server so it is destroyed, and opened, before it).
class HttpFixtureServer {
 public:
  /// `threads`: size of the server's worker pool. cpp-httplib keeps a worker on each kept-alive
  /// connection (up to 5 s idle), so give it at least as many as the client's max_in_flight.
  explicit HttpFixtureServer(int threads = 8);
  ~HttpFixtureServer();
  HttpFixtureServer(const HttpFixtureServer&) = delete;
  HttpFixtureServer& operator=(const HttpFixtureServer&) = delete;

  httplib::Server& server() { return server_; }
  /// Binds 127.0.0.1 on a free port and serves on a background thread; returns once listening.
  /// false when no port could be bound.
  bool Start();
  void Stop();
  int port() const { return port_; }
  std::string base_url() const;  ///< "http://127.0.0.1:<port>"

  std::vector<RecordedRequest> requests() const;
  std::size_t request_count() const;

 private:
  httplib::Server server_;
  int threads_;
  int port_ = -1;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<RecordedRequest> requests_;
  std::map<const httplib::Request*, std::size_t> pending_;  // awaiting their body
};

/// A latch that handlers wait on; Open() (or destruction) lets every waiter through.
class Gate {
 public:
  ~Gate() { Open(); }
  void Open();
  /// Blocks until Open().
  void Wait();
  bool is_open() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

/// A loopback port on which nothing listens (bound, then closed): connecting is refused.
int RefusingPort();

}  // namespace roilens::testing
