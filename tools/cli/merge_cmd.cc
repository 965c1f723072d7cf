// `roilens merge OUT_ROOT`: the run-level summary.json and report.html of a batch from whatever
// its shards have finished so far (idempotent; safe while shards still run).
#include <cstdio>

#include "batch.h"
#include "commands.h"

namespace roilens::cli {
namespace {

const CommandRegistration kMerge("merge", [](CLI::App& root, int& exit_code) {
  auto out_root = std::make_shared<std::string>();
  CLI::App* cmd = root.add_subcommand(
      "merge",
      "Build a batch's run-level summary.json and report.html in OUT_ROOT from the files its "
      "shards have finished (safe while they still run)");
  cmd->add_option("out_root", *out_root, "the --out of a batch `roilens run`")->required();
  cmd->callback([out_root, &exit_code] {
    auto summary = MergeBatch(*out_root);
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
    exit_code = kExitOk;
  });
});

}  // namespace
}  // namespace roilens::cli
