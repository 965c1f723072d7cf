#include "testing/paths.h"

#include <unistd.h>

#include <cstdlib>
#include <mutex>

#ifndef ROILENS_CLI_PATH
#define ROILENS_CLI_PATH ""
#endif

namespace roilens::testing {
namespace fs = std::filesystem;

std::string SourceDir() { return ROILENS_SOURCE_DIR; }
std::string BinaryDir() { return ROILENS_BINARY_DIR; }
std::string CliPath() { return ROILENS_CLI_PATH; }

namespace {
fs::path& ScratchRoot() {
  static fs::path root;
  return root;
}
pid_t& ScratchOwner() {
  static pid_t owner = 0;
  return owner;
}
void RemoveScratchRoot() {
  // Only the process that made it: a forked child that exits must not pull it from under us.
  if (ScratchOwner() != ::getpid()) return;
  const char* keep = std::getenv("ROILENS_KEEP_TEST_FILES");
  if (keep && *keep && std::string(keep) != "0") return;
  std::error_code ec;
  fs::remove_all(ScratchRoot(), ec);
}
}  // namespace

fs::path ScratchDir(const std::string& name) {
  static std::once_flag once;
  std::call_once(once, [] {
    std::string pattern = (fs::temp_directory_path() / "roilens-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    ScratchRoot() = pattern;
    ScratchOwner() = ::getpid();
    std::atexit(RemoveScratchRoot);
  });
  const fs::path dir = ScratchRoot() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}
}  // namespace roilens::testing
