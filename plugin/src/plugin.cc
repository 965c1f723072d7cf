// The roilens plugin: implements the C table of roilens_plugin.h on top of roilens::Pipeline and
// the embedded LocalBackend. Nothing but roilens_plugin_init_v1 leaves this library (version
// script + hidden visibility); no exception crosses the C boundary.
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "roilens/backend/local_pipeline.h"
#include "roilens/client/status.h"
#include "roilens/config/config.h"
#include "roilens/stages/pipeline.h"
#include "roilens_plugin/roilens_plugin.h"

#ifndef ROILENS_PLUGIN_LIBRARY_VERSION
#define ROILENS_PLUGIN_LIBRARY_VERSION "0.0.0"
#endif

namespace roilens::plugin {
namespace {

// Frames larger than this on a side are refused: they are a caller bug (or a garbage argument),
// and refusing them early keeps the size arithmetic below far from overflow.
constexpr std::int32_t kMaxFrameSide = 1 << 15;
// Default finished frames held for take() before the pipeline is made to wait: the pipeline's
// own in-flight limit already bounds memory, this only decouples take() from the graph.
constexpr int kDefaultQueueFrames = 8;

// ---- last error (thread-local, like errno) ----

std::string& LastErrorText() {
  thread_local std::string text;
  return text;
}

void ClearError() { LastErrorText().clear(); }

roilens_result Fail(roilens_result code, std::string message) {
  LastErrorText() = std::move(message);
  return code;
}

roilens_result ResultFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return ROILENS_OK;
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
      return ROILENS_ERROR_INVALID_ARGUMENT;
    case StatusCode::kFailedPrecondition:
      return ROILENS_ERROR_STATE;
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kUnauthenticated:
    case StatusCode::kPermissionDenied:
      return ROILENS_ERROR_BACKEND;
    default:
      return ROILENS_ERROR_INTERNAL;
  }
}

roilens_result FailWith(const Status& s, const std::string& context) {
  return Fail(ResultFor(s), context + ": " + s.ToString());
}

// ---- plugin-only options (the second JSON of create) ----

struct PluginOptions {
  std::string coder = "cv";
  int latency_ms = 0;
  int queue_frames = kDefaultQueueFrames;
};

StatusOr<PluginOptions> ParsePluginOptions(const char* text) {
  PluginOptions options;
  if (text == nullptr || *text == '\0') return options;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false,
                                           /*ignore_comments=*/true);
  if (j.is_discarded()) return InvalidArgumentError("options: not valid JSON");
  if (!j.is_object()) return InvalidArgumentError("options: must be a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (key == "coder") {
      if (!value.is_string() || (value != "cv" && value != "echo"))
        return InvalidArgumentError("options.coder: must be \"cv\" or \"echo\"");
      options.coder = value.get<std::string>();
    } else if (key == "latency_ms") {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 0 ||
          value.get<std::int64_t>() > 600000)
        return InvalidArgumentError("options.latency_ms: must be an integer in 0..600000");
      options.latency_ms = value.get<int>();
    } else if (key == "queue_frames") {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 1 ||
          value.get<std::int64_t>() > 1024)
        return InvalidArgumentError("options.queue_frames: must be an integer in 1..1024");
      options.queue_frames = value.get<int>();
    } else {
      return InvalidArgumentError("options." + key +
                                  ": unknown option (known: coder, latency_ms, queue_frames)");
    }
  }
  return options;
}

// ---- frames handed out by take() ----

struct FrameHolder {
  cv::Mat annotated;
  std::string results_json;
  std::vector<RoiResult> results;  ///< what roi_result/roi_object read (API 2)
};

// Every FrameHolder take() handed out and frame_release() has not freed yet, so that a released
// (or forged) roilens_frame_out is recognised instead of being freed twice.
class FrameRegistry {
 public:
  void Add(FrameHolder* f) {
    std::lock_guard lock(mu_);
    live_.insert(f);
  }
  bool Remove(FrameHolder* f) {
    std::lock_guard lock(mu_);
    return live_.erase(f) == 1;
  }
  bool Contains(const FrameHolder* f) {
    std::lock_guard lock(mu_);
    return live_.count(const_cast<FrameHolder*>(f)) == 1;
  }

 private:
  std::mutex mu_;
  std::unordered_set<FrameHolder*> live_;
};

FrameRegistry& Frames() {
  static FrameRegistry registry;
  return registry;
}

// ---- a session: one pipeline (+ one embedded backend) behind a handle ----

class Session {
 public:
  static StatusOr<std::unique_ptr<Session>> Create(const char* config_json,
                                                   const char* options_json,
                                                   roilens_result* error_code);
  ~Session() { Close(); }

  /// Counts a table call in progress (destroy waits for them); false once the session is closed.
  bool Enter() {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    ++active_calls_;
    return true;
  }
  void Leave() {
    std::lock_guard lock(mu_);
    if (--active_calls_ == 0) calls_done_.notify_all();
  }

  roilens_result Submit(const std::uint8_t* bgr, std::int32_t width, std::int32_t height,
                        std::size_t stride, std::int64_t frame_index, double timestamp_s);
  roilens_result Take(std::int32_t timeout_ms, roilens_frame_out* out);
  roilens_result Flush();
  /// Stops everything: drains the pipeline, drops untaken frames, wakes blocked take() calls,
  /// waits for the other calls in progress to leave, then stops the pipeline (and its backend).
  void Close();

 private:
  Session() = default;
  void TakerLoop();
  void FlushPipelineOnce() {
    std::call_once(flushed_once_, [this] { pipeline_->Flush(); });
  }

  // For endpoint "local" it owns the embedded backend and stops it after its own calls.
  std::unique_ptr<Pipeline> pipeline_;
  std::thread taker_;
  std::once_flag flushed_once_;
  std::size_t queue_frames_ = kDefaultQueueFrames;

  std::mutex mu_;
  std::condition_variable frame_ready_;  // ready_ grew, ended_ or closed_ set
  std::condition_variable space_;        // ready_ shrank or closed_ set
  std::condition_variable calls_done_;   // active_calls_ dropped to 0
  std::deque<FrameOutput> ready_;
  bool ended_ = false;    // the pipeline's Take() said nothing more will come
  bool flushed_ = false;  // flush() called: submit is refused
  bool closed_ = false;
  int active_calls_ = 0;
  bool submitted_any_ = false;
  std::int64_t last_index_ = 0;
};

StatusOr<std::unique_ptr<Session>> Session::Create(const char* config_json,
                                                   const char* options_json,
                                                   roilens_result* error_code) {
  *error_code = ROILENS_ERROR_CONFIG;
  auto options = ParsePluginOptions(options_json);
  if (!options.ok()) return options.status();
  auto config = ParseStationConfig(config_json, "<plugin config>");
  if (!config.ok()) return config.status();

  std::unique_ptr<Session> session(new Session());
  session->queue_frames_ = static_cast<std::size_t>(options->queue_frames);
  PipelineOptions pipeline_options;
  std::unique_ptr<backend::LocalBackend> embedded;
  if (config->backend.endpoint == "local") {
    backend::BackendOptions backend_options;
    backend_options.coder = options->coder;
    backend_options.latency = std::chrono::milliseconds(options->latency_ms);
    auto started = backend::StartEmbeddedBackend(backend_options);
    if (!started.ok()) {
      *error_code = ROILENS_ERROR_BACKEND;
      return started.status();
    }
    embedded = std::move(*started);
  } else {
    if (options_json != nullptr && *options_json != '\0' &&
        (options->coder != "cv" || options->latency_ms != 0))
      return InvalidArgumentError(
          "options.coder/latency_ms: only apply to endpoint \"local\", config has \"" +
          config->backend.endpoint + "\"");
    pipeline_options.base_url = config->backend.endpoint;
  }
  auto pipeline = embedded
                      ? backend::CreateEmbeddedPipeline(
                            std::move(*config), std::move(pipeline_options), std::move(embedded))
                      : Pipeline::Create(std::move(*config), std::move(pipeline_options));
  if (!pipeline.ok()) {
    *error_code = pipeline.status().code() == StatusCode::kInvalidArgument
                      ? ROILENS_ERROR_CONFIG
                      : ResultFor(pipeline.status());
    return pipeline.status();
  }
  session->pipeline_ = std::move(*pipeline);
  session->taker_ = std::thread([s = session.get()] { s->TakerLoop(); });
  *error_code = ROILENS_OK;
  return session;
}

// Moves finished frames from the pipeline into ready_, so that take() can wait with a timeout
// (Pipeline::Take only blocks without one). Ends when the pipeline says nothing more will come,
// which happens after Flush(); Close() flushes, so this thread always ends.
void Session::TakerLoop() {
  for (;;) {
    std::optional<FrameOutput> frame = pipeline_->Take();
    std::unique_lock lock(mu_);
    if (!frame) {
      ended_ = true;
      frame_ready_.notify_all();
      return;
    }
    space_.wait(lock, [this] { return closed_ || ready_.size() < queue_frames_; });
    if (closed_) continue;  // closing: drain the pipeline, nobody will take these
    ready_.push_back(std::move(*frame));
    frame_ready_.notify_one();
  }
}

roilens_result Session::Submit(const std::uint8_t* bgr, std::int32_t width, std::int32_t height,
                               std::size_t stride, std::int64_t frame_index, double timestamp_s) {
  if (bgr == nullptr) return Fail(ROILENS_ERROR_INVALID_ARGUMENT, "submit: bgr is NULL");
  if (width <= 0 || height <= 0 || width > kMaxFrameSide || height > kMaxFrameSide)
    return Fail(ROILENS_ERROR_INVALID_ARGUMENT,
                "submit: frame " + std::to_string(frame_index) + " has size " +
                    std::to_string(width) + "x" + std::to_string(height) +
                    " (each side must be 1.." + std::to_string(kMaxFrameSide) + ")");
  const std::size_t row_bytes = static_cast<std::size_t>(width) * 3;
  if (stride < row_bytes || stride > (std::numeric_limits<std::size_t>::max() >> 17))
    return Fail(ROILENS_ERROR_INVALID_ARGUMENT,
                "submit: frame " + std::to_string(frame_index) + " stride " +
                    std::to_string(stride) + " is less than width * 3 = " +
                    std::to_string(row_bytes) + " bytes (or absurdly large)");
  {
    std::lock_guard lock(mu_);
    if (flushed_)
      return Fail(ROILENS_ERROR_STATE, "submit: frame " + std::to_string(frame_index) +
                                           " after flush (create a new session)");
    if (submitted_any_ && frame_index <= last_index_)
      return Fail(ROILENS_ERROR_INVALID_ARGUMENT,
                  "submit: frame_index " + std::to_string(frame_index) +
                      " is not greater than the previous one, " + std::to_string(last_index_));
  }
  FrameInput input;
  input.index = frame_index;
  input.time_s = timestamp_s;
  // The caller may reuse its buffer as soon as submit returns: copy (clone() also compacts the
  // rows of a strided view).
  const cv::Mat view(height, width, CV_8UC3, const_cast<std::uint8_t*>(bgr), stride);
  input.bgr = view.clone();
  Status s = pipeline_->Submit(std::move(input));
  if (!s.ok()) return FailWith(s, "submit: frame " + std::to_string(frame_index));
  std::lock_guard lock(mu_);
  submitted_any_ = true;
  last_index_ = frame_index;
  return ROILENS_OK;
}

roilens_result Session::Take(std::int32_t timeout_ms, roilens_frame_out* out) {
  if (out == nullptr) return Fail(ROILENS_ERROR_INVALID_ARGUMENT, "take: out is NULL");
  std::memset(out, 0, sizeof(*out));
  std::unique_lock lock(mu_);
  auto ready = [this] { return closed_ || ended_ || !ready_.empty(); };
  if (timeout_ms < 0) {
    frame_ready_.wait(lock, ready);
  } else if (timeout_ms > 0) {
    frame_ready_.wait_for(lock, std::chrono::milliseconds(timeout_ms), ready);
  }
  if (closed_) return Fail(ROILENS_ERROR_INVALID_HANDLE, "take: the session was destroyed");
  if (ready_.empty()) return ended_ ? ROILENS_END : ROILENS_NOT_READY;
  FrameOutput frame = std::move(ready_.front());
  ready_.pop_front();
  space_.notify_one();
  lock.unlock();

  auto holder = std::make_unique<FrameHolder>();
  nlohmann::json results = nlohmann::json::array();
  for (const RoiResult& r : frame.results) results.push_back(ToJson(r));
  holder->results_json = results.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  holder->results = std::move(frame.results);
  if (!frame.annotated.empty()) {
    if (frame.annotated.type() == CV_8UC3) {
      holder->annotated = std::move(frame.annotated);
    } else if (frame.annotated.channels() == 1) {
      cv::cvtColor(frame.annotated, holder->annotated, cv::COLOR_GRAY2BGR);
    } else {
      return Fail(ROILENS_ERROR_INTERNAL,
                  "take: frame " + std::to_string(frame.index) + " came back with OpenCV type " +
                      std::to_string(frame.annotated.type()) + ", expected CV_8UC3");
    }
  }
  out->frame_index = frame.index;
  out->timestamp_s = frame.time_s;
  out->width = holder->annotated.cols;
  out->height = holder->annotated.rows;
  out->stride = holder->annotated.empty() ? 0 : holder->annotated.step[0];
  out->pixels = holder->annotated.empty() ? nullptr : holder->annotated.data;
  out->results_json = holder->results_json.c_str();
  out->results_json_size = holder->results_json.size();
  out->internal = holder.get();
  Frames().Add(holder.release());
  return ROILENS_OK;
}

roilens_result Session::Flush() {
  {
    std::lock_guard lock(mu_);
    flushed_ = true;
  }
  FlushPipelineOnce();
  return ROILENS_OK;
}

void Session::Close() {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    ready_.clear();
  }
  frame_ready_.notify_all();
  space_.notify_all();
  if (pipeline_) FlushPipelineOnce();
  if (taker_.joinable()) taker_.join();
  {
    std::unique_lock lock(mu_);
    calls_done_.wait(lock, [this] { return active_calls_ == 0; });
  }
  pipeline_.reset();
}

// ---- handles: never-reused ids in a registry ----

class SessionRegistry {
 public:
  roilens_handle* Add(std::shared_ptr<Session> s) {
    std::lock_guard lock(mu_);
    const std::uintptr_t id = next_id_++;
    sessions_.emplace(id, std::move(s));
    return reinterpret_cast<roilens_handle*>(id);
  }
  std::shared_ptr<Session> Find(roilens_handle* h) {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(reinterpret_cast<std::uintptr_t>(h));
    return it == sessions_.end() ? nullptr : it->second;
  }
  std::shared_ptr<Session> Remove(roilens_handle* h) {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(reinterpret_cast<std::uintptr_t>(h));
    if (it == sessions_.end()) return nullptr;
    auto s = std::move(it->second);
    sessions_.erase(it);
    return s;
  }
  // Sessions the application never destroyed are closed (drained) at unload / exit.
  ~SessionRegistry() {
    for (auto& [id, s] : sessions_) s->Close();
  }

 private:
  std::mutex mu_;
  // Ids start high and odd so that they never look like a small integer or an aligned pointer.
  std::uintptr_t next_id_ = 0x52010001;
  std::unordered_map<std::uintptr_t, std::shared_ptr<Session>> sessions_;
};

SessionRegistry& Sessions() {
  static SessionRegistry registry;
  return registry;
}

// Runs `body` on a live session with the call counted; maps a dead handle and any exception to
// an error code.
template <typename Body>
roilens_result OnSession(roilens_handle* handle, const char* what, Body&& body) {
  ClearError();
  try {
    if (handle == nullptr)
      return Fail(ROILENS_ERROR_INVALID_HANDLE, std::string(what) + ": handle is NULL");
    std::shared_ptr<Session> session = Sessions().Find(handle);
    if (!session || !session->Enter())
      return Fail(ROILENS_ERROR_INVALID_HANDLE,
                  std::string(what) + ": not a live handle (destroyed, or never created)");
    struct Leave {
      Session* s;
      ~Leave() { s->Leave(); }
    } leave{session.get()};
    return body(*session);
  } catch (const std::exception& e) {
    return Fail(ROILENS_ERROR_INTERNAL, std::string(what) + ": " + e.what());
  } catch (...) {
    return Fail(ROILENS_ERROR_INTERNAL, std::string(what) + ": unknown exception");
  }
}

// ---- the table ----

roilens_result ApiCreate(const char* config_json, const char* options_json, roilens_handle** out) {
  ClearError();
  try {
    if (out == nullptr) return Fail(ROILENS_ERROR_INVALID_ARGUMENT, "create: out is NULL");
    *out = nullptr;
    if (config_json == nullptr)
      return Fail(ROILENS_ERROR_INVALID_ARGUMENT, "create: config_json is NULL");
    roilens_result code = ROILENS_ERROR_INTERNAL;
    auto session = Session::Create(config_json, options_json, &code);
    if (!session.ok()) return Fail(code, "create: " + session.status().message());
    *out = Sessions().Add(std::shared_ptr<Session>(std::move(*session)));
    return ROILENS_OK;
  } catch (const std::exception& e) {
    return Fail(ROILENS_ERROR_INTERNAL, std::string("create: ") + e.what());
  } catch (...) {
    return Fail(ROILENS_ERROR_INTERNAL, "create: unknown exception");
  }
}

roilens_result ApiSubmit(roilens_handle* handle, const std::uint8_t* bgr, std::int32_t width,
                         std::int32_t height, std::size_t stride, std::int64_t frame_index,
                         double timestamp_s) {
  return OnSession(handle, "submit", [&](Session& s) {
    return s.Submit(bgr, width, height, stride, frame_index, timestamp_s);
  });
}

roilens_result ApiTake(roilens_handle* handle, std::int32_t timeout_ms, roilens_frame_out* out) {
  return OnSession(handle, "take", [&](Session& s) { return s.Take(timeout_ms, out); });
}

void ApiFrameRelease(roilens_frame_out* out) {
  if (out == nullptr || out->internal == nullptr) return;
  auto* holder = static_cast<FrameHolder*>(out->internal);
  if (Frames().Remove(holder)) {
    delete holder;
  } else {
    Fail(ROILENS_ERROR_INVALID_ARGUMENT,
         "frame_release: not a frame from take(), or released already (through a copy)");
  }
  std::memset(out, 0, sizeof(*out));
}

roilens_result ApiFlush(roilens_handle* handle) {
  return OnSession(handle, "flush", [](Session& s) { return s.Flush(); });
}

roilens_result ApiDestroy(roilens_handle* handle) {
  ClearError();
  try {
    if (handle == nullptr) return Fail(ROILENS_ERROR_INVALID_HANDLE, "destroy: handle is NULL");
    std::shared_ptr<Session> session = Sessions().Remove(handle);
    if (!session)
      return Fail(ROILENS_ERROR_INVALID_HANDLE,
                  "destroy: not a live handle (destroyed already, or never created)");
    session->Close();
    return ROILENS_OK;
  } catch (const std::exception& e) {
    return Fail(ROILENS_ERROR_INTERNAL, std::string("destroy: ") + e.what());
  }
}

const char* ApiLastError() { return LastErrorText().c_str(); }

// ---- API 2: typed results of a taken frame ----

// The holder behind `frame`, or nullptr (after setting last_error) when it is not a live frame.
const FrameHolder* LiveFrame(const roilens_frame_out* frame, const char* what) {
  if (frame == nullptr) {
    Fail(ROILENS_ERROR_INVALID_ARGUMENT, std::string(what) + ": frame is NULL");
    return nullptr;
  }
  const auto* holder = static_cast<const FrameHolder*>(frame->internal);
  if (holder == nullptr || !Frames().Contains(holder)) {
    Fail(ROILENS_ERROR_INVALID_ARGUMENT,
         std::string(what) + ": not a frame from take(), or released already");
    return nullptr;
  }
  return holder;
}

const RoiResult* RoiAt(const FrameHolder& holder, std::int32_t roi_index, const char* what) {
  if (roi_index < 0 || static_cast<std::size_t>(roi_index) >= holder.results.size()) {
    Fail(ROILENS_ERROR_INVALID_ARGUMENT,
         std::string(what) + ": roi_index " + std::to_string(roi_index) + " is out of range (" +
             std::to_string(holder.results.size()) + " ROI results)");
    return nullptr;
  }
  return &holder.results[static_cast<std::size_t>(roi_index)];
}

// Copies `full` into a caller's struct of `caller_size` bytes (its own `size` member), so that a
// caller built against a shorter, older struct gets the members it knows. `minimum` is the size
// of the struct when it was introduced.
template <typename T>
bool CopyOut(const T& full, T* out, std::size_t minimum, const char* what) {
  const std::size_t caller_size = out->size;
  if (caller_size < minimum) {
    Fail(ROILENS_ERROR_INVALID_ARGUMENT,
         std::string(what) + ": out->size is " + std::to_string(caller_size) +
             ", set it to sizeof the struct (at least " + std::to_string(minimum) + ")");
    return false;
  }
  std::memcpy(static_cast<void*>(out), &full, std::min(caller_size, sizeof(T)));
  out->size = caller_size;
  return true;
}

roilens_result ApiRoiCount(const roilens_frame_out* frame, std::int32_t* out_count) {
  ClearError();
  if (out_count == nullptr) return Fail(ROILENS_ERROR_INVALID_ARGUMENT, "roi_count: out is NULL");
  *out_count = 0;
  const FrameHolder* holder = LiveFrame(frame, "roi_count");
  if (holder == nullptr) return ROILENS_ERROR_INVALID_ARGUMENT;
  *out_count = static_cast<std::int32_t>(holder->results.size());
  return ROILENS_OK;
}

roilens_result ApiRoiResult(const roilens_frame_out* frame, std::int32_t roi_index,
                            roilens_roi_result* out) {
  ClearError();
  if (out == nullptr) return Fail(ROILENS_ERROR_INVALID_ARGUMENT, "roi_result: out is NULL");
  const FrameHolder* holder = LiveFrame(frame, "roi_result");
  if (holder == nullptr) return ROILENS_ERROR_INVALID_ARGUMENT;
  const RoiResult* r = RoiAt(*holder, roi_index, "roi_result");
  if (r == nullptr) return ROILENS_ERROR_INVALID_ARGUMENT;
  roilens_roi_result full{};
  full.size = sizeof(full);
  full.frame_index = r->frame;
  full.roi = r->roi.c_str();
  full.task = r->task.c_str();
  full.status = r->status.c_str();
  full.rect[0] = r->rect.x;
  full.rect[1] = r->rect.y;
  full.rect[2] = r->rect.width;
  full.rect[3] = r->rect.height;
  full.has_value = r->value.has_value();
  full.value = r->value.value_or(0);
  full.unit = r->unit.c_str();
  full.has_count = r->count.has_value();
  full.count = r->count.value_or(0);
  full.has_confidence = r->confidence.has_value();
  full.confidence = r->confidence.value_or(0);
  full.alarm = r->alarm.c_str();
  full.error = r->error.c_str();
  full.text = r->text.c_str();
  full.attempts = r->attempts;
  full.latency_ms = r->latency_ms;
  full.interaction_id = r->interaction_id.c_str();
  full.object_count = static_cast<std::int32_t>(r->objects.size());
  return CopyOut(full, out, sizeof(roilens_roi_result), "roi_result")
             ? ROILENS_OK
             : ROILENS_ERROR_INVALID_ARGUMENT;
}

roilens_result ApiRoiObject(const roilens_frame_out* frame, std::int32_t roi_index,
                            std::int32_t object_index, roilens_roi_object* out) {
  ClearError();
  if (out == nullptr) return Fail(ROILENS_ERROR_INVALID_ARGUMENT, "roi_object: out is NULL");
  const FrameHolder* holder = LiveFrame(frame, "roi_object");
  if (holder == nullptr) return ROILENS_ERROR_INVALID_ARGUMENT;
  const RoiResult* r = RoiAt(*holder, roi_index, "roi_object");
  if (r == nullptr) return ROILENS_ERROR_INVALID_ARGUMENT;
  if (object_index < 0 || static_cast<std::size_t>(object_index) >= r->objects.size()) {
    return Fail(ROILENS_ERROR_INVALID_ARGUMENT,
                "roi_object: object_index " + std::to_string(object_index) +
                    " is out of range (ROI '" + r->roi + "' has " +
                    std::to_string(r->objects.size()) + " objects)");
  }
  const RoiObject& o = r->objects[static_cast<std::size_t>(object_index)];
  roilens_roi_object full{};
  full.size = sizeof(full);
  full.x = o.box.x;
  full.y = o.box.y;
  full.width = o.box.width;
  full.height = o.box.height;
  full.has_score = o.score.has_value();
  full.score = o.score.value_or(0);
  return CopyOut(full, out, sizeof(roilens_roi_object), "roi_object")
             ? ROILENS_OK
             : ROILENS_ERROR_INVALID_ARGUMENT;
}

constexpr roilens_plugin_api kApi = {
    ROILENS_PLUGIN_ABI_VERSION,
    ROILENS_PLUGIN_API_VERSION,
    sizeof(roilens_plugin_api),
    ROILENS_PLUGIN_LIBRARY_VERSION,
    &ApiCreate,
    &ApiSubmit,
    &ApiTake,
    &ApiFrameRelease,
    &ApiFlush,
    &ApiDestroy,
    &ApiLastError,
    &ApiRoiCount,
    &ApiRoiResult,
    &ApiRoiObject,
};

void FillInitError(void* reserved, const std::string& message) {
  LastErrorText() = message;
  if (reserved == nullptr) return;
  auto* e = static_cast<roilens_init_error*>(reserved);
  e->plugin_abi_version = ROILENS_PLUGIN_ABI_VERSION;
  e->plugin_api_version = ROILENS_PLUGIN_API_VERSION;
  std::snprintf(e->message, sizeof(e->message), "%s", message.c_str());
}

}  // namespace
}  // namespace roilens::plugin

extern "C" const roilens_plugin_api* roilens_plugin_init_v1(int abi_version, int api_version,
                                                            void* reserved) {
  using namespace roilens::plugin;
  if (abi_version != ROILENS_PLUGIN_ABI_VERSION) {
    FillInitError(reserved, "roilens plugin ABI " + std::to_string(ROILENS_PLUGIN_ABI_VERSION) +
                                ", caller asked for ABI " + std::to_string(abi_version));
    return nullptr;
  }
  if (api_version < 1 || api_version > ROILENS_PLUGIN_API_VERSION) {
    FillInitError(reserved, "roilens plugin API " + std::to_string(ROILENS_PLUGIN_API_VERSION) +
                                " (ABI " + std::to_string(ROILENS_PLUGIN_ABI_VERSION) +
                                "), caller asked for API " + std::to_string(api_version) +
                                ": needs a newer plugin library");
    return nullptr;
  }
  return &kApi;
}
