// In-process HTTP server fixture for client and backend tests.
#include "testing/http_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>

namespace roilens::testing {

std::string RecordedRequest::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

namespace {
// cpp-httplib 0.11 (a compiled library here) listens with a backlog of 5: when a client opens
// more connections at once, SYNs are dropped and retried a second later, which makes concurrent
// tests slow for no reason of their own. Linux lets listen() be called again to enlarge it; the
// server does not expose its socket, so find the listening socket bound to our port.
void WidenListenBacklog(int port) {
  for (int fd = 0; fd < 4096; ++fd) {
    int listening = 0;
    socklen_t optlen = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0 || !listening) {
      continue;
    }
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
        addr.sin_family == AF_INET && ntohs(addr.sin_port) == port) {
      ::listen(fd, 256);
      return;
    }
  }
}
}  // namespace

HttpFixtureServer::HttpFixtureServer(int threads) : threads_(threads) {
  server_.set_tcp_nodelay(true);  // no Nagle + delayed-ACK stalls between header and body
  server_.new_task_queue = [n = threads_] { return new httplib::ThreadPool(n); };
  // Requests are recorded on arrival (so a test can count a request whose handler is still
  // running); cpp-httplib reads the body after pre-routing, so it is attached after the handler.
  server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response&) {
    std::lock_guard lock(mu_);
    pending_[&req] = requests_.size();
    requests_.push_back(RecordedRequest{req.method, req.path, {}, req.headers});
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server_.set_post_routing_handler([this](const httplib::Request& req, httplib::Response&) {
    std::lock_guard lock(mu_);
    if (auto it = pending_.find(&req); it != pending_.end()) {
      requests_[it->second].body = req.body;
      pending_.erase(it);
    }
  });
}

HttpFixtureServer::~HttpFixtureServer() { Stop(); }

bool HttpFixtureServer::Start() {
  port_ = server_.bind_to_any_port("127.0.0.1");
  if (port_ <= 0) return false;
  WidenListenBacklog(port_);
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  // The socket already accepts connections (bound + listening); wait for the accept loop so
  // that a Stop() right after Start() is not lost (cpp-httplib 0.11 has no wait_until_ready).
  while (!server_.is_running()) std::this_thread::yield();
  return true;
}

void HttpFixtureServer::Stop() {
  if (thread_.joinable()) {
    server_.stop();
    thread_.join();
  }
}

std::string HttpFixtureServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

std::vector<RecordedRequest> HttpFixtureServer::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

std::size_t HttpFixtureServer::request_count() const {
  std::lock_guard lock(mu_);
  return requests_.size();
}

void Gate::Open() {
  {
    std::lock_guard lock(mu_);
    open_ = true;
  }
  cv_.notify_all();
}

void Gate::Wait() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return open_; });
}

bool Gate::is_open() const {
  std::lock_guard lock(mu_);
  return open_;
}

int RefusingPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);  // never listened: connections to it are refused
  return port;
}

}  // namespace roilens::testing
