// Installs this build tree into a temporary prefix (`cmake --install`) and builds outside CMake
// projects against it, doing find_package(roilens) and nothing else from the roilens tree:
//   tests/consumer          roilens::pipeline (wire model, client factory)
//   tests/consumer_backend  endpoint "local": roilens::backend's embedded backend, and the plugin
//                           facade loading the installed plugin by the package's default path;
//                           both read the first frames of the sample station (`roilens samples`).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "testing/paths.h"
#include "testing/plugin_paths.h"
#include "testing/plugin_support.h"

namespace roilens::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

constexpr int kFrames = 4;  // of the sample station's video: the first answers and cached reuse

class InstallConsumer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work_ = new TempDir("roilens_consumer");
    prefix_ = work_->path() + "/prefix";
    install_ = RunCommand(ShellQuote(GetPluginPaths().cmake) + " --install " +
                          ShellQuote(BinaryDir()) + " --prefix " + ShellQuote(prefix_));
  }
  static void TearDownTestSuite() {
    delete work_;
    work_ = nullptr;
  }
  void SetUp() override { ASSERT_EQ(install_.exit_code, 0) << install_.output; }

  // Configures and builds the outside project tests/<project> against the prefix only.
  static CommandResult Build(const std::string& project, const std::string& build) {
    const auto& paths = GetPluginPaths();
    std::string flags =
        paths.sanitize ? "-fsanitize=address,undefined" : (paths.tsan ? "-fsanitize=thread" : "");
    CommandResult configure = RunCommand(
        ShellQuote(paths.cmake) + " -S " + ShellQuote(SourceDir() + "/tests/" + project) + " -B " +
        ShellQuote(build) + " -G " + ShellQuote(paths.generator) +
        " -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=" + ShellQuote(prefix_) +
        " -DCMAKE_CXX_COMPILER=" + ShellQuote(paths.cxx) +
        // only the installed tree may satisfy find_package
        " -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON" +
        (flags.empty() ? "" : " -DCMAKE_CXX_FLAGS=" + flags));
    if (configure.exit_code != 0) return configure;
    CommandResult built = RunCommand(ShellQuote(paths.cmake) + " --build " + ShellQuote(build));
    built.output = configure.output + built.output;
    return built;
  }

  static TempDir* work_;
  static std::string prefix_;
  static CommandResult install_;
};
TempDir* InstallConsumer::work_ = nullptr;
std::string InstallConsumer::prefix_;
CommandResult InstallConsumer::install_;

TEST_F(InstallConsumer, FindPackageAndLinkThePipeline) {
  const std::string inc = prefix_ + "/" + GetPluginPaths().includedir;
  EXPECT_TRUE(fs::exists(inc + "/roilens/client/interactions.h"));
  EXPECT_TRUE(fs::exists(inc + "/roilens/client/status.h"));
  EXPECT_TRUE(
      fs::exists(prefix_ + "/" + GetPluginPaths().libdir + "/cmake/roilens/roilensConfig.cmake"));

  const std::string build = work_->path() + "/consumer";
  CommandResult built = Build("consumer", build);
  ASSERT_EQ(built.exit_code, 0) << built.output;
  EXPECT_THAT(built.output, HasSubstr("roilens_DIR=" + prefix_));

  CommandResult ran = RunCommand(ShellQuote(build + "/roilens_consumer"));
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_THAT(ran.output, HasSubstr("roilens consumer ok"));
}

// The backend's headers are installed; the evaluator (which needs the scene generator) is not.
TEST_F(InstallConsumer, InstallsTheBackendWithoutTheGenerator) {
  const std::string inc = prefix_ + "/" + GetPluginPaths().includedir;
  const std::string lib = prefix_ + "/" + GetPluginPaths().libdir;
  EXPECT_TRUE(fs::is_regular_file(inc + "/roilens/backend/server.h"));
  EXPECT_TRUE(fs::is_regular_file(inc + "/roilens/backend/local_pipeline.h"));
  EXPECT_TRUE(fs::is_regular_file(lib + "/libroilens_backend.a"));
  EXPECT_FALSE(fs::exists(inc + "/roilens/backend/coder_eval.h"));
  EXPECT_FALSE(fs::exists(inc + "/roilens/samples.h"));
  EXPECT_FALSE(fs::exists(lib + "/libroilens_samples.a"));
}

// Checks the result objects of the sample station's first frames against its config (gauge
// ranges) and ground truth; `who` names the app in failure messages.
void ExpectSaneReadings(const std::vector<json>& results, const std::string& station_dir,
                        const std::string& who) {
  const json config = json::parse(ReadTextFile(station_dir + "/station.json"));
  std::map<std::pair<std::int64_t, std::string>, json> truth;
  for (const std::string& line : ReadLines(station_dir + "/ground_truth.jsonl")) {
    if (line.empty()) continue;
    json t = json::parse(line);
    truth[{t["frame"].get<std::int64_t>(), t["roi"].get<std::string>()}] = t;
  }
  ASSERT_EQ(results.size(), kFrames * config["rois"].size()) << who;
  int fresh = 0;
  for (const json& r : results) {
    SCOPED_TRACE(who + ": " + r.dump());
    const std::int64_t frame = r.at("frame").get<std::int64_t>();
    const std::string roi = r.at("roi").get<std::string>();
    const std::string status = r.at("status").get<std::string>();
    EXPECT_THAT(status, ::testing::AnyOf("ok", "cached"));
    fresh += status == "ok";
    if (frame == 0) {
      EXPECT_EQ(status, "ok");
    }
    const json& want = truth.at({frame, roi});
    for (const json& c : config["rois"]) {
      if (c["name"] != roi) continue;
      if (c["task"] == "read_gauge") {
        ASSERT_TRUE(r.contains("value") && r["value"].is_number());
        const double lo = c["gauge"]["min_value"], hi = c["gauge"]["max_value"];
        const double v = r["value"];
        EXPECT_GE(v, lo);
        EXPECT_LE(v, hi);
        // Within a tenth of the scale of the generator's truth: a reading, not just a number.
        EXPECT_NEAR(v, want["value"].get<double>(), 0.1 * (hi - lo));
      } else {
        ASSERT_TRUE(r.contains("count") && r["count"].is_number_integer());
        EXPECT_NEAR(r["count"].get<double>(), want["count"].get<double>(), 1);
      }
    }
  }
  EXPECT_GE(fresh, static_cast<int>(config["rois"].size())) << who;
}

TEST_F(InstallConsumer, EndpointLocalReadsTheSampleStation) {
  // The sample station: the CLI's generator writes it (not installed, test data only).
  const std::string station = work_->path() + "/station";
  CommandResult samples =
      RunCommand(ShellQuote(CliPath()) + " samples " + ShellQuote(station) + " --frames 10");
  ASSERT_EQ(samples.exit_code, 0) << samples.output;

  const std::string build = work_->path() + "/consumer_backend";
  CommandResult built = Build("consumer_backend", build);
  ASSERT_EQ(built.exit_code, 0) << built.output;
  const std::string installed_plugin =
      prefix_ + "/" + GetPluginPaths().libdir + "/libroilens_plugin.so.1";
  EXPECT_THAT(built.output, HasSubstr("ROILENS_PLUGIN_LIBRARY=" + prefix_));

  const std::string args = " " + ShellQuote(station + "/station.json") + " " +
                           ShellQuote(station + "/station.mp4") + " " + std::to_string(kFrames);
  {
    // roilens::backend::CreatePipeline: endpoint "local" starts the embedded backend.
    CommandResult ran = RunCommand(ShellQuote(build + "/backend_app") + args);
    ASSERT_EQ(ran.exit_code, 0) << ran.output;
    std::vector<json> results;
    json summary;
    std::istringstream lines(ran.output);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("summary ", 0) == 0) {
        summary = json::parse(line.substr(8));
      } else if (!line.empty() && line[0] == '{') {
        results.push_back(json::parse(line));
      }
    }
    ExpectSaneReadings(results, station, "backend_app");
    EXPECT_EQ(summary.value("frames", -1), kFrames) << ran.output;
    EXPECT_EQ(summary.value("errors", -1), 0) << ran.output;
  }
  {
    // The facade with no path and no $ROILENS_PLUGIN_PATH loads the installed plugin.
    CommandResult ran =
        RunCommand("env -u ROILENS_PLUGIN_PATH " + ShellQuote(build + "/plugin_app") + args);
    ASSERT_EQ(ran.exit_code, 0) << ran.output;
    std::vector<json> results;
    std::istringstream lines(ran.output);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("library ", 0) == 0) {
        EXPECT_EQ(fs::canonical(line.substr(8)), fs::canonical(installed_plugin)) << line;
      } else if (line.rfind("package ", 0) == 0) {
        EXPECT_EQ(fs::canonical(line.substr(8)), fs::canonical(installed_plugin)) << line;
      } else if (line.rfind("frame ", 0) == 0) {
        for (const json& r : json::parse(line.substr(6))) results.push_back(r);
      }
    }
    ExpectSaneReadings(results, station, "plugin_app");
  }
}

}  // namespace
}  // namespace roilens::testing
