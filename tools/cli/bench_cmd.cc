// `roilens bench`: the pipeline's figures, each next to a baseline measured in the same run and
// the ratio between them (DESIGN.md "Measured, not assumed").
//   throughput  embedded backend at 1000 ms latency, echo coder, 200 ROI calls through
//               `roilens run` vs sequential loops (official JS SDK; our own client)
//   fps         1080p, 300 frames (--fps-frames), 4 ROIs, echo coder, no latency vs an OpenCV
//               decode+encode loop and vs a loop of the run's frame source + the libav writer;
//               peak RSS with the libav vs the OpenCV writer
//   gate        the sample station: calls / (frames x ROIs) with the change gate, and reading
//               error vs ground truth with and without it (cv coder)
//   rss         peak RSS (VmHWM) of 300-frame and 3000-frame runs (child processes, medians of 3)
//   live-rss    the RSS curve of a long live run in-process (100,000 frames, echo coder): flat?
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <sstream>

#include "commands.h"
#include "live_soak.h"
#include "roilens/backend/local_pipeline.h"
#include "roilens/client/interactions_client.h"
#include "roilens/config/config.h"
#include "roilens/outputs/av_video.h"
#include "roilens/outputs/sinks.h"
#include "roilens/samples.h"
#include "roilens/stages/prompt.h"
#include "roilens/stages/source.h"
#include "run_cmd.h"
#include "synthetic_station.h"

extern char** environ;

namespace roilens::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct BenchFlags {
  std::string which = "all";
  std::string dir;       ///< working directory for generated inputs and outputs
  int gate_frames = 60;  ///< frames of the ungated (every frame calls cv) comparison
  int throughput_calls = 200;
  int sequential_calls = 8;              ///< calls in each sequential baseline (1 s each)
  std::optional<double> gate_threshold;  ///< gate: override the sample config's change_threshold
  std::int64_t live_frames = 100000;     ///< live-rss: frames of the soak
  int fps_frames = 300;                  ///< fps: frames of the 1080p input
};

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

/// CPU seconds (user + system, all threads) this process has used so far. On a shared machine
/// the CPU a loop costs varies much less from run to run than its wall time.
double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

/// A synthetic gauge panel: `rois` dials on a grid whose needles turn every frame, plus noise,
/// so every crop differs from the last.
Status WriteSyntheticVideo(const std::string& path, cv::Size size, int frames, int rois,
                           std::vector<cv::Rect>* rects) {
  std::string fourcc;
  auto writer = OpenMp4Writer(path, 30, size, &fourcc);
  if (!writer.ok()) return writer.status();
  const int cols = 2, rows = (rois + 1) / 2;
  const int side = std::min(size.width / (cols * 2), size.height / (rows + 1));
  rects->clear();
  for (int i = 0; i < rois; ++i) {
    const int cx = size.width * (2 * (i % cols) + 1) / (2 * cols);
    const int cy = size.height * (2 * (i / cols) + 1) / (2 * rows);
    rects->push_back(cv::Rect(cx - side / 2, cy - side / 2, side, side));
  }
  cv::RNG rng(42);
  cv::Mat noise(size, CV_8UC3);
  for (int f = 0; f < frames; ++f) {
    cv::Mat frame(size, CV_8UC3, cv::Scalar(70, 70, 70));
    rng.fill(noise, cv::RNG::UNIFORM, 0, 12);
    frame += noise;
    for (std::size_t i = 0; i < rects->size(); ++i) {
      const cv::Rect& r = (*rects)[i];
      const cv::Point c(r.x + r.width / 2, r.y + r.height / 2);
      cv::circle(frame, c, r.width * 2 / 5, cv::Scalar(235, 235, 235), cv::FILLED);
      const double angle = (225 - 270.0 * ((f * (i + 3)) % 100) / 100.0) * CV_PI / 180;
      const cv::Point tip(c.x + static_cast<int>(r.width * 0.35 * std::cos(angle)),
                          c.y - static_cast<int>(r.width * 0.35 * std::sin(angle)));
      cv::line(frame, c, tip, cv::Scalar(0, 0, 200), std::max(2, r.width / 60), cv::LINE_AA);
    }
    (*writer)->write(frame);
  }
  (*writer)->release();
  return OkStatus();
}

/// The bench's runs: batch mode, annotated video with labels.
std::string BenchConfig(const std::vector<cv::Rect>& dials, int max_in_flight) {
  return SyntheticGaugeConfig({.dials = dials,
                               .max_in_flight = max_in_flight,
                               .mode = "batch",
                               .merge_labels = true})
      .dump(2);
}

Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  return out.good() ? OkStatus() : InternalError("cannot write '" + path + "'");
}

/// Looks for bench/sdk_sequential.mjs above the working directory and the executable.
std::string FindSdkScript() {
  std::vector<fs::path> starts = {fs::current_path()};
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) starts.push_back(exe.parent_path());
  for (fs::path p : starts) {
    for (int up = 0; up < 6 && !p.empty(); ++up, p = p.parent_path()) {
      const fs::path script = p / "bench" / "sdk_sequential.mjs";
      if (fs::exists(script) &&
          fs::exists(p / "tests" / "conformance" / "node_modules" / "@google" / "genai")) {
        return script.string();
      }
      if (p == p.parent_path()) break;
    }
  }
  return "";
}

/// Runs a program, capturing stdout; returns the exit code (-1 on failure to start).
int RunCapture(const std::vector<std::string>& args, std::string* out) {
  char path[] = "/tmp/roilens-bench-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fd, STDOUT_FILENO);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  int code = -1;
  if (posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  posix_spawn_file_actions_destroy(&actions);
  close(fd);
  if (out) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    *out = s.str();
  }
  unlink(path);
  return code;
}

/// One run through RunStation, quiet.
RunOutcome Run(const std::string& input, const std::string& config, const std::string& out,
               const std::string& coder, int latency_ms, std::optional<double> threshold,
               std::int64_t max_frames = 0) {
  RunFlags flags;
  flags.input = input;
  flags.config_path = config;
  flags.out_dir = out;
  flags.coder = coder;
  flags.latency_ms = latency_ms;
  flags.change_threshold = threshold;
  flags.max_frames = max_frames;
  flags.quiet = true;
  flags.overwrite = true;  // the bench's own directories, rerun by each bench run
  return RunStation(flags);
}

bool BenchThroughput(const BenchFlags& b) {
  std::printf("== throughput: echo coder, 1000 ms latency per call, %d ROI calls\n",
              b.throughput_calls);
  constexpr int kMaxInFlight = 16, kRois = 4;
  const fs::path dir = fs::path(b.dir) / "throughput";
  fs::create_directories(dir);
  std::vector<cv::Rect> rects;
  const int frames = b.throughput_calls / kRois;
  if (Status s = WriteSyntheticVideo((dir / "in.mp4").string(), {640, 360}, frames, kRois, &rects);
      !s.ok()) {
    std::printf("  failed: %s\n", s.message().c_str());
    return false;
  }
  (void)WriteFile((dir / "config.json").string(), BenchConfig(rects, kMaxInFlight));
  const auto start = Clock::now();
  auto run = Run((dir / "in.mp4").string(), (dir / "config.json").string(), (dir / "out").string(),
                 "echo", 1000, 0.0);
  const double run_s = Seconds(start);
  if (!run.summary.is_object()) {
    std::printf("  roilens run failed (exit %d)\n", run.exit_code);
    return false;
  }
  const double calls = run.summary["calls"].get<double>();
  const double roilens_rate = calls / run_s;
  std::printf("  roilens run: %.0f calls in %.2f s = %.2f calls/s (max_in_flight %d)\n", calls,
              run_s, roilens_rate, kMaxInFlight);

  // Baselines: the same request, one call after another.
  backend::BackendOptions options;
  options.coder = "echo";
  options.latency = std::chrono::milliseconds(1000);
  auto server = backend::StartEmbeddedBackend(options);
  if (!server.ok()) {
    std::printf("  baseline: %s\n", server.status().message().c_str());
    return false;
  }
  auto config = LoadStationConfig((dir / "config.json").string());
  cv::VideoCapture capture((dir / "in.mp4").string());
  cv::Mat frame;
  capture.read(frame);
  const cv::Mat crop = frame(rects[0]).clone();
  const wire::InteractionRequest request =
      BuildRoiRequest(config->rois[0], crop, config->backend.model);
  bool met = false;

  ClientOptions client_options;
  client_options.base_url = (*server)->base_url();
  client_options.api_key = "";
  auto client = InteractionsClient::Create(client_options);
  double own_rate = 0;
  if (client.ok()) {
    const auto t0 = Clock::now();
    int ok = 0;
    for (int i = 0; i < b.sequential_calls; ++i) {
      ok += (*client)->CreateInteraction(request).get().ok() ? 1 : 0;
    }
    own_rate = b.sequential_calls / Seconds(t0);
    std::printf(
        "  baseline, sequential loop with our client: %d calls (%d ok) = %.2f calls/s -> "
        "ratio %.1fx\n",
        b.sequential_calls, ok, own_rate, roilens_rate / own_rate);
  }
  const std::string script = FindSdkScript();
  if (script.empty()) {
    std::printf(
        "  baseline, official JS SDK: skipped (bench/sdk_sequential.mjs or "
        "tests/conformance/node_modules/@google/genai not found; run scripts/setup.sh)\n");
    met = own_rate > 0 && roilens_rate / own_rate >= 0.8 * kMaxInFlight;
  } else {
    std::string mime;
    const auto bytes = EncodeCropImage(crop, &mime);
    (void)WriteFile((dir / "prompt.txt").string(), RenderTaskPrompt(config->rois[0]));
    (void)WriteFile((dir / "crop.bin").string(), std::string(bytes.begin(), bytes.end()));
    std::string out;
    const int rc =
        RunCapture({"node", script, (*server)->base_url(), std::to_string(b.sequential_calls),
                    (dir / "prompt.txt").string(), (dir / "crop.bin").string(), mime},
                   &out);
    auto result = json::parse(out, nullptr, false);
    if (rc != 0 || !result.is_object()) {
      std::printf("  baseline, official JS SDK: failed (exit %d): %s\n", rc, out.c_str());
    } else {
      const double sdk_rate = result["calls"].get<double>() / result["seconds"].get<double>();
      const double ratio = roilens_rate / sdk_rate;
      met = ratio >= 0.8 * kMaxInFlight;
      std::printf(
          "  baseline, sequential loop with the official JS SDK: %d calls (%d ok) = %.2f "
          "calls/s -> ratio %.1fx (target >= %.1fx = 0.8 x max_in_flight): %s\n",
          result["calls"].get<int>(), result["ok"].get<int>(), sdk_rate, ratio, 0.8 * kMaxInFlight,
          met ? "met" : "NOT met");
    }
  }
  return met;
}

/// Peak RSS (MiB) of `roilens run` in a child process, from its summary.json; -1 on failure.
double ChildPeakRssMib(const std::string& input, const std::string& config, const fs::path& out) {
  std::error_code ec;
  const std::string self = fs::read_symlink("/proc/self/exe", ec).string();
  const int rc =
      RunCapture({self, "run", input, "--config", config, "--out", out.string(), "--coder", "echo",
                  "--change-threshold", "0", "--overwrite", "--quiet"},
                 nullptr);
  auto summary = json::parse(std::ifstream((out / "summary.json").string()), nullptr, false);
  if (rc != 0 || !summary.is_object()) return -1;
  return summary.value("peak_rss_mib", -1.0);
}

bool BenchFps(const BenchFlags& b) {
  const int frames = b.fps_frames;
  std::printf("== fps: 1920x1080, %d frames, 4 ROIs, echo coder, no latency, every frame calls\n",
              frames);
  const fs::path dir = fs::path(b.dir) / "fps";
  fs::create_directories(dir);
  std::vector<cv::Rect> rects;
  const std::string input = (dir / "in.mp4").string();
  if (Status s = WriteSyntheticVideo(input, {1920, 1080}, frames, 4, &rects); !s.ok()) {
    std::printf("  failed: %s\n", s.message().c_str());
    return false;
  }
  const std::string config_text = BenchConfig(rects, 16);
  (void)WriteFile((dir / "config.json").string(), config_text);
  auto opencv_config = json::parse(config_text);
  opencv_config["output"]["video_backend"] = "opencv";
  (void)WriteFile((dir / "config-opencv.json").string(), opencv_config.dump(2));

  // Baseline: the floor any video job paid before, OpenCV decode + cv::VideoWriter encode
  // (x264 at its default preset).
  auto t0 = Clock::now();
  double cpu0 = CpuSeconds();
  {
    cv::VideoCapture capture(input, cv::CAP_FFMPEG);
    std::string fourcc;
    auto writer = OpenMp4Writer((dir / "floor.mp4").string(), 30, {1920, 1080}, &fourcc);
    cv::Mat frame;
    while (writer.ok() && capture.read(frame)) (*writer)->write(frame);
    if (writer.ok()) (*writer)->release();
  }
  const double opencv_fps = frames / Seconds(t0);
  const double opencv_cpu = CpuSeconds() - cpu0;
  // The floor of today's reader and writer: the frame source the run opens (pipeline.decoder
  // default: libav), encoded by the libav writer with the settings the run uses
  // (output.video_encoder defaults).
  t0 = Clock::now();
  cpu0 = CpuSeconds();
  std::string floor_decoder;
  {
    auto source = FrameSource::Open(input, SourceOptions{});
    auto writer = AvVideoWriter::Open((dir / "floor-libav.mp4").string(), {1920, 1080}, 30,
                                      VideoEncoderConfig{}, /*faststart=*/false);
    if (source.ok()) floor_decoder = (*source)->info().decoder;
    while (source.ok() && writer.ok()) {
      auto frame = (*source)->Next();
      if (!frame) break;
      (void)(*writer)->Write(frame->bgr);
    }
    if (writer.ok()) (void)(*writer)->Close();
  }
  const double libav_fps = frames / Seconds(t0);
  const double libav_cpu = CpuSeconds() - cpu0;
  t0 = Clock::now();
  cpu0 = CpuSeconds();
  auto run = Run(input, (dir / "config.json").string(), (dir / "out").string(), "echo", 0, 0.0);
  const double run_s = Seconds(t0);
  const double run_cpu = CpuSeconds() - cpu0;
  if (!run.summary.is_object()) {
    std::printf("  roilens run failed (exit %d)\n", run.exit_code);
    return false;
  }
  const double fps = frames / run_s;
  const double vs_opencv = fps / opencv_fps, vs_libav = fps / libav_fps;
  std::printf("  roilens run: %d frames, %d calls in %.2f s = %.1f fps (%s, decoder %s)\n", frames,
              run.summary["calls"].get<int>(), run_s, fps,
              run.summary.value("video_codec", "").c_str(),
              run.summary.value("video_decoder", "").c_str());
  std::printf("  baseline, OpenCV decode+encode loop: %.1f fps -> ratio %.2f (target >= 1.3): %s\n",
              opencv_fps, vs_opencv, vs_opencv >= 1.3 ? "met" : "NOT met");
  std::printf(
      "  floor, decode (%s) + libav writer loop: %.1f fps -> ratio %.2f (target >= 0.9): %s\n",
      floor_decoder.c_str(), libav_fps, vs_libav, vs_libav >= 0.9 ? "met" : "NOT met");
  std::printf(
      "  CPU seconds (all threads): run %.1f, OpenCV loop %.1f, floor %.1f -> floor/run %.2f\n",
      run_cpu, opencv_cpu, libav_cpu, libav_cpu / run_cpu);

  // Peak RSS of the same run with the libav writer and with the OpenCV writer (the run before
  // the libav writer), each in a child process so that neither inherits the other's peak.
  const double rss_libav =
      ChildPeakRssMib(input, (dir / "config.json").string(), dir / "rss-libav");
  const double rss_opencv =
      ChildPeakRssMib(input, (dir / "config-opencv.json").string(), dir / "rss-opencv");
  const bool rss_met = rss_libav > 0 && rss_opencv > 0 && rss_opencv - rss_libav >= 150;
  std::printf(
      "  peak RSS: libav writer %.0f MiB, OpenCV writer %.0f MiB -> %.0f MiB lower "
      "(target >= 150): %s\n",
      rss_libav, rss_opencv, rss_opencv - rss_libav, rss_met ? "met" : "NOT met");
  return vs_opencv >= 1.3 && vs_libav >= 0.9 && rss_met;
}

/// Mean absolute reading error (gauges, in % of span) and count accuracy over the first
/// `frames` frames of a results file, against the sample ground truth.
struct Accuracy {
  double gauge_error_pct = 0;
  double count_exact = 0;
  int lines = 0;
};
Accuracy Score(const fs::path& results, const fs::path& samples, int frames) {
  std::map<std::pair<std::int64_t, std::string>, json> truth;
  std::ifstream t((samples / "ground_truth.jsonl").string());
  std::string text;
  while (std::getline(t, text)) {
    auto line = json::parse(text, nullptr, false);
    if (line.is_object()) truth[{line["frame"].get<std::int64_t>(), line["roi"]}] = line;
  }
  auto station = json::parse(std::ifstream((samples / "station.json").string()), nullptr, false);
  std::map<std::string, double> span;
  for (const auto& roi : station["rois"]) {
    if (roi.contains("gauge")) {
      span[roi["name"]] =
          roi["gauge"]["max_value"].get<double>() - roi["gauge"]["min_value"].get<double>();
    }
  }
  Accuracy a;
  double error_sum = 0;
  int gauges = 0, counts = 0, exact = 0;
  std::ifstream r(results.string());
  while (std::getline(r, text)) {
    auto line = json::parse(text, nullptr, false);
    if (!line.is_object() || line["frame"].get<std::int64_t>() >= frames) continue;
    auto it = truth.find({line["frame"].get<std::int64_t>(), line["roi"]});
    if (it == truth.end()) continue;
    ++a.lines;
    if (it->second.contains("count")) {
      ++counts;
      exact += line["count"].is_number() && line["count"] == it->second["count"];
    } else {
      ++gauges;
      // A missing reading counts as the whole span wrong.
      error_sum += line["value"].is_number()
                       ? std::abs(line["value"].get<double>() - it->second["value"].get<double>()) /
                             span[line["roi"]] * 100
                       : 100;
    }
  }
  a.gauge_error_pct = gauges ? error_sum / gauges : 0;
  a.count_exact = counts ? static_cast<double>(exact) / counts : 0;
  return a;
}

bool BenchGate(const BenchFlags& b) {
  std::printf("== gate: sample station (300 frames, 3 ROIs), cv coder\n");
  const fs::path dir = fs::path(b.dir) / "gate";
  const fs::path samples = dir / "samples";
  auto manifest = WriteSamples(samples.string(), SampleOptions{});
  if (!manifest.ok()) {
    std::printf("  samples failed: %s\n", manifest.status().message().c_str());
    return false;
  }
  const std::string input = (samples / "station.mp4").string();
  const std::string config = (samples / "station.json").string();
  if (b.gate_threshold) std::printf("  change_threshold overridden: %g\n", *b.gate_threshold);
  auto gated = Run(input, config, (dir / "gated").string(), "cv", 0, b.gate_threshold);
  if (!gated.summary.is_object()) {
    std::printf("  gated run failed (exit %d)\n", gated.exit_code);
    return false;
  }
  const double lines = gated.summary["roi_results"].get<double>();
  const double ratio = gated.summary["calls"].get<double>() / lines;
  std::printf("  with the change gate: %d calls / %.0f frame x ROI = %.4f (target <= 0.05): %s\n",
              gated.summary["calls"].get<int>(), lines, ratio, ratio <= 0.05 ? "met" : "NOT met");
  const Accuracy all = Score(dir / "gated" / "results.jsonl", samples, 300);
  std::printf("  gated, all 300 frames: gauge error %.2f%% of span, counts exact %.1f%%\n",
              all.gauge_error_pct, 100 * all.count_exact);
  auto ungated = Run(input, config, (dir / "ungated").string(), "cv", 0, 0.0, b.gate_frames);
  if (!ungated.summary.is_object()) {
    std::printf("  ungated run failed (exit %d)\n", ungated.exit_code);
    return false;
  }
  const Accuracy with = Score(dir / "gated" / "results.jsonl", samples, b.gate_frames);
  const Accuracy without = Score(dir / "ungated" / "results.jsonl", samples, b.gate_frames);
  std::printf(
      "  first %d frames: gauge error %.2f%% with the gate vs %.2f%% without (%d calls); "
      "counts exact %.1f%% vs %.1f%%: %s\n",
      b.gate_frames, with.gauge_error_pct, without.gauge_error_pct,
      ungated.summary["calls"].get<int>(), 100 * with.count_exact, 100 * without.count_exact,
      with.gauge_error_pct <= without.gauge_error_pct + 0.5 &&
              with.count_exact >= without.count_exact
          ? "no worse"
          : "WORSE");
  return ratio <= 0.05;
}

bool BenchRss(const BenchFlags& b) {
  std::printf(
      "== rss: peak RSS of a 300-frame and a 3000-frame run (echo coder, child processes)\n");
  const fs::path dir = fs::path(b.dir) / "rss";
  fs::create_directories(dir);
  std::vector<cv::Rect> rects;
  const std::string input = (dir / "in.mp4").string();
  if (Status s = WriteSyntheticVideo(input, {640, 360}, 3000, 4, &rects); !s.ok()) {
    std::printf("  failed: %s\n", s.message().c_str());
    return false;
  }
  (void)WriteFile((dir / "config.json").string(), BenchConfig(rects, 16));
  std::error_code ec;
  const std::string self = fs::read_symlink("/proc/self/exe", ec).string();
  // Each child reports its own VmHWM in summary.json. wait4's ru_maxrss would not do: Linux
  // carries the spawning process's high-water mark across exec, so after an in-process stage
  // (fps) both runs read as the bench process's own peak. A single peak moves by +-10% from run
  // to run here, so each length runs three times, interleaved, and the medians are compared.
  constexpr int kRepeats = 3;
  const int lengths[2] = {300, 3000};
  std::vector<double> peaks[2];
  for (int r = 0; r < kRepeats; ++r) {
    for (int i = 0; i < 2; ++i) {
      const fs::path out = dir / ("out" + std::to_string(i));
      const auto t0 = Clock::now();
      const int rc = RunCapture(
          {self, "run", input, "--config", (dir / "config.json").string(), "--out", out.string(),
           "--coder", "echo", "--max-frames", std::to_string(lengths[i]), "--quiet"},
          nullptr);
      auto summary = json::parse(std::ifstream((out / "summary.json").string()), nullptr, false);
      const double peak = summary.is_object() ? summary.value("peak_rss_mib", -1.0) : -1.0;
      std::printf("  %d frames: peak RSS %.1f MiB (exit %d, %.1f s)\n", lengths[i], peak, rc,
                  Seconds(t0));
      if (rc != 0 || peak <= 0) {
        std::printf("  failed: no peak_rss_mib in %s\n", (out / "summary.json").c_str());
        return false;
      }
      peaks[i].push_back(peak);
      fs::remove_all(out, ec);
    }
  }
  double median[2];
  for (int i = 0; i < 2; ++i) {
    std::sort(peaks[i].begin(), peaks[i].end());
    median[i] = peaks[i][peaks[i].size() / 2];
  }
  const double ratio = median[1] / median[0];
  std::printf("  medians: %.1f MiB (300 frames), %.1f MiB (3000 frames)\n", median[0], median[1]);
  std::printf("  ratio of medians 3000/300 = %.3f (target within 10%%): %s\n", ratio,
              std::abs(ratio - 1) <= 0.10 ? "met" : "NOT met");
  return std::abs(ratio - 1) <= 0.10;
}

/// live-rss: the resident set along a long live run. Met when the last sample is within 10% (or
/// 16 MiB) of the sample taken after the first tenth of the run (warm-up: pools, caches, store).
bool BenchLiveRss(const BenchFlags& b) {
  std::printf(
      "== live-rss: RSS over a %lld-frame live run (echo coder, 4 ROIs, 640x360, "
      "results rotated every 8 MiB)\n",
      static_cast<long long>(b.live_frames));
  LiveSoakOptions options;
  options.frames = b.live_frames;
  options.sample_every = std::max<std::int64_t>(1, b.live_frames / 20);
  options.out_dir = (fs::path(b.dir) / "live-rss").string();
  const auto t0 = Clock::now();
  auto curve = RunLiveSoak(options);
  if (!curve.ok()) {
    std::printf("  failed: %s\n", curve.status().message().c_str());
    return false;
  }
  const double wall = Seconds(t0);
  for (const auto& sample : *curve) {
    std::printf("  %8lld frames  %7.1f MiB\n", static_cast<long long>(sample.frames),
                sample.rss_mib);
  }
  double warm = curve->front().rss_mib;
  for (const auto& sample : *curve) {
    if (sample.frames >= b.live_frames / 10) {
      warm = sample.rss_mib;
      break;
    }
  }
  const double last = curve->back().rss_mib;
  const bool met = last - warm <= std::max(16.0, 0.10 * warm);
  std::printf("  %.0f frames/s; after warm-up %.1f MiB, at the end %.1f MiB (%+.1f MiB): %s\n",
              static_cast<double>(b.live_frames) / wall, warm, last, last - warm,
              met ? "flat" : "GROWS");
  std::error_code ec;
  fs::remove_all(options.out_dir, ec);
  return met;
}

const CommandRegistration kBenchCommand("bench", [](CLI::App& root, int& exit_code) {
  auto flags = std::make_shared<BenchFlags>();
  auto* cmd = root.add_subcommand("bench",
                                  "Measure throughput, fps, the change gate and memory, "
                                  "each against a baseline measured in the same run");
  cmd->add_option("--which", flags->which, "all, throughput, fps, gate, rss or live-rss")
      ->check(CLI::IsMember({"all", "throughput", "fps", "gate", "rss", "live-rss"}));
  cmd->add_option("--live-frames", flags->live_frames, "live-rss: frames of the live run")
      ->check(CLI::Range(100, 100000000));
  cmd->add_option("--dir", flags->dir, "working directory (default: a temp dir)");
  cmd->add_option("--fps-frames", flags->fps_frames, "fps: frames of the 1080p input")
      ->check(CLI::Range(10, 100000));
  cmd->add_option("--frames", flags->gate_frames,
                  "gate: frames of the ungated comparison run (every frame calls the cv coder)")
      ->check(CLI::Range(1, 300));
  cmd->add_option("--gate-threshold", flags->gate_threshold,
                  "gate: change_threshold for every ROI (default: the sample config's)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->callback([flags, &exit_code] {
    if (flags->dir.empty()) {
      flags->dir =
          (fs::temp_directory_path() / ("roilens-bench-" + std::to_string(getpid()))).string();
    }
    fs::create_directories(flags->dir);
    std::printf("roilens bench (working directory %s)\n", flags->dir.c_str());
    bool all_met = true;
    const auto pick = [&](const char* name) {
      return flags->which == "all" || flags->which == name;
    };
    if (pick("throughput")) all_met &= BenchThroughput(*flags);
    if (pick("fps")) all_met &= BenchFps(*flags);
    if (pick("gate")) all_met &= BenchGate(*flags);
    if (pick("rss")) all_met &= BenchRss(*flags);
    if (flags->which == "live-rss") all_met &= BenchLiveRss(*flags);  // long: on request only
    std::fflush(stdout);
    exit_code = all_met ? kExitOk : kExitFailure;
  });
});

}  // namespace
}  // namespace roilens::cli
