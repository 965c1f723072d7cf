// Subcommand registry of the roilens CLI: each *_cmd.cc registers itself with a static
// CommandRegistration, so subcommands live in their own files.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace roilens::cli {

/// Adds a subcommand to `root`; when that subcommand is chosen its callback sets `exit_code`.
using AddCommand = std::function<void(CLI::App& root, int& exit_code)>;

struct CommandRegistration {
  CommandRegistration(std::string name, AddCommand add);
};

struct RegisteredCommand {
  std::string name;
  AddCommand add;
};
std::vector<RegisteredCommand>& Registry();

/// Distinct exit codes (documented in README).
enum ExitCode {
  kExitOk = 0,
  kExitFailure = 1,    ///< the run finished but some frame x ROI failed
  kExitUsage = 2,      ///< bad flags
  kExitBadConfig = 3,  ///< config invalid (the JSON path is named)
  kExitBadInput = 4,   ///< input missing/corrupt
  kExitBackend = 5,    ///< backend unreachable / sandbox unavailable
  kExitBudget = 6,     ///< backend.budget was reached: stopped cleanly, --resume continues
  kExitInterrupted = 130,
};

}  // namespace roilens::cli
