// Shared helpers for the sandbox tests (see sandbox_fixture.h).
#include "testing/sandbox_fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <mutex>

namespace roilens::testing {
namespace {
std::once_flag g_once;
std::unique_ptr<backend::Sandbox> g_sandbox;
std::string g_error;
}  // namespace

std::string ReadProcFile(const std::string& path) {
  // A process that exits between open and read fails the read with ESRCH, and libstdc++'s
  // filebuf throws on a read error: POSIX calls, keeping what was read.
  std::string out;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  close(fd);
  return out;
}

backend::SandboxOptions SandboxTestOptions() {
  backend::SandboxOptions o;
  o.wall_limit = std::chrono::milliseconds(20000);
  o.memory_limit_bytes = 1LL << 30;
  o.job_dir_limit_bytes = 32LL << 20;
  o.output_limit_bytes = 256 << 10;
  o.max_processes = 16;
  o.warm_workers = 2;
  o.max_workers = 3;
  return o;
}

backend::Sandbox* SharedSandbox() {
  std::call_once(g_once, [] {
    auto created = backend::Sandbox::Create(SandboxTestOptions());
    if (created.ok()) {
      g_sandbox = std::move(*created);
    } else {
      g_error = created.status().ToString();
    }
  });
  return g_sandbox.get();
}

std::string SandboxCreateError() { return g_error; }

std::vector<int> HostProcessesWith(const std::string& marker) {
  std::vector<int> found;
  DIR* dir = opendir("/proc");
  if (!dir) return found;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    const std::string base = std::string("/proc/") + e->d_name;
    if (ReadProcFile(base + "/cmdline").find(marker) != std::string::npos ||
        ReadProcFile(base + "/environ").find(marker) != std::string::npos) {
      found.push_back(static_cast<int>(pid));
    }
  }
  closedir(dir);
  return found;
}

namespace {
/// Parent PID from /proc/<pid>/stat ("pid (comm) state ppid ..."; comm may hold spaces).
long ParentOf(long pid) {
  const std::string stat = ReadProcFile("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  char state = 0;
  long ppid = 0;
  if (std::sscanf(stat.c_str() + close + 1, " %c %ld", &state, &ppid) != 2) return 0;
  return ppid;
}
}  // namespace

std::vector<int> DescendantProcessesWith(const std::string& marker) {
  std::vector<int> mine;
  const long self = getpid();
  for (int pid : HostProcessesWith(marker)) {
    // Walk up the parent chain; other test executables (ctest -j) have sandboxes of their own.
    for (long p = pid; p > 1; p = ParentOf(p)) {
      if (p == self) {
        mine.push_back(pid);
        break;
      }
    }
  }
  return mine;
}

backend::SandboxJob MakeJob(std::string code, std::chrono::milliseconds wall) {
  backend::SandboxJob job;
  job.code = std::move(code);
  job.wall_limit = wall;
  return job;
}

backend::SandboxJob HealthyJob(int n) {
  return MakeJob("import numpy as np\nprint('alive', int(np.arange(" + std::to_string(n) +
                 ").sum()))\n");
}

bool IsHealthyResult(const backend::SandboxResult& r, int n) {
  return r.ok && r.stdout_text == "alive " + std::to_string(n * (n - 1) / 2) + "\n";
}

}  // namespace roilens::testing
