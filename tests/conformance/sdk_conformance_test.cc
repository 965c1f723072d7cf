// Drives the local backend with the official Gemini JS SDK: starts the backends in-process on
// 127.0.0.1 port 0 and runs tests/conformance/*.test.mjs with node's built-in test runner.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "roilens/backend/server.h"
#include "testing/paths.h"

namespace roilens::backend {
namespace {

namespace fs = std::filesystem;

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  std::size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::unique_ptr<LocalBackend> Start(BackendOptions options) {
  auto backend = LocalBackend::Start(std::move(options));
  EXPECT_TRUE(backend.ok()) << backend.status();
  return backend.ok() ? std::move(*backend) : nullptr;
}

BackendOptions Echo() {
  BackendOptions options;
  options.coder = "echo";
  options.threads = 4;
  return options;
}

TEST(SdkConformanceTest, OfficialJsSdkAgainstLocalBackend) {
  const fs::path dir = fs::path(roilens::testing::SourceDir()) / "tests" / "conformance";
  if (RunCommand("node --version").exit_code != 0) {
    GTEST_SKIP() << "node is not installed (scripts/setup.sh installs nodejs)";
  }
  if (!fs::exists(dir / "node_modules" / "@google" / "genai" / "package.json")) {
    GTEST_SKIP() << "the pinned SDK is not installed: run `npm ci` in " << dir
                 << " (scripts/setup.sh does)";
  }

  auto options = Echo();
  options.api_keys = {"conformance-key"};
  auto echo = Start(options);
  ASSERT_TRUE(echo);

  std::vector<std::unique_ptr<LocalBackend>> faulty;
  nlohmann::json fault_urls = nlohmann::json::object();
  for (const char* kind : {"429", "500", "503", "reset", "garbage"}) {
    auto fault_options = Echo();
    fault_options.faults.rate = 1.0;
    fault_options.faults.kinds = {kind};
    fault_options.faults.retry_delay = std::chrono::milliseconds(100);
    faulty.push_back(Start(fault_options));
    ASSERT_TRUE(faulty.back());
    fault_urls[kind] = faulty.back()->base_url();
  }

  // The image + code case needs the real coder and a working sandbox; without one it is skipped
  // inside the JS suite (with the reason printed here).
  BackendOptions cv_options;
  cv_options.coder = "cv";
  cv_options.threads = 2;
  auto cv = Start(cv_options);
  ASSERT_TRUE(cv);
  const bool cv_usable = cv->Describe().find("UNAVAILABLE") == std::string::npos;
  if (!cv_usable) std::cout << "[ note ] CV case skipped: " << cv->Describe() << "\n";

  std::string files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 9 && name.ends_with(".test.mjs")) files += " " + ShellQuote(name);
  }
  ASSERT_FALSE(files.empty()) << "no *.test.mjs in " << dir;

  std::string env =
      "ROILENS_BASE_URL=" + ShellQuote(echo->base_url()) +
      " ROILENS_API_KEY=conformance-key ROILENS_FAULT_URLS=" + ShellQuote(fault_urls.dump());
  if (cv_usable) env += " ROILENS_CV_BASE_URL=" + ShellQuote(cv->base_url());
  // No ambient key or base URL may leak into the SDK from the environment running the tests.
  const std::string command = "cd " + ShellQuote(dir.string()) +
                              " && env -u GEMINI_API_KEY -u GOOGLE_API_KEY -u "
                              "GOOGLE_GEMINI_BASE_URL " +
                              env + " node --test --test-reporter=spec" + files;
  const CommandResult result = RunCommand(command);
  EXPECT_EQ(result.exit_code, 0) << "node --test failed:\n" << result.output;
  // The spec reporter ends with "ℹ tests N ... ℹ fail 0"; an empty run must not pass.
  EXPECT_NE(result.output.find("fail 0"), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("tests 0\n"), std::string::npos) << result.output;
  if (!::testing::Test::HasFailure()) std::cout << result.output;
}

}  // namespace
}  // namespace roilens::backend
