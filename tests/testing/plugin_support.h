// Helpers shared by the plugin tests: loading the built plugin's C table, running a command and
// capturing its output, temporary directories, a small station config on the echo coder.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "roilens_plugin/roilens_plugin.h"

namespace roilens::testing {

/// The built plugin, dlopen'ed once per process (never unloaded), and its ABI 1 table.
/// Fails the calling test (ADD_FAILURE) and returns nullptr when it cannot be loaded.
const roilens_plugin_api* PluginApi();

struct CommandResult {
  int exit_code = -1;  ///< the process's exit status; 128 + signal when killed by one
  std::string output;  ///< stdout and stderr together
};
/// Runs `command` through /bin/sh with stderr merged into stdout.
CommandResult RunCommand(const std::string& command);
/// Quotes `s` for /bin/sh.
std::string ShellQuote(const std::string& s);

/// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "roilens_plugin_test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadTextFile(const std::string& path);
std::vector<std::string> ReadLines(const std::string& path);
void WriteTextFile(const std::string& path, const std::string& text);

/// A station config for 640x360 frames with `rois` count ROIs (names "roi0", "roi1", ...) on the
/// embedded local backend; use with plugin options {"coder":"echo"}.
std::string EchoStationConfig(int rois = 2, const std::string& mode = "batch");

}  // namespace roilens::testing
