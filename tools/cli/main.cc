// roilens CLI entry point: dispatches to the registered subcommands (run, serve, samples, bench).
#include <algorithm>
#include <iostream>

#include "commands.h"

namespace roilens::cli {

std::vector<RegisteredCommand>& Registry() {
  static std::vector<RegisteredCommand> registry;
  return registry;
}

CommandRegistration::CommandRegistration(std::string name, AddCommand add) {
  Registry().push_back({std::move(name), std::move(add)});
}

}  // namespace roilens::cli

int main(int argc, char** argv) {
  using namespace roilens::cli;
  CLI::App app{"roilens: ask a code-executing model about regions of interest in frames"};
  // ROILENS_VERSION is the project() version in the top-level CMakeLists.txt; summary.json
  // carries the same string (roilens_version).
  app.set_version_flag("--version", std::string("roilens ") + ROILENS_VERSION,
                       "Print the roilens version and exit");
  app.require_subcommand(1);
  int exit_code = kExitOk;
  auto& registry = Registry();
  std::sort(registry.begin(), registry.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (auto& command : registry) command.add(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  return exit_code;
}
