// InteractionsClient: every request runs on one I/O thread that drives a libcurl multi handle
// (curl_multi_poll / curl_multi_wakeup). Retries, backoff waits, the rate limiter, deadlines and
// cancellation are all timers and checks on that thread: no thread ever blocks per request.
#include "roilens/client/interactions_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "client/internal/curl_util.h"

namespace roilens {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// While a call with a cancel flag is pending, the I/O thread looks at the flags this often
// (the flag is a plain atomic the caller sets; nothing wakes us when it changes).
constexpr milliseconds kCancelPollInterval{20};
// Responses larger than this are refused (a misbehaving server must not exhaust memory).
constexpr std::size_t kMaxResponseBytes = std::size_t{512} << 20;
constexpr milliseconds kConnectTimeout{10000};

enum class Method { kPost, kGet, kDelete };

const char* MethodName(Method m) {
  switch (m) {
    case Method::kPost:
      return "POST";
    case Method::kGet:
      return "GET";
    case Method::kDelete:
      return "DELETE";
  }
  return "?";
}

std::string GetEnv(const char* name) {
  const char* v = name && *name ? std::getenv(name) : nullptr;
  return v ? std::string(v) : std::string();
}

}  // namespace

struct InteractionsClient::Impl {
  // One logical call (all its attempts). Owned by the I/O thread once submitted.
  struct Call {
    Method method = Method::kPost;
    std::string path;  // "/v1beta/interactions[/id]" (for URLs and messages; no key in it)
    std::string body;
    std::function<void(Status, std::string)> done;  // body of the final 2xx, or the error
    // Checks a 2xx body (and keeps what it parsed for `done`) on the I/O thread, inside the retry
    // loop: a body that does not parse (garbage, truncated) is retried like a 503. Empty: any
    // 2xx body is accepted.
    std::function<Status(const std::string& body, int http)> accept;
    CallOptions options;
    std::unique_ptr<RetryPolicy> retry;
    std::unique_ptr<BackoffPolicy> backoff;
    std::optional<Clock::time_point> deadline;
    int attempts = 0;
    Status last_error;
    // per attempt
    CURL* easy = nullptr;
    std::string response;
    std::string retry_after, retry_after_ms;
    bool too_large = false;
    char error_buffer[CURL_ERROR_SIZE] = {};
  };

  ClientOptions options;
  std::string base_url;
  std::string api_key;
  std::unique_ptr<RetryPolicy> retry_prototype;
  std::unique_ptr<BackoffPolicy> backoff_prototype;
  CURLM* multi = nullptr;
  curl_slist* base_headers = nullptr;

  // Shared between callers and the I/O thread.
  std::mutex mu;
  std::deque<std::unique_ptr<Call>> incoming;
  bool shutting_down = false;
  std::atomic<std::int64_t> requests{0}, attempts{0}, in_flight{0}, max_in_flight_seen{0},
      connections{0}, retries{0};

  // I/O thread only.
  std::deque<std::unique_ptr<Call>> ready;                          // waiting for a slot/token
  std::multimap<Clock::time_point, std::unique_ptr<Call>> backoff;  // waiting out a delay
  std::unordered_map<CURL*, std::unique_ptr<Call>> running;
  std::vector<CURL*> idle_handles;
  double tokens = 0;  // requests-per-minute bucket
  Clock::time_point tokens_at;
  std::thread io;

  ~Impl() {
    for (CURL* e : idle_handles) curl_easy_cleanup(e);
    if (multi) curl_multi_cleanup(multi);
    curl_slist_free_all(base_headers);
  }

  // ----------------------------------------------------------------------------- callers' side
  void Submit(std::unique_ptr<Call> call) {
    ++requests;
    call->retry = retry_prototype->Clone();
    call->backoff = backoff_prototype->Clone();
    if (call->options.deadline.count() > 0) {
      call->deadline = Clock::now() + call->options.deadline;
    }
    {
      std::lock_guard lock(mu);
      if (!shutting_down) {
        incoming.push_back(std::move(call));
        call = nullptr;
      }
    }
    if (call) {
      Finish(*call, CancelledError(Describe(*call) + ": the client is shutting down"));
      return;
    }
    curl_multi_wakeup(multi);
  }

  // --------------------------------------------------------------------------------- I/O side
  std::string Describe(const Call& c) const {
    return std::string(MethodName(c.method)) + " " + c.path;
  }

  // The key must never leave the client: scrub it from anything that may have echoed it.
  std::string Redact(std::string text) const {
    if (api_key.empty()) return text;
    for (std::size_t p = text.find(api_key); p != std::string::npos; p = text.find(api_key, p)) {
      text.replace(p, api_key.size(), "[redacted]");
    }
    return text;
  }

  void Finish(Call& c, Status status, std::string body = {}) {
    if (c.options.attempts) c.options.attempts->store(c.attempts);
    if (!status.ok()) {
      status = Status(status.code(), Redact(status.message()), status.http_status(),
                      Redact(status.reason()));
    }
    try {
      c.done(std::move(status), std::move(body));
    } catch (...) {
      // A throwing callback must not take the I/O thread (and every other request) down.
    }
  }

  bool Cancelled(const Call& c) const { return c.options.cancel && c.options.cancel->load(); }

  Status CancelStatus(const Call& c) const {
    return CancelledError(Describe(c) + ": cancelled by the caller after " +
                          std::to_string(c.attempts) + " attempt(s)");
  }

  Status DeadlineStatus(const Call& c) const {
    std::string m = Describe(c) + ": deadline of " + std::to_string(c.options.deadline.count()) +
                    " ms exceeded after " + std::to_string(c.attempts) + " attempt(s)";
    if (!c.last_error.ok()) m += "; last error: " + c.last_error.ToString();
    return DeadlineExceededError(std::move(m));
  }

  void Loop() {
    for (;;) {
      {
        std::lock_guard lock(mu);
        while (!incoming.empty()) {
          ready.push_back(std::move(incoming.front()));
          incoming.pop_front();
        }
        if (shutting_down) break;
      }
      const auto now = Clock::now();
      ExpireWaiting(now);
      while (!backoff.empty() && backoff.begin()->first <= now) {
        ready.push_back(std::move(backoff.begin()->second));
        backoff.erase(backoff.begin());
      }
      StartReady(now);
      int still_running = 0;
      curl_multi_perform(multi, &still_running);
      CollectFinished();
      curl_multi_poll(multi, nullptr, 0, static_cast<int>(PollTimeout().count()), nullptr);
    }
    Shutdown();
  }

  // Cancellation and deadlines of calls that are not on the wire (queued or backing off) and
  // cancellation of those that are (curl enforces their deadline through CURLOPT_TIMEOUT_MS).
  void ExpireWaiting(Clock::time_point now) {
    auto expired = [&](const Call& c) {
      return Cancelled(c) || (c.deadline && now >= *c.deadline);
    };
    auto fail = [&](Call& c) { Finish(c, Cancelled(c) ? CancelStatus(c) : DeadlineStatus(c)); };
    for (auto it = ready.begin(); it != ready.end();) {
      if (expired(**it)) {
        auto call = std::move(*it);
        it = ready.erase(it);
        fail(*call);
      } else {
        ++it;
      }
    }
    for (auto it = backoff.begin(); it != backoff.end();) {
      if (expired(*it->second)) {
        auto call = std::move(it->second);
        it = backoff.erase(it);
        fail(*call);
      } else {
        ++it;
      }
    }
    for (auto it = running.begin(); it != running.end();) {
      if (Cancelled(*it->second)) {
        auto call = std::move(it->second);
        it = running.erase(it);
        Release(*call);
        Finish(*call, CancelStatus(*call));
      } else {
        ++it;
      }
    }
  }

  bool TakeToken(Clock::time_point now) {
    if (options.requests_per_minute <= 0) return true;
    const double per_ms = options.requests_per_minute / 60000.0;
    // Burst: one second's worth (at least one request), so a per-minute quota is not spent
    // in the first instant yet an idle client can start a few calls at once.
    const double capacity = std::max(1.0, options.requests_per_minute / 60.0);
    const double elapsed = std::chrono::duration<double, std::milli>(now - tokens_at).count();
    tokens = std::min(capacity, tokens + elapsed * per_ms);
    tokens_at = now;
    if (tokens < 1.0) return false;
    tokens -= 1.0;
    return true;
  }

  milliseconds UntilNextToken() const {
    const double per_ms = options.requests_per_minute / 60000.0;
    return milliseconds(static_cast<std::int64_t>(std::ceil((1.0 - tokens) / per_ms)) + 1);
  }

  void StartReady(Clock::time_point now) {
    while (!ready.empty() && static_cast<int>(running.size()) < options.max_in_flight) {
      if (!TakeToken(now)) break;
      auto call = std::move(ready.front());
      ready.pop_front();
      StartAttempt(std::move(call), now);
    }
  }

  CURL* AcquireHandle() {
    if (!idle_handles.empty()) {
      CURL* e = idle_handles.back();
      idle_handles.pop_back();
      curl_easy_reset(e);
      return e;
    }
    return curl_easy_init();
  }

  void Release(Call& c) {
    if (!c.easy) return;
    curl_multi_remove_handle(multi, c.easy);
    // The handle outlives this call in the idle pool: drop every pointer into the Call.
    curl_easy_setopt(c.easy, CURLOPT_ERRORBUFFER, nullptr);
    curl_easy_setopt(c.easy, CURLOPT_WRITEDATA, nullptr);
    curl_easy_setopt(c.easy, CURLOPT_HEADERDATA, nullptr);
    idle_handles.push_back(c.easy);
    c.easy = nullptr;
    --in_flight;
  }

  static size_t OnBody(char* data, size_t size, size_t n, void* user) {
    auto* c = static_cast<Call*>(user);
    if (c->response.size() + size * n > kMaxResponseBytes) {
      c->too_large = true;
      return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
    }
    c->response.append(data, size * n);
    return size * n;
  }

  static size_t OnHeader(char* data, size_t size, size_t n, void* user) {
    auto* c = static_cast<Call*>(user);
    std::string_view line(data, size * n);
    if (line.rfind("HTTP/", 0) == 0) {  // a new response (e.g. after 100 Continue): reset
      c->retry_after.clear();
      c->retry_after_ms.clear();
    } else if (auto v = internal::HeaderValue(line, "retry-after-ms")) {
      c->retry_after_ms = *v;
    } else if (auto v = internal::HeaderValue(line, "retry-after")) {
      c->retry_after = *v;
    }
    return size * n;
  }

  void StartAttempt(std::unique_ptr<Call> call, Clock::time_point now) {
    Call& c = *call;
    if (Cancelled(c)) return Finish(c, CancelStatus(c));
    milliseconds timeout = options.request_timeout;
    if (c.deadline) {
      auto left = std::chrono::duration_cast<milliseconds>(*c.deadline - now);
      if (left.count() <= 0) return Finish(c, DeadlineStatus(c));
      timeout = std::min(timeout, left);
    }
    CURL* e = AcquireHandle();
    if (!e) return Finish(c, InternalError(Describe(c) + ": curl_easy_init failed"));
    c.easy = e;
    c.response.clear();
    c.retry_after.clear();
    c.retry_after_ms.clear();
    c.too_large = false;
    c.error_buffer[0] = '\0';
    ++c.attempts;
    ++attempts;
    if (c.attempts > 1) ++retries;

    const std::string url = base_url + c.path;
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, base_headers);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(std::max<std::int64_t>(1, timeout.count())));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::min(timeout, kConnectTimeout).count()));
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");  // gzip/deflate when the server offers
    curl_easy_setopt(e, CURLOPT_USERAGENT, "roilens-interactions-client/1");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Impl::OnBody);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Impl::OnHeader);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c.error_buffer);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    switch (c.method) {
      case Method::kPost:
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        // No copy: the body lives in the Call until the transfer is removed.
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c.body.data());
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(c.body.size()));
        break;
      case Method::kGet:
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        break;
      case Method::kDelete:
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
        break;
    }
    if (CURLMcode rc = curl_multi_add_handle(multi, e); rc != CURLM_OK) {
      idle_handles.push_back(e);
      c.easy = nullptr;
      return Finish(c, InternalError(Describe(c) +
                                     ": curl_multi_add_handle failed: " + curl_multi_strerror(rc)));
    }
    const auto now_in_flight = ++in_flight;
    auto seen = max_in_flight_seen.load();
    while (now_in_flight > seen && !max_in_flight_seen.compare_exchange_weak(seen, now_in_flight)) {
    }
    running.emplace(e, std::move(call));
  }

  void CollectFinished() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      auto it = running.find(msg->easy_handle);
      if (it == running.end()) continue;
      std::unique_ptr<Call> call = std::move(it->second);
      running.erase(it);
      const CURLcode result = msg->data.result;  // read before the handle is reused
      long http = 0;
      long new_connections = 0;
      curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &http);
      curl_easy_getinfo(call->easy, CURLINFO_NUM_CONNECTS, &new_connections);
      connections += new_connections;
      Release(*call);
      OnAttemptDone(std::move(call), result, static_cast<int>(http));
    }
  }

  std::optional<milliseconds> ServerHint(const Call& c, const std::optional<wire::GoogleError>& g) {
    if (auto ms = internal::ParseRetryAfterMs(c.retry_after_ms)) return milliseconds(*ms);
    if (g && g->retry_delay_ms) return milliseconds(*g->retry_delay_ms);
    if (auto ms = internal::ParseRetryAfter(c.retry_after)) return milliseconds(*ms);
    return std::nullopt;
  }

  void OnAttemptDone(std::unique_ptr<Call> call, CURLcode result, int http) {
    Call& c = *call;
    if (Cancelled(c)) return Finish(c, CancelStatus(c));
    if (result != CURLE_OK) {
      if (c.too_large) {
        return Finish(c, Status(StatusCode::kResourceExhausted,
                                Describe(c) + ": response larger than " +
                                    std::to_string(kMaxResponseBytes >> 20) + " MiB",
                                http));
      }
      const bool deadline_hit = c.deadline && Clock::now() >= *c.deadline;
      if (result == CURLE_OPERATION_TIMEDOUT && deadline_hit) {
        c.last_error = Status(StatusCode::kDeadlineExceeded, "attempt timed out");
        return Finish(c, DeadlineStatus(c));
      }
      return Retry(
          std::move(call),
          internal::TransportStatus(result, Describe(c), c.error_buffer, options.request_timeout),
          std::nullopt);
    }
    if (http >= 200 && http < 300) {
      Status accepted = Accept(c, http);
      if (!accepted.ok()) return Retry(std::move(call), std::move(accepted), std::nullopt);
      return Finish(c, OkStatus(), std::move(c.response));
    }
    std::optional<wire::GoogleError> google;
    if (auto parsed = wire::ParseGoogleError(c.response); parsed.ok()) google = *std::move(parsed);
    Status status = internal::HttpErrorStatus(http, Describe(c), google, c.response);
    auto hint = ServerHint(c, google);
    Retry(std::move(call), std::move(status), hint);
  }

  Status Accept(Call& c, int http) {
    if (!c.accept) return OkStatus();
    try {
      Status s = c.accept(c.response, http);
      if (s.ok()) return s;
      return Status(s.code(), Describe(c) + ": " + s.message(), s.http_status(), s.reason());
    } catch (const std::exception& e) {
      return InternalError(Describe(c) + ": the response could not be read: " + e.what());
    }
  }

  void Retry(std::unique_ptr<Call> call, Status status, std::optional<milliseconds> hint) {
    Call& c = *call;
    c.last_error = status;
    if (!c.retry->OnFailure(status)) {
      if (c.attempts > 1) {
        status = Status(status.code(),
                        status.message() + " (after " + std::to_string(c.attempts) + " attempts)",
                        status.http_status(), status.reason());
      }
      return Finish(c, std::move(status));
    }
    const milliseconds delay = c.backoff->NextDelay(hint);
    const auto now = Clock::now();
    if (c.deadline && now + delay >= *c.deadline) return Finish(c, DeadlineStatus(c));
    if (options.sleeper) {
      try {
        options.sleeper(delay);
      } catch (...) {
      }
      ready.push_back(std::move(call));
      return;
    }
    backoff.emplace(now + delay, std::move(call));
  }

  milliseconds PollTimeout() const {
    // Work is ready to start right now (slots free and, if limited, a token available).
    const bool slot_free = static_cast<int>(running.size()) < options.max_in_flight;
    const auto now = Clock::now();
    milliseconds t{1000};
    long curl_ms = -1;
    curl_multi_timeout(multi, &curl_ms);
    if (curl_ms >= 0) t = std::min(t, milliseconds(curl_ms));
    if (!ready.empty() && slot_free) {
      t = std::min(t, options.requests_per_minute > 0 ? UntilNextToken() : milliseconds(0));
    }
    if (!backoff.empty()) {
      auto until = std::chrono::duration_cast<milliseconds>(backoff.begin()->first - now);
      t = std::min(t, std::max(milliseconds(0), until + milliseconds(1)));
    }
    auto consider = [&](const Call& c) {
      if (c.options.cancel) t = std::min(t, kCancelPollInterval);
      if (c.deadline) {
        auto until = std::chrono::duration_cast<milliseconds>(*c.deadline - now);
        t = std::min(t, std::max(milliseconds(0), until + milliseconds(1)));
      }
    };
    for (const auto& c : ready) consider(*c);
    for (const auto& [when, c] : backoff) consider(*c);
    for (const auto& [e, c] : running) {
      if (c->options.cancel) t = std::min(t, kCancelPollInterval);
    }
    return std::max(t, milliseconds(0));
  }

  void Shutdown() {
    std::deque<std::unique_ptr<Call>> all;
    {
      std::lock_guard lock(mu);
      for (auto& c : incoming) all.push_back(std::move(c));
      incoming.clear();
    }
    for (auto& [e, c] : running) {
      Release(*c);
      all.push_back(std::move(c));
    }
    running.clear();
    for (auto& c : ready) all.push_back(std::move(c));
    ready.clear();
    for (auto& [when, c] : backoff) all.push_back(std::move(c));
    backoff.clear();
    for (auto& c : all) {
      Finish(*c, CancelledError(Describe(*c) + ": the client was destroyed before it finished"));
    }
  }
};

// ---------------------------------------------------------------------------------------------
StatusOr<std::unique_ptr<InteractionsClient>> InteractionsClient::Create(ClientOptions options) {
  if (options.max_in_flight < 1) {
    return InvalidArgumentError("client option max_in_flight must be >= 1, got " +
                                std::to_string(options.max_in_flight));
  }
  if (options.max_retries < 0) {
    return InvalidArgumentError("client option max_retries must be >= 0, got " +
                                std::to_string(options.max_retries));
  }
  if (options.request_timeout.count() <= 0) {
    return InvalidArgumentError("client option request_timeout must be > 0 ms");
  }
  if (options.requests_per_minute < 0) {
    return InvalidArgumentError("client option requests_per_minute must be >= 0");
  }
  if (options.api_version.empty() ||
      options.api_version.find_first_of("/?# ") != std::string::npos) {
    return InvalidArgumentError("client option api_version must be a single path segment, got '" +
                                options.api_version + "'");
  }
  auto impl = std::make_unique<Impl>();
  std::string base = options.base_url;
  if (base.empty()) base = GetEnv("GOOGLE_GEMINI_BASE_URL");
  if (base.empty()) base = "https://generativelanguage.googleapis.com";
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (base.rfind("http://", 0) != 0 && base.rfind("https://", 0) != 0) {
    return InvalidArgumentError("client base URL must start with http:// or https://, got '" +
                                base + "'");
  }
  impl->base_url = base;
  if (options.api_key) {
    impl->api_key = *options.api_key;
  } else {
    impl->api_key = GetEnv(options.api_key_env.c_str());
    if (impl->api_key.empty()) impl->api_key = GetEnv("GOOGLE_API_KEY");
  }
  if (impl->api_key.find_first_of("\r\n") != std::string::npos) {
    return InvalidArgumentError("the API key contains a line break");  // never echo the key
  }

  static std::once_flag curl_init;
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl->multi = curl_multi_init();
  if (!impl->multi) return InternalError("curl_multi_init failed");
  // Keep an idle connection per slot (and a few spare) so consecutive calls reuse them.
  curl_multi_setopt(impl->multi, CURLMOPT_MAXCONNECTS,
                    static_cast<long>(options.max_in_flight + 4));

  auto add = [&](const std::string& h) {
    impl->base_headers = curl_slist_append(impl->base_headers, h.c_str());
  };
  add("Content-Type: application/json");
  add("Accept: application/json");
  add("Expect:");  // no 100-continue round trip before large image bodies
  if (!options.api_revision.empty()) add("Api-Revision: " + options.api_revision);
  if (!impl->api_key.empty()) add("x-goog-api-key: " + impl->api_key);

  impl->retry_prototype = std::make_unique<LimitedErrorCountRetryPolicy>(options.max_retries);
  impl->backoff_prototype =
      std::make_unique<ExponentialBackoffPolicy>(options.initial_backoff, options.max_backoff);
  impl->tokens = std::max(1.0, options.requests_per_minute / 60.0);
  impl->tokens_at = Clock::now();
  impl->options = std::move(options);
  Impl* raw = impl.get();
  impl->io = std::thread([raw] { raw->Loop(); });
  return std::unique_ptr<InteractionsClient>(new InteractionsClient(std::move(impl)));
}

InteractionsClient::InteractionsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

InteractionsClient::~InteractionsClient() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->shutting_down = true;
  }
  curl_multi_wakeup(impl_->multi);
  if (impl_->io.joinable()) impl_->io.join();
}

namespace {
/// Parses 2xx bodies as an Interaction inside the call's retry loop (Call::accept) and hands the
/// parsed value to `done`: each body is parsed once, and one that does not parse is retried.
void ParseInto(InteractionsClient::Callback done, std::function<void(Status, std::string)>& finish,
               std::function<Status(const std::string&, int)>& accept) {
  auto parsed = std::make_shared<std::optional<wire::Interaction>>();
  accept = [parsed](const std::string& body, int http) {
    auto result = wire::ParseInteraction(body);
    if (!result.ok()) {
      const Status& s = result.status();
      return Status(s.code(),
                    s.message() + " (HTTP " + std::to_string(http) + ", " +
                        std::to_string(body.size()) + " bytes)",
                    http);
    }
    *parsed = *std::move(result);
    return OkStatus();
  };
  finish = [parsed, done = std::move(done)](Status status, std::string) {
    if (!status.ok()) return done(std::move(status));
    if (!parsed->has_value()) return done(InternalError("a 2xx response was not parsed"));
    done(std::move(**parsed));
  };
}
}  // namespace

void InteractionsClient::CreateInteraction(wire::InteractionRequest request, Callback done,
                                           CallOptions call) {
  auto c = std::make_unique<Impl::Call>();
  c->method = Method::kPost;
  c->path = "/" + impl_->options.api_version + "/interactions";
  c->body = wire::SerializeRequest(request);
  ParseInto(std::move(done), c->done, c->accept);
  c->options = std::move(call);
  impl_->Submit(std::move(c));
}

std::future<StatusOr<wire::Interaction>> InteractionsClient::CreateInteraction(
    wire::InteractionRequest request, CallOptions call) {
  auto promise = std::make_shared<std::promise<StatusOr<wire::Interaction>>>();
  auto future = promise->get_future();
  CreateInteraction(
      std::move(request),
      [promise](StatusOr<wire::Interaction> r) { promise->set_value(std::move(r)); },
      std::move(call));
  return future;
}

std::future<StatusOr<wire::Interaction>> InteractionsClient::GetInteraction(std::string id,
                                                                            CallOptions call) {
  auto promise = std::make_shared<std::promise<StatusOr<wire::Interaction>>>();
  auto future = promise->get_future();
  auto c = std::make_unique<Impl::Call>();
  c->method = Method::kGet;
  c->path = "/" + impl_->options.api_version + "/interactions/" + internal::EscapePathSegment(id);
  ParseInto([promise](StatusOr<wire::Interaction> r) { promise->set_value(std::move(r)); }, c->done,
            c->accept);
  c->options = std::move(call);
  impl_->Submit(std::move(c));
  return future;
}

std::future<Status> InteractionsClient::DeleteInteraction(std::string id, CallOptions call) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  auto c = std::make_unique<Impl::Call>();
  c->method = Method::kDelete;
  c->path = "/" + impl_->options.api_version + "/interactions/" + internal::EscapePathSegment(id);
  c->done = [promise](Status s, std::string) { promise->set_value(std::move(s)); };
  c->options = std::move(call);
  impl_->Submit(std::move(c));
  return future;
}

wire::InteractionRequest InteractionsClient::FollowUp(const wire::Interaction& previous,
                                                      wire::InteractionRequest next) {
  next.previous_interaction_id = previous.id;
  return next;
}

namespace {
std::vector<wire::Step> AsSteps(const std::variant<std::string, std::vector<wire::ContentBlock>,
                                                   std::vector<wire::Step>>& input) {
  if (const auto* steps = std::get_if<std::vector<wire::Step>>(&input)) return *steps;
  wire::Step user;
  user.type = "user_input";
  if (const auto* text = std::get_if<std::string>(&input)) {
    user.content.push_back(wire::ContentBlock::Text(*text));
  } else {
    user.content = std::get<std::vector<wire::ContentBlock>>(input);
  }
  return {std::move(user)};
}
}  // namespace

wire::InteractionRequest InteractionsClient::FollowUpStateless(
    const wire::InteractionRequest& previous_request, const wire::Interaction& previous,
    wire::InteractionRequest next) {
  std::vector<wire::Step> history = AsSteps(previous_request.input);
  // A GET-style response repeats the user's input as user_input steps: do not send it twice.
  std::vector<nlohmann::json> sent;
  for (const auto& s : history) sent.emplace_back(s);
  for (const auto& step : previous.steps) {
    if (step.type == "user_input" &&
        std::find(sent.begin(), sent.end(), nlohmann::json(step)) != sent.end()) {
      continue;
    }
    history.push_back(step);  // verbatim: ids, signatures and unknown fields included
  }
  for (auto& s : AsSteps(next.input)) history.push_back(std::move(s));
  next.input = std::move(history);
  next.store = false;
  next.previous_interaction_id.reset();
  if (next.model.empty()) next.model = previous_request.model;
  if (next.tools.empty()) next.tools = previous_request.tools;
  if (!next.system_instruction) next.system_instruction = previous_request.system_instruction;
  return next;
}

InteractionsClient::Stats InteractionsClient::stats() const {
  Stats s;
  s.requests = impl_->requests.load();
  s.attempts = impl_->attempts.load();
  s.in_flight = impl_->in_flight.load();
  s.max_in_flight_seen = impl_->max_in_flight_seen.load();
  s.connections = impl_->connections.load();
  s.retries = impl_->retries.load();
  return s;
}

const std::string& InteractionsClient::base_url() const { return impl_->base_url; }

}  // namespace roilens
