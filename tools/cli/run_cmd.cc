// `roilens run INPUT --config station.json --out DIR`: frames from INPUT through the station
// pipeline; annotated video or images, results.jsonl, summary.json and report.html in DIR.
// Resumable: a journal in DIR records durable checkpoints; `--resume` continues after the last.
#include "run_cmd.h"

#include <semaphore.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <thread>

#include "commands.h"
#include "metrics_server.h"
#include "progress.h"
#include "remote_input.h"
#include "roilens/backend/local_pipeline.h"
#include "roilens/config/config.h"
#include "roilens/outputs/av_video.h"
#include "roilens/outputs/journal.h"
#include "roilens/outputs/report.h"
#include "roilens/outputs/rotating_sink.h"
#include "roilens/outputs/sinks.h"
#include "roilens/stages/alarm.h"
#include "roilens/stages/pipeline.h"
#include "roilens/stages/preprocess.h"
#include "roilens/stages/reconnecting_source.h"
#include "roilens/stages/source.h"

namespace roilens::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kJournalName = ".roilens-journal";
constexpr const char* kWorkDirName = ".roilens-work";
/// An http(s):// input's scratch copy (remote_input.h): kept until the run finishes, so a rerun
/// or --resume continues or reuses the download; not an output, so "--out is not empty" skips it.
constexpr const char* kDownloadDirName = ".roilens-download";

std::atomic<bool> g_interrupted{false};
/// Posted by the signal handler (sem_post is async-signal-safe): wakes the InterruptWatcher.
sem_t g_interrupt_sem;

/// This process's peak resident set (VmHWM) in MiB, or -1 where /proc does not say. Counted from
/// exec, so a parent's memory never shows up in a child's figure (getrusage's ru_maxrss does).
double PeakRssMib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // "... kB"
  }
  return -1;
}

extern "C" void OnInterrupt(int) {
  g_interrupted = true;
  sem_post(&g_interrupt_sem);
}

/// Installs SIGINT/SIGTERM handlers for the run (stop reading, cancel what is in flight, write
/// the frames already finished) and restores the previous ones on destruction. SA_RESETHAND: a
/// second Ctrl-C kills at once (the journal still lets --resume continue).
class InterruptScope {
 public:
  InterruptScope() {
    g_interrupted = false;
    sem_init(&g_interrupt_sem, 0, 0);
    struct sigaction action {};
    action.sa_handler = OnInterrupt;
    action.sa_flags = SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~InterruptScope() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    sem_destroy(&g_interrupt_sem);
  }

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

/// Runs `on_interrupt` on its own thread when SIGINT/SIGTERM arrives during its lifetime (a signal
/// handler may do almost nothing itself). With thousands of ROIs the reader can be blocked in
/// Pipeline::Submit and the pipeline busy for minutes; this cancels it from outside.
class InterruptWatcher {
 public:
  explicit InterruptWatcher(std::function<void()> on_interrupt)
      : thread_([this, on_interrupt = std::move(on_interrupt)] {
          while (sem_wait(&g_interrupt_sem) != 0 && errno == EINTR) {
          }
          if (!done_.load()) on_interrupt();
        }) {}
  ~InterruptWatcher() {
    done_ = true;
    sem_post(&g_interrupt_sem);
    thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

/// A string field of a results line ("" when null or absent: lines carry nulls).
std::string Str(const nlohmann::json& line, const char* key) {
  auto it = line.find(key);
  return it != line.end() && it->is_string() ? it->get<std::string>() : "";
}

/// True when `dir` exists and holds anything but a download's scratch folder.
bool HasEntries(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().filename() != kDownloadDirName) return true;
  }
  return false;
}

/// --overwrite: removes what a run writes into `out` and nothing else: the files `output` names
/// (and their ".tmp" siblings), the journal, the work folder, and the files in annotated/ (the
/// folder itself once empty). Other files in the directory are left alone.
Status RemovePreviousOutputs(const fs::path& out, const OutputConfig& output) {
  std::error_code ec;
  for (const std::string* name :
       {&output.video, &output.results, &output.summary, &output.report, &output.alarms}) {
    for (const fs::path& path : {out / *name, out / (*name + ".tmp")}) {
      if (fs::is_regular_file(path, ec) && !fs::remove(path, ec) && ec) {
        return InternalError("cannot remove '" + path.string() + "': " + ec.message());
      }
    }
  }
  for (const auto& entry : fs::directory_iterator(out, ec)) {  // output.rotate's rolled files
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() &&
        (IsRotatedName(name, output.results) || IsRotatedName(name, output.video))) {
      fs::remove(entry.path(), ec);
    }
  }
  fs::remove(out / kJournalName, ec);
  fs::remove_all(out / kWorkDirName, ec);  // roilens's own name: only it writes there
  const fs::path images = out / "annotated";
  if (fs::is_directory(images, ec)) {
    for (const auto& entry : fs::directory_iterator(images, ec)) {
      if (entry.is_regular_file()) fs::remove(entry.path(), ec);
    }
    fs::remove(images, ec);  // only when empty
  }
  return OkStatus();
}

RunOutcome Fail(int code, const std::string& message) {
  std::fprintf(stderr, "roilens: %s\n", message.c_str());
  return {code, nullptr, message};
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Status WriteText(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.good()) return InternalError("cannot write '" + path + "'");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return InternalError("cannot write '" + path + "': " + ec.message());
  return OkStatus();
}

/// Picks a few annotated crops for the report: per ROI the first answered frame, the first
/// frame in alarm and the first uncertain reading (so a person can see what the model doubted).
class CropPicker {
 public:
  CropPicker(cv::Size source_size) : source_size_(source_size) {}

  void Offer(const FrameOutput& frame) {
    if (frame.annotated.empty()) return;
    for (const RoiResult& result : frame.results) {
      const nlohmann::json line = ToJson(result);
      const std::string roi = Str(line, "roi");
      const std::string status = Str(line, "status");
      const bool alarm = !Str(line, "alarm").empty();
      auto& have = taken_[roi];
      if (status == "ok" && !(have & kFirst)) {
        Take(frame, line, "");
        have |= kFirst;
      } else if (alarm && !(have & kAlarm)) {
        Take(frame, line, " (alarm " + Str(line, "alarm") + ")");
        have |= kAlarm;
      } else if (status == "uncertain" && !(have & kUncertain)) {
        Take(frame, line, "? (uncertain)");
        have |= kUncertain;
      }
    }
  }
  std::vector<ReportCrop> crops() && { return std::move(crops_); }

 private:
  static constexpr int kFirst = 1, kAlarm = 2, kUncertain = 4;
  static constexpr std::size_t kMaxCrops = 12;

  void Take(const FrameOutput& frame, const nlohmann::json& line, const std::string& note) {
    if (crops_.size() >= kMaxCrops || !line["rect"].is_array() || line["rect"].size() != 4) return;
    // The rect is in original-frame pixels; the annotated frame is the processed image.
    const double sx = static_cast<double>(frame.annotated.cols) / source_size_.width;
    const double sy = static_cast<double>(frame.annotated.rows) / source_size_.height;
    const auto& r = line["rect"];
    // A margin so the label drawn next to the ROI is in the picture.
    constexpr int kMargin = 28;
    cv::Rect rect(static_cast<int>(r[0].get<double>() * sx) - kMargin,
                  static_cast<int>(r[1].get<double>() * sy) - kMargin,
                  static_cast<int>(r[2].get<double>() * sx) + 2 * kMargin,
                  static_cast<int>(r[3].get<double>() * sy) + 2 * kMargin);
    rect &= cv::Rect(0, 0, frame.annotated.cols, frame.annotated.rows);
    if (rect.area() == 0) return;
    std::string reading;
    if (line["value"].is_number()) {
      std::ostringstream v;
      v.precision(4);
      v << line["value"].get<double>();
      reading = v.str() + " " + Str(line, "unit");
    } else if (line["count"].is_number()) {
      reading = std::to_string(line["count"].get<std::int64_t>());
    } else if (line["text"].is_string()) {
      reading = line["text"].get<std::string>().substr(0, 60);
    }
    crops_.push_back(
        {Str(line, "roi") + ", frame " + std::to_string(frame.index) + ": " + reading + note,
         frame.annotated(rect).clone()});
  }

  cv::Size source_size_;
  std::map<std::string, int> taken_;
  std::vector<ReportCrop> crops_;
};

/// Whether backend.budget refused a call of this frame (see Pipeline::budget_spent).
bool HasBudgetLine(const std::vector<RoiResult>& results) {
  return std::any_of(results.begin(), results.end(), [](const RoiResult& r) {
    return r.status == "error" && r.error.find(kBudgetNotCalled) != std::string::npos;
  });
}

/// A checkpointed segment was fsynced before its checkpoint was written, but a crash of the
/// machine, a full disk or a copy of the output folder can still leave it cut off. Walks back
/// from the last checkpoint while its segment is not a complete video or holds another number
/// of frames than the checkpoint says, so that those frames are redone.
void DropUnplayableSegments(const std::string& work_dir,
                            std::vector<JournalCheckpoint>& checkpoints) {
  while (!checkpoints.empty()) {
    const JournalCheckpoint& last = checkpoints.back();
    const JournalCheckpoint before =
        checkpoints.size() >= 2 ? checkpoints[checkpoints.size() - 2] : JournalCheckpoint{};
    if (last.segments <= before.segments) return;  // this checkpoint closed no segment
    const std::string segment = SegmentedVideoWriter::SegmentPath(work_dir, last.segments - 1);
    auto probe = ProbeVideo(segment);
    std::string problem;
    if (!probe.ok()) {
      problem = probe.status().message();
    } else if (last.segments == before.segments + 1 &&
               probe->frames != last.frames_done - before.frames_done) {
      problem = "'" + segment + "' holds " + std::to_string(probe->frames) + " frames, not " +
                std::to_string(last.frames_done - before.frames_done);
    }
    if (problem.empty()) return;
    // A warning, printed with --quiet too: frames are done twice.
    std::fprintf(stderr, "roilens: video segment unusable (%s); redoing frames from %lld\n",
                 problem.c_str(), static_cast<long long>(before.frames_done));
    checkpoints.pop_back();
  }
}

}  // namespace

RunOutcome RunStation(const RunFlags& flags) {
  const auto started = Clock::now();
  InterruptScope interrupt_scope;

  // --- Config and overrides.
  auto loaded = LoadStationConfig(flags.config_path);
  if (!loaded.ok()) return Fail(kExitBadConfig, loaded.status().message());
  StationConfig config = std::move(*loaded);
  if (!flags.model.empty()) config.backend.model = flags.model;
  if (flags.mode == "live") config.pipeline.mode = PipelineMode::kLive;
  if (flags.mode == "batch") config.pipeline.mode = PipelineMode::kBatch;
  if (flags.max_in_flight) config.backend.max_in_flight = *flags.max_in_flight;
  if (flags.every_n_frames) config.pipeline.every_n_frames = *flags.every_n_frames;
  if (flags.change_threshold) {
    for (auto& roi : config.rois) roi.change_threshold = *flags.change_threshold;
  }
  if (flags.budget_left) {
    config.backend.budget.max_calls = flags.budget_left->calls;
    config.backend.budget.max_tokens = flags.budget_left->tokens;
  }

  // --- Input.
  // OpenCV's own decode limit, for image formats whose header roilens does not read (JPEG 2000):
  // read once per process at the first decode, so set here, unless the user set it.
  setenv("OPENCV_IO_MAX_IMAGE_PIXELS", std::to_string(config.pipeline.max_input_pixels).c_str(),
         /*overwrite=*/0);
  SourceOptions source_options;
  source_options.max_input_pixels = config.pipeline.max_input_pixels;
  source_options.decoder = config.pipeline.decoder;
  // An http(s):// input in batch mode is a recording on a server: downloaded first, to a scratch
  // file in --out (see remote_input.h). In live mode the URL stays a stream.
  std::string input_path = flags.input;
  const bool remote = IsRemoteInput(flags.input) && config.pipeline.mode == PipelineMode::kBatch;
  const std::string input_label = IsRemoteInput(flags.input) ? RedactUrl(flags.input) : flags.input;
  if (remote) {
    DownloadOptions download;
    download.max_bytes = flags.max_download_mb * 1024 * 1024;
    download.reuse_complete = flags.resume;
    auto local = DownloadToFile(flags.input, (fs::path(flags.out_dir) / kDownloadDirName).string(),
                                download);
    if (!local.ok()) return Fail(kExitBadInput, local.status().message());
    input_path = std::move(*local);
  }
  auto opened = FrameSource::Open(input_path, source_options);
  if (!opened.ok()) return Fail(kExitBadInput, opened.status().message());
  std::unique_ptr<FrameSource> source = std::move(*opened);
  // Live mode on a stream or camera: a dropped camera is reconnected, forever (until a signal or
  // --max-frames), and each outage becomes result lines with status "gap" in results.jsonl.
  ReconnectingSource* live_source = nullptr;
  if (config.pipeline.mode == PipelineMode::kLive &&
      (source->info().kind == SourceKind::kStream || source->info().kind == SourceKind::kCamera)) {
    ReconnectOptions reconnect;  // pipeline.reconnect, validated by the config parser
    reconnect.initial_backoff = std::chrono::milliseconds(
        std::max<std::int64_t>(1, std::llround(config.pipeline.reconnect.initial_delay_s * 1000)));
    reconnect.max_backoff = std::chrono::milliseconds(
        std::max<std::int64_t>(reconnect.initial_backoff.count(),
                               std::llround(config.pipeline.reconnect.max_delay_s * 1000)));
    auto live = ReconnectingSource::Create(
        [input = flags.input, source_options] { return FrameSource::Open(input, source_options); },
        std::move(reconnect), std::move(source));
    if (!live.ok()) return Fail(kExitBadInput, live.status().message());
    live_source = live->get();
    source = std::move(*live);
  }
  const SourceInfo info = source->info();
  const bool rotating = config.output.rotate.max_bytes > 0 || config.output.rotate.max_seconds > 0;
  if (rotating && flags.resume) {
    return Fail(kExitUsage, "output.rotate: a run with rotating outputs cannot be resumed");
  }
  if (Status s = ValidateRoisForFrame(config, info.frame_size); !s.ok()) {
    return Fail(kExitBadConfig, flags.config_path + ": " + s.message());
  }
  cv::Size video_size = info.frame_size;
  if (auto probe = Preprocess(cv::Mat(info.frame_size, CV_8UC3, cv::Scalar::all(0)),
                              config.pipeline.preprocess);
      probe.ok()) {
    video_size = probe->image.size();
  }

  // --- Output directory, journal and resume point.
  // A directory with anything in it is only written into when the user says how: --resume
  // continues the run there, --overwrite replaces roilens's outputs (never other files).
  const bool out_has_entries = HasEntries(flags.out_dir);
  if (out_has_entries && !flags.resume && !flags.overwrite) {
    return Fail(kExitUsage, "output directory '" + flags.out_dir +
                                "' is not empty; pass --resume to continue the run in it or "
                                "--overwrite to replace its roilens outputs");
  }
  if (flags.overwrite) {
    if (Status s = RemovePreviousOutputs(flags.out_dir, config.output); !s.ok()) {
      return Fail(kExitBadInput, s.message());
    }
  }
  std::error_code ec;
  fs::create_directories(flags.out_dir, ec);
  if (ec) return Fail(kExitBadInput, "cannot create output directory '" + flags.out_dir + "'");
  const fs::path out(flags.out_dir);
  // output.audit: a relative directory lives in --out, like the other outputs. It is kept across
  // --overwrite and --resume (a trail outlives runs; its size bound keeps it in check).
  if (!config.output.audit.dir.empty() && fs::path(config.output.audit.dir).is_relative()) {
    config.output.audit.dir = (out / config.output.audit.dir).string();
  }
  const std::string journal_path = (out / kJournalName).string();
  const std::string work_dir = (out / kWorkDirName).string();
  const std::string results_path = (out / config.output.results).string();
  const std::string video_path = (out / config.output.video).string();
  const std::string images_dir = (out / "annotated").string();

  JournalHeader header;
  header.input = input_label;  // a signed URL's query is a secret: not in the output folder
  header.config_digest =
      Fnv1aHex(ReadText(flags.config_path) + "|" + config.backend.model + "|" +
               std::to_string(static_cast<int>(config.pipeline.mode)) + "|" +
               std::to_string(config.pipeline.every_n_frames) + "|" +
               (flags.change_threshold ? std::to_string(*flags.change_threshold) : ""));
  header.segment_frames =
      flags.segment_frames > 0
          ? flags.segment_frames
          : (info.video() ? std::clamp(static_cast<int>(info.fps * 10 + 0.5), 10, 600) : 10);

  JournalCheckpoint resume_from;
  bool resuming = false;
  if (flags.resume) {
    auto state = Journal::Load(journal_path);
    if (!state.ok() && state.status().code() != StatusCode::kNotFound) {
      return Fail(kExitBadInput, state.status().message());
    }
    if (state.ok()) {
      if (state->header.input != header.input ||
          state->header.config_digest != header.config_digest) {
        return Fail(kExitUsage, "the journal in '" + flags.out_dir +
                                    "' belongs to another input or config; pass --overwrite "
                                    "instead of --resume to replace that run");
      }
      if (state->finished) {
        std::printf("roilens: the run in %s already finished; nothing to resume\n",
                    flags.out_dir.c_str());
        return {
            kExitOk,
            nlohmann::json::parse(ReadText((out / config.output.summary).string()), nullptr, false),
            ""};
      }
      header.segment_frames = state->header.segment_frames;
      if (info.video()) DropUnplayableSegments(work_dir, state->checkpoints);
      if (!state->checkpoints.empty()) {
        resume_from = state->checkpoints.back();
        resuming = true;
      }
    }
    if (!state.ok() && out_has_entries) {
      return Fail(kExitUsage, "output directory '" + flags.out_dir +
                                  "' holds no run to resume (no " + kJournalName +
                                  ") and is not empty; pass --overwrite to replace its roilens "
                                  "outputs");
    }
    if (!resuming && !flags.quiet) {
      std::printf("roilens: nothing to resume in %s; starting from the first frame\n",
                  flags.out_dir.c_str());
    }
  }
  if (resuming) {
    if (Status s = ReadingMonitor(config).Restore(resume_from.monitor_state); !s.ok()) {
      return Fail(kExitBadInput, "the journal in '" + flags.out_dir + "': " + s.message());
    }
    // Segments past the checkpoint belong to the interrupted chunk: they are redone.
    for (int i = resume_from.segments;; ++i) {
      const std::string segment = SegmentedVideoWriter::SegmentPath(work_dir, i);
      if (!fs::exists(segment)) break;
      fs::remove(segment, ec);
    }
    if (Status s = source->Skip(resume_from.frames_done); !s.ok()) {
      return Fail(kExitBadInput, s.message());
    }
  } else {
    fs::remove_all(work_dir, ec);
  }
  fs::create_directories(work_dir, ec);
  if (!info.video()) fs::create_directories(images_dir, ec);

  auto results = RotatingResultsWriter::Open(results_path, config.output.rotate, {},
                                             resuming ? resume_from.results_bytes : 0);
  if (!results.ok()) return Fail(kExitBadInput, results.status().message());
  // Alarm events (raise/clear) as their own records. A resumed run keeps those of the frames it
  // does not redo: the checkpoint's size (a journal from before alarms_bytes: all of the file).
  const std::string alarms_path = (out / config.output.alarms).string();
  std::error_code alarms_ec;
  std::uint64_t alarms_kept = 0;
  if (resuming && resume_from.alarms_bytes) {
    alarms_kept = *resume_from.alarms_bytes;
  } else if (resuming) {
    alarms_kept = fs::file_size(alarms_path, alarms_ec);
    if (alarms_ec) alarms_kept = 0;
  }
  auto alarms = ResultsWriter::Open(alarms_path, alarms_kept);
  if (!alarms.ok()) return Fail(kExitBadInput, alarms.status().message());
  auto journal = resuming ? Journal::Append(journal_path) : Journal::Create(journal_path, header);
  if (!journal.ok()) return Fail(kExitBadInput, journal.status().message());

  // --- Backend.
  PipelineOptions pipeline_options;
  std::unique_ptr<backend::LocalBackend> embedded;
  std::string endpoint_label;
  if (!flags.endpoint.empty() || config.backend.endpoint != "local") {
    pipeline_options.base_url = flags.endpoint.empty() ? config.backend.endpoint : flags.endpoint;
    endpoint_label = pipeline_options.base_url;
    if ((flags.coder != "cv" || flags.latency_ms != 0) && !flags.quiet) {
      std::fprintf(stderr,
                   "roilens: --coder and --latency-ms apply to the embedded backend only; "
                   "ignored\n");
    }
  } else {
    backend::BackendOptions backend_options;
    backend_options.coder = flags.coder;
    pipeline_options.coder = flags.coder;
    backend_options.latency = std::chrono::milliseconds(flags.latency_ms);
    auto started_backend = backend::StartEmbeddedBackend(backend_options);
    if (!started_backend.ok()) return Fail(kExitBackend, started_backend.status().message());
    embedded = std::move(*started_backend);
    endpoint_label = embedded->base_url() + " (embedded, coder " + flags.coder + ")";
    if (flags.announce_backend) {
      std::printf(
          "roilens: no endpoint configured — using the embedded local backend at %s "
          "(coder %s)\n",
          embedded->base_url().c_str(), flags.coder.c_str());
      std::fflush(stdout);
    }
  }

  // Fusion windows and alarm states go on from the checkpoint (null: a fresh start), and each
  // frame brings the state after it for the next checkpoint.
  pipeline_options.monitor_state = resuming ? resume_from.monitor_state : nlohmann::json();
  pipeline_options.snapshot_monitor = true;
  // The embedded backend goes to the pipeline, which stops it after its own calls have drained.
  auto created =
      embedded ? backend::CreateEmbeddedPipeline(config, pipeline_options, std::move(embedded))
               : Pipeline::Create(config, pipeline_options);
  if (!created.ok()) return Fail(kExitBackend, created.status().message());
  std::unique_ptr<Pipeline> pipeline = std::move(*created);
  Pipeline* const cancellable = pipeline.get();

  // --- Writer thread: takes finished frames in order and writes every sink; checkpoints.
  SegmentedVideoWriter::Options video_options;
  video_options.dir = work_dir;
  video_options.fps = info.fps;
  video_options.size = video_size;
  video_options.first_segment = resuming ? resume_from.segments : 0;
  video_options.output = config.output;
  std::optional<SegmentedVideoWriter> video;
  if (info.video()) video.emplace(video_options);
  std::optional<VideoRotator> video_rotator;
  if (video && rotating) video_rotator.emplace(video_path, info.fps, config.output.rotate);

  // Metrics (always counted; served with --metrics-port) and the source's outages, which the
  // reader learns of and the writer puts in results.jsonl before the frame that followed them.
  StationMetrics metrics;
  metrics.SetInFlightProbe([&pipeline] { return pipeline->requests_in_flight(); });
  if (live_source) metrics.SetStreamUpProbe([live_source] { return live_source->connected(); });
  std::unique_ptr<MetricsServer> metrics_server;
  if (flags.metrics_port) {
    auto server = MetricsServer::Start(&metrics, *flags.metrics_port);
    if (!server.ok()) return Fail(kExitUsage, server.status().message());
    metrics_server = std::move(*server);
    std::printf("roilens: metrics at http://127.0.0.1:%d/metrics (health: /healthz)\n",
                metrics_server->port());
    std::fflush(stdout);
  }
  std::mutex gaps_mu;
  std::map<std::int64_t, SourceGap> gaps_before;  // by the index of the frame after the gap
  std::int64_t outages = 0, missing_frames = 0;

  const std::int64_t first_frame = resuming ? resume_from.frames_done : 0;
  std::atomic<std::int64_t> written{0};
  std::mutex written_mu;
  std::condition_variable written_cv;
  Status write_error;
  std::int64_t calls = 0, failed_calls = 0;
  std::string first_call_error;
  CropPicker crops(info.frame_size);
  Progress progress(stdout, !flags.quiet && Progress::StdoutIsTerminal());
  ProgressSnapshot snapshot;
  snapshot.frames_total =
      info.total_frames > 0 && flags.max_frames > 0
          ? std::min(info.total_frames, first_frame + flags.max_frames)
          : (flags.max_frames > 0 ? first_frame + flags.max_frames : info.total_frames);
  bool announced_codec = false;
  // Ctrl-C: cancel the calls in flight and drop unfinished frames; the frames already finished
  // are written and checkpointed below, so --resume redoes exactly the dropped ones.
  InterruptWatcher interrupt_watcher([&] {
    if (live_source) live_source->Stop();  // a reader waiting to reconnect returns
    cancellable->Cancel();
    std::lock_guard lock(written_mu);
    written_cv.notify_all();
  });

  // ReadingMonitor state after the last frame written: what a checkpoint at that frame records.
  nlohmann::json monitor_state = resuming ? resume_from.monitor_state : nlohmann::json();
  auto checkpoint = [&](std::int64_t frames_done) -> Status {
    if (Status s = (*results)->Sync(); !s.ok()) return s;
    if (Status s = (*alarms)->Sync(); !s.ok()) return s;
    int segments = 0;
    if (video) {
      if (Status s = video->CloseSegment(); !s.ok()) return s;
      if (video_rotator) {
        if (auto rolled = video_rotator->MaybeRoll(video->Segments()); !rolled.ok()) {
          return rolled.status();
        }
      }
      segments = static_cast<int>(video->Segments().size());
    }
    return (*journal)->Record(
        {frames_done, (*results)->bytes(), segments, (*alarms)->bytes(), monitor_state});
  };

  // Frames from the first one with a call the budget refused: written (each frame x ROI has its
  // line) but never checkpointed, so --resume redoes them with calls.
  bool budget_hold = false;
  std::int64_t budget_resume_frame = 0;
  std::vector<RoiResult> last_results;  // the last frame's lines (live sources only)
  auto write_outputs = [&] {
    std::int64_t frames_done = first_frame;
    std::int64_t since_checkpoint = 0;
    while (auto frame = pipeline->Take()) {
      std::optional<SourceGap> gap;
      {
        std::lock_guard lock(gaps_mu);
        if (auto it = gaps_before.find(frame->index); it != gaps_before.end()) {
          gap = std::move(it->second);
          gaps_before.erase(it);
        }
      }
      if (gap) {
        ++outages;
        missing_frames += gap->missing_frames;
        metrics.ObserveGap(gap->missing_frames);
        // Lines of the ordinary shape, one per ROI of the frame that follows the outage.
        if (write_error.ok()) write_error = (*results)->WriteFrame(gap->ToResults(frame->results));
      }
      metrics.ObserveFrame(*frame);
      if (!budget_hold && HasBudgetLine(frame->results)) {
        budget_hold = true;
        budget_resume_frame = frames_done;
        if (write_error.ok() && since_checkpoint > 0) write_error = checkpoint(frames_done);
        since_checkpoint = 0;
      }
      if (write_error.ok()) {
        Status s = (*results)->WriteFrame(frame->results);
        // Held frames' events too: a --resume that redoes them cuts alarms.jsonl back to the
        // checkpoint first.
        if (s.ok() && !frame->alarms.empty()) s = (*alarms)->WriteFrame(frame->alarms);
        if (s.ok() && video) {
          s = video->Write(frame->annotated);
          if (s.ok() && !announced_codec && !video->encoder().empty()) {
            announced_codec = true;
            const std::string& encoder = video->encoder();
            if (encoder.find("264") == std::string::npos && encoder != "opencv avc1") {
              std::fprintf(stderr,
                           "roilens: no H.264 encoder is available; the annotated video uses "
                           "%s\n",
                           encoder.c_str());
            }
          }
        } else if (s.ok() && !frame->annotated.empty()) {
          const std::string path = (fs::path(images_dir) / frame->source).string();
          if (!cv::imwrite(path, frame->annotated)) {
            s = InternalError("cannot write annotated image '" + path + "'");
          }
        }
        ++frames_done;
        monitor_state = std::move(frame->monitor_state);
        if (s.ok() && !budget_hold && ++since_checkpoint >= header.segment_frames) {
          s = checkpoint(frames_done);
          since_checkpoint = 0;
        }
        if (!s.ok()) write_error = s;
      }
      for (const RoiResult& result : frame->results) {
        const nlohmann::json line = ToJson(result);
        const double latency = line.value("latency_ms", 0.0);
        if (latency <= 0) continue;
        ++calls;
        if (Str(line, "status") == "error") {
          ++failed_calls;
          if (first_call_error.empty()) first_call_error = Str(line, "error");
        }
      }
      crops.Offer(*frame);
      if (live_source) last_results = std::move(frame->results);  // for an outage at the end
      written.fetch_add(1);
      written_cv.notify_all();
      const PipelineSummary now = pipeline->summary();
      snapshot.frames_done = frames_done;
      snapshot.in_flight = pipeline->requests_in_flight();
      snapshot.calls = now.calls;
      snapshot.cache_hits = now.cache_hits;
      snapshot.errors = now.errors;
      progress.Update(snapshot);
    }
    if (write_error.ok() && since_checkpoint > 0) write_error = checkpoint(frames_done);
    if (write_error.ok() && budget_hold) {  // durable and joinable, but not in the journal
      write_error = (*results)->Sync();
      if (write_error.ok()) write_error = (*alarms)->Sync();
      if (write_error.ok() && video) write_error = video->CloseSegment();
    }
    snapshot.frames_done = frames_done;
  };
  std::thread writer([&] {
    try {
      write_outputs();
    } catch (const std::exception& e) {
      // Keep draining so the pipeline can finish; the run then fails with this message.
      write_error = InternalError(std::string("writing outputs: ") + e.what());
      while (pipeline->Take()) {
        written.fetch_add(1);
        written_cv.notify_all();
      }
    }
  });

  // --- Reader: this thread decodes and submits. Frames taken by the pipeline but not yet
  // written are capped too, so a slow disk or encoder cannot make the output queue grow: the
  // pipeline's own frames plus a short backlog for the writer. The backlog only has to cover the
  // writer's pauses (a segment checkpoint: encoder flush and three fsyncs); the encoder is the
  // slowest stage, so a deeper queue would not raise throughput, only memory (each frame held is a
  // full annotated image: 6 MB at 1080p). 32 frames in all measured 14 MiB more peak RSS than 12
  // at 640x360 (bench rss), with the same wall time.
  constexpr std::int64_t kWriteBacklog = 4;
  const std::int64_t max_unwritten = pipeline->frames_in_flight_limit() + kWriteBacklog;
  std::int64_t submitted = 0;
  bool writer_failed = false;
  while (!g_interrupted.load() && (flags.max_frames <= 0 || submitted < flags.max_frames)) {
    {
      std::unique_lock lock(written_mu);
      written_cv.wait_for(lock, std::chrono::milliseconds(200),
                          [&] { return submitted - written.load() < max_unwritten; });
      if (submitted - written.load() >= max_unwritten) continue;
    }
    // backend.budget is spent: read no more; the frames already submitted are finished.
    if (!pipeline->budget_spent().empty()) break;
    auto frame = source->Next();
    if (!frame) break;
    if (live_source) {
      if (auto gap = live_source->TakeGap()) {
        std::lock_guard lock(gaps_mu);
        gaps_before[frame->index] = std::move(*gap);
      }
    }
    if (Status s = pipeline->Submit(std::move(*frame)); !s.ok()) {
      writer_failed = !g_interrupted.load();  // kCancelled after an interrupt is the stop
      break;
    }
    ++submitted;
  }
  if (g_interrupted.load()) pipeline->Cancel();  // also when the watcher has not run yet
  pipeline->Flush();
  writer.join();
  if (auto open_gap = live_source ? live_source->TakeOpenGap() : std::nullopt; open_gap) {
    // Stopped during an outage: it ends the results.
    ++outages;
    missing_frames += open_gap->missing_frames;
    if (last_results.empty()) {  // no frame came at all: the configured ROIs
      for (const RoiConfig& roi : config.rois) {
        RoiResult line;
        line.roi = roi.name;
        line.task = TaskName(roi.task);
        line.rect = roi.rect.value_or(cv::Rect());
        last_results.push_back(std::move(line));
      }
    }
    if (write_error.ok()) write_error = (*results)->WriteFrame(open_gap->ToResults(last_results));
    if (write_error.ok()) write_error = (*results)->Sync();
  }
  progress.Finish(snapshot);
  if (writer_failed || !write_error.ok()) {
    return Fail(kExitFailure, "writing outputs failed: " + write_error.message());
  }

  // --- Final outputs.
  // A run that stopped early (interrupt, --max-frames) keeps its segments for --resume.
  // Stopped by backend.budget: the frames from budget_resume_frame are for --resume (a live run
  // may show the refusal on no frame: it resumes after the last one written).
  const std::string budget_spent = pipeline->budget_spent();
  if (!budget_spent.empty() && !budget_hold) budget_resume_frame = snapshot.frames_done;
  const bool finished = !g_interrupted.load() && budget_spent.empty() &&
                        (flags.max_frames <= 0 || submitted < flags.max_frames);
  std::string video_method;
  // Rotation removes the segments it rolled: join only those left (maybe none).
  const std::vector<std::string> segments_left =
      video_rotator ? ExistingFiles(video->Segments()) : std::vector<std::string>{};
  if (video && (finished || !video->Segments().empty()) &&
      !(video_rotator && segments_left.empty())) {
    // An interrupted run may have finished no frame yet: then there is no video to join.
    auto segments = video_rotator ? segments_left : video->Segments();
    if (Status s = ConcatSegments(segments, video_path, info.fps, &video_method); !s.ok()) {
      return Fail(kExitFailure, s.message());
    }
  }
  // Every file the run wrote: output.rotate's rolled ones (oldest first), then the active one.
  std::vector<std::string> results_files =
      rotating ? (*results)->rotated() : std::vector<std::string>{};
  results_files.push_back(results_path);
  auto totals = SummarizeResultsFiles(results_files);
  if (!totals.ok()) return Fail(kExitFailure, totals.status().message());
  const double wall_s = std::chrono::duration<double>(Clock::now() - started).count();
  // A rejected or missing API key stops the run's calls: say why at the top of the outputs.
  const std::string fatal_error = pipeline->summary().fatal_error;
  totals->fatal_error = fatal_error;  // the results file cannot tell; ToJson writes it (or null)
  nlohmann::json summary = totals->ToJson();
  summary["frames_this_run"] = snapshot.frames_done - first_frame;  // written, not dropped
  summary["wall_time_s"] = wall_s;
  summary["fps"] = wall_s > 0 ? static_cast<double>(submitted) / wall_s : 0;
  summary["peak_rss_mib"] = PeakRssMib();
  summary["roilens_version"] = ROILENS_VERSION;
  summary["input"] = input_label;
  summary["mode"] = config.pipeline.mode == PipelineMode::kLive ? "live" : "batch";
  summary["endpoint"] = endpoint_label;
  summary["model"] = config.backend.model;
  summary["resumed_from_frame"] = resuming ? nlohmann::json(first_frame) : nlohmann::json(nullptr);
  summary["interrupted"] = g_interrupted.load();
  if (!budget_spent.empty()) {
    summary["stopped"] = {{"reason", "budget"},
                          {"detail", "backend.budget " + budget_spent},
                          {"resume_from_frame", budget_resume_frame}};
  } else if (g_interrupted.load()) {
    summary["stopped"] = {{"reason", "interrupted"}};
  } else {
    summary["stopped"] = nullptr;
  }
  // Calls and tokens behind the result lines kept (a resumed run's too); the cost at
  // backend.prices[model] (null without an entry).
  const auto cost = EstimateCost(config.backend, config.backend.model, totals->input_tokens,
                                 totals->output_tokens);
  summary["usage"] = {{"calls", totals->calls},
                      {"input_tokens", totals->input_tokens},
                      {"output_tokens", totals->output_tokens},
                      {"total_tokens", totals->total_tokens},
                      {"estimated_cost", cost ? nlohmann::json(*cost) : nlohmann::json(nullptr)}};
  // What this invocation spent (what backend.budget counts; a batch carries it to its next file).
  const PipelineSummary this_run = pipeline->summary();
  summary["usage"]["this_run"] = {{"calls", this_run.calls},
                                  {"total_tokens", this_run.total_tokens}};
  // For `roilens export --coco`: the pixel space of rect/boxes and what each count ROI counts.
  summary["frame_size"] = {info.frame_size.width, info.frame_size.height};
  summary["count_objects"] = nlohmann::json::object();
  for (const RoiConfig& roi : config.rois) {
    if (roi.task == TaskKind::kCount) summary["count_objects"][roi.name] = roi.object;
  }
  if (live_source) {
    summary["source_outages"] = outages;
    summary["missing_frames"] = missing_frames;
  }
  if (rotating) {
    summary["rotated_results"] = (*results)->rotated();
    // What the totals above (and the report) cover: every file, in order.
    summary["results_files"] = nlohmann::json::array();
    for (const std::string& file : results_files) {
      summary["results_files"].push_back(fs::path(file).filename().string());
    }
    summary["rotated_videos"] =
        video_rotator ? video_rotator->rotated() : std::vector<std::string>{};
  }
  if (video) {
    summary["video"] = config.output.video;
    summary["video_codec"] = video->encoder();
    summary["video_decoder"] = info.decoder;
    summary["video_join"] = video_method;
  } else {
    summary["annotated_images"] = "annotated/";
  }
  if (Status s = WriteText((out / config.output.summary).string(), summary.dump(2) + "\n");
      !s.ok()) {
    return Fail(kExitFailure, s.message());
  }
  ReportInputs report;
  report.config = &config;
  report.title = fs::path(input_label).filename().string();
  report.results_path = results_path;
  if (rotating) report.earlier_results_paths = (*results)->rotated();
  report.summary = summary;
  report.crops = std::move(crops).crops();
  auto html = RenderHtmlReport(report);
  if (!html.ok()) return Fail(kExitFailure, html.status().message());
  if (Status s = WriteText((out / config.output.report).string(), *html); !s.ok()) {
    return Fail(kExitFailure, s.message());
  }
  if (finished) {
    (void)(*journal)->RecordFinished();
    fs::remove_all(work_dir, ec);
    if (remote) fs::remove_all(out / kDownloadDirName, ec);
  }

  if (!flags.quiet) {
    std::printf(
        "roilens: %lld frames (%lld result lines: %lld calls, %lld cached, %lld uncertain, "
        "%lld errors, %lld skipped) in %.1f s\n",
        static_cast<long long>(totals->frames), static_cast<long long>(totals->roi_results),
        static_cast<long long>(totals->calls), static_cast<long long>(totals->cache_hits),
        static_cast<long long>(totals->uncertain), static_cast<long long>(totals->errors),
        static_cast<long long>(totals->skipped), wall_s);
    if (video) {
      std::printf("  annotated video: %s\n", video_path.c_str());
    } else {
      std::printf("  annotated images: %s/\n", images_dir.c_str());
    }
    std::printf("  results: %s\n  summary: %s\n  report: %s\n", results_path.c_str(),
                (out / config.output.summary).string().c_str(),
                (out / config.output.report).string().c_str());
  }

  int code = kExitOk;
  std::string error;
  if (g_interrupted.load()) {
    code = kExitInterrupted;
  } else if (!budget_spent.empty()) {
    std::fprintf(stderr,
                 "roilens: backend.budget %s: no further calls made; run again with --resume "
                 "to continue from frame %lld (the budget applies per invocation)\n",
                 budget_spent.c_str(), static_cast<long long>(budget_resume_frame));
    if (budget_resume_frame == first_frame) {  // a resume would stop at the same frame again
      std::fprintf(stderr,
                   "roilens: no frame was finished within the budget: it must cover the calls of "
                   "one frame (one per ROI); raise backend.budget\n");
    }
    code = kExitBudget;
  } else if (!fatal_error.empty()) {
    std::fprintf(stderr, "roilens: %s\n", fatal_error.c_str());
    code = kExitBackend;
    error = fatal_error;
  } else if (calls > 0 && failed_calls == calls) {
    error = "every model call failed; first error: " + first_call_error;
    std::fprintf(stderr, "roilens: %s\n", error.c_str());
    code = kExitBackend;
  } else if (totals->errors > 0) {
    code = kExitFailure;
  }
  return {code, summary, error};
}

namespace {

const CommandRegistration kRunCommand("run", [](CLI::App& root, int& exit_code) {
  auto flags = std::make_shared<RunFlags>();
  auto* cmd = root.add_subcommand(
      "run",
      "Run INPUT (video, image, folder of images, camera index or stream URL) through a "
      "station config; outputs go to --out");
  cmd->add_option("input", flags->input,
                  "video file, image, folder, camera index or URL; a folder of videos or a quoted "
                  "glob runs each file (a batch)");
  cmd->add_option("--inputs", flags->inputs_list,
                  "batch: a list file of inputs, one a line (# comments; relative to the list)");
  cmd->add_option("--shard", flags->shard,
                  "batch: run only shard K of N (K/N, 0-based; default from JOB_COMPLETION_INDEX "
                  "and JOB_COMPLETIONS)");
  cmd->add_option("-c,--config", flags->config_path, "station config (JSON)")->required();
  cmd->add_option("-o,--out", flags->out_dir, "output directory")->required();
  cmd->add_option("--endpoint", flags->endpoint,
                  "Interactions API base URL (overrides backend.endpoint)");
  cmd->add_option("--model", flags->model, "model name (overrides backend.model)");
  cmd->add_option("--mode", flags->mode, "batch (frames wait for answers) or live")
      ->check(CLI::IsMember({"batch", "live"}));
  cmd->add_option("--max-in-flight", flags->max_in_flight, "concurrent model requests")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--every-n-frames", flags->every_n_frames, "call the model every Nth frame")
      ->check(CLI::Range(1, 1000000));
  auto* resume = cmd->add_flag("--resume", flags->resume, "continue an interrupted run in --out");
  cmd->add_flag("--overwrite", flags->overwrite,
                "replace the roilens outputs of a previous run in --out (other files stay)")
      ->excludes(resume);
  cmd->add_flag("-q,--quiet", flags->quiet, "no progress line and no final report lines");
  cmd->add_option("--coder", flags->coder, "embedded backend coder: cv or echo")
      ->check(CLI::IsMember({"cv", "echo"}));
  cmd->add_option("--latency-ms", flags->latency_ms, "embedded backend: added latency per turn")
      ->check(CLI::Range(0, 600000));
  cmd->add_option("--max-frames", flags->max_frames,
                  "stop after this many frames (0: the whole input)")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            // CLI11 has converted nothing yet: a leading '-' is the only negative form accepted
            // by the integer conversion that follows.
            if (!value.empty() && value[0] == '-') {
              return "--max-frames must be 0 (the whole input) or a positive frame count, not " +
                     value;
            }
            return "";
          },
          "N>=0", "non-negative"));
  cmd->add_option("--change-threshold", flags->change_threshold,
                  "override every ROI's change_threshold (0 disables the change gate)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--metrics-port", flags->metrics_port,
                  "serve Prometheus text at /metrics and /healthz on 127.0.0.1:PORT (0: any free "
                  "port, printed)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--max-download-mb", flags->max_download_mb,
                  "http(s):// input: largest file downloaded, in MiB (default 4096)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30));
  cmd->add_option("--segment-frames", flags->segment_frames,
                  "frames per resume checkpoint (default: about 10 s of video)")
      ->check(CLI::Range(1, 100000));
  cmd->callback([flags, &exit_code] {
    try {
      if (flags->input.empty() && flags->inputs_list.empty()) {
        std::fprintf(stderr, "roilens: give INPUT or --inputs LIST\n");
        exit_code = kExitUsage;
      } else if (IsBatchRun(*flags)) {
        exit_code = RunBatch(*flags);
      } else {
        exit_code = RunStation(*flags).exit_code;
      }

    } catch (const std::exception& e) {
      std::fprintf(stderr, "roilens: internal error: %s\n", e.what());
      exit_code = kExitFailure;
    }
  });
});

}  // namespace
}  // namespace roilens::cli
