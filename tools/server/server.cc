// LocalBackend: the Interactions API emulator (cpp-httplib). Routes, API keys, Google-shaped
// errors, fault injection, latency, the store, and unary or SSE answers around one model turn.
#include "roilens/backend/server.h"

#include <dirent.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
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

class LocalBackendImpl final : public LocalBackend {
 public:
  explicit LocalBackendImpl(BackendOptions options)
      : options_(std::move(options)),
        store_(options_.store_max_interactions, options_.store_ttl),
        faults_(options_.faults) {}

  ~LocalBackendImpl() override { Stop(); }

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
  /// Key check + fault injection, shared by every API route. Returns false when `res` is done;
  /// sets `*slow` when the answer's body must be dribbled (the "slow" fault).
  bool Admit(const httplib::Request& req, httplib::Response& res, bool* slow);
  /// Replaces a finished unary answer's body by one written in pieces with pauses.
  void MakeSlow(httplib::Response& res);
  /// Runs `handler` behind Admit (and MakeSlow when the slow fault hit).
  template <typename Handler>
  void Serve(const httplib::Request& req, httplib::Response& res, Handler handler) {
    bool slow = false;
    if (!Admit(req, res, &slow)) return;
    (this->*handler)(req, res);
    if (slow) MakeSlow(res);
  }
  void HandleCreate(const httplib::Request& req, httplib::Response& res);
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

  httplib::Server server_;
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
  if (options_.max_request_bytes == 0) return InvalidArgumentError("max_request_bytes is 0");
  if (options_.latency.count() < 0) return InvalidArgumentError("latency must be >= 0 ms");
  if (auto s = internal::ValidateFaults(options_.faults); !s.ok()) return s;
  for (const auto& key : options_.api_keys) {
    if (key.empty()) return InvalidArgumentError("an API key is empty");
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

  server_.new_task_queue = [n = options_.threads] {
    return new httplib::ThreadPool(static_cast<std::size_t>(n));
  };
  server_.set_payload_max_length(options_.max_request_bytes);
  // Connections are served up to 100 requests each (httplib's default of 5 makes busy clients
  // reconnect constantly).
  server_.set_keep_alive_max_count(100);
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
  server_.Post(collection, [this](const auto& req, auto& res) {
    Serve(req, res, &LocalBackendImpl::HandleCreate);
  });
  server_.Get(
      item, [this](const auto& req, auto& res) { Serve(req, res, &LocalBackendImpl::HandleGet); });
  server_.Delete(item, [this](const auto& req, auto& res) {
    Serve(req, res, &LocalBackendImpl::HandleDelete);
  });
  server_.Post(item + R"([/:]cancel)", [this](const auto& req, auto& res) {
    Serve(req, res, &LocalBackendImpl::HandleCancel);
  });
  // Google-shaped bodies for what httplib answers itself (unknown route, oversized body).
  server_.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                        httplib::Response& res) {
    if (!res.body.empty() || res.content_length_ != 0)
      return httplib::Server::HandlerResponse::Unhandled;
    HttpError error;
    if (res.status == 413) {
      error = internal::MakeError(413, "request body is larger than the local backend's limit of " +
                                           std::to_string(options_.max_request_bytes) +
                                           " bytes (max_request_bytes); send smaller images");
    } else if (res.status == 404) {
      error = internal::MakeError(404, "no such route: " + req.method + " " + req.path +
                                           " (expected .../v1beta/interactions[/{id}])");
    } else {
      error = internal::MakeError(res.status, "HTTP " + std::to_string(res.status));
    }
    SendError(res, error);
    return httplib::Server::HandlerResponse::Handled;
  }));
}

bool LocalBackendImpl::Admit(const httplib::Request& req, httplib::Response& res, bool* slow) {
  if (!options_.api_keys.empty()) {
    std::string key = req.get_header_value("x-goog-api-key");
    if (key.empty()) key = req.get_param_value("key");
    if (key.empty()) {
      HttpError e = internal::MakeError(
          403,
          "Method doesn't allow unregistered callers (callers without established identity). "
          "Please use API Key or other form of API consumer identity to call this API.");
      SendError(res, e);
      return false;
    }
    bool known = false;
    for (const auto& k : options_.api_keys) known |= ConstantTimeEquals(k, key);
    if (!known) {
      HttpError e = internal::MakeError(400, "API key not valid. Please pass a valid API key.");
      e.details.push_back(internal::ErrorInfo("API_KEY_INVALID"));
      SendError(res, e);
      return false;
    }
  }
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

void LocalBackendImpl::HandleCreate(const httplib::Request& req, httplib::Response& res) {
  Json body = Json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    SendError(res, internal::MakeError(
                       400, "Invalid JSON payload received: the request body is not valid JSON (" +
                                std::to_string(req.body.size()) + " bytes)"));
    return;
  }
  auto parsed = internal::ParseCreateRequest(body, store_);
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

StatusOr<std::unique_ptr<LocalBackend>> LocalBackend::Start(BackendOptions options) {
  auto backend = std::make_unique<LocalBackendImpl>(std::move(options));
  if (auto status = backend->Init(); !status.ok()) return status;
  return std::unique_ptr<LocalBackend>(std::move(backend));
}

}  // namespace roilens::backend
