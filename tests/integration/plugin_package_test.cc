// Packaging: `cmake --install` of this build into a temporary prefix, then outside consumers built
// against that tree only: samples/cpp_app through find_package(roilens), a program linking the
// pipeline through `pkg-config roilens`, and one loading the installed plugin through
// `pkg-config roilens-plugin`.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "testing/paths.h"
#include "testing/plugin_paths.h"
#include "testing/plugin_support.h"

namespace roilens::testing {
namespace {

namespace fs = std::filesystem;

class PluginPackage : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work_ = new TempDir("roilens_package");
    prefix_ = work_->path() + "/prefix";
    const auto& paths = GetPluginPaths();
    install_ = RunCommand(ShellQuote(paths.cmake) + " --install " + ShellQuote(BinaryDir()) +
                          " --prefix " + ShellQuote(prefix_));
  }
  static void TearDownTestSuite() {
    delete work_;
    work_ = nullptr;
  }
  void SetUp() override { ASSERT_EQ(install_.exit_code, 0) << install_.output; }

  static std::string LibDir() { return prefix_ + "/" + GetPluginPaths().libdir; }
  static std::string PkgConfig(const std::string& args) {
    return "PKG_CONFIG_PATH=" + ShellQuote(LibDir() + "/pkgconfig") + " pkg-config " + args;
  }

  static TempDir* work_;
  static std::string prefix_;
  static CommandResult install_;
};
TempDir* PluginPackage::work_ = nullptr;
std::string PluginPackage::prefix_;
CommandResult PluginPackage::install_;

TEST_F(PluginPackage, InstallsTheVersionedLibraryHeadersAndConfigs) {
  const std::string lib = LibDir();
  // libroilens_plugin.so.1 (the name dlopen asks for) is a link to the fully versioned file.
  EXPECT_TRUE(fs::is_symlink(lib + "/libroilens_plugin.so.1"));
  EXPECT_TRUE(fs::is_regular_file(fs::canonical(lib + "/libroilens_plugin.so.1")));
  EXPECT_TRUE(fs::exists(lib + "/libroilens_plugin.so"));
  const std::string inc = prefix_ + "/" + GetPluginPaths().includedir;
  EXPECT_TRUE(fs::is_regular_file(inc + "/roilens_plugin/roilens_plugin.h"));
  EXPECT_TRUE(fs::is_regular_file(inc + "/roilens_plugin/roilens_plugin.hpp"));
  EXPECT_TRUE(fs::is_regular_file(inc + "/roilens/stages/pipeline.h"));
  EXPECT_TRUE(fs::is_regular_file(lib + "/pkgconfig/roilens.pc"));
  EXPECT_TRUE(fs::is_regular_file(lib + "/pkgconfig/roilens-plugin.pc"));
  EXPECT_TRUE(fs::is_regular_file(lib + "/cmake/roilens/roilensConfig.cmake"));
  EXPECT_TRUE(fs::is_regular_file(lib + "/cmake/roilens/roilensTargets.cmake"));
}

// samples/cpp_app/CMakeLists.txt is an outside project: find_package(roilens) from the prefix.
TEST_F(PluginPackage, SampleAppBuildsAgainstTheInstalledTree) {
  const auto& paths = GetPluginPaths();
  const std::string build = work_->path() + "/app_build";
  auto configure =
      RunCommand(ShellQuote(paths.cmake) + " -S " + ShellQuote(SourceDir() + "/samples/cpp_app") +
                 " -B " + ShellQuote(build) + " -G " + ShellQuote(paths.generator) +
                 " -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=" + ShellQuote(prefix_) +
                 " -DCMAKE_CXX_COMPILER=" + ShellQuote(paths.cxx) +
                 (paths.sanitize ? " -DCMAKE_CXX_FLAGS=-fsanitize=address,undefined" : ""));
  ASSERT_EQ(configure.exit_code, 0) << configure.output;
  auto compile = RunCommand(ShellQuote(paths.cmake) + " --build " + ShellQuote(build));
  ASSERT_EQ(compile.exit_code, 0) << compile.output;

  const std::string app = build + "/roilens_sample_app";
  auto help = RunCommand(ShellQuote(app) + " --help");
  EXPECT_EQ(help.exit_code, 0) << help.output;
  EXPECT_NE(help.output.find("usage: roilens_sample_app"), std::string::npos) << help.output;

  // Its default plugin is the installed one: a session starts (config accepted, embedded backend
  // up), then the missing video is reported with the input exit code.
  const std::string config = work_->path() + "/station.json";
  WriteTextFile(config, EchoStationConfig(1));
  auto run = RunCommand("env -u ROILENS_PLUGIN_PATH " + ShellQuote(app) + " " +
                        ShellQuote(work_->path() + "/missing.mp4") + " " + ShellQuote(config) +
                        " --coder echo");
  EXPECT_EQ(run.exit_code, 4) << run.output;
  EXPECT_NE(run.output.find("cannot open video"), std::string::npos) << run.output;
}

// pkg-config roilens: a program linking the static pipeline library parses a station config.
TEST_F(PluginPackage, PkgConfigRoilensLinksThePipeline) {
  auto cflags = RunCommand(PkgConfig("--cflags --libs roilens"));
  ASSERT_EQ(cflags.exit_code, 0) << cflags.output;
  const std::string src = work_->path() + "/uses_pipeline.cc";
  WriteTextFile(src, R"(#include <roilens/config/config.h>
#include <cstdio>
int main() {
  auto c = roilens::ParseStationConfig(R"j({"rois": [{"name": "a", "rect": [0, 0, 8, 8],
                                            "task": "count", "object": "bolts"}]})j");
  if (!c.ok()) { std::puts(c.status().ToString().c_str()); return 1; }
  std::printf("rois=%zu first=%s\n", c->rois.size(), c->rois[0].name.c_str());
  return 0;
}
)");
  const std::string exe = work_->path() + "/uses_pipeline";
  const auto& paths = GetPluginPaths();
  auto compile =
      RunCommand(ShellQuote(paths.cxx) + " -std=c++20 " +
                 (paths.sanitize ? "-fsanitize=address,undefined " : "") + ShellQuote(src) +
                 " -o " + ShellQuote(exe) + " $(" + PkgConfig("--cflags --libs roilens") + ")");
  ASSERT_EQ(compile.exit_code, 0) << compile.output;
  auto run = RunCommand(ShellQuote(exe));
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output, "rois=1 first=a\n");
}

// pkg-config roilens-plugin: a C program (no C++ at all) loads the installed plugin by the path
// pkg-config gives and negotiates ABI 1.
TEST_F(PluginPackage, PkgConfigRoilensPluginServesACProgram) {
  auto dir = RunCommand(PkgConfig("--variable=plugindir roilens-plugin"));
  ASSERT_EQ(dir.exit_code, 0) << dir.output;
  std::string plugindir = dir.output.substr(0, dir.output.find('\n'));
  EXPECT_EQ(fs::canonical(plugindir), fs::canonical(LibDir()));

  const std::string src = work_->path() + "/loads_plugin.c";
  // It also runs a session, unloads the library (dlclose after destroy) and loads it again.
  WriteTextFile(src, R"(#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <roilens_plugin/roilens_plugin.h>
static const char* kConfig =
    "{\"rois\": [{\"name\": \"a\", \"rect\": [0, 0, 32, 32], \"task\": \"count\","
    " \"object\": \"bolts\"}]}";
static int RunOnce(const char* path, int round) {
  void* dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!dl) { printf("dlopen: %s\n", dlerror()); return 1; }
  roilens_plugin_init_fn init = (roilens_plugin_init_fn)dlsym(dl, ROILENS_PLUGIN_INIT_SYMBOL);
  roilens_init_error e;
  if (init(2, 1, &e) != NULL) return 2;
  const roilens_plugin_api* api = init(ROILENS_PLUGIN_ABI_VERSION, ROILENS_PLUGIN_API_VERSION, &e);
  if (!api) { printf("%s\n", e.message); return 3; }
  roilens_handle* h = NULL;
  if (api->create(kConfig, "{\"coder\": \"echo\"}", &h) != ROILENS_OK) {
    printf("create: %s\n", api->last_error());
    return 4;
  }
  static unsigned char pixels[64 * 64 * 3];
  memset(pixels, 100, sizeof pixels);
  if (api->submit(h, pixels, 64, 64, 64 * 3, 0, 0.0) != ROILENS_OK) return 5;
  if (api->flush(h) != ROILENS_OK) return 6;
  roilens_frame_out out;
  if (api->take(h, -1, &out) != ROILENS_OK) return 7;
  int rois = strstr(out.results_json, "\"roi\":\"a\"") != NULL;
  api->frame_release(&out);
  if (api->take(h, -1, &out) != ROILENS_END) return 8;
  if (api->destroy(h) != ROILENS_OK) return 9;
  printf("round=%d abi=%d roi_a=%d refused=\"%s\"\n", round, api->abi_version, rois, e.message);
  return dlclose(dl) == 0 ? 0 : 10;
}
int main(int argc, char** argv) {
  for (int round = 0; round < 2; ++round) {
    int rc = RunOnce(argv[1], round);
    if (rc != 0) return rc;
  }
  return 0;
}
)");
  const std::string exe = work_->path() + "/loads_plugin";
  const bool sanitize = GetPluginPaths().sanitize;
  auto compile = RunCommand(std::string("cc ") + (sanitize ? "-fsanitize=address,undefined " : "") +
                            ShellQuote(src) + " -o " + ShellQuote(exe) + " $(" +
                            PkgConfig("--cflags --libs roilens-plugin") + ")");
  ASSERT_EQ(compile.exit_code, 0) << compile.output;
  auto run = RunCommand(ShellQuote(exe) + " " + ShellQuote(plugindir + "/libroilens_plugin.so.1"));
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output,
            "round=0 abi=1 roi_a=1 refused=\"roilens plugin ABI 1, caller asked for ABI 2\"\n"
            "round=1 abi=1 roi_a=1 refused=\"roilens plugin ABI 1, caller asked for ABI 2\"\n");
}

}  // namespace
}  // namespace roilens::testing
