// Helpers shared by the plugin tests (see plugin_support.h).
#include "testing/plugin_support.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "testing/plugin_paths.h"

namespace roilens::testing {

const roilens_plugin_api* PluginApi() {
  static const roilens_plugin_api* api = []() -> const roilens_plugin_api* {
    const std::string& path = GetPluginPaths().plugin;
    void* dl = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (dl == nullptr) return nullptr;
    auto init = reinterpret_cast<roilens_plugin_init_fn>(::dlsym(dl, ROILENS_PLUGIN_INIT_SYMBOL));
    if (init == nullptr) return nullptr;
    return init(ROILENS_PLUGIN_ABI_VERSION, ROILENS_PLUGIN_API_VERSION, nullptr);
  }();
  if (api == nullptr)
    ADD_FAILURE() << "cannot load the plugin '" << GetPluginPaths().plugin
                  << "' (built? see <build>/plugin_paths.txt): " << (::dlerror() ?: "");
  return api;
}

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = ::pclose(pipe);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.exit_code = 128 + WTERMSIG(status);
  return result;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

TempDir::TempDir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/" + prefix + "_XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed for " << pattern;
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(line);
  return lines;
}

void WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string EchoStationConfig(int rois, const std::string& mode) {
  nlohmann::json list = nlohmann::json::array();
  for (int i = 0; i < rois; ++i) {
    list.push_back({{"name", "roi" + std::to_string(i)},
                    {"rect", {20 + (i % 3) * 200, 20 + (i / 3) * 170, 180, 150}},
                    {"task", "count"},
                    {"object", "bolts"}});
  }
  nlohmann::json config = {{"backend", {{"endpoint", "local"}}},
                           {"pipeline", {{"mode", mode}}},
                           {"rois", list},
                           {"merge", {{"mode", "replace"}, {"labels", true}}}};
  return config.dump(2);
}

}  // namespace roilens::testing
