// Alarm delivery off the frame path: MQTT (libmosquitto) and a webhook (libcurl POST), each fed
// by its own bounded queue and thread, so a slow or absent broker never holds a frame back.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "roilens/client/status.h"
#include "roilens/config/config.h"

namespace roilens {

/// One destination of alarm events. Deliver runs on the sink's own worker thread, one event at
/// a time in order, and may block (retries, backoff) until Stop() is called.
class AlarmSink {
 public:
  virtual ~AlarmSink() = default;
  /// For logs: says where, never with credentials ("webhook http://host:8080/path").
  virtual std::string name() const = 0;
  /// Delivers one event, with the sink's own retries. An error is logged and the event dropped.
  virtual Status Deliver(const nlohmann::json& event) = 0;
  /// Makes a Deliver in progress give up promptly (shutdown). Thread-safe.
  virtual void Stop() = 0;
};

/// Publishes each event QoS 1, retained, on "<topic_prefix>/<roi>" (roi as in the event).
/// Connects in the background and reconnects with backoff; a broker that is down at start is not
/// an error. kUnimplemented when the build has no libmosquitto.
StatusOr<std::unique_ptr<AlarmSink>> MakeMqttSink(const MqttConfig& config);
/// POSTs each event as application/json; transport errors, 408, 429 and 5xx are retried
/// `retries` times after backoff_s, 2*backoff_s, ... (at most 60 s each); other answers are final.
StatusOr<std::unique_ptr<AlarmSink>> MakeWebhookSink(const WebhookConfig& config);

/// Counters over the dispatcher's life (all sinks together).
struct AlarmDeliveryStats {
  std::int64_t delivered = 0;  ///< events a sink accepted
  std::int64_t failed = 0;     ///< events a sink gave up on
  std::int64_t dropped = 0;    ///< events pushed out of a full queue, or left at shutdown
};

/// Fans events out to sinks. Thread-safe; Post never blocks.
class AlarmDispatcher {
 public:
  /// Events a sink's queue holds; when full the oldest is dropped (counted): the newest state of
  /// an ROI matters more than its history, and memory stays bounded on a dead link.
  static constexpr std::size_t kQueueCapacity = 1000;
  /// The destructor lets the sinks finish what is queued for up to this long, then stops them.
  static constexpr std::chrono::seconds kDrainTimeout{5};

  /// The sinks `output` configures (mqtt.host / webhook.url set); nullptr when none is.
  static StatusOr<std::unique_ptr<AlarmDispatcher>> Create(const OutputConfig& output);
  explicit AlarmDispatcher(std::vector<std::unique_ptr<AlarmSink>> sinks);
  ~AlarmDispatcher();
  AlarmDispatcher(const AlarmDispatcher&) = delete;
  AlarmDispatcher& operator=(const AlarmDispatcher&) = delete;

  void Post(const nlohmann::json& event);
  /// Waits until every posted event has been handled (delivered, failed or dropped) or `timeout`
  /// passed; true when idle.
  bool WaitIdle(std::chrono::milliseconds timeout);
  AlarmDeliveryStats stats() const;

 private:
  struct Lane {
    std::unique_ptr<AlarmSink> sink;
    std::deque<nlohmann::json> queue;
    bool busy = false;
    std::thread thread;
  };
  void Run(Lane& lane);

  std::vector<std::unique_ptr<Lane>> lanes_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_, idle_cv_;
  bool stopping_ = false;  ///< no more events: lanes exit once their queue is empty
  bool abandon_ = false;   ///< drain timed out: lanes drop what is left
  AlarmDeliveryStats stats_;
};

/// scheme://host[:port]/path of `url`, without user info, query or fragment (for logs).
std::string RedactedUrl(const std::string& url);

}  // namespace roilens
