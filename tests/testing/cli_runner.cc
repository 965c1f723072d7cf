// Child-process runner for the roilens CLI.
#include "testing/cli_runner.h"

#include <fcntl.h>
#include <pty.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "testing/paths.h"

extern char** environ;

namespace roilens::testing {

std::string ReadFileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<nlohmann::json> ReadJsonLines(const std::string& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  std::string text;
  while (std::getline(in, text)) {
    if (!text.empty()) lines.push_back(nlohmann::json::parse(text));
  }
  return lines;
}

namespace {
// `roilens ARGS...` for exec: the strings, and the NULL-terminated pointers into them.
struct CliArgv {
  explicit CliArgv(const std::vector<std::string>& args) : strings{CliPath()} {
    strings.insert(strings.end(), args.begin(), args.end());
    for (auto& s : strings) pointers.push_back(s.data());
    pointers.push_back(nullptr);
  }
  CliArgv(const CliArgv&) = delete;  // pointers point into this object's strings
  CliArgv& operator=(const CliArgv&) = delete;
  std::vector<std::string> strings;
  std::vector<char*> pointers;
};
}  // namespace

pid_t SpawnCli(const std::vector<std::string>& args, const std::string& out_path,
               const std::string& err_path) {
  CliArgv argv(args);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv.pointers[0], &actions, nullptr, argv.pointers.data(), environ) != 0)
    pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

int WaitChild(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1000;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1000;
}

CliResult RunCli(const std::vector<std::string>& args) {
  char out_template[] = "/tmp/roilens-cli-out-XXXXXX";
  char err_template[] = "/tmp/roilens-cli-err-XXXXXX";
  const int out_fd = mkstemp(out_template);
  const int err_fd = mkstemp(err_template);
  if (out_fd >= 0) close(out_fd);
  if (err_fd >= 0) close(err_fd);
  CliResult result;
  const pid_t pid = SpawnCli(args, out_template, err_template);
  if (pid > 0) {
    const int code = WaitChild(pid);
    result.exit_code = code >= 0 ? code : -1;
  }
  result.out = ReadFileText(out_template);
  result.err = ReadFileText(err_template);
  unlink(out_template);
  unlink(err_template);
  return result;
}

CliResult RunCliOnTerminal(const std::vector<std::string>& args) {
  CliArgv argv(args);
  CliResult result;
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0) return result;
  if (pid == 0) {
    execv(argv.pointers[0], argv.pointers.data());
    _exit(127);
  }
  char buffer[4096];
  for (;;) {  // until the child closes the terminal (read fails with EIO once it has exited)
    const ssize_t n = read(master, buffer, sizeof buffer);
    if (n > 0) {
      result.out.append(buffer, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  close(master);
  const int code = WaitChild(pid);
  result.exit_code = code >= 0 ? code : -1;
  return result;
}

}  // namespace roilens::testing
