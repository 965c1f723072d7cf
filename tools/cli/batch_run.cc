// `roilens run` over many inputs (--inputs LIST, a folder of videos, a glob), optionally one
// shard of them: each file through RunStation into its own folder under --out, then the
// run-level summary via MergeBatch. See batch.h for the layout and the concurrency model.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "batch.h"
#include "commands.h"
#include "roilens/config/config.h"
#include "roilens/outputs/journal.h"
#include "run_cmd.h"

namespace roilens::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kJournalName = ".roilens-journal";  // RunStation's resume journal

bool HasEntries(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::directory_iterator(dir, ec) != fs::directory_iterator();
}

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "roilens: %s\n", message.c_str());
  return code;
}

/// The inputs the flags name, in manifest order.
StatusOr<std::vector<std::string>> CollectInputs(const RunFlags& flags) {
  if (!flags.inputs_list.empty()) return ReadInputList(flags.inputs_list);
  if (LooksLikeGlob(flags.input)) return ExpandGlob(flags.input);
  std::error_code ec;
  if (fs::is_directory(flags.input, ec)) {
    std::vector<std::string> videos = VideosInFolder(flags.input);
    if (videos.empty()) return NotFoundError("folder '" + flags.input + "' holds no video file");
    return videos;
  }
  return std::vector<std::string>{flags.input};  // --shard over one file: a batch of one
}

}  // namespace

bool IsBatchRun(const RunFlags& flags) {
  if (!flags.inputs_list.empty() || !flags.shard.empty()) return true;
  if (flags.input.empty()) return false;
  if (LooksLikeGlob(flags.input)) return true;
  std::error_code ec;
  // A folder of images stays one input (its images are the frames); a folder of videos is many.
  return fs::is_directory(flags.input, ec) && !VideosInFolder(flags.input).empty();
}

int RunBatch(const RunFlags& flags) {
  if (!flags.inputs_list.empty() && !flags.input.empty()) {
    return Fail(kExitUsage, "give INPUT or --inputs, not both");
  }
  if (flags.max_frames > 0 || flags.metrics_port) {
    return Fail(kExitUsage, "--max-frames and --metrics-port apply to a single input only");
  }
  auto paths = CollectInputs(flags);
  if (!paths.ok()) return Fail(kExitBadInput, paths.status().message());
  auto planned = PlanInputs(*paths);
  if (!planned.ok()) return Fail(kExitBadInput, planned.status().message());
  auto config = LoadStationConfig(flags.config_path);
  if (!config.ok()) return Fail(kExitBadConfig, config.status().message());

  std::optional<ShardSpec> shard;
  if (!flags.shard.empty()) {
    auto parsed = ParseShard(flags.shard);
    if (!parsed.ok()) return Fail(kExitUsage, parsed.status().message());
    shard = *parsed;
  } else {
    auto from_env = ShardFromEnvironment([](const char* name) { return std::getenv(name); });
    if (!from_env.ok()) return Fail(kExitUsage, from_env.status().message());
    shard = *from_env;
  }
  const ShardSpec spec = shard.value_or(ShardSpec{});

  BatchManifest manifest;
  manifest.inputs = *planned;
  manifest.summary_name = config->output.summary;
  manifest.report_name = config->output.report;
  manifest.results_name = config->output.results;
  manifest.alarms_name = config->output.alarms;
  {
    std::ifstream config_file(flags.config_path, std::ios::binary);
    std::ostringstream text;
    text << config_file.rdbuf();
    manifest.config_digest = Fnv1aHex(text.str());
  }
  const fs::path root(flags.out_dir);
  if (flags.overwrite) {
    std::error_code ec;
    fs::create_directories(root, ec);
    if (Status s =
            WriteFileAtomically((root / kManifestName).string(), manifest.ToJson().dump(2) + "\n");
        !s.ok()) {
      return Fail(kExitBadInput, s.message());
    }
  } else if (Status s = WriteOrCheckManifest(flags.out_dir, manifest); !s.ok()) {
    return Fail(kExitUsage, s.message());
  }

  const std::vector<int> shard_of = AssignShards(manifest.inputs, spec.count);
  std::vector<const BatchInput*> mine;
  for (std::size_t i = 0; i < manifest.inputs.size(); ++i) {
    if (shard_of[i] == spec.index) mine.push_back(&manifest.inputs[i]);
  }
  if (!flags.resume && !flags.overwrite) {
    for (const BatchInput* input : mine) {
      if (HasEntries(root / input->folder)) {
        return Fail(kExitUsage, "output folder '" + (root / input->folder).string() +
                                    "' is not empty; pass --resume to continue the batch or "
                                    "--overwrite to replace its roilens outputs");
      }
    }
  }

  const std::string shard_name =
      std::to_string(spec.index) + "-of-" + std::to_string(spec.count) + ".json";
  const fs::path shard_path = root / kShardsDir / shard_name;
  std::error_code ec;
  fs::create_directories(root / kShardsDir, ec);
  nlohmann::json shard_record = {{"shard", spec.index},
                                 {"shards", spec.count},
                                 {"state", "running"},
                                 {"files", nlohmann::json::array()}};
  for (const BatchInput* input : mine) {
    shard_record["files"].push_back(
        {{"input", input->shown}, {"folder", input->folder}, {"status", "pending"}});
  }
  (void)WriteFileAtomically(shard_path.string(), shard_record.dump(2) + "\n");
  if (!flags.quiet) {
    std::printf("roilens: batch of %zu inputs; shard %d of %d runs %zu of them into %s\n",
                manifest.inputs.size(), spec.index, spec.count, mine.size(), flags.out_dir.c_str());
    std::fflush(stdout);
  }

  std::vector<std::pair<std::string, std::string>> failures;  // input, reason
  bool interrupted = false;
  std::size_t runs = 0, finished_with_errors = 0;
  // backend.budget is spent once per invocation over all of this shard's files: each file gets
  // what the earlier ones left.
  const BudgetConfig budget = config->backend.budget;
  std::int64_t spent_calls = 0, spent_tokens = 0;
  std::string budget_stop;  // why the batch stopped for the budget ("" while it has not)
  for (std::size_t i = 0; i < mine.size(); ++i) {
    const BatchInput& input = *mine[i];
    const fs::path dir = root / input.folder;
    auto& record = shard_record["files"][i];
    if (budget.enabled() && !fs::exists(dir / kDoneMarker, ec)) {
      const bool calls_out = budget.max_calls > 0 && spent_calls >= budget.max_calls;
      const bool tokens_out = budget.max_tokens > 0 && spent_tokens >= budget.max_tokens;
      if (calls_out || tokens_out) {
        budget_stop = calls_out ? "max_calls (" + std::to_string(budget.max_calls) + ") reached"
                                : "max_tokens (" + std::to_string(budget.max_tokens) + ") reached";
        break;
      }
    }
    if (flags.resume && fs::exists(dir / kDoneMarker, ec)) {
      record["status"] = "ok";
      if (!flags.quiet) {
        std::printf("roilens: [%zu/%zu] %s: already finished\n", i + 1, mine.size(),
                    input.shown.c_str());
      }
      continue;
    }
    RunFlags file_flags = flags;
    file_flags.inputs_list.clear();
    file_flags.shard.clear();
    file_flags.input = input.path;
    file_flags.out_dir = dir.string();
    file_flags.announce_backend = runs == 0;  // the same line for every file is noise
    if (budget.enabled()) {
      file_flags.budget_left =
          BudgetLeft{budget.max_calls > 0 ? budget.max_calls - spent_calls : 0,
                     budget.max_tokens > 0 ? budget.max_tokens - spent_tokens : 0};
    }
    ++runs;
    const bool had_failed = fs::exists(dir / kFailedMarker, ec);
    fs::remove(dir / kDoneMarker, ec);
    fs::remove(dir / kFailedMarker, ec);
    // --resume continues after the journal's last checkpoint while the journal says the run is
    // unfinished (killed, interrupted, or failed part-way: a full disk). A run that finished and
    // failed (a rejected key) is redone from scratch, and so is a folder no journal describes
    // (the run was killed before it wrote one). A run that finished without a marker (killed
    // just before it) is "resumed": RunStation returns its summary and the marker is written.
    auto journal = Journal::Load((dir / kJournalName).string());
    file_flags.resume = flags.resume && journal.ok() && !(journal->finished && had_failed);
    file_flags.overwrite = !file_flags.resume && HasEntries(dir);
    if (!flags.quiet) {
      std::printf("roilens: [%zu/%zu] %s -> %s%s\n", i + 1, mine.size(), input.shown.c_str(),
                  dir.string().c_str(), file_flags.resume ? " (resuming)" : "");
      std::fflush(stdout);
    }
    RunOutcome outcome;
    try {
      outcome = RunStation(file_flags);
    } catch (const std::exception& e) {
      outcome = {kExitFailure, nullptr, std::string("internal error: ") + e.what()};
    }
    std::fflush(stdout);
    if (outcome.summary.is_object() && outcome.summary.contains("usage")) {
      const auto& usage = outcome.summary["usage"].value("this_run", nlohmann::json::object());
      spent_calls += usage.value("calls", std::int64_t{0});
      spent_tokens += usage.value("total_tokens", std::int64_t{0});
    }
    if (outcome.exit_code == kExitInterrupted) {
      record["status"] = "partial";
      interrupted = true;
      break;
    }
    if (outcome.exit_code == kExitBudget) {  // resumable from the file's journal
      record["status"] = "partial";
      budget_stop = outcome.summary.is_object()
                        ? outcome.summary["stopped"].value("detail", "backend.budget spent")
                        : "backend.budget spent";
      break;
    }
    const bool finished = outcome.exit_code == kExitOk ||
                          (outcome.exit_code == kExitFailure && outcome.summary.is_object());
    if (finished) {
      // After summary.json and report.html are final (RunStation wrote them before returning).
      fs::create_directories(dir, ec);
      Status s = WriteFileAtomically(
          (dir / kDoneMarker).string(),
          nlohmann::json({{"input", input.shown}, {"exit_code", outcome.exit_code}}).dump() + "\n");
      if (!s.ok()) outcome = {kExitFailure, nullptr, s.message()};
    }
    if (finished && outcome.summary.is_object()) {
      record["status"] = "ok";
      if (outcome.exit_code != kExitOk) ++finished_with_errors;
      continue;
    }
    const std::string reason =
        outcome.error.empty() ? "exit code " + std::to_string(outcome.exit_code) : outcome.error;
    fs::create_directories(dir, ec);
    (void)WriteFileAtomically(
        (dir / kFailedMarker).string(),
        nlohmann::json(
            {{"input", input.shown}, {"exit_code", outcome.exit_code}, {"error", reason}})
                .dump() +
            "\n");
    record["status"] = "failed";
    record["error"] = reason;
    failures.emplace_back(input.shown, reason);
  }
  shard_record["state"] = interrupted ? "interrupted" : !budget_stop.empty() ? "budget" : "done";
  if (!budget_stop.empty()) {
    shard_record["stopped"] = {{"reason", "budget"}, {"detail", budget_stop}};
  }
  shard_record["usage"] = {{"calls", spent_calls}, {"total_tokens", spent_tokens}};
  (void)WriteFileAtomically(shard_path.string(), shard_record.dump(2) + "\n");

  // The run-level summary from whatever every shard has finished so far; the last shard to end
  // (or a later `roilens merge`) writes the complete one.
  auto merged = MergeBatch(flags.out_dir);
  if (!merged.ok()) return Fail(kExitFailure, merged.status().message());
  const auto& totals = (*merged)["totals"];
  std::printf("roilens: batch summary %s: %lld ok, %lld failed, %lld partial, %lld pending\n",
              (root / manifest.summary_name).string().c_str(),
              static_cast<long long>(totals.value("ok", 0)),
              static_cast<long long>(totals.value("failed", 0)),
              static_cast<long long>(totals.value("partial", 0)),
              static_cast<long long>(totals.value("pending", 0)));
  if (interrupted) return kExitInterrupted;
  if (!budget_stop.empty()) {
    std::fprintf(stderr,
                 "roilens: %s: the batch stopped (%lld calls, %lld tokens spent); run it again "
                 "with --resume to continue (the budget applies per invocation)\n",
                 budget_stop.c_str(), static_cast<long long>(spent_calls),
                 static_cast<long long>(spent_tokens));
    return kExitBudget;
  }
  if (!failures.empty()) {
    std::fprintf(stderr, "roilens: %zu of %zu inputs failed:\n", failures.size(), mine.size());
    for (const auto& [path, reason] : failures) {
      std::fprintf(stderr, "  %s: %s\n", path.c_str(), reason.c_str());
    }
    return kExitFailure;
  }
  if (finished_with_errors > 0) {
    std::fprintf(stderr, "roilens: %zu of %zu inputs finished with errors in some frame x ROI\n",
                 finished_with_errors, mine.size());
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace roilens::cli
