// Header-only C++ facade over the roilens plugin C ABI: loads libroilens_plugin with dlopen,
// checks its versions, and wraps a session in RAII types that take and return cv::Mat.
// Needs only OpenCV core and libdl; does not link roilens.
//
// Errors are exceptions of type roilens::plugin::Error (code() is the roilens_result, what() the
// plugin's message); TryTake/Take use std::optional for "nothing yet" / "no more", which are not
// errors.
//
//   roilens::plugin::Library lib;                      // path, else $ROILENS_PLUGIN_PATH, else
//   roilens::plugin::Session session(lib, config);     // "libroilens_plugin.so.1"
//   session.Submit(frame, index, time_s);
//   while (auto out = session.TryTake()) { ... out->annotated, out->results[i].value ... }
#pragma once

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <opencv2/core.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "roilens_plugin/roilens_plugin.h"

namespace roilens::plugin {

/// What a facade call throws: the plugin's result code and its message.
class Error : public std::runtime_error {
 public:
  Error(roilens_result code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  /// A ROILENS_ERROR_* value (ROILENS_ERROR_INTERNAL for load failures).
  roilens_result code() const { return code_; }

 private:
  roilens_result code_;
};

/// One object a count found: its box in the submitted frame's pixels.
struct RoiObject {
  cv::Rect2d box;
  std::optional<double> score;  ///< 0..1; absent when the model gave none
};

/// One ROI's result on one frame: the fields of its results.jsonl object, typed (plugin API 2).
/// A plain value that owns its strings.
struct RoiResult {
  std::string roi;                    ///< ROI name from the config
  std::string task;                   ///< read_gauge | count | zoom | annotate | ask
  std::string status;                 ///< ok | cached | skipped | uncertain | error
  cv::Rect rect;                      ///< the ROI in the submitted frame, pixels
  std::optional<double> value;        ///< read_gauge: the reading, in `unit`
  std::string unit;                   ///< "" when none
  std::optional<std::int64_t> count;  ///< count: how many objects
  std::vector<RoiObject> objects;     ///< count: the objects with boxes
  std::optional<double> confidence;   ///< 0..1
  std::string alarm;                  ///< "" | "low" | "high"
  std::string error;                  ///< "" unless status is "error"
  std::string text;
  int attempts = 0;
  double latency_ms = 0;
  std::string interaction_id;
};

/// One finished frame. `annotated` owns its pixels (copied out of the plugin's buffer, so it
/// stays valid however long it is kept).
struct Frame {
  std::int64_t index = 0;
  double time_s = 0;
  cv::Mat annotated;               ///< CV_8UC3
  std::vector<RoiResult> results;  ///< one per ROI, config order
  std::string results_json;        ///< the same as a JSON array of results.jsonl objects
};

/// The file dlopen is asked for when neither a path nor $ROILENS_PLUGIN_PATH is given: the
/// installed plugin's full path when built against the CMake package (roilens::plugin_headers
/// defines ROILENS_PLUGIN_DEFAULT_PATH), else the bare name found through the dlopen search.
#ifdef ROILENS_PLUGIN_DEFAULT_PATH
inline constexpr const char* kDefaultLibraryName = ROILENS_PLUGIN_DEFAULT_PATH;
#else
inline constexpr const char* kDefaultLibraryName = "libroilens_plugin.so.1";
#endif

/// A loaded plugin library. Copies share one dlopen handle; the library is unloaded when the last
/// Library and Session using it are gone. Thread-safe (immutable after construction).
class Library {
 public:
  /// Loads `path`; when empty, $ROILENS_PLUGIN_PATH; when that is unset, kDefaultLibraryName
  /// (a bare name is found through the usual dlopen search: RUNPATH, LD_LIBRARY_PATH, ld.so.cache).
  /// Throws Error when the file cannot be loaded, lacks the entry point, or refuses our versions.
  explicit Library(const std::string& path = {}) : state_(std::make_shared<State>()) {
    state_->path = ResolvePath(path);
    state_->dl = ::dlopen(state_->path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (state_->dl == nullptr) {
      const char* why = ::dlerror();
      throw Error(ROILENS_ERROR_INTERNAL, "roilens plugin: cannot load " + state_->path + ": " +
                                              (why ? why : "unknown error"));
    }
    auto init =
        reinterpret_cast<roilens_plugin_init_fn>(::dlsym(state_->dl, ROILENS_PLUGIN_INIT_SYMBOL));
    if (init == nullptr)
      throw Error(ROILENS_ERROR_INTERNAL, "roilens plugin: " + state_->path + " does not export " +
                                              ROILENS_PLUGIN_INIT_SYMBOL);
    roilens_init_error init_error{};
    state_->api = init(ROILENS_PLUGIN_ABI_VERSION, ROILENS_PLUGIN_API_VERSION, &init_error);
    if (state_->api == nullptr)
      throw Error(ROILENS_ERROR_INTERNAL,
                  "roilens plugin: " + state_->path + " refused: " + init_error.message);
    // A table smaller than the one this header describes lacks functions we would call.
    if (state_->api->size < sizeof(roilens_plugin_api))
      throw Error(ROILENS_ERROR_INTERNAL,
                  "roilens plugin: " + state_->path + " has a function table of " +
                      std::to_string(state_->api->size) + " bytes, this header needs " +
                      std::to_string(sizeof(roilens_plugin_api)));
  }

  /// The path as resolved (what was handed to dlopen).
  const std::string& path() const { return state_->path; }
  /// The raw C table, for calls the facade does not wrap.
  const roilens_plugin_api& api() const { return *state_->api; }
  int abi_version() const { return state_->api->abi_version; }
  int api_version() const { return state_->api->api_version; }
  std::string library_version() const { return state_->api->library_version; }

  static std::string ResolvePath(const std::string& path) {
    if (!path.empty()) return path;
    if (const char* env = std::getenv("ROILENS_PLUGIN_PATH"); env != nullptr && *env != '\0')
      return env;
    return kDefaultLibraryName;
  }

 private:
  friend class Session;
  struct State {
    std::string path;
    void* dl = nullptr;
    const roilens_plugin_api* api = nullptr;
    State() = default;
    State(const State&) = delete;
    State& operator=(const State&) = delete;
    ~State() {
      if (dl != nullptr) ::dlclose(dl);
    }
  };
  std::shared_ptr<State> state_;
};

/// One pipeline run inside the plugin (and, for endpoint "local", its own embedded backend).
/// Move-only; the destructor destroys the session (drains frames in flight, drops untaken ones).
/// Thread-safety as in roilens_plugin.h: Submit from one thread, TryTake/Take from one thread
/// (may be another), Flush from the taking thread or any thread not submitting.
class Session {
 public:
  /// `config_json`: a station config (as for `roilens run`). `options_json`: "" or the plugin
  /// options object (see roilens_plugin.h: coder, latency_ms, queue_frames).
  /// Throws Error (code ROILENS_ERROR_CONFIG names the bad field's path).
  Session(const Library& library, const std::string& config_json,
          const std::string& options_json = {})
      : library_(library.state_), api_(library.state_->api) {
    roilens_handle* h = nullptr;
    Check(api_->create(config_json.c_str(), options_json.empty() ? nullptr : options_json.c_str(),
                       &h));
    handle_ = h;
  }
  Session(Session&& other) noexcept
      : library_(std::move(other.library_)),
        api_(other.api_),
        handle_(std::exchange(other.handle_, nullptr)),
        ended_(other.ended_) {}
  Session& operator=(Session&& other) noexcept {
    if (this != &other) {
      Reset();
      library_ = std::move(other.library_);
      api_ = other.api_;
      handle_ = std::exchange(other.handle_, nullptr);
      ended_ = other.ended_;
    }
    return *this;
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() { Reset(); }

  /// Copies `bgr` (CV_8UC3, any row stride: ROI views are fine) into the pipeline. May block
  /// while the pipeline is full (batch mode). Throws Error on a bad frame or a dead session.
  void Submit(const cv::Mat& bgr, std::int64_t index, double time_s) {
    if (bgr.type() != CV_8UC3 || bgr.dims != 2)
      throw Error(ROILENS_ERROR_INVALID_ARGUMENT, "submit: frame " + std::to_string(index) +
                                                      " must be a 2-D CV_8UC3 image, got " +
                                                      cv::typeToString(bgr.type()));
    Check(api_->submit(handle_, bgr.data, bgr.cols, bgr.rows, bgr.step[0], index, time_s));
  }

  /// The next finished frame if one is ready now; nullopt otherwise (also at the end).
  std::optional<Frame> TryTake() { return TakeFor(0); }

  /// Waits for the next finished frame (at most `timeout`, forever when negative); nullopt when
  /// the timeout passed or, after Flush(), when every frame has been taken (see ended()).
  std::optional<Frame> Take(std::chrono::milliseconds timeout = std::chrono::milliseconds(-1)) {
    const auto ms = timeout.count() < 0 ? -1 : std::min<std::int64_t>(timeout.count(), INT32_MAX);
    return TakeFor(static_cast<std::int32_t>(ms));
  }

  /// True once Take/TryTake reported the end (after Flush, every frame taken).
  bool ended() const { return ended_; }

  /// No more frames: blocks until every submitted one is finished (still to be taken).
  void Flush() { Check(api_->flush(handle_)); }

  /// The raw handle, for calls the facade does not wrap.
  roilens_handle* handle() const { return handle_; }

 private:
  std::optional<Frame> TakeFor(std::int32_t timeout_ms) {
    roilens_frame_out out{};
    const roilens_result r = api_->take(handle_, timeout_ms, &out);
    if (r == ROILENS_NOT_READY) return {};
    if (r == ROILENS_END) {
      ended_ = true;
      return {};
    }
    Check(r);
    // Frees the plugin's buffers on every path out of here, exceptions included.
    std::unique_ptr<roilens_frame_out, void (*)(roilens_frame_out*)> guard(&out,
                                                                           api_->frame_release);
    Frame f;
    f.index = out.frame_index;
    f.time_s = out.timestamp_s;
    if (out.pixels != nullptr && out.width > 0 && out.height > 0)
      cv::Mat(out.height, out.width, CV_8UC3, const_cast<std::uint8_t*>(out.pixels), out.stride)
          .copyTo(f.annotated);
    f.results_json.assign(out.results_json, out.results_json_size);
    std::int32_t rois = 0;
    Check(api_->roi_count(&out, &rois));
    f.results.reserve(static_cast<std::size_t>(rois));
    for (std::int32_t i = 0; i < rois; ++i) {
      roilens_roi_result c{};
      c.size = sizeof(c);
      Check(api_->roi_result(&out, i, &c));
      RoiResult& r = f.results.emplace_back();
      r.roi = c.roi;
      r.task = c.task;
      r.status = c.status;
      r.rect = cv::Rect(c.rect[0], c.rect[1], c.rect[2], c.rect[3]);
      if (c.has_value) r.value = c.value;
      r.unit = c.unit;
      if (c.has_count) r.count = c.count;
      if (c.has_confidence) r.confidence = c.confidence;
      r.alarm = c.alarm;
      r.error = c.error;
      r.text = c.text;
      r.attempts = c.attempts;
      r.latency_ms = c.latency_ms;
      r.interaction_id = c.interaction_id;
      for (std::int32_t k = 0; k < c.object_count; ++k) {
        roilens_roi_object o{};
        o.size = sizeof(o);
        Check(api_->roi_object(&out, i, k, &o));
        r.objects.push_back({cv::Rect2d(o.x, o.y, o.width, o.height),
                             o.has_score ? std::optional<double>(o.score) : std::nullopt});
      }
    }
    return f;
  }

  void Check(roilens_result r) const {
    if (r >= 0) return;
    const char* message = api_->last_error();
    throw Error(r, message != nullptr && *message != '\0'
                       ? message
                       : "roilens plugin error " + std::to_string(r));
  }

  void Reset() {
    if (handle_ != nullptr) api_->destroy(handle_);
    handle_ = nullptr;
  }

  std::shared_ptr<Library::State> library_;  // keeps the library loaded while the session lives
  const roilens_plugin_api* api_ = nullptr;
  roilens_handle* handle_ = nullptr;
  bool ended_ = false;
};

}  // namespace roilens::plugin
