// `roilens serve` as a process: announces its address in one line, answers on it, stops cleanly
// on SIGTERM, and refuses a non-loopback host without keys.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "httplib.h"
#include "testing/paths.h"

namespace {

struct Child {
  pid_t pid = -1;
  FILE* out = nullptr;  ///< the child's stdout + stderr
};

Child Spawn(const std::vector<std::string>& args) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  return {pid, fdopen(fds[0], "r")};
}

std::string ReadLine(FILE* f) {
  std::string line;
  for (int c; (c = fgetc(f)) != EOF && c != '\n';) line.push_back(static_cast<char>(c));
  return line;
}

std::string ReadAll(FILE* f) {
  std::string text;
  for (int c; (c = fgetc(f)) != EOF;) text.push_back(static_cast<char>(c));
  return text;
}

int WaitExit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(BackendServeTest, ServesUntilSigterm) {
  const std::string cli = roilens::testing::CliPath();
  if (cli.empty()) GTEST_SKIP() << "the roilens CLI is not built";
  Child child = Spawn({cli, "serve", "--port", "0", "--coder", "echo", "--latency-ms", "1"});
  ASSERT_GT(child.pid, 0);
  const std::string line = ReadLine(child.out);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      line, m, std::regex(R"(listening on http://127\.0\.0\.1:(\d+) \(coder=echo)")))
      << line;
  httplib::Client client("127.0.0.1", std::stoi(m[1]));
  auto res = client.Post("/v1beta/interactions", R"({"model":"m","input":"hello serve"})",
                         "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("echo: hello serve"), std::string::npos) << res->body;

  kill(child.pid, SIGTERM);
  EXPECT_EQ(WaitExit(child.pid), 0);
  EXPECT_NE(ReadAll(child.out).find("roilens serve: stopped"), std::string::npos);
  fclose(child.out);
}

TEST(BackendServeTest, RefusesPublicHostWithoutKeys) {
  const std::string cli = roilens::testing::CliPath();
  if (cli.empty()) GTEST_SKIP() << "the roilens CLI is not built";
  Child child = Spawn({"/usr/bin/env", "-u", "ROILENS_SERVER_KEYS", cli, "serve", "--host",
                       "0.0.0.0", "--port", "0", "--coder", "echo"});
  ASSERT_GT(child.pid, 0);
  const std::string output = ReadAll(child.out);
  EXPECT_EQ(WaitExit(child.pid), 5) << output;  // kExitBackend
  EXPECT_NE(output.find("without API keys"), std::string::npos) << output;
  fclose(child.out);
}

TEST(BackendServeTest, KeysFromTheEnvironmentAreRequired) {
  const std::string cli = roilens::testing::CliPath();
  if (cli.empty()) GTEST_SKIP() << "the roilens CLI is not built";
  Child child = Spawn({"/usr/bin/env", "ROILENS_SERVER_KEYS=k1,k2", cli, "serve", "--port", "0",
                       "--coder", "echo"});
  ASSERT_GT(child.pid, 0);
  const std::string line = ReadLine(child.out);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(line, m, std::regex(R"(127\.0\.0\.1:(\d+))"))) << line;
  EXPECT_NE(line.find("api keys required"), std::string::npos) << line;
  EXPECT_EQ(line.find("k1"), std::string::npos) << "keys must never be printed: " << line;
  httplib::Client client("127.0.0.1", std::stoi(m[1]));
  const std::string body = R"({"model":"m","input":"x"})";
  auto without = client.Post("/v1beta/interactions", body, "application/json");
  ASSERT_TRUE(without);
  EXPECT_EQ(without->status, 403);
  auto with = client.Post("/v1beta/interactions", httplib::Headers{{"x-goog-api-key", "k2"}}, body,
                          "application/json");
  ASSERT_TRUE(with);
  EXPECT_EQ(with->status, 200);
  kill(child.pid, SIGINT);
  EXPECT_EQ(WaitExit(child.pid), 0);
  fclose(child.out);
}

// Regression: ROILENS_SERVER_KEYS=", ," configured a key of one blank, so a public bind was
// accepted and `?key=%20` authenticated.
TEST(BackendServeTest, BlankKeysFromTheEnvironmentAreNoKeys) {
  const std::string cli = roilens::testing::CliPath();
  if (cli.empty()) GTEST_SKIP() << "the roilens CLI is not built";
  Child child = Spawn({"/usr/bin/env", "ROILENS_SERVER_KEYS=, ,", cli, "serve", "--host", "0.0.0.0",
                       "--port", "0", "--coder", "echo"});
  ASSERT_GT(child.pid, 0);
  std::string output = ReadLine(child.out);
  if (output.find("listening") != std::string::npos) kill(child.pid, SIGTERM);  // the bug
  output += "\n" + ReadAll(child.out);
  EXPECT_EQ(WaitExit(child.pid), 5) << output;  // kExitBackend
  EXPECT_NE(output.find("without API keys"), std::string::npos) << output;
  fclose(child.out);
}

// Regression: "k1, k2" configured the key " k2", so k2 was refused.
TEST(BackendServeTest, KeysFromTheEnvironmentAreTrimmed) {
  const std::string cli = roilens::testing::CliPath();
  if (cli.empty()) GTEST_SKIP() << "the roilens CLI is not built";
  Child child = Spawn({"/usr/bin/env", "ROILENS_SERVER_KEYS=k1, k2 ,", cli, "serve", "--port", "0",
                       "--coder", "echo"});
  ASSERT_GT(child.pid, 0);
  const std::string line = ReadLine(child.out);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(line, m, std::regex(R"(127\.0\.0\.1:(\d+))"))) << line;
  httplib::Client client("127.0.0.1", std::stoi(m[1]));
  const std::string body = R"({"model":"m","input":"x"})";
  for (const std::string key : {"k1", "k2"}) {
    auto res = client.Post("/v1beta/interactions", httplib::Headers{{"x-goog-api-key", key}}, body,
                           "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << key;
  }
  auto blank = client.Post("/v1beta/interactions?key=%20", body, "application/json");
  ASSERT_TRUE(blank);
  EXPECT_EQ(blank->status, 403);
  kill(child.pid, SIGTERM);
  EXPECT_EQ(WaitExit(child.pid), 0);
  fclose(child.out);
}

}  // namespace
