// The `roilens._roilens` Python extension: roilens::Pipeline (and, for endpoint "local", the
// embedded local backend) bound with pybind11. Results come back as dicts, annotated frames as
// numpy arrays that share the cv::Mat's pixels.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "roilens/backend/local_pipeline.h"
#include "roilens/config/config.h"
#include "roilens/stages/pipeline.h"

namespace py = pybind11;
using nlohmann::json;

namespace roilens {
namespace {

/// Raised as roilens.ConfigError (a ValueError): the station config or an option is invalid.
struct ConfigException : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// Raised as roilens.BackendError (a RuntimeError): the backend could not be started or reached.
struct BackendException : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// Raised as roilens.CancelledError (a RuntimeError): the pipeline was cancelled.
struct CancelledException : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void Throw(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
      throw py::value_error(s.message());
    case StatusCode::kCancelled:
      throw CancelledException(s.message());
    case StatusCode::kUnavailable:
    case StatusCode::kUnauthenticated:
    case StatusCode::kPermissionDenied:
      throw BackendException(s.message());
    default:
      throw std::runtime_error(s.message());
  }
}

// ---- json <-> Python ----

py::object ToPython(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return py::none();
    case json::value_t::boolean:
      return py::bool_(j.get<bool>());
    case json::value_t::number_integer:
      return py::int_(j.get<std::int64_t>());
    case json::value_t::number_unsigned:
      return py::int_(j.get<std::uint64_t>());
    case json::value_t::number_float:
      return py::float_(j.get<double>());
    case json::value_t::string:
      return py::str(j.get_ref<const std::string&>());
    case json::value_t::array: {
      py::list list(j.size());
      for (std::size_t i = 0; i < j.size(); ++i) list[i] = ToPython(j[i]);
      return list;
    }
    case json::value_t::object: {
      py::dict dict;
      for (const auto& [key, value] : j.items()) dict[py::str(key)] = ToPython(value);
      return dict;
    }
    default:  // binary, discarded: never produced by the pipeline
      return py::none();
  }
}

/// A config dict (or any JSON-like Python value) as JSON; `path` names the place for errors.
json FromPython(const py::handle& o, const std::string& path, int depth = 0) {
  if (depth > 64) throw ConfigException(path + ": nested too deeply");
  if (o.is_none()) return nullptr;
  if (py::isinstance<py::bool_>(o)) return o.cast<bool>();
  if (py::isinstance<py::int_>(o)) return o.cast<std::int64_t>();
  if (py::isinstance<py::float_>(o)) return o.cast<double>();
  if (py::isinstance<py::str>(o)) return o.cast<std::string>();
  // numpy scalars (np.float64, np.int32, ...): their Python value.
  if (py::hasattr(o, "item") && py::hasattr(o, "dtype") &&
      py::getattr(o, "ndim", py::int_(1)).cast<int>() == 0)
    return FromPython(o.attr("item")(), path, depth + 1);
  if (py::isinstance<py::dict>(o)) {
    json out = json::object();
    for (const auto& [key, value] : o.cast<py::dict>()) {
      if (!py::isinstance<py::str>(key))
        throw ConfigException(path + ": keys must be strings, got " +
                              py::str(py::repr(key)).cast<std::string>());
      const std::string name = key.cast<std::string>();
      out[name] = FromPython(value, path.empty() ? name : path + "." + name, depth + 1);
    }
    return out;
  }
  if (py::isinstance<py::list>(o) || py::isinstance<py::tuple>(o)) {
    json out = json::array();
    std::size_t i = 0;
    for (const auto& item : o) {
      out.push_back(FromPython(item, path + "[" + std::to_string(i) + "]", depth + 1));
      ++i;
    }
    return out;
  }
  throw ConfigException((path.empty() ? std::string("config") : path) +
                        ": cannot be expressed in JSON (" +
                        py::str(py::type::handle_of(o).attr("__name__")).cast<std::string>() + ")");
}

// ---- frames ----

/// A numpy array over the Mat's pixels (no copy); the capsule owns a Mat header that keeps the
/// buffer alive for as long as the array (or any view of it) lives.
py::object ArrayOverMat(const cv::Mat& mat) {
  if (mat.empty()) return py::none();
  auto* owner = new cv::Mat(mat);  // shares the pixels (reference count + 1)
  py::capsule keep_alive(owner, [](void* p) { delete static_cast<cv::Mat*>(p); });
  const auto channels = static_cast<py::ssize_t>(mat.channels());
  return py::array(
      py::dtype::of<std::uint8_t>(),
      {static_cast<py::ssize_t>(mat.rows), static_cast<py::ssize_t>(mat.cols), channels},
      {static_cast<py::ssize_t>(mat.step[0]), channels, py::ssize_t{1}}, mat.data, keep_alive);
}

py::dict FrameToPython(FrameOutput&& frame) {
  py::dict out;
  out["index"] = frame.index;
  out["time_s"] = frame.time_s;
  out["source"] = frame.source;
  py::list results;
  for (const RoiResult& r : frame.results) results.append(ToPython(ToJson(r)));
  out["results"] = std::move(results);
  out["annotated"] = ArrayOverMat(frame.annotated);
  return out;
}

py::list FramesToPython(std::vector<FrameOutput>&& frames) {
  py::list out;
  for (FrameOutput& f : frames) out.append(FrameToPython(std::move(f)));
  return out;
}

/// What `Pipeline(...)` keyword arguments set besides the config.
struct PyOptions {
  std::string coder = "cv";  ///< embedded backend only: "cv" | "echo"
  int latency_ms = 0;        ///< embedded backend only: added to every model turn
  std::string endpoint;      ///< overrides backend.endpoint ("local" starts the embedded backend)
  std::optional<std::string> api_key;
};

/// One pipeline (and, for endpoint "local", its own embedded backend). Thread-safety as for
/// roilens::Pipeline: submit from one thread, take/take_ready from one thread; flush, cancel,
/// summary from any. Blocking calls release the GIL.
class PyPipeline {
 public:
  PyPipeline(StationConfig config, const PyOptions& options) {
    if (!options.endpoint.empty()) config.backend.endpoint = options.endpoint;
    if (options.coder != "cv" && options.coder != "echo")
      throw ConfigException("coder: must be \"cv\" or \"echo\", got \"" + options.coder + "\"");
    if (options.latency_ms < 0 || options.latency_ms > 600000)
      throw ConfigException("latency_ms: must be in 0..600000");
    if (config.backend.endpoint != "local" && (options.coder != "cv" || options.latency_ms != 0))
      throw ConfigException("coder/latency_ms: only apply to endpoint \"local\", config has \"" +
                            config.backend.endpoint + "\"");
    config_ = config;
    PipelineOptions pipeline_options;
    Status failed;
    {
      py::gil_scoped_release release;  // starting the backend takes a moment
      StatusOr<std::unique_ptr<Pipeline>> created = UnavailableError("no pipeline");
      if (config.backend.endpoint == "local") {
        // As the CLI does: an in-process backend on a free loopback port, never a real key (not
        // even options.api_key: the pipeline is left to send "").
        backend::BackendOptions backend_options;
        backend_options.coder = options.coder;
        backend_options.latency = std::chrono::milliseconds(options.latency_ms);
        auto started = backend::StartEmbeddedBackend(backend_options);
        if (started.ok()) {
          embedded_base_url_ = (*started)->base_url();
          created = backend::CreateEmbeddedPipeline(std::move(config), std::move(pipeline_options),
                                                    std::move(*started));
        } else {
          // Always a BackendError, whatever the code the start failed with.
          failed = Status(StatusCode::kUnavailable, started.status().message());
        }
      } else {
        pipeline_options.api_key = options.api_key;
        created = Pipeline::Create(std::move(config), std::move(pipeline_options));
      }
      if (failed.ok()) {
        if (created.ok()) {
          pipeline_ = std::move(*created);
        } else {
          failed = created.status();
        }
      }
    }
    if (failed.code() == StatusCode::kInvalidArgument) throw ConfigException(failed.message());
    if (!failed.ok()) Throw(failed);
  }

  ~PyPipeline() {
    // The pipeline's destructor waits for its graph to drain: never while holding the GIL (a
    // worker might need it? no, but other Python threads should keep running meanwhile).
    py::gil_scoped_release release;
    pipeline_.reset();  // and with it the embedded backend, after the calls to it
  }

  void Submit(const py::array& frame, std::int64_t index, double time_s,
              const std::string& source) {
    Pipeline& p = Live();
    if (frame.ndim() != 3 || frame.shape(2) != 3 ||
        !py::isinstance<py::array_t<std::uint8_t>>(frame))
      throw py::value_error("submit: frame " + std::to_string(index) +
                            " must be an HxWx3 uint8 BGR array, got dtype " +
                            py::str(frame.dtype()).cast<std::string>() + " with " +
                            std::to_string(frame.ndim()) + " dimension(s)");
    if (frame.shape(0) < 1 || frame.shape(1) < 1)
      throw py::value_error("submit: frame " + std::to_string(index) + " is empty");
    {
      std::lock_guard lock(mu_);
      if (submitted_any_ && index <= last_index_)
        throw py::value_error("submit: index " + std::to_string(index) +
                              " is not greater than the previous one, " +
                              std::to_string(last_index_));
    }
    const cv::Size size(static_cast<int>(frame.shape(1)), static_cast<int>(frame.shape(0)));
    if (size != validated_size_) {
      if (Status s = ValidateRoisForFrame(config_, size); !s.ok())
        throw ConfigException(s.message());
      validated_size_ = size;
    }
    // The pipeline keeps the frame after submit returns and the caller may reuse its array: copy
    // into a compact Mat (any strides accepted), with the GIL held so the array cannot change
    // under the copy.
    FrameInput input;
    input.index = index;
    input.time_s = time_s;
    input.source = source;
    input.bgr.create(size, CV_8UC3);
    const auto* base = static_cast<const std::uint8_t*>(frame.data());
    const py::ssize_t s0 = frame.strides(0), s1 = frame.strides(1), s2 = frame.strides(2);
    if (s1 == 3 && s2 == 1) {
      for (int y = 0; y < size.height; ++y)
        std::memcpy(input.bgr.ptr(y), base + y * s0, static_cast<std::size_t>(size.width) * 3);
    } else {
      for (int y = 0; y < size.height; ++y) {
        std::uint8_t* row = input.bgr.ptr(y);
        for (int x = 0; x < size.width; ++x)
          for (int c = 0; c < 3; ++c) row[x * 3 + c] = base[y * s0 + x * s1 + c * s2];
      }
    }
    Status s;
    {
      py::gil_scoped_release release;  // batch mode waits here for frames in flight
      s = p.Submit(std::move(input));
    }
    if (!s.ok()) Throw(s);
    std::lock_guard lock(mu_);
    submitted_any_ = true;
    last_index_ = index;
  }

  py::list TakeReady() {
    std::vector<FrameOutput> frames = Live().TakeReady();
    return FramesToPython(std::move(frames));
  }

  py::object Take() {
    Pipeline& p = Live();
    std::optional<FrameOutput> frame;
    {
      py::gil_scoped_release release;
      frame = p.Take();
    }
    if (!frame) return py::none();
    return FrameToPython(std::move(*frame));
  }

  py::list Flush() {
    Pipeline& p = Live();
    {
      py::gil_scoped_release release;
      p.Flush();
    }
    return TakeReady();
  }

  void Cancel() {
    if (pipeline_) pipeline_->Cancel();
  }

  py::object Summary() const {
    if (!pipeline_) throw std::runtime_error("summary: the pipeline is closed");
    return ToPython(pipeline_->summary().ToJson());
  }

  int FramesInFlightLimit() const {
    if (!pipeline_) throw std::runtime_error("the pipeline is closed");
    return pipeline_->frames_in_flight_limit();
  }

  std::string BaseUrl() const {
    return embedded_base_url_.empty() ? config_.backend.endpoint : embedded_base_url_;
  }

  /// Drains (every submitted frame is finished; untaken ones are dropped) and stops the pipeline
  /// and the embedded backend. Idempotent.
  void Close() {
    if (!pipeline_) return;
    py::gil_scoped_release release;
    pipeline_->Flush();
    pipeline_.reset();
    embedded_base_url_.clear();  // the backend stopped with the pipeline
  }

 private:
  Pipeline& Live() {
    if (!pipeline_) throw std::runtime_error("the pipeline is closed");
    return *pipeline_;
  }

  StationConfig config_;
  /// For endpoint "local": owns the embedded backend, which it stops after its own calls.
  std::unique_ptr<Pipeline> pipeline_;
  std::string embedded_base_url_;  ///< where the embedded backend listens; "" when none runs
  cv::Size validated_size_{-1, -1};
  std::mutex mu_;
  bool submitted_any_ = false;
  std::int64_t last_index_ = 0;
};

StationConfig ConfigFromPython(const py::object& config) {
  StatusOr<StationConfig> parsed = InvalidArgumentError("config: unset");
  if (py::isinstance<py::dict>(config)) {
    const std::string text = FromPython(config, "").dump();
    py::gil_scoped_release release;
    parsed = ParseStationConfig(text, "<dict>");
  } else if (py::isinstance<py::str>(config) || py::hasattr(config, "__fspath__")) {
    const std::string path = py::module_::import("os").attr("fspath")(config).cast<std::string>();
    py::gil_scoped_release release;
    parsed = LoadStationConfig(path);
  } else {
    throw py::type_error("config: expected a dict or a path (str or os.PathLike), got " +
                         py::str(py::type::handle_of(config).attr("__name__")).cast<std::string>());
  }
  if (!parsed.ok()) {
    if (parsed.status().code() == StatusCode::kNotFound)
      throw py::value_error(parsed.status().message());
    throw ConfigException(parsed.status().message());
  }
  return std::move(*parsed);
}

}  // namespace
}  // namespace roilens

PYBIND11_MODULE(_roilens, m) {
  using roilens::PyOptions;
  using roilens::PyPipeline;
  m.doc() = "roilens bound directly from C++ (see the roilens package for the documentation).";
  py::register_exception<roilens::ConfigException>(m, "ConfigError", PyExc_ValueError);
  py::register_exception<roilens::BackendException>(m, "BackendError", PyExc_RuntimeError);
  py::register_exception<roilens::CancelledException>(m, "CancelledError", PyExc_RuntimeError);

  py::class_<PyPipeline>(m, "Pipeline")
      .def(py::init([](const py::object& config, const std::string& coder, int latency_ms,
                       const std::string& endpoint, std::optional<std::string> api_key) {
             PyOptions options;
             options.coder = coder;
             options.latency_ms = latency_ms;
             options.endpoint = endpoint;
             options.api_key = std::move(api_key);
             return std::make_unique<PyPipeline>(roilens::ConfigFromPython(config), options);
           }),
           py::arg("config"), py::kw_only(), py::arg("coder") = "cv", py::arg("latency_ms") = 0,
           py::arg("endpoint") = "", py::arg("api_key") = py::none())
      .def("submit", &PyPipeline::Submit, py::arg("frame"), py::arg("index"),
           py::arg("time_s") = 0.0, py::arg("source") = "")
      .def("take_ready", &PyPipeline::TakeReady)
      .def("take", &PyPipeline::Take)
      .def("flush", &PyPipeline::Flush)
      .def("cancel", &PyPipeline::Cancel)
      .def("summary", &PyPipeline::Summary)
      .def("close", &PyPipeline::Close)
      .def_property_readonly("base_url", &PyPipeline::BaseUrl)
      .def_property_readonly("frames_in_flight_limit", &PyPipeline::FramesInFlightLimit)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PyPipeline& self, py::args) { self.Close(); });
}
