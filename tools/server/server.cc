// LocalBackend: the Interactions API emulator (cpp-httplib). Routes, API keys, Google-shaped
// errors, fault injection, latency, the store, and unary or SSE answers around one model turn.
#include "roilens/backend/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <httplib.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <thread>
#include <unordered_map>

#include "server_internal.h"

namespace roilens::backend {
namespace {

using internal::HttpError;
using internal::Json;

// A "slow" fault dribbles the body in this many pieces over kSlowBodyTotal: slow enough that a
// client notices (and its deadline can fire), short enough to keep fault tests quick.
constexpr int kSlowBodyPieces = 10;
constexpr std::chrono::milliseconds kSlowBodyTotal{1500};

constexpr int kListenBacklog = 1024;

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

int PortOf(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
  }
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
  }
  return -1;
}

void SendError(httplib::Response& res, const HttpError& error) {
  res.status = error.http_status;
  for (const auto& [name, value] : error.headers) res.set_header(name, value);
  res.set_content(internal::GoogleErrorBody(error).dump(), "application/json; charset=utf-8");
}

void SendJson(httplib::Response& res, const Json& body) {
  res.status = 200;
  res.set_content(body.dump(), "application/json; charset=utf-8");
}

// Requests served on one connection before it is closed (httplib's default of 5 makes busy
// clients reconnect constantly).
constexpr std::size_t kKeepAliveMaxCount = 100;
// How long a send may wait for the peer to make room (httplib's default write timeout).
constexpr std::chrono::seconds kWriteTimeout{5};
// After an answer given without reading the request body (a refusal), the rest of the body is
// read and dropped for at most this long / this many bytes before the socket is closed, so that
// a client still sending sees the answer rather than a reset.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr std::size_t kLingerBytes = std::size_t{4} << 20;
// After a request body at least this large, free heap memory is handed back to the system.
// glibc keeps what a thread freed in that thread's arena, and every connection has its own
// thread: without this, a few dozen 25 MB requests leave gigabytes resident long after their
// bodies, trees and answers are gone (measured: 20 x 25 MB requests, store capped at 1 MiB,
// RSS 2.5 GB). malloc_trim costs about a millisecond next to parsing such a body.
constexpr std::size_t kTrimAfterBytes = std::size_t{1} << 20;

// ---- connections ----------------------------------------------------------------------------
//
// Why not httplib's own connection loop: it hands each accepted socket to a fixed thread pool
// and keeps that worker on the connection for as long as it is kept alive, with only a
// per-recv read timeout. 200 idle sockets (or a few dozen clients sending one header line every
// 2 s) therefore occupy every worker and queue everyone else. Instead:
//  - every connection gets its own thread (ConnectionThreads, up to max_connections; beyond, a
//    new connection is answered 503 at once), so idle connections never delay a new one;
//  - HttpServer runs the keep-alive loop itself on a DeadlineStream: idle_timeout to begin a
//    request, a total header_timeout from its first byte to the end of its headers, then
//    idle_timeout of silence at most while a body is read; a handler (a model turn may take a
//    minute) has no deadline;
//  - the pre-routing handler (headers complete) checks route, method, key and Content-Length
//    before any body byte is read; an answer given without reading the body closes the
//    connection afterwards.
// This is simpler and more robust than a watchdog that finds and shuts down stale sockets from
// outside: every deadline is enforced by the thread that reads the socket.

/// What a connection's thread knows about the request in progress. httplib runs handlers on the
/// thread that reads the connection, so handlers reach it through t_connection.
struct ConnectionState {
  int sock = -1;
  std::chrono::steady_clock::time_point header_deadline;
  bool headers_done = false;          ///< the pre-routing handler saw the request
  bool close_after_response = false;  ///< answered without reading the whole body
  std::size_t body_bytes = 0;         ///< of the request in progress, as read by ReadBody
};
thread_local ConnectionState* t_connection = nullptr;
/// Set while ConnectionThreads runs a connection on the accepting thread: it is over capacity.
thread_local bool t_over_capacity = false;

void CloseAfterResponse() {
  if (t_connection != nullptr) t_connection->close_after_response = true;
}

/// Waits until `sock` has `events` or `deadline` passes or `stop_fd` (an eventfd, -1: none)
/// becomes readable. True when the socket is ready.
bool WaitSocket(int sock, short events, int stop_fd,
                std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd fds[2] = {{sock, events, 0}, {stop_fd, POLLIN, 0}};
    const int n = ::poll(fds, stop_fd >= 0 ? 2 : 1, static_cast<int>(left.count()) + 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if (stop_fd >= 0 && (fds[1].revents & POLLIN)) return false;
    return fds[0].revents != 0;
  }
}

void AddressOf(bool peer, int sock, std::string& ip, int& port) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  auto* raw = reinterpret_cast<sockaddr*>(&address);
  if ((peer ? getpeername(sock, raw, &length) : getsockname(sock, raw, &length)) != 0) return;
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(raw)->sin_addr, text, sizeof(text));
  } else if (address.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(raw)->sin6_addr, text, sizeof(text));
  }
  ip = text;
  port = PortOf(address);
}

/// A buffered socket stream whose reads end at the connection's deadlines: the total header
/// deadline until the pre-routing handler has run, then idle_timeout per read. Reads also end
/// when the server stops.
class DeadlineStream final : public httplib::Stream {
 public:
  DeadlineStream(int sock, int stop_fd, std::chrono::milliseconds idle_timeout,
                 const ConnectionState& state)
      : sock_(sock), stop_fd_(stop_fd), idle_timeout_(idle_timeout), state_(state) {}

  bool has_buffered() const { return offset_ < filled_; }

  bool is_readable() const override {
    return has_buffered() || WaitSocket(sock_, POLLIN, stop_fd_, ReadDeadline());
  }
  bool is_writable() const override {
    return WaitSocket(sock_, POLLOUT, -1, std::chrono::steady_clock::now() + kWriteTimeout);
  }
  ssize_t read(char* ptr, size_t size) override {
    if (!has_buffered()) {
      if (!WaitSocket(sock_, POLLIN, stop_fd_, ReadDeadline())) return -1;
      if (size >= buffer_.size()) return Receive(ptr, size);
      const ssize_t n = Receive(buffer_.data(), buffer_.size());
      if (n <= 0) return n;
      offset_ = 0;
      filled_ = static_cast<std::size_t>(n);
    }
    const std::size_t n = std::min(size, filled_ - offset_);
    std::memcpy(ptr, buffer_.data() + offset_, n);
    offset_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    for (;;) {
      const ssize_t n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      return n;
    }
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    AddressOf(true, sock_, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    AddressOf(false, sock_, ip, port);
  }
  int socket() const override { return sock_; }

 private:
  std::chrono::steady_clock::time_point ReadDeadline() const {
    const auto idle = std::chrono::steady_clock::now() + idle_timeout_;
    return state_.headers_done ? idle : std::min(idle, state_.header_deadline);
  }
  ssize_t Receive(char* ptr, std::size_t size) {
    for (;;) {
      const ssize_t n = ::recv(sock_, ptr, size, 0);
      if (n < 0 && errno == EINTR) continue;
      return n;
    }
  }

  const int sock_;
  const int stop_fd_;
  const std::chrono::milliseconds idle_timeout_;
  const ConnectionState& state_;
  std::array<char, 16384> buffer_{};
  std::size_t offset_ = 0;
  std::size_t filled_ = 0;
};

/// Reads and drops what the peer still sends, for at most kLingerTime / kLingerBytes, after our
/// side has been shut down for writing.
void Linger(int sock, int stop_fd, bool wait) {
  char sink[16384];
  std::size_t dropped = 0;
  const auto deadline = std::chrono::steady_clock::now() + kLingerTime;
  while (dropped < kLingerBytes) {
    if (wait && !WaitSocket(sock, POLLIN, stop_fd, deadline)) break;
    const ssize_t n = ::recv(sock, sink, sizeof(sink), wait ? 0 : MSG_DONTWAIT);
    if (n <= 0) break;
    dropped += static_cast<std::size_t>(n);
  }
}

/// The task queue httplib hands accepted sockets to: one thread per connection. `warm` threads
/// start up front and threads are reused; more start on demand up to `max`. Threads are cheap
/// next to what a connection may hold (a request body, a model turn); `max` bounds them. When
/// all `max` are busy, the connection is run on the accepting thread with t_over_capacity set,
/// and HttpServer answers it 503 without reading anything (so that never blocks).
class ConnectionThreads final : public httplib::TaskQueue {
 public:
  ConnectionThreads(std::size_t warm, std::size_t max) : max_(std::max<std::size_t>(max, 1)) {
    std::lock_guard lock(mu_);
    while (threads_.size() < std::min(warm, max_)) StartThreadLocked();
  }

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard lock(mu_);
      if (free_ > jobs_.size() || threads_.size() < max_) {
        jobs_.push_back(std::move(fn));
        if (free_ < jobs_.size()) StartThreadLocked();
        cv_.notify_one();
        return;
      }
    }
    t_over_capacity = true;
    fn();
    t_over_capacity = false;
  }

  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      shutdown_ = true;
    }
    cv_.notify_all();
    for (auto& thread : threads_) thread.join();
  }

 private:
  void StartThreadLocked() {
    ++free_;  // counted as free from now, even before it runs: capacity is decided on this
    threads_.emplace_back([this] { Work(); });
  }

  void Work() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return !jobs_.empty() || shutdown_; });
      if (jobs_.empty()) return;  // shutting down
      auto fn = std::move(jobs_.front());
      jobs_.pop_front();
      --free_;
      lock.unlock();
      fn();
      lock.lock();
      ++free_;
    }
  }

  const std::size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;  ///< only the accepting thread adds and joins
  std::size_t free_ = 0;              ///< threads not serving a connection
  bool shutdown_ = false;
};

/// httplib's Server with its connection loop replaced (see "connections" above).
/// process_and_close_socket is private in httplib::Server but virtual: overriding it is how a
/// subclass takes over a connection; the base loop is not called.
class HttpServer final : public httplib::Server {
 public:
  struct Limits {
    int stop_fd = -1;
    std::chrono::milliseconds idle_timeout{5000};
    std::chrono::milliseconds header_timeout{5000};
    std::string over_capacity_body;  ///< the Google-shaped 503 body
  };
  void set_limits(Limits limits) { limits_ = std::move(limits); }

 private:
  bool process_and_close_socket(int sock) override {
    if (t_over_capacity) {
      RefuseOverCapacity(sock);
      return false;
    }
    ConnectionState state;
    state.sock = sock;
    t_connection = &state;
    DeadlineStream stream(sock, limits_.stop_fd, limits_.idle_timeout, state);
    bool ok = false;
    for (std::size_t left = kKeepAliveMaxCount; left > 0; --left) {
      if (!stream.has_buffered() &&
          !WaitSocket(sock, POLLIN, limits_.stop_fd,
                      std::chrono::steady_clock::now() + limits_.idle_timeout)) {
        break;  // idle too long, or stopping
      }
      state.headers_done = false;
      state.close_after_response = false;
      state.body_bytes = 0;
      state.header_deadline = std::chrono::steady_clock::now() + limits_.header_timeout;
      bool client_closes = false;
      ok = process_request(stream, /*close_connection=*/left == 1, client_closes, nullptr);
      if (state.body_bytes >= kTrimAfterBytes) malloc_trim(0);
      // A request httplib answered itself before routing (malformed, or its headers did not
      // arrive in time) leaves the stream in an unknown place: never read on after it.
      if (!ok || client_closes || !state.headers_done || state.close_after_response) break;
    }
    t_connection = nullptr;
    if (state.close_after_response) {
      ::shutdown(sock, SHUT_WR);
      Linger(sock, limits_.stop_fd, /*wait=*/true);
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ok;
  }

  void RefuseOverCapacity(int sock) {
    const std::string& body = limits_.over_capacity_body;
    const std::string response =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; "
        "charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    // A fresh socket's send buffer takes this at once; never wait on the accepting thread. Only
    // what has already arrived is drained: a request arriving after the close is answered by a
    // reset instead (refused either way).
    (void)::send(sock, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(sock, SHUT_WR);
    Linger(sock, -1, /*wait=*/false);
    ::close(sock);
  }

  Limits limits_;
};

HttpError NoRouteError(const httplib::Request& req) {
  return internal::MakeError(404, "no such route: " + req.method + " " + req.path +
                                      " (expected .../v1beta/interactions[/{id}])");
}

bool RequestHasBody(const httplib::Request& req) {
  if (req.has_header("Transfer-Encoding")) return true;
  const std::string length = req.get_header_value("Content-Length");
  return !length.empty() && length != "0";
}

/// A path the backend serves and the methods it accepts there.
struct Route {
  std::regex pattern;
  std::vector<std::string> methods;
  std::string Allow() const {
    std::string allow;
    for (const auto& m : methods) allow += (allow.empty() ? "" : ", ") + m;
    return allow;
  }
};

class LocalBackendImpl final : public LocalBackend {
 public:
  explicit LocalBackendImpl(BackendOptions options)
      : options_(std::move(options)),
        store_(options_.store_max_interactions, options_.store_max_bytes, options_.store_ttl),
        faults_(options_.faults) {}

  ~LocalBackendImpl() override {
    Stop();
    if (stop_fd_ >= 0) ::close(stop_fd_);
  }

  Status Init();

  int port() const override { return port_; }
  std::string base_url() const override {
    const bool v6 = options_.host.find(':') != std::string::npos && options_.host[0] != '[';
    return "http://" + (v6 ? "[" + options_.host + "]" : options_.host) + ":" +
           std::to_string(port_);
  }
  void Wait() override {
    std::unique_lock lock(mu_);
    stopped_cv_.wait(lock, [&] { return stopping_; });
  }
  void Stop() override {
    {
      std::lock_guard lock(mu_);
      if (stopping_ && !listener_.joinable()) return;
      stopping_ = true;
    }
    stopped_cv_.notify_all();
    {
      // Turns in progress end before their next step (their sandbox job, if one runs, finishes
      // first): a run interrupted with thousands of calls in flight stops in about one job's time.
      std::lock_guard lock(running_mu_);
      for (auto& [id, cancelled] : running_) cancelled->store(true);
    }
    // Wakes every connection thread waiting for a request or a body (the eventfd stays readable).
    if (stop_fd_ >= 0) {
      const std::uint64_t one = 1;
      (void)::write(stop_fd_, &one, sizeof(one));
    }
    // cpp-httplib's stop() does nothing until listen_after_bind() has marked the server running;
    // a Stop() right after Start() would then leave the listener accepting forever and the join
    // below would hang. Wait for "running" (or for the listener to have given up) first.
    if (listener_.joinable()) {
      while (!server_.is_running() && !listener_done_.load()) std::this_thread::yield();
    }
    server_.stop();
    std::lock_guard join_lock(join_mu_);
    if (listener_.joinable()) listener_.join();
  }

  std::string Describe() const override;

 private:
  void InstallRoutes();
  /// Runs once a request's headers are in, before any of its body is read: unknown path (404),
  /// method not served there (405 + Allow), API key (403/400), declared body too large (413).
  httplib::Server::HandlerResponse PreRoute(const httplib::Request& req, httplib::Response& res);
  /// nullopt when `req` carries an accepted key (or none is needed); else the 403/400 to answer.
  std::optional<HttpError> Authenticate(const httplib::Request& req) const;
  HttpError TooLargeError() const;
  /// Reads the request body through `reader` into `body`, at most max_request_bytes; on failure
  /// answers (413 or 400) in `res`, marks the connection to close and returns false.
  bool ReadBody(const httplib::Request& req, const httplib::ContentReader& reader,
                std::string& body, httplib::Response& res);
  /// Fault injection, shared by every API route (the key was checked in PreRoute). Returns false
  /// when `res` is done; sets `*slow` when the answer's body must be dribbled (the "slow" fault).
  bool Admit(const httplib::Request& req, httplib::Response& res, bool* slow);
  /// Replaces a finished unary answer's body by one written in pieces with pauses.
  void MakeSlow(httplib::Response& res);
  /// Runs `handler()` behind Admit (and MakeSlow when the slow fault hit).
  template <typename Handler>
  void Serve(const httplib::Request& req, httplib::Response& res, Handler handler) {
    bool slow = false;
    if (!Admit(req, res, &slow)) return;
    handler();
    if (slow) MakeSlow(res);
  }
  void HandleCreate(const httplib::Request& req, httplib::Response& res, std::string_view body);
  void HandleGet(const httplib::Request& req, httplib::Response& res);
  void HandleDelete(const httplib::Request& req, httplib::Response& res);
  void HandleCancel(const httplib::Request& req, httplib::Response& res);
  /// Waits `options_.latency` (the emulated model think time); false when stopping meanwhile.
  bool WaitLatency();
  std::unique_ptr<Coder> MakeCoder() const;
  /// Closes the client connection of `req` without answering (the "reset" fault).
  void ResetConnection(const httplib::Request& req);
  /// Runs the turn, stores it (unless store:false) and returns the interaction. `on_step`
  /// (may be empty) sees each output step as it is produced.
  StatusOr<Json> CompleteTurn(const internal::ParsedRequest& request, const std::string& id,
                              const std::string& created,
                              std::function<bool(std::size_t, const Json&)> on_step = nullptr);

  BackendOptions options_;
  internal::InteractionStore store_;
  /// Turns in progress, by interaction id: cancel sets the flag, the turn stops at its next step.
  std::mutex running_mu_;
  std::unordered_map<std::string, std::shared_ptr<std::atomic<bool>>> running_;
  internal::FaultInjector faults_;
  std::unique_ptr<Sandbox> sandbox_;
  std::string sandbox_error_;
  bool coder_executes_code_ = false;

  std::vector<Route> routes_;
  int stop_fd_ = -1;  ///< eventfd, readable once Stop() began
  HttpServer server_;
  int port_ = 0;
  int listen_socket_ = -1;
  std::thread listener_;
  std::atomic<bool> listener_done_{false};  ///< listen_after_bind() returned
  std::mutex join_mu_;
  std::mutex mu_;
  std::condition_variable stopped_cv_;
  bool stopping_ = false;
};

std::unique_ptr<Coder> LocalBackendImpl::MakeCoder() const {
  if (options_.coder_factory) return options_.coder_factory();
  if (options_.coder == "echo") return MakeEchoCoder();
  return MakeCvCoder();
}

Status LocalBackendImpl::Init() {
  if (options_.coder != "cv" && options_.coder != "echo" && !options_.coder_factory) {
    return InvalidArgumentError("unknown coder '" + options_.coder + "' (expected cv or echo)");
  }
  if (options_.port < 0 || options_.port > 65535) {
    return InvalidArgumentError("port must be within 0..65535, got " +
                                std::to_string(options_.port));
  }
  if (options_.max_attempts < 1) return InvalidArgumentError("max_attempts must be >= 1");
  if (options_.threads < 1) return InvalidArgumentError("threads must be >= 1");
  if (options_.max_connections < 1) return InvalidArgumentError("max_connections must be >= 1");
  if (options_.idle_timeout.count() <= 0 || options_.header_timeout.count() <= 0) {
    return InvalidArgumentError("idle_timeout and header_timeout must be > 0 ms");
  }
  if (options_.max_request_bytes == 0) return InvalidArgumentError("max_request_bytes is 0");
  if (options_.latency.count() < 0) return InvalidArgumentError("latency must be >= 0 ms");
  if (auto s = internal::ValidateFaults(options_.faults); !s.ok()) return s;
  // A key of blanks would be matched by a blank key=%20 or a header of spaces: keys compare
  // trimmed, and one that is empty after trimming is refused.
  for (auto& key : options_.api_keys) {
    key = TrimWhitespace(key);
    if (key.empty()) return InvalidArgumentError("an API key is empty (or only whitespace)");
  }
  if (options_.api_keys.empty() && !IsLoopbackHost(options_.host)) {
    return FailedPreconditionError(
        "refusing to listen on '" + options_.host +
        "' without API keys: without keys the local backend only binds loopback (127.0.0.1, "
        "::1); configure at least one key (--api-key or ROILENS_SERVER_KEYS) to serve others");
  }

  // The sandbox is made only for coders that run code. If it cannot start, the backend still
  // serves (text answers, the echo coder's callers) but refuses every code-execution request
  // with FAILED_PRECONDITION naming the reason: code never runs unsandboxed.
  coder_executes_code_ = MakeCoder()->ExecutesCode();
  if (coder_executes_code_) {
    auto sandbox = Sandbox::Create(options_.sandbox);
    if (sandbox.ok()) {
      sandbox_ = std::move(*sandbox);
    } else {
      sandbox_error_ = "the code sandbox could not start: " + sandbox.status().message();
    }
  }

  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) return InternalError("eventfd failed");
  server_.set_limits(
      {stop_fd_, options_.idle_timeout, options_.header_timeout,
       internal::GoogleErrorBody(
           internal::MakeError(503, "The local backend is serving its maximum of " +
                                        std::to_string(options_.max_connections) +
                                        " connections (max_connections); retry shortly."))
           .dump()});
  server_.new_task_queue = [warm = options_.threads, max = options_.max_connections] {
    return new ConnectionThreads(static_cast<std::size_t>(warm), static_cast<std::size_t>(max));
  };
  server_.set_payload_max_length(options_.max_request_bytes);
  // Advertised in the Keep-Alive header; HttpServer enforces both.
  server_.set_keep_alive_max_count(kKeepAliveMaxCount);
  server_.set_keep_alive_timeout(std::max<time_t>(
      1, std::chrono::duration_cast<std::chrono::seconds>(options_.idle_timeout).count()));
  // Headers and body go out in separate writes; without TCP_NODELAY, Nagle holds the body until
  // the client's delayed ACK (~40 ms per response on Linux).
  server_.set_tcp_nodelay(true);
  // httplib applies socket options to the listening socket too: remember it to widen its accept
  // backlog (httplib listens with a backlog of 5, and a burst of clients overflows that).
  server_.set_socket_options([this](int sock) {
    httplib::default_socket_options(sock);
    listen_socket_ = sock;
  });
  InstallRoutes();

  if (options_.port == 0) {
    port_ = server_.bind_to_any_port(options_.host);
    if (port_ <= 0) return UnavailableError("cannot bind " + options_.host + " on any port");
  } else {
    if (!server_.bind_to_port(options_.host, options_.port)) {
      return UnavailableError("cannot bind " + options_.host + ":" + std::to_string(options_.port) +
                              " (in use or not permitted)");
    }
    port_ = options_.port;
  }
  // Sized for the 64-client burst of the load test and then some; the kernel caps it at
  // net.core.somaxconn.
  if (listen_socket_ >= 0) ::listen(listen_socket_, kListenBacklog);
  listener_ = std::thread([this] {
    server_.listen_after_bind();
    listener_done_ = true;
  });
  return OkStatus();
}

std::string LocalBackendImpl::Describe() const {
  std::string coder = options_.coder_factory ? "custom" : options_.coder;
  if (!coder_executes_code_) return "coder=" + coder + ", sandbox=not needed";
  return "coder=" + coder +
         ", sandbox=" + (sandbox_ ? sandbox_->Describe() : "UNAVAILABLE: " + sandbox_error_);
}

void LocalBackendImpl::InstallRoutes() {
  // Any path prefix before /v1 or /v1beta (proxies, the SDK's base URL paths) is accepted.
  const std::string collection = R"((.*)/(v1|v1beta)/interactions)";
  const std::string item = collection + R"(/([^/:]+))";
  const std::string cancel = item + R"([/:]cancel)";
  routes_ = {{std::regex(cancel), {"POST"}},
             {std::regex(item), {"GET", "HEAD", "DELETE"}},
             {std::regex(collection), {"POST"}}};
  using Reader = httplib::ContentReader;
  server_.Post(collection,
               [this](const httplib::Request& req, httplib::Response& res, const Reader& reader) {
                 std::string body;
                 if (!ReadBody(req, reader, body, res)) return;
                 Serve(req, res, [&] { HandleCreate(req, res, body); });
               });
  server_.Get(
      item, [this](const auto& req, auto& res) { Serve(req, res, [&] { HandleGet(req, res); }); });
  server_.Delete(item, [this](const auto& req, auto& res) {
    Serve(req, res, [&] { HandleDelete(req, res); });
  });
  server_.Post(cancel,
               [this](const httplib::Request& req, httplib::Response& res, const Reader& reader) {
                 std::string body;  // not used; read (bounded) to keep the connection in step
                 if (!ReadBody(req, reader, body, res)) return;
                 Serve(req, res, [&] { HandleCancel(req, res); });
               });
  server_.set_pre_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) { return PreRoute(req, res); });
  server_.set_post_routing_handler([](const httplib::Request&, httplib::Response& res) {
    // Tell the client when this connection ends with this answer.
    if (t_connection != nullptr &&
        (t_connection->close_after_response || !t_connection->headers_done)) {
      res.headers.erase("Keep-Alive");
      res.set_header("Connection", "close");
    }
  });
  // Google-shaped bodies for what httplib answers itself (unknown route, oversized body).
  server_.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty() || res.content_length_ != 0)
          return httplib::Server::HandlerResponse::Unhandled;
        HttpError error;
        if (res.status == 413) {
          error = TooLargeError();
        } else if (res.status == 404) {
          error = NoRouteError(req);
        } else {
          error = internal::MakeError(res.status, "HTTP " + std::to_string(res.status));
        }
        SendError(res, error);
        return httplib::Server::HandlerResponse::Handled;
      }));
}

HttpError LocalBackendImpl::TooLargeError() const {
  return internal::MakeError(413, "request body is larger than the local backend's limit of " +
                                      std::to_string(options_.max_request_bytes) +
                                      " bytes (max_request_bytes); send smaller images");
}

std::optional<HttpError> LocalBackendImpl::Authenticate(const httplib::Request& req) const {
  if (options_.api_keys.empty()) return std::nullopt;
  std::string key = TrimWhitespace(req.get_header_value("x-goog-api-key"));
  if (key.empty()) key = TrimWhitespace(req.get_param_value("key"));
  if (key.empty()) {
    return internal::MakeError(
        403,
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.");
  }
  bool known = false;
  for (const auto& k : options_.api_keys) known |= ConstantTimeEquals(k, key);
  if (known) return std::nullopt;
  HttpError e = internal::MakeError(400, "API key not valid. Please pass a valid API key.");
  e.details.push_back(internal::ErrorInfo("API_KEY_INVALID"));
  return e;
}

httplib::Server::HandlerResponse LocalBackendImpl::PreRoute(const httplib::Request& req,
                                                            httplib::Response& res) {
  if (t_connection != nullptr) t_connection->headers_done = true;
  // Answers given here leave any body unread: the connection then ends with the answer.
  auto refuse = [&](const HttpError& error) {
    SendError(res, error);
    if (RequestHasBody(req)) CloseAfterResponse();
    return httplib::Server::HandlerResponse::Handled;
  };
  const Route* route = nullptr;
  for (const auto& r : routes_) {
    if (std::regex_match(req.path, r.pattern)) {
      route = &r;
      break;
    }
  }
  if (route == nullptr) {
    return refuse(NoRouteError(req));
  }
  if (std::find(route->methods.begin(), route->methods.end(), req.method) == route->methods.end()) {
    HttpError e = internal::MakeError(405, "method " + req.method + " is not allowed on " +
                                               req.path + " (allowed: " + route->Allow() + ")");
    e.status = "UNIMPLEMENTED";
    e.headers.emplace_back("Allow", route->Allow());
    return refuse(e);
  }
  if (auto error = Authenticate(req)) return refuse(*error);
  // A declared length over the cap is refused before reading it (httplib would read it all to
  // skip it); chunked bodies are counted as they arrive (ReadBody).
  const std::string length = req.get_header_value("Content-Length");
  if (!length.empty()) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long n = std::strtoull(length.c_str(), &end, 10);
    if (*end != '\0' || errno != 0 || n > options_.max_request_bytes) {
      return refuse(*end != '\0' ? internal::MakeError(400, "Content-Length is not a number")
                                 : TooLargeError());
    }
  }
  return httplib::Server::HandlerResponse::Unhandled;
}

bool LocalBackendImpl::ReadBody(const httplib::Request& req, const httplib::ContentReader& reader,
                                std::string& body, httplib::Response& res) {
  // A request without Content-Length or Transfer-Encoding has no body (RFC 9112 6.3); httplib
  // would read one until the connection closes.
  if (!RequestHasBody(req)) return true;
  bool too_large = false;
  const bool ok = reader([&](const char* data, std::size_t size) {
    if (body.size() + size > options_.max_request_bytes) {
      too_large = true;
      return false;
    }
    body.append(data, size);
    return true;
  });
  if (t_connection != nullptr) t_connection->body_bytes = body.size();
  if (ok) return true;
  SendError(res, too_large ? TooLargeError()
                           : internal::MakeError(400,
                                                 "the request body could not be read (it "
                                                 "ended early, was malformed or stalled)"));
  CloseAfterResponse();
  return false;
}

bool LocalBackendImpl::Admit(const httplib::Request& req, httplib::Response& res, bool* slow) {
  switch (faults_.Next()) {
    case internal::FaultKind::kNone:
      return true;
    case internal::FaultKind::k429: {
      HttpError e = internal::MakeError(
          429, "Resource has been exhausted (injected fault: rate limit). Retry later.");
      const auto ms = options_.faults.retry_delay.count();
      char delay[32];
      std::snprintf(delay, sizeof(delay), "%lld.%03llds", static_cast<long long>(ms / 1000),
                    static_cast<long long>(ms % 1000));
      e.details.push_back(
          {{"@type", "type.googleapis.com/google.rpc.RetryInfo"}, {"retryDelay", delay}});
      e.headers.emplace_back("Retry-After", std::to_string((ms + 999) / 1000));
      e.headers.emplace_back("retry-after-ms", std::to_string(ms));
      SendError(res, e);
      return false;
    }
    case internal::FaultKind::k500:
      SendError(res, internal::MakeError(500, "Internal error encountered (injected fault)."));
      return false;
    case internal::FaultKind::k503:
      SendError(res, internal::MakeError(
                         503, "The model is overloaded. Please try again later (injected fault)."));
      return false;
    case internal::FaultKind::kGarbage:
      res.status = 200;
      res.set_content("<html><body>502 Bad Gateway (injected garbage)</body>\n\x01\x02{\"id\":",
                      "application/json");
      return false;
    case internal::FaultKind::kReset:
      ResetConnection(req);
      return false;
    case internal::FaultKind::kSlow:
      *slow = true;
      return true;
    case internal::FaultKind::kTruncated:
      // A 200 whose JSON stops mid-way; Content-Length is that of the cut body, so only a
      // client that parses what it got notices.
      res.status = 200;
      res.set_content(internal::TruncatedInteractionBody(), "application/json; charset=utf-8");
      return false;
    case internal::FaultKind::kStall: {
      // The answer comes, but only after a multi-second pause (cut short when stopping).
      std::unique_lock lock(mu_);
      stopped_cv_.wait_for(lock, internal::kStallTime, [&] { return stopping_; });
      return true;
    }
  }
  return true;
}

void LocalBackendImpl::ResetConnection(const httplib::Request& req) {
  // httplib does not hand handlers their socket: find it among this process's descriptors as the
  // socket whose local port is ours and whose peer port is the request's, then shut it down so
  // the client sees the connection close with no response at all.
  DIR* fds = opendir("/proc/self/fd");
  if (fds == nullptr) return;
  while (dirent* entry = readdir(fds)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (*end != '\0' || fd < 0 || fd == dirfd(fds)) continue;
    struct stat st {};
    if (fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_storage local{}, peer{};
    socklen_t local_len = sizeof(local), peer_len = sizeof(peer);
    if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
        getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
      continue;
    }
    if (PortOf(local) == port_ && PortOf(peer) == req.remote_port) {
      linger hard{1, 0};  // RST rather than FIN where the stack allows it
      setsockopt(static_cast<int>(fd), SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
      shutdown(static_cast<int>(fd), SHUT_RDWR);
      break;
    }
  }
  closedir(fds);
}

void LocalBackendImpl::MakeSlow(httplib::Response& res) {
  if (res.body.empty()) return;  // streamed answers are already incremental
  auto body = std::make_shared<std::string>(std::move(res.body));
  const std::string type = res.get_header_value("Content-Type");
  res.body.clear();
  const std::size_t piece = (body->size() + kSlowBodyPieces - 1) / kSlowBodyPieces;
  res.set_content_provider(
      body->size(), type,
      [this, body, piece](std::size_t offset, std::size_t, httplib::DataSink& sink) {
        if (offset > 0) {
          std::unique_lock lock(mu_);
          if (stopped_cv_.wait_for(lock, kSlowBodyTotal / kSlowBodyPieces,
                                   [&] { return stopping_; })) {
            return false;
          }
        }
        const std::size_t n = std::min(piece, body->size() - offset);
        return sink.write(body->data() + offset, n);
      });
}

bool LocalBackendImpl::WaitLatency() {
  if (options_.latency.count() <= 0) return true;
  std::unique_lock lock(mu_);
  return !stopped_cv_.wait_for(lock, options_.latency, [&] { return stopping_; });
}

StatusOr<Json> LocalBackendImpl::CompleteTurn(
    const internal::ParsedRequest& request, const std::string& id, const std::string& created,
    std::function<bool(std::size_t, const Json&)> on_step) {
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard<std::mutex> lock(running_mu_);
    running_[id] = cancelled;
  }
  struct Unregister {
    LocalBackendImpl* self;
    const std::string& id;
    ~Unregister() {
      std::lock_guard<std::mutex> lock(self->running_mu_);
      self->running_.erase(id);
    }
  } unregister{this, id};
  {
    // Stop() marks the turns it finds; one registered after that sees stopping_ here instead.
    std::lock_guard lock(mu_);
    if (stopping_) cancelled->store(true);
  }

  if (!WaitLatency()) return UnavailableError("the local backend is shutting down");
  auto coder = MakeCoder();
  auto step_filter = [&cancelled, &on_step](std::size_t index, const Json& step) {
    if (cancelled->load()) return false;
    return !on_step || on_step(index, step);
  };
  internal::TurnContext context{coder.get(), sandbox_.get(), sandbox_error_, options_.max_attempts,
                                step_filter};
  auto turn = internal::RunTurn(request, context);
  if (!turn.ok()) return turn.status();
  Json interaction = {{"id", id},
                      {"object", "interaction"},
                      {"model", request.model},
                      {"status", turn->status},
                      {"created", created},
                      {"updated", internal::Iso8601(std::chrono::system_clock::now())},
                      {"steps", turn->steps},
                      {"usage", turn->usage}};
  if (!request.previous_interaction_id.empty()) {
    interaction["previous_interaction_id"] = request.previous_interaction_id;
  }
  if (request.store) {
    // GET shows the turn's input too (as user_input steps); replayed model steps of a
    // stateless request are not this turn's and are left out.
    Json stored = interaction;
    Json steps = Json::array();
    for (const auto& s : request.input_steps) {
      if (s.value("type", "") == "user_input") steps.push_back(s);
    }
    for (auto& s : stored["steps"]) steps.push_back(std::move(s));
    stored["steps"] = std::move(steps);
    store_.Put(id, {std::move(stored), request.previous_interaction_id});
  }
  return interaction;
}

void LocalBackendImpl::HandleCreate(const httplib::Request&, httplib::Response& res,
                                    std::string_view body) {
  auto parsed = internal::ParseCreateBody(body, store_);
  if (!parsed.ok()) {
    SendError(res, internal::ErrorFromStatus(parsed.status()));
    return;
  }
  if (parsed->code_execution && coder_executes_code_ && !sandbox_) {
    // Refused before any work (and before a stream starts): never run code unsandboxed.
    auto e = internal::ErrorFromStatus(
        Status(StatusCode::kFailedPrecondition,
               "code execution is unavailable on this local backend: " + sandbox_error_ +
                   " (code is never run unsandboxed)",
               400, "SANDBOX_UNAVAILABLE"));
    SendError(res, e);
    return;
  }
  const std::string id = "v1_" + internal::RandomToken(24);
  const std::string created = internal::Iso8601(std::chrono::system_clock::now());

  if (parsed->stream) {
    auto request = std::make_shared<internal::ParsedRequest>(std::move(*parsed));
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [this, request, id, created](std::size_t, httplib::DataSink& sink) {
          Json head = {{"id", id}, {"model", request->model}, {"created", created}};
          std::string first = internal::SseCreatedFrame(head);
          if (!sink.write(first.data(), first.size())) return false;
          // Steps go out as the turn produces them; a client that hangs up abandons the turn
          // (no more sandbox runs for nobody).
          int event_id = 1;  // evt_1 was interaction.created
          bool client_gone = false;
          auto send_step = [&](std::size_t index, const Json& step) {
            for (const auto& frame : internal::SseStepFrames(event_id, index, step)) {
              if (!sink.write(frame.data(), frame.size())) return !(client_gone = true);
            }
            return true;
          };
          auto interaction = CompleteTurn(*request, id, created, send_step);
          if (client_gone) return false;
          if (!interaction.ok()) {
            std::string frame =
                internal::SseErrorFrame(internal::ErrorFromStatus(interaction.status()));
            sink.write(frame.data(), frame.size());
            sink.done();
            return true;
          }
          for (const auto& frame : internal::SseEndFrames(event_id, *interaction)) {
            if (!sink.write(frame.data(), frame.size())) return false;  // client went away
          }
          sink.done();
          return true;
        });
    return;
  }

  auto interaction = CompleteTurn(*parsed, id, created);
  if (!interaction.ok()) {
    SendError(res, internal::ErrorFromStatus(interaction.status()));
    return;
  }
  SendJson(res, *interaction);
}

void LocalBackendImpl::HandleGet(const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[3];
  auto stored = store_.Get(id);
  if (!stored) {
    SendError(res, internal::MakeError(404, "interaction '" + id +
                                                "' not found (unknown, expired, deleted or "
                                                "created with store:false)"));
    return;
  }
  Json interaction = std::move(stored->interaction);
  if (req.get_param_value("include_input") == "false") {
    Json steps = Json::array();
    for (auto& s : interaction["steps"]) {
      if (s.value("type", "") != "user_input") steps.push_back(std::move(s));
    }
    interaction["steps"] = std::move(steps);
  }
  if (req.get_param_value("stream") == "true") {
    auto frames = std::make_shared<std::vector<std::string>>(internal::SseFrames(interaction));
    frames->insert(frames->begin(), internal::SseCreatedFrame(interaction));
    res.set_chunked_content_provider("text/event-stream",
                                     [frames](std::size_t, httplib::DataSink& sink) {
                                       for (const auto& f : *frames) {
                                         if (!sink.write(f.data(), f.size())) return false;
                                       }
                                       sink.done();
                                       return true;
                                     });
    return;
  }
  SendJson(res, interaction);
}

void LocalBackendImpl::HandleDelete(const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[3];
  if (!store_.Erase(id)) {
    SendError(res, internal::MakeError(404, "interaction '" + id + "' not found"));
    return;
  }
  SendJson(res, Json::object());
}

void LocalBackendImpl::HandleCancel(const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[3];
  {
    // A turn still running (a stream's id is known from its first event) stops before its next
    // step: no further code runs, and its request ends with status "cancelled".
    std::lock_guard<std::mutex> lock(running_mu_);
    if (auto it = running_.find(id); it != running_.end()) {
      it->second->store(true);
      SendJson(res, {{"id", id},
                     {"object", "interaction"},
                     {"status", "cancelled"},
                     {"updated", internal::Iso8601(std::chrono::system_clock::now())}});
      return;
    }
  }
  // A finished interaction is final: cancel answers it as it is.
  auto stored = store_.Get(id);
  if (!stored) {
    SendError(res, internal::MakeError(404, "interaction '" + id + "' not found"));
    return;
  }
  SendJson(res, stored->interaction);
}

}  // namespace

std::string TrimWhitespace(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return "";
  const auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

StatusOr<std::unique_ptr<LocalBackend>> LocalBackend::Start(BackendOptions options) {
  auto backend = std::make_unique<LocalBackendImpl>(std::move(options));
  if (auto status = backend->Init(); !status.ok()) return status;
  return std::unique_ptr<LocalBackend>(std::move(backend));
}

}  // namespace roilens::backend
