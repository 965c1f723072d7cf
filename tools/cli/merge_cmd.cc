// `roilens merge OUT_ROOT`: the run-level summary.json and report.html of a batch from whatever
// its shards have finished so far (idempotent; safe while shards still run).
#include <cstdio>

#include "batch.h"
#include "commands.h"

namespace roilens::cli {
namespace {

const CommandRegistration kMerge("merge", [](CLI::App& root, int& exit_code) {
  struct MergeArgs {
    std::string out_root;
    bool require_complete = false;
  };
  auto args = std::make_shared<MergeArgs>();
  CLI::App* cmd = root.add_subcommand(
      "merge",
      "Build a batch's run-level summary.json and report.html in OUT_ROOT from the files its "
      "shards have finished (safe while they still run)");
  cmd->add_option("out_root", args->out_root, "the --out of a batch `roilens run`")->required();
  cmd->add_flag("--require-complete", args->require_complete,
                "exit 1 unless every file finished (none failed, partial or pending)");
  cmd->callback([args, &exit_code] {
    auto summary = MergeBatch(args->out_root);
    if (!summary.ok()) {
      std::fprintf(stderr, "roilens merge: %s\n", summary.status().message().c_str());
      exit_code = kExitBadInput;
      return;
    }
    const auto& totals = (*summary)["totals"];
    std::printf(
        "roilens: %lld files: %lld ok, %lld failed, %lld partial, %lld pending; %lld "
        "frames, %lld ROI results, %lld errors, %lld alarms\n",
        static_cast<long long>(totals.value("files", 0)),
        static_cast<long long>(totals.value("ok", 0)),
        static_cast<long long>(totals.value("failed", 0)),
        static_cast<long long>(totals.value("partial", 0)),
        static_cast<long long>(totals.value("pending", 0)),
        static_cast<long long>(totals.value("frames", 0)),
        static_cast<long long>(totals.value("roi_results", 0)),
        static_cast<long long>(totals.value("errors", 0)),
        static_cast<long long>(totals.value("alarms", 0)));
    const bool all_ok = totals.value("ok", 0) == totals.value("files", 0);
    exit_code = args->require_complete && !all_ok ? kExitFailure : kExitOk;
  });
});

}  // namespace
}  // namespace roilens::cli
