// Scores the classical-CV coder on synthetic gauges and trays with known truth (see coder_eval.h).
#include "roilens/backend/coder_eval.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <sstream>
#include <thread>

#include "roilens/config/config.h"
#include "roilens/samples.h"
#include "roilens/stages/prompt.h"

namespace roilens::backend {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The ROI a station config would declare for one item, through the config parser (so its
/// gauge object gets the same defaults and validation as in production): `gauge` is the ROI's
/// gauge object (read_gauge), `object` what to count (count). `at` names the item in errors.
StatusOr<RoiConfig> ItemRoi(const std::string& task, const json& gauge, const std::string& object,
                            const cv::Size& size, const std::string& at) {
  json roi = {{"name", "item"}, {"task", task}, {"rect", {0, 0, size.width, size.height}}};
  if (task == "read_gauge") roi["gauge"] = gauge;
  if (task == "count") roi["object"] = object;
  auto parsed = ParseStationConfig(json{{"rois", {roi}}}.dump(), at);
  if (!parsed.ok()) return parsed.status();
  return parsed->rois[0];
}

/// Write -> run -> revise, as the local backend drives the coder; returns the answer JSON.
json Solve(Coder& coder, const ProgramRunner& runner, const CoderInput& input, int max_attempts,
           CoderEvalCase& c) {
  std::vector<CoderObservation> history;
  for (int attempt = 0; attempt < max_attempts; ++attempt) {
    CoderProgram program = coder.Write(input, attempt, history);
    SandboxJob job;
    job.code = program.code;
    job.inputs.push_back({input.images[0].mime_type == "image/jpeg" ? "input_0.jpg" : "input_0.png",
                          input.images[0].bytes});
    history.push_back({runner(job)});
    c.attempts = attempt + 1;
    if (history.back().result.ok) break;
  }
  c.final_text = coder.Answer(input, history);
  const auto nl = c.final_text.rfind('\n');
  json answer = json::parse(nl == std::string::npos ? c.final_text : c.final_text.substr(nl + 1),
                            nullptr, false);
  return answer.is_object() ? answer : json{{"error", "answer line is not JSON"}};
}

/// The answer's confidence, clamped to 0..1 (0 when absent: an answer that does not say how
/// sure it is counts as unsure).
void RecordConfidence(const json& answer, CoderEvalCase& c) {
  const auto it = answer.find("confidence");
  c.confidence =
      it != answer.end() && it->is_number() ? std::clamp(it->get<double>(), 0.0, 1.0) : 0.0;
}

/// One image to score: the coder's input and the truth it should arrive at.
struct EvalItem {
  CoderInput input;
  double truth = 0, span = 1;  ///< span: the gauge's value range (error is in % of it)
  bool gauge = true;
  bool uneven = false, clustered = false, wider = false;  ///< trays: the generator's conditions
  std::string file;   ///< real set: the image as truth.json names it
  std::string error;  ///< why the item could not be prepared (scored as a failure)
};

/// Runs every item through the coder on `options.workers` threads and sums up the figures;
/// `start` is when preparing the items began (the report's seconds include it).
CoderEvalReport ScoreItems(Coder& coder, const ProgramRunner& runner,
                           const std::vector<EvalItem>& items, const CoderEvalOptions& options,
                           std::chrono::steady_clock::time_point start) {
  CoderEvalReport report;
  report.cases.resize(items.size());
  // Each case's index counts the items of its kind before it.
  for (std::size_t i = 0, gauges = 0, trays = 0; i < items.size(); ++i)
    report.cases[i].index = int(items[i].gauge ? gauges++ : trays++);
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < items.size();) {
      const EvalItem& item = items[i];
      CoderEvalCase& c = report.cases[i];
      c.kind = item.gauge ? "gauge" : "tray";
      c.file = item.file;
      c.truth = item.truth;
      c.uneven_light = item.uneven;
      c.clustered = item.clustered;
      c.wider_view = item.wider;
      if (!item.error.empty()) {
        c.failed = true;
        c.error = item.error;
        c.error_pct = 100;
        continue;
      }
      const json answer = Solve(coder, runner, item.input, options.max_attempts, c);
      const char* key = item.gauge ? "value" : "count";
      if (!answer.contains(key) || !answer[key].is_number()) {
        c.failed = true;
        c.error = answer.value("error", std::string("no ") + key + " in the answer");
        c.error_pct = 100;
        continue;
      }
      c.answer = answer[key].get<double>();
      RecordConfidence(answer, c);
      if (answer.contains("objects") && answer["objects"].is_array())
        c.objects = int(answer["objects"].size());
      if (item.gauge) c.error_pct = std::abs(c.answer - c.truth) / item.span * 100.0;
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < std::max(1, options.workers); ++w) threads.emplace_back(work);
  for (auto& t : threads) t.join();

  int within3 = 0, exact = 0, exact_uneven = 0, exact_clustered = 0, exact_wider = 0;
  double sum = 0;
  for (const CoderEvalCase& c : report.cases) {
    const bool right = CaseIsRight(c);
    if (c.kind == "gauge") {
      ++report.gauges;
      report.gauge_failures += c.failed;
      sum += c.error_pct;
      within3 += right;
      report.gauge_max_error_pct = std::max(report.gauge_max_error_pct, c.error_pct);
    } else {
      ++report.trays;
      report.tray_failures += c.failed;
      exact += right;
      report.trays_uneven += c.uneven_light;
      exact_uneven += c.uneven_light && right;
      report.trays_clustered += c.clustered;
      exact_clustered += c.clustered && right;
      report.trays_wider += c.wider_view;
      exact_wider += c.wider_view && right;
    }
  }
  if (report.gauges) {
    report.gauge_mae_pct = sum / report.gauges;
    report.gauge_within3_pct = 100.0 * within3 / report.gauges;
  }
  if (report.trays) report.count_exact_pct = 100.0 * exact / report.trays;
  if (report.trays_uneven)
    report.count_exact_uneven_pct = 100.0 * exact_uneven / report.trays_uneven;
  if (report.trays_clustered)
    report.count_exact_clustered_pct = 100.0 * exact_clustered / report.trays_clustered;
  if (report.trays_wider) report.count_exact_wider_pct = 100.0 * exact_wider / report.trays_wider;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace

SandboxResult RunPythonDirectly(const SandboxJob& job, const std::string& python) {
  SandboxResult result;
  const auto start = std::chrono::steady_clock::now();
  std::string pattern = (fs::temp_directory_path() / "roilens-coder-XXXXXX").string();
  if (!mkdtemp(pattern.data())) {
    result.error = "cannot create a temporary directory";
    return result;
  }
  const fs::path dir(pattern);
  for (const SandboxFile& f : job.inputs)
    std::ofstream(dir / f.name, std::ios::binary)
        .write(reinterpret_cast<const char*>(f.bytes.data()), std::streamsize(f.bytes.size()));
  std::ofstream(dir / "program.py") << job.code;
  const long limit_s =
      std::max<long>(1, long(job.wall_limit.count() > 0 ? job.wall_limit.count() / 1000 : 30));
  // Everything the child needs is prepared before fork: it only calls async-signal-safe functions.
  const std::string dir_s = dir.string(), out_s = (dir / ".stdout").string(),
                    err_s = (dir / ".stderr").string(), limit = std::to_string(limit_s);
  const char* argv[] = {"/usr/bin/timeout", "-s", "KILL",       limit.c_str(),
                        python.c_str(),     "-B", "program.py", nullptr};
  const pid_t pid = fork();
  if (pid == 0) {
    if (chdir(dir_s.c_str()) != 0) _exit(127);
    const int out = open(out_s.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = open(err_s.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0 || err < 0) _exit(127);
    dup2(out, 1);
    dup2(err, 2);
    execv(argv[0], const_cast<char* const*>(argv));
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0) {
    result.error = "cannot start " + python;
  } else {
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result.timed_out = result.exit_code == 124 || result.exit_code == 137;
    result.ok = result.exit_code == 0;
    if (result.timed_out)
      result.error = "timed out after " + limit + " s";
    else if (!result.ok)
      result.error = "exit code " + std::to_string(result.exit_code);
  }
  result.stdout_text = ReadFile(dir / ".stdout");
  result.stderr_text = ReadFile(dir / ".stderr");
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const std::string ext = entry.path().extension().string();
    if (name.rfind("input_", 0) == 0 || (ext != ".png" && ext != ".jpg")) continue;
    const std::string bytes = ReadFile(entry.path());
    result.images.push_back({name, ext == ".png" ? "image/png" : "image/jpeg",
                             std::vector<std::uint8_t>(bytes.begin(), bytes.end())});
  }
  fs::remove_all(dir, ec);
  result.elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return result;
}

CoderEvalReport EvaluateCoder(Coder& coder, const ProgramRunner& runner,
                              const CoderEvalOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  // Render everything up front from one RNG so the set depends on the seed only.
  std::vector<EvalItem> items;
  cv::RNG rng(options.seed);
  auto png = [](const cv::Mat& img) {
    std::vector<std::uint8_t> bytes;
    cv::imencode(".png", img, bytes);
    return bytes;
  };
  for (int i = 0; i < options.gauges; ++i) {
    const GaugeStyle style = RandomGaugeStyle(rng);
    const double value =
        style.min_value + rng.uniform(0.0, 1.0) * (style.max_value - style.min_value);
    EvalItem item;
    item.truth = value;
    item.span = std::abs(style.max_value - style.min_value);
    json gauge = {{"min_value", style.min_value},
                  {"max_value", style.max_value},
                  {"min_angle_deg", style.min_angle_deg},
                  {"max_angle_deg", style.max_angle_deg},
                  {"unit", style.unit}};
    // a non-linear dial's truth holds only through its calibration points
    for (const auto& [v, a] : style.scale) gauge["scale"].push_back({v, a});
    const cv::Mat image = RenderGauge(style, value, rng);
    auto roi = ItemRoi("read_gauge", gauge, "", image.size(), "gauge " + std::to_string(i));
    if (roi.ok())
      item.input.text = RenderTaskPrompt(*roi);
    else
      item.error = std::string(roi.status().message());
    item.input.images.push_back({"image/png", png(image)});
    items.push_back(std::move(item));
  }
  for (int i = 0; i < options.trays + options.wider; ++i) {
    TrayStyle style = RandomTrayStyle(rng);
    EvalItem item;
    item.wider = i >= options.trays;
    if (item.wider) {
      // parts cut by the tray's edge would not be cut by the image's: none in a wider view
      style.border_parts = 0;
      style.surround = RandomTraySurround(rng);
    }
    const int count = rng.uniform(options.min_parts, options.max_parts + 1);
    std::vector<cv::Rect> boxes;
    item.gauge = false;
    item.uneven = style.UnevenLight();
    item.clustered = style.Clustered();
    const cv::Mat image = RenderTray(count, style, rng, &boxes);
    item.input.images.push_back({"image/png", png(image)});
    item.truth = double(boxes.size());
    auto roi = ItemRoi("count", json(), "parts", image.size(), "tray " + std::to_string(i));
    if (roi.ok())
      item.input.text = RenderTaskPrompt(*roi);
    else
      item.error = std::string(roi.status().message());
    items.push_back(std::move(item));
  }
  return ScoreItems(coder, runner, items, options, start);
}

bool CaseIsRight(const CoderEvalCase& c) {
  if (c.failed) return false;
  return c.kind == "gauge" ? c.error_pct <= 3.0 : std::lround(c.answer) == std::lround(c.truth);
}

ReliabilityTable MakeReliabilityTable(const std::vector<CoderEvalCase>& cases,
                                      const std::string& kind) {
  ReliabilityTable t;
  for (auto [low, high] : {std::pair{0.0, 0.5}, {0.5, 0.8}, {0.8, 0.9}, {0.9, 1.0}})
    t.bins.push_back({low, high, 0, 0});
  for (const CoderEvalCase& c : cases) {
    if (!kind.empty() && c.kind != kind) continue;
    const double conf = c.failed ? 0.0 : c.confidence;
    const bool right = CaseIsRight(c);
    for (std::size_t b = 0; b < t.bins.size(); ++b) {
      if (conf >= t.bins[b].low && (conf < t.bins[b].high || b + 1 == t.bins.size())) {
        ++t.bins[b].readings;
        t.bins[b].right += right;
        break;
      }
    }
    ++t.total;
    if (conf >= 0.8) {
      ++t.confident;
      t.confident_right += right;
    }
  }
  return t;
}

std::vector<std::string> MissedTargets(const CoderEvalReport& r, double count_target_pct) {
  std::vector<std::string> missed;
  // the two confidence goals for one kind: >= 99% right at >= 0.8, and >= 90% of readings there
  auto goals = [&](const char* kind, const std::string& noun) {
    const ReliabilityTable t = MakeReliabilityTable(r.cases, kind);
    if (t.total == 0) return;
    if (t.confident == 0 || 100.0 * t.confident_right < 99.0 * t.confident)
      missed.push_back(noun + " right at >= 0.8");
    if (100.0 * t.confident < 90.0 * t.total) missed.push_back(noun + " at >= 0.8");
  };
  if (r.gauges) {
    if (r.gauge_mae_pct > 1.0) missed.push_back("gauge mean error");
    if (r.gauge_within3_pct < 100.0) missed.push_back("gauges within 3%");
    goals("gauge", "gauges");
  }
  if (r.trays) {
    if (r.count_exact_pct < count_target_pct) missed.push_back("exact counts");
    goals("tray", "counts");
  }
  return missed;
}

std::string FormatReliabilityTable(const ReliabilityTable& t, const std::string& right_word) {
  std::ostringstream out;
  char line[160];
  out << "  reliability (confidence: readings, share " << right_word << "):\n";
  for (std::size_t b = 0; b < t.bins.size(); ++b) {
    const ReliabilityBin& bin = t.bins[b];
    std::snprintf(
        line, sizeof line, "    [%.1f, %.1f%s %5d  %s\n", bin.low, bin.high,
        b + 1 == t.bins.size() ? "]" : ")", bin.readings,
        bin.readings
            ? (std::to_string(int(std::lround(100.0 * bin.right / bin.readings))) + "%").c_str()
            : "-");
    out << line;
  }
  std::snprintf(line, sizeof line, "  confidence >= 0.8: %d readings, %.1f%% %s (goal >= 99%%)\n",
                t.confident, t.confident ? 100.0 * t.confident_right / t.confident : 0.0,
                right_word.c_str());
  out << line;
  std::snprintf(line, sizeof line,
                "  share of readings with confidence >= 0.8: %.1f%% (goal >= 90%%)\n",
                t.total ? 100.0 * t.confident / t.total : 0.0);
  out << line;
  return out.str();
}

StatusOr<CoderEvalReport> EvaluateCoderOnRealSet(Coder& coder, const ProgramRunner& runner,
                                                 const std::string& dir,
                                                 const CoderEvalOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const fs::path root(dir);
  const std::string truth_path = (root / "truth.json").string();
  std::error_code ec;
  if (!fs::is_regular_file(truth_path, ec)) return NotFoundError(truth_path + ": not found");
  const json truth = json::parse(ReadFile(truth_path), nullptr, false, /*ignore_comments=*/true);
  if (!truth.is_object() || !truth.contains("images") || !truth["images"].is_array())
    return InvalidArgumentError(truth_path + ": must be {\"images\": [...]}");
  std::vector<EvalItem> items;
  for (std::size_t i = 0; i < truth["images"].size(); ++i) {
    const json& entry = truth["images"][i];
    const std::string at = truth_path + ": images[" + std::to_string(i) + "]";
    if (!entry.is_object() || !entry.contains("file") || !entry["file"].is_string() ||
        !entry.contains("truth") || !entry["truth"].is_number())
      return InvalidArgumentError(at + ": needs \"file\" and a numeric \"truth\"");
    EvalItem item;
    item.file = entry["file"].get<std::string>();
    const std::string task = entry.value("task", std::string("read_gauge"));
    if (task != "read_gauge" && task != "count")
      return InvalidArgumentError(at + ": task must be read_gauge or count, got " + task);
    item.gauge = task == "read_gauge";
    item.truth = entry["truth"].get<double>();
    const std::string image_path = (root / item.file).string();
    const cv::Mat image = cv::imread(image_path, cv::IMREAD_COLOR);
    if (image.empty()) return NotFoundError(at + ": cannot read " + image_path);
    cv::Rect rect(0, 0, image.cols, image.rows);
    if (entry.contains("rect")) {
      const json& r = entry["rect"];
      if (!r.is_array() || r.size() != 4 || !std::all_of(r.begin(), r.end(), [](const json& v) {
            return v.is_number_integer() && v.get<std::int64_t>() >= 0 &&
                   v.get<std::int64_t>() <= std::numeric_limits<int>::max();
          }))
        return InvalidArgumentError(at + ": rect must be [x, y, w, h]");
      rect = cv::Rect(r[0].get<int>(), r[1].get<int>(), r[2].get<int>(), r[3].get<int>());
      if (rect.width <= 0 || rect.height <= 0 ||
          (rect & cv::Rect(0, 0, image.cols, image.rows)) != rect)
        return InvalidArgumentError(at + ": rect lies outside " + item.file);
    }
    // The ROI as a station config would declare it: the prompt the pipeline would send.
    auto config = ItemRoi(task, entry.value("gauge", json::object()),
                          entry.value("object", std::string("objects")), rect.size(), at);
    if (!config.ok()) return config.status();
    if (item.gauge) item.span = config->gauge.max_value - config->gauge.min_value;
    item.input.text = RenderTaskPrompt(*config);
    std::string mime;
    std::vector<std::uint8_t> bytes = EncodeCropImage(image(rect).clone(), &mime);
    item.input.images.push_back({mime, std::move(bytes)});
    items.push_back(std::move(item));
  }

  return ScoreItems(coder, runner, items, options, start);
}

}  // namespace roilens::backend
