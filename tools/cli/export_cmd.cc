// `roilens export --coco RUN_DIR [-o FILE]`: a run's count objects as COCO detection JSON.
#include <fstream>
#include <iostream>

#include "commands.h"
#include "roilens/outputs/coco.h"

namespace roilens::cli {
namespace {

struct ExportArgs {
  std::string run_dir;
  bool coco = false;
  std::string output;  ///< "" = stdout
};

const CommandRegistration kExport("export", [](CLI::App& root, int& exit_code) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* cmd = root.add_subcommand(
      "export", "Convert a run's results for other tools (--coco: count objects as COCO JSON)");
  cmd->add_option("run_dir", args->run_dir, "A `roilens run --out` directory")->required();
  cmd->add_flag("--coco", args->coco, "COCO detection JSON of the count objects")->required();
  cmd->add_option("-o,--output", args->output, "Output file (default: stdout)");
  cmd->callback([args, &exit_code] {
    StatusOr<nlohmann::json> coco = CocoFromRunDir(args->run_dir);
    if (!coco.ok()) {
      std::cerr << "roilens export: " << coco.status().message() << "\n";
      exit_code = kExitBadInput;
      return;
    }
    const std::string text = coco->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (args->output.empty()) {
      std::cout << text << "\n";
    } else {
      std::ofstream out(args->output, std::ios::binary | std::ios::trunc);
      out << text << "\n";
      out.close();
      if (!out) {
        std::cerr << "roilens export: cannot write '" << args->output << "'\n";
        exit_code = kExitFailure;
        return;
      }
    }
    exit_code = kExitOk;
  });
});

}  // namespace
}  // namespace roilens::cli
