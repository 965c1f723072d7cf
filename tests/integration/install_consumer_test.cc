// Installs this build tree into a temporary prefix and builds tests/consumer (a separate CMake
// project doing find_package(roilens) + roilens::pipeline) against it, then runs the result.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "testing/paths.h"

namespace roilens {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// The first executable called `name` on PATH ("" when there is none).
std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    fs::path candidate = fs::path(dir) / name;
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec) && access(candidate.c_str(), X_OK) == 0) {
      return candidate.string();
    }
  }
  return {};
}

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct RunResult {
  int exit_code = -1;
  std::string output;
};

// Runs a shell command, stdout and stderr together.
RunResult RunShell(const std::string& command) {
  RunResult r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf;
  while (std::size_t n = fread(buf.data(), 1, buf.size(), pipe)) r.output.append(buf.data(), n);
  int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "roilens-consumer-XXXXXX").string();
    if (mkdtemp(pattern.data())) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(InstallConsumerTest, FindPackageAndLinkAgainstTheInstalledTree) {
  const std::string cmake = FindOnPath("cmake");
  if (cmake.empty()) GTEST_SKIP() << "cmake is not on PATH";
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  const fs::path prefix = tmp.path() / "prefix";
  const fs::path build = tmp.path() / "build";

  auto install = RunShell(Quote(cmake) + " --install " + Quote(testing::BinaryDir()) +
                          " --prefix " + Quote(prefix.string()));
  ASSERT_EQ(install.exit_code, 0) << install.output;
  EXPECT_TRUE(fs::exists(prefix / "include/roilens/client/interactions.h"));
  EXPECT_TRUE(fs::exists(prefix / "include/roilens/client/status.h"));
  bool config_found = false;
  for (const char* libdir : {"lib", "lib64", "lib/x86_64-linux-gnu"}) {
    config_found |= fs::exists(prefix / libdir / "cmake/roilens/roilensConfig.cmake");
  }
  EXPECT_TRUE(config_found) << install.output;

  const std::string ninja = FindOnPath("ninja");
  std::string configure = Quote(cmake) + " -S " + Quote(testing::SourceDir() + "/tests/consumer") +
                          " -B " + Quote(build.string()) + " -DCMAKE_BUILD_TYPE=Release" +
                          " -DCMAKE_PREFIX_PATH=" + Quote(prefix.string()) +
                          // only the installed tree may satisfy find_package
                          " -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON";
  if (!ninja.empty()) configure += " -G Ninja";
  auto configured = RunShell(configure);
  ASSERT_EQ(configured.exit_code, 0) << configured.output;
  EXPECT_THAT(configured.output, HasSubstr("roilens_DIR=" + prefix.string()));

  auto built = RunShell(Quote(cmake) + " --build " + Quote(build.string()));
  ASSERT_EQ(built.exit_code, 0) << built.output;

  auto ran = RunShell(Quote((build / "roilens_consumer").string()));
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_THAT(ran.output, HasSubstr("roilens consumer ok"));
}

}  // namespace
}  // namespace roilens
