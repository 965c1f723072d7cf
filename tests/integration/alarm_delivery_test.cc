// Alarm delivery to where plants already look: a real mosquitto broker on a loopback port with a
// libmosquitto subscriber, and a webhook receiver (cpp-httplib on port 0) that fails once.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "roilens/outputs/alarm_sinks.h"
#include "testing/http_fixture.h"

#ifdef ROILENS_HAVE_MOSQUITTO
#include <mosquitto.h>
#endif

extern char** environ;

namespace roilens {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

json Event(const std::string& kind, const std::string& roi, double value, int frame) {
  return {{"type", "alarm"}, {"event", kind},   {"roi", roi},     {"alarm", "high"},
          {"value", value},  {"time_s", frame}, {"frame", frame}, {"threshold", 8}};
}

TEST(WebhookAlarmTest, PostsEachEventAndRetriesAfterA500) {
  testing::HttpFixtureServer server;
  std::atomic<int> calls{0};
  server.server().Post("/hook", [&](const httplib::Request&, httplib::Response& res) {
    res.status = calls.fetch_add(1) == 0 ? 500 : 204;
  });
  ASSERT_TRUE(server.Start());
  WebhookConfig config;
  config.url = server.base_url() + "/hook?token=secret-token";
  config.retries = 2;
  config.backoff_s = 0.01;
  auto sink = MakeWebhookSink(config);
  ASSERT_TRUE(sink.ok());
  EXPECT_THAT((*sink)->name(), ::testing::Not(::testing::HasSubstr("secret")));
  std::vector<std::unique_ptr<AlarmSink>> sinks;
  sinks.push_back(std::move(*sink));
  AlarmDispatcher dispatcher(std::move(sinks));
  dispatcher.Post(Event("raise", "p", 9, 4));
  dispatcher.Post(Event("clear", "p", 6, 7));
  ASSERT_TRUE(dispatcher.WaitIdle(30s));
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);  // the raise twice (500, then 204), the clear once
  EXPECT_EQ(json::parse(requests[0].body)["event"], "raise");
  EXPECT_EQ(json::parse(requests[1].body)["event"], "raise");
  EXPECT_EQ(json::parse(requests[2].body)["event"], "clear");
  EXPECT_EQ(requests[1].Header("Content-Type"), "application/json");
  EXPECT_EQ(dispatcher.stats().delivered, 2);
  EXPECT_EQ(dispatcher.stats().failed, 0);
}

TEST(WebhookAlarmTest, GivesUpAfterItsRetriesAndOnAFinalAnswer) {
  testing::HttpFixtureServer server;
  server.server().Post("/down",
                       [](const httplib::Request&, httplib::Response& res) { res.status = 503; });
  server.server().Post("/gone",
                       [](const httplib::Request&, httplib::Response& res) { res.status = 404; });
  ASSERT_TRUE(server.Start());
  WebhookConfig config;
  config.url = server.base_url() + "/down";
  config.retries = 2;
  config.backoff_s = 0.01;
  auto down = MakeWebhookSink(config);
  ASSERT_TRUE(down.ok());
  Status s = (*down)->Deliver(Event("raise", "p", 9, 1));
  EXPECT_EQ(s.http_status(), 503);
  EXPECT_EQ(server.request_count(), 3u);  // 1 + 2 retries
  config.url = server.base_url() + "/gone";
  auto gone = MakeWebhookSink(config);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ((*gone)->Deliver(Event("raise", "p", 9, 1)).http_status(), 404);
  EXPECT_EQ(server.request_count(), 4u);  // a 404 is not retried
}

TEST(RedactedUrlTest, DropsUserInfoAndQuery) {
  EXPECT_EQ(RedactedUrl("https://user:pw@hooks.example:8443/a/b?token=x#f"),
            "https://hooks.example:8443/a/b");
  EXPECT_EQ(RedactedUrl("http://h"), "http://h");
}

#ifdef ROILENS_HAVE_MOSQUITTO

/// A free loopback port: bound to port 0, read back, released. The broker binds it right after;
/// another process taking it in between would make the broker fail to start (reported, not hung).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool CanConnect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string MosquittoBinary() {
  if (const char* env = std::getenv("MOSQUITTO_BIN")) return env;
  for (const char* p : {"/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"}) {
    if (std::filesystem::exists(p)) return p;
  }
  return "";
}

/// A mosquitto broker on 127.0.0.1:<free port>, stopped (SIGTERM to its pid) at the end.
class Broker {
 public:
  bool Start(std::string* why) {
    const std::string binary = MosquittoBinary();
    if (binary.empty()) {
      *why = "no mosquitto binary (Debian package mosquitto; or set MOSQUITTO_BIN)";
      return false;
    }
    port_ = FreePort();
    dir_ = std::filesystem::temp_directory_path() /
           ("roilens-mqtt-" + std::to_string(::getpid()) + "-" + std::to_string(port_));
    std::filesystem::create_directories(dir_);
    const std::string conf = (dir_ / "mosquitto.conf").string();
    std::ofstream(conf) << "listener " << port_ << " 127.0.0.1\nallow_anonymous true\n"
                        << "persistence false\n";
    std::vector<std::string> args = {binary, "-c", conf};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, binary.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      *why = "cannot start " + binary;
      return false;
    }
    // Ready when it accepts a connection; the deadline is only a safety net.
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!CanConnect(port_)) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        *why = "mosquitto exited at start (port " + std::to_string(port_) + ")";
        return false;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        *why = "mosquitto did not accept connections within 30 s";
        return false;
      }
      std::this_thread::sleep_for(10ms);  // polling for readiness, not ordering
    }
    return true;
  }
  ~Broker() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = -1;
  std::filesystem::path dir_;
};

/// A libmosquitto subscriber that records (topic, payload, retained).
class Subscriber {
 public:
  struct Message {
    std::string topic;
    json payload;
    bool retained;
  };
  explicit Subscriber(const std::string& id) {
    mosquitto_lib_init();
    mosq_ = mosquitto_new(id.c_str(), true, this);
    mosquitto_connect_callback_set(mosq_, [](mosquitto* m, void* self, int rc) {
      if (rc == 0)
        mosquitto_subscribe(m, nullptr, static_cast<Subscriber*>(self)->filter_.c_str(), 1);
    });
    mosquitto_subscribe_callback_set(mosq_, [](mosquitto*, void* self, int, int, const int*) {
      auto* s = static_cast<Subscriber*>(self);
      std::lock_guard lock(s->mu_);
      s->subscribed_ = true;
      s->cv_.notify_all();
    });
    mosquitto_message_callback_set(mosq_, [](mosquitto*, void* self, const mosquitto_message* m) {
      auto* s = static_cast<Subscriber*>(self);
      std::lock_guard lock(s->mu_);
      s->messages_.push_back(
          {m->topic, json::parse(std::string(static_cast<const char*>(m->payload), m->payloadlen)),
           m->retain});
      s->cv_.notify_all();
    });
  }
  ~Subscriber() {
    mosquitto_disconnect(mosq_);
    mosquitto_loop_stop(mosq_, false);
    mosquitto_destroy(mosq_);
  }
  bool Subscribe(int port, const std::string& filter) {
    filter_ = filter;
    if (mosquitto_connect(mosq_, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS) return false;
    mosquitto_loop_start(mosq_);
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 30s, [&] { return subscribed_; });
  }
  std::vector<Message> WaitFor(std::size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 30s, [&] { return messages_.size() >= n; });
    return messages_;
  }

 private:
  mosquitto* mosq_;
  std::string filter_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool subscribed_ = false;
  std::vector<Message> messages_;
};

TEST(MqttAlarmTest, ASubscriberReceivesRaiseAndClearAndALateOneTheRetainedState) {
  Broker broker;
  std::string why;
  if (!broker.Start(&why)) GTEST_SKIP() << why;
  Subscriber live("roilens-test-live");
  ASSERT_TRUE(live.Subscribe(broker.port(), "plant/st7/#"));

  OutputConfig output;
  output.mqtt.host = "127.0.0.1";
  output.mqtt.port = broker.port();
  output.mqtt.topic_prefix = "plant/st7";
  output.mqtt.client_id = "roilens-test-station";
  auto dispatcher = AlarmDispatcher::Create(output);
  ASSERT_TRUE(dispatcher.ok()) << dispatcher.status().ToString();
  ASSERT_NE(*dispatcher, nullptr);
  (*dispatcher)->Post(Event("raise", "boiler", 9, 4));
  (*dispatcher)->Post(Event("clear", "boiler", 6, 7));
  ASSERT_TRUE((*dispatcher)->WaitIdle(60s));
  EXPECT_EQ((*dispatcher)->stats().delivered, 2);

  const auto got = live.WaitFor(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].topic, "plant/st7/boiler");
  EXPECT_EQ(got[0].payload["event"], "raise");
  EXPECT_EQ(got[0].payload["frame"], 4);
  EXPECT_EQ(got[1].payload["event"], "clear");
  EXPECT_FALSE(got[0].retained);  // live delivery

  // The last state is retained: a subscriber that comes later gets the clear at once.
  Subscriber late("roilens-test-late");
  ASSERT_TRUE(late.Subscribe(broker.port(), "plant/st7/#"));
  const auto retained = late.WaitFor(1);
  ASSERT_EQ(retained.size(), 1u);
  EXPECT_TRUE(retained[0].retained);
  EXPECT_EQ(retained[0].payload["event"], "clear");
}

#else
TEST(MqttAlarmTest, ASubscriberReceivesRaiseAndClearAndALateOneTheRetainedState) {
  OutputConfig output;
  output.mqtt.host = "127.0.0.1";
  auto dispatcher = AlarmDispatcher::Create(output);
  EXPECT_EQ(dispatcher.status().code(), StatusCode::kUnimplemented);
  GTEST_SKIP() << "built without libmosquitto";
}
#endif

}  // namespace
}  // namespace roilens
