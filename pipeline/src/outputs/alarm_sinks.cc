// AlarmDispatcher (a bounded queue and a thread per sink), the webhook sink (libcurl) and the
// MQTT sink (libmosquitto, when the build found it).
#include "roilens/outputs/alarm_sinks.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#ifdef ROILENS_HAVE_MOSQUITTO
#include <mosquitto.h>
#endif

namespace roilens {

using json = nlohmann::json;

std::string RedactedUrl(const std::string& url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return "(url)";
  const std::size_t host_start = scheme_end + 3;
  std::size_t rest = url.find_first_of("/?#", host_start);
  if (rest == std::string::npos) rest = url.size();
  std::string authority = url.substr(host_start, rest - host_start);
  if (const std::size_t at = authority.rfind('@'); at != std::string::npos) {
    authority = authority.substr(at + 1);
  }
  std::size_t path_end = url.find_first_of("?#", rest);
  if (path_end == std::string::npos) path_end = url.size();
  return url.substr(0, host_start) + authority + url.substr(rest, path_end - rest);
}

namespace {

/// Waits that Stop() cuts short.
class Interruptible {
 public:
  /// false when stopped (before or during the wait).
  bool Wait(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [&] { return stopped_; });
  }
  void Stop() {
    std::lock_guard lock(mu_);
    stopped_ = true;
    cv_.notify_all();
  }
  bool stopped() {
    std::lock_guard lock(mu_);
    return stopped_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

std::size_t DiscardBody(char*, std::size_t size, std::size_t n, void*) { return size * n; }

class WebhookSink final : public AlarmSink {
 public:
  explicit WebhookSink(WebhookConfig config) : config_(std::move(config)) {
    static std::once_flag curl_init;
    std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  }

  std::string name() const override { return "webhook " + RedactedUrl(config_.url); }

  Status Deliver(const json& event) override {
    const std::string body = event.dump();
    Status last;
    for (int attempt = 0; attempt <= config_.retries; ++attempt) {
      if (attempt > 0) {
        const double delay_s = std::min(60.0, config_.backoff_s * std::pow(2.0, attempt - 1));
        if (!wait_.Wait(std::chrono::milliseconds(static_cast<std::int64_t>(delay_s * 1000)))) {
          return CancelledError(name() + ": stopped while retrying (" + last.message() + ")");
        }
      }
      last = PostOnce(body);
      if (last.ok()) return last;
      const int http = last.http_status();
      if (http != 0 && http != 408 && http != 429 && http < 500) return last;  // final answer
    }
    return last;
  }

  void Stop() override { wait_.Stop(); }

 private:
  Status PostOnce(const std::string& body) {
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return InternalError(name() + ": curl_easy_init failed");
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    char error[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl, CURLOPT_URL, config_.url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout_s * 1000));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, DiscardBody);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    const CURLcode code = curl_easy_perform(curl);
    long http = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    // libcurl's messages can quote the URL (with its credentials): only the code's text is kept.
    if (code != CURLE_OK) {
      return UnavailableError(name() + ": " + curl_easy_strerror(code));
    }
    if (http < 200 || http >= 300) {
      return Status(StatusCodeFromHttp(static_cast<int>(http)),
                    name() + ": HTTP " + std::to_string(http), static_cast<int>(http));
    }
    return OkStatus();
  }

  WebhookConfig config_;
  Interruptible wait_;
};

#ifdef ROILENS_HAVE_MOSQUITTO
class MqttSink final : public AlarmSink {
 public:
  static StatusOr<std::unique_ptr<AlarmSink>> Create(const MqttConfig& config) {
    static std::once_flag init;
    std::call_once(init, [] { mosquitto_lib_init(); });
    auto sink = std::unique_ptr<MqttSink>(new MqttSink(config));
    const std::string id = config.client_id.empty()
                               ? "roilens-" + std::to_string(static_cast<long>(getpid()))
                               : config.client_id;
    sink->mosq_ = mosquitto_new(id.c_str(), /*clean_session=*/true, sink.get());
    if (sink->mosq_ == nullptr) return InternalError(sink->name() + ": mosquitto_new failed");
    if (!config.username.empty()) {
      const char* password =
          config.password_env.empty() ? nullptr : std::getenv(config.password_env.c_str());
      if (!config.password_env.empty() && password == nullptr) {
        return InvalidArgumentError("output.mqtt.password_env: the environment variable " +
                                    config.password_env + " is not set");
      }
      mosquitto_username_pw_set(sink->mosq_, config.username.c_str(), password);
    }
    mosquitto_connect_callback_set(sink->mosq_, &MqttSink::OnConnect);
    mosquitto_disconnect_callback_set(sink->mosq_, &MqttSink::OnDisconnect);
    mosquitto_publish_callback_set(sink->mosq_, &MqttSink::OnPublish);
    mosquitto_reconnect_delay_set(sink->mosq_, 1, 30, /*exponential=*/true);
    // A broker that is down now is reconnected to by the loop thread: not an error at start.
    const int rc =
        mosquitto_connect_async(sink->mosq_, config.host.c_str(), config.port, config.keepalive_s);
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_ERRNO) {
      return InvalidArgumentError(sink->name() + ": " + mosquitto_strerror(rc));
    }
    if (const int lrc = mosquitto_loop_start(sink->mosq_); lrc != MOSQ_ERR_SUCCESS) {
      return InternalError(sink->name() + ": " + mosquitto_strerror(lrc));
    }
    sink->loop_started_ = true;
    return std::unique_ptr<AlarmSink>(std::move(sink));
  }

  ~MqttSink() override {
    if (mosq_ == nullptr) return;
    if (loop_started_) {
      mosquitto_disconnect(mosq_);
      mosquitto_loop_stop(mosq_, /*force=*/false);
    }
    mosquitto_destroy(mosq_);
  }

  std::string name() const override {
    return "mqtt " + config_.host + ":" + std::to_string(config_.port);
  }

  Status Deliver(const json& event) override {
    const std::string topic = config_.topic_prefix + "/" + event.value("roi", "unknown");
    const std::string payload = event.dump();
    // QoS 1: the library keeps the message until the broker acknowledges it, across reconnects;
    // here we only wait for a connection to hand it over, and for the PUBACK within a bound.
    for (std::chrono::milliseconds backoff{100};; backoff = std::min(backoff * 2, kMaxBackoff)) {
      int mid = 0;
      const int rc = mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()),
                                       payload.data(), /*qos=*/1, /*retain=*/true);
      if (rc == MOSQ_ERR_SUCCESS) return WaitForAck(mid);
      if (rc != MOSQ_ERR_NO_CONN && rc != MOSQ_ERR_CONN_LOST) {
        return InternalError(name() + ": publish failed: " + mosquitto_strerror(rc));
      }
      if (!WaitForConnection(backoff)) {
        return CancelledError(name() + ": stopped while the broker was unreachable");
      }
    }
  }

  void Stop() override {
    std::lock_guard lock(mu_);
    stopped_ = true;
    cv_.notify_all();
  }

 private:
  static constexpr std::chrono::milliseconds kMaxBackoff{5000};
  static constexpr std::chrono::seconds kAckTimeout{10};

  explicit MqttSink(MqttConfig config) : config_(std::move(config)) {}

  bool WaitForConnection(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, d, [&] { return stopped_ || connected_; });
    return !stopped_;
  }

  Status WaitForAck(int mid) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, kAckTimeout, [&] { return stopped_ || acked_.count(mid) > 0; });
    if (acked_.erase(mid) > 0) return OkStatus();
    return UnavailableError(name() + ": not acknowledged yet (the library keeps resending it)");
  }

  static void OnConnect(mosquitto*, void* self, int rc) {
    auto* sink = static_cast<MqttSink*>(self);
    std::lock_guard lock(sink->mu_);
    sink->connected_ = rc == 0;
    sink->cv_.notify_all();
  }
  static void OnDisconnect(mosquitto*, void* self, int) {
    auto* sink = static_cast<MqttSink*>(self);
    std::lock_guard lock(sink->mu_);
    sink->connected_ = false;
  }
  static void OnPublish(mosquitto*, void* self, int mid) {
    auto* sink = static_cast<MqttSink*>(self);
    std::lock_guard lock(sink->mu_);
    sink->acked_.insert(mid);
    sink->cv_.notify_all();
  }

  MqttConfig config_;
  mosquitto* mosq_ = nullptr;
  bool loop_started_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  bool connected_ = false;
  bool stopped_ = false;
  std::set<int> acked_;
};
#endif

}  // namespace

StatusOr<std::unique_ptr<AlarmSink>> MakeMqttSink(const MqttConfig& config) {
#ifdef ROILENS_HAVE_MOSQUITTO
  return MqttSink::Create(config);
#else
  (void)config;
  return Status(StatusCode::kUnimplemented,
                "output.mqtt: this build of roilens has no MQTT support (install libmosquitto-dev "
                "and rebuild)");
#endif
}

StatusOr<std::unique_ptr<AlarmSink>> MakeWebhookSink(const WebhookConfig& config) {
  return std::unique_ptr<AlarmSink>(std::make_unique<WebhookSink>(config));
}

StatusOr<std::unique_ptr<AlarmDispatcher>> AlarmDispatcher::Create(const OutputConfig& output) {
  std::vector<std::unique_ptr<AlarmSink>> sinks;
  if (!output.mqtt.host.empty()) {
    auto sink = MakeMqttSink(output.mqtt);
    if (!sink.ok()) return sink.status();
    sinks.push_back(std::move(*sink));
  }
  if (!output.webhook.url.empty()) {
    auto sink = MakeWebhookSink(output.webhook);
    if (!sink.ok()) return sink.status();
    sinks.push_back(std::move(*sink));
  }
  if (sinks.empty()) return std::unique_ptr<AlarmDispatcher>();
  return std::make_unique<AlarmDispatcher>(std::move(sinks));
}

AlarmDispatcher::AlarmDispatcher(std::vector<std::unique_ptr<AlarmSink>> sinks) {
  for (auto& sink : sinks) {
    auto lane = std::make_unique<Lane>();
    lane->sink = std::move(sink);
    lanes_.push_back(std::move(lane));
  }
  for (auto& lane : lanes_) lane->thread = std::thread([this, l = lane.get()] { Run(*l); });
}

AlarmDispatcher::~AlarmDispatcher() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    work_cv_.notify_all();
  }
  if (!WaitIdle(kDrainTimeout)) {
    std::lock_guard lock(mu_);
    abandon_ = true;
    work_cv_.notify_all();
  }
  for (auto& lane : lanes_) lane->sink->Stop();
  for (auto& lane : lanes_) lane->thread.join();
}

void AlarmDispatcher::Post(const json& event) {
  std::lock_guard lock(mu_);
  for (auto& lane : lanes_) {
    if (lane->queue.size() >= kQueueCapacity) {
      lane->queue.pop_front();
      ++stats_.dropped;
    }
    lane->queue.push_back(event);
  }
  work_cv_.notify_all();
}

bool AlarmDispatcher::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return idle_cv_.wait_for(lock, timeout, [&] {
    return std::all_of(lanes_.begin(), lanes_.end(),
                       [](const auto& lane) { return lane->queue.empty() && !lane->busy; });
  });
}

AlarmDeliveryStats AlarmDispatcher::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void AlarmDispatcher::Run(Lane& lane) {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return !lane.queue.empty() || stopping_ || abandon_; });
    if (abandon_) {
      stats_.dropped += static_cast<std::int64_t>(lane.queue.size());
      lane.queue.clear();
    }
    if (lane.queue.empty()) {
      idle_cv_.notify_all();
      if (stopping_ || abandon_) return;
      continue;
    }
    json event = std::move(lane.queue.front());
    lane.queue.pop_front();
    lane.busy = true;
    lock.unlock();
    Status status = lane.sink->Deliver(event);
    if (!status.ok()) {
      std::fprintf(stderr, "roilens: alarm event for roi '%s' not delivered: %s\n",
                   event.value("roi", "").c_str(), status.message().c_str());
    }
    lock.lock();
    lane.busy = false;
    ++(status.ok() ? stats_.delivered : stats_.failed);
    idle_cv_.notify_all();
  }
}

}  // namespace roilens
