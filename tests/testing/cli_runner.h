// Runs the built roilens CLI as a child process (end-to-end tests of `roilens run`).
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace roilens::testing {

struct CliResult {
  int exit_code = -1;  ///< -1 when the child did not exit normally
  std::string out, err;
};

/// Runs `roilens ARGS...` to completion, capturing stdout and stderr.
CliResult RunCli(const std::vector<std::string>& args);

/// Runs `roilens ARGS...` with stdout and stderr on a pseudo-terminal (as a user at a terminal
/// sees it); `out` holds everything written to the terminal, `err` stays empty.
CliResult RunCliOnTerminal(const std::vector<std::string>& args);

/// Starts `roilens ARGS...` without waiting (stdout/stderr to the given files); returns its pid.
pid_t SpawnCli(const std::vector<std::string>& args, const std::string& out_path,
               const std::string& err_path);

/// Waits for a child started by SpawnCli; returns its exit code, or -signal when killed.
int WaitChild(pid_t pid);

/// Whole file as text ("" when missing).
std::string ReadFileText(const std::string& path);

/// A JSON-lines file (results.jsonl, alarms.jsonl), one value per non-empty line; throws on a
/// line that is not JSON. Empty when the file is missing.
std::vector<nlohmann::json> ReadJsonLines(const std::string& path);

}  // namespace roilens::testing
