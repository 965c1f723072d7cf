// `roilens samples DIR`: writes the sample station (video, configs, ground truth, stills).
#include <iostream>

#include "commands.h"
#include "roilens/samples.h"

namespace roilens::cli {
namespace {

struct SamplesArgs {
  std::string dir;
  int frames = 300;
  std::uint64_t seed = 1;
};

const CommandRegistration kSamples("samples", [](CLI::App& root, int& exit_code) {
  auto args = std::make_shared<SamplesArgs>();
  CLI::App* cmd = root.add_subcommand(
      "samples", "Write a sample station: video with two gauges and a parts tray, configs, truth");
  cmd->add_option("dir", args->dir, "Output directory (created if missing)")->required();
  cmd->add_option("--frames", args->frames, "Video length in frames (10 fps)")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--seed", args->seed, "Seed: the same seed writes the same files");
  cmd->callback([args, &exit_code] {
    SampleOptions options;
    options.frames = args->frames;
    options.seed = args->seed;
    auto manifest = WriteSamples(args->dir, options);
    if (!manifest.ok()) {
      std::cerr << "roilens samples: " << manifest.status().message() << "\n";
      exit_code = kExitFailure;
      return;
    }
    std::cout << "wrote " << args->dir << ": " << manifest->frames << " frames x " << manifest->rois
              << " ROIs (video fourcc " << manifest->fourcc << ")\n";
    for (const std::string& f : manifest->files) std::cout << "  " << f << "\n";
    std::cout << "try: roilens run " << args->dir << "/station.mp4 --config " << args->dir
              << "/station.json --out " << args->dir << "/out\n";
    exit_code = kExitOk;
  });
});

}  // namespace
}  // namespace roilens::cli
