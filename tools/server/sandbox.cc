// Sandbox: runs untrusted Python under bubblewrap in a pool of warm fork servers
// (py/sandbox_worker.py). This file owns the host side: the bwrap command line, the seccomp
// filter, the worker pool, the wire protocol to the workers, the wall-clock backstop and the
// start-up self-test.
#include "roilens/backend/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

extern const char* const roilens_embedded_sandbox_worker;

namespace roilens::backend {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr uid_t kNobody = 65534;
/// The supervisor and PID 1 of the sandbox share the job's uid and so count against its
/// RLIMIT_NPROC; the job gets max_processes on top of them.
constexpr int kSupervisorTasks = 2;
constexpr int kMaxImages = 16;
constexpr std::int64_t kMaxImageBytes = 16 << 20;
constexpr std::int64_t kScratchTmpBytes = 16 << 20;
/// How long a worker may take to start and pre-import (cold page cache on a busy 2-core box).
constexpr std::chrono::seconds kStartupTimeout{120};
/// Beyond the job's own wall limit, time for the supervisor to kill, collect and report.
constexpr std::chrono::seconds kReportGrace{10};
/// The fd bwrap reads the seccomp program from (0-3: channel, diagnostics, --info-fd).
constexpr int kSeccompFd = 4;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string FormatSeconds(std::chrono::milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

std::string FormatMiB(std::int64_t bytes) {
  char buf[32];
  if (bytes % (1 << 20) == 0) {
    std::snprintf(buf, sizeof buf, "%lld MiB", static_cast<long long>(bytes >> 20));
  } else {
    std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1 << 20));
  }
  return buf;
}

/// Absolute path of `name` searched on PATH (or `name` itself when it has a slash).
std::optional<std::string> FindExecutable(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) == 0) return name;
    return std::nullopt;
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return std::nullopt;
}

bool ValidInputName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.size() > 255) return false;
  return name.find('/') == std::string::npos && name.find('\0') == std::string::npos;
}

/// Syscalls refused with EPERM in the sandbox. None is needed by numpy/OpenCV/matplotlib code;
/// each widens what a job can reach in the kernel: new namespaces (in a fresh user namespace the
/// job would hold every capability again, and with them mount, netfilter, ...), mounts and root
/// changes, tracing or reading other processes, keyrings, BPF, perf events, kernel modules,
/// kexec, reboot, swap, process accounting, file handles and userfaultfd (a staple of kernel
/// race exploits). A libseccomp that does not know one of these cannot build the filter.
// clang-format off
constexpr const char* kRefusedSyscalls[] = {
    "unshare", "setns", "mount", "umount", "umount2", "pivot_root", "chroot",
    "ptrace", "process_vm_readv", "process_vm_writev",
    "bpf", "keyctl", "add_key", "request_key", "perf_event_open",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "swapon", "swapoff", "acct", "open_by_handle_at", "userfaultfd"};
/// Refused too, where libseccomp is new enough to know them: the new mount API (which needs
/// capabilities a job lacks anyway), cross-process pidfd calls, and io_uring (a large attack
/// surface of its own).
constexpr const char* kRefusedWhereKnown[] = {
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    "pidfd_getfd", "process_madvise", "io_uring_setup", "io_uring_enter", "io_uring_register"};
// clang-format on

/// Namespace flags refused in clone(). CLONE_NEWTIME is absent on purpose: it shares its bit
/// with the exit signal (CSIGNAL) in clone(), so the kernel takes it only from unshare/clone3,
/// which are refused whole.
constexpr unsigned long kCloneNamespaceFlags[] = {CLONE_NEWUSER,  CLONE_NEWNS,  CLONE_NEWPID,
                                                  CLONE_NEWNET,   CLONE_NEWUTS, CLONE_NEWIPC,
                                                  CLONE_NEWCGROUP};
#if defined(__s390__) || defined(__s390x__)
constexpr unsigned kCloneFlagsArg = 1;  // s390 swaps clone's first two arguments
#else
constexpr unsigned kCloneFlagsArg = 0;
#endif

/// The sandbox's seccomp filter as a classic BPF program (what bwrap --seccomp reads).
struct SeccompFilter {
  std::string program;  ///< struct sock_filter[] as seccomp_export_bpf writes it
  int refused = 0;      ///< syscalls with a refusing rule on this architecture
};

/// Builds the filter with libseccomp: default allow; the calls above refused with EPERM; clone
/// with any namespace flag refused with EPERM; clone3 (whose flags sit in memory a filter
/// cannot read) refused with ENOSYS so that glibc falls back to clone; personality() only as a
/// query. Only the native ABI is in the filter, so a syscall through another one (i386 int 0x80,
/// x32) kills the process. Any failure is a kFailedPrecondition: no code runs without it.
StatusOr<SeccompFilter> BuildSeccompFilter() {
  auto failed = [](const std::string& what, int rc) {
    return FailedPreconditionError("sandbox seccomp filter could not be built (" + what + ": " +
                                   std::strerror(-rc) + "); refusing to run code without it");
  };
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return failed("seccomp_init", -ENOMEM);
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> release(ctx, seccomp_release);
  // Kill the whole process, not just the thread, on a foreign-ABI syscall (kernel 4.14+; older
  // kernels keep libseccomp's default, which kills the thread). A binary tree of syscall
  // numbers keeps the cost per allowed syscall logarithmic (libseccomp 2.5+); both optional.
  seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  SeccompFilter filter;
  std::set<int> refused;
  auto refuse = [&](const char* name, std::uint32_t action, unsigned count,
                    const scmp_arg_cmp* args, bool required = true) -> Status {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR && required) {
      return failed(std::string("libseccomp does not know syscall ") + name, -EINVAL);
    }
    if (nr < 0) return OkStatus();  // not a syscall of this architecture: nothing to refuse
    const int rc = seccomp_rule_add_array(ctx, action, nr, count, args);
    if (rc != 0) return failed(std::string("rule for ") + name, rc);
    refused.insert(nr);
    return OkStatus();
  };
  for (const char* name : kRefusedSyscalls) {
    Status s = refuse(name, SCMP_ACT_ERRNO(EPERM), 0, nullptr);
    if (!s.ok()) return s;
  }
  for (const char* name : kRefusedWhereKnown) {
    Status s = refuse(name, SCMP_ACT_ERRNO(EPERM), 0, nullptr, /*required=*/false);
    if (!s.ok()) return s;
  }
  for (unsigned long flag : kCloneNamespaceFlags) {
    const scmp_arg_cmp has_flag = SCMP_CMP(kCloneFlagsArg, SCMP_CMP_MASKED_EQ, flag, flag);
    Status s = refuse("clone", SCMP_ACT_ERRNO(EPERM), 1, &has_flag);
    if (!s.ok()) return s;
  }
  // libseccomp compares an argument once per rule, so "neither 0 nor 0xffffffff" cannot be
  // said: even personality(PER_LINUX) is refused; nothing a job runs sets a persona.
  const scmp_arg_cmp not_query = SCMP_A0(SCMP_CMP_NE, 0xffffffffUL);
  for (Status s : {refuse("clone3", SCMP_ACT_ERRNO(ENOSYS), 0, nullptr),
                   refuse("personality", SCMP_ACT_ERRNO(EPERM), 1, &not_query)}) {
    if (!s.ok()) return s;
  }
  filter.refused = static_cast<int>(refused.size());

  const int fd = memfd_create("roilens-seccomp-export", MFD_CLOEXEC);
  if (fd < 0) return failed("memfd_create", -errno);
  const int rc = seccomp_export_bpf(ctx, fd);
  if (rc != 0) {
    close(fd);
    return failed("seccomp_export_bpf", rc);
  }
  const off_t size = lseek(fd, 0, SEEK_END);
  filter.program.resize(size > 0 ? static_cast<std::size_t>(size) : 0);
  const ssize_t got = pread(fd, filter.program.data(), filter.program.size(), 0);
  close(fd);
  if (size <= 0 || got != size) return failed("reading the exported program", -EIO);
  return filter;
}

/// A sealed, close-on-exec memfd at fd >= 5 holding `program`, for one bwrap to read from
/// offset 0. One per worker: bwrap reads to EOF, so workers must not share a file offset.
StatusOr<int> SeccompProgramFd(const std::string& program) {
  int fd = memfd_create("roilens-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return InternalError(std::string("sandbox: memfd_create: ") + std::strerror(errno));
  if (fd <= kSeccompFd) {  // lift it above the fds the child dup2()s onto
    const int high = fcntl(fd, F_DUPFD_CLOEXEC, kSeccompFd + 1);
    close(fd);
    if (high < 0) return InternalError(std::string("sandbox: fcntl: ") + std::strerror(errno));
    fd = high;
  }
  std::size_t off = 0;
  while (off < program.size()) {
    ssize_t n = write(fd, program.data() + off, program.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return InternalError(std::string("sandbox: writing the seccomp program: ") +
                           std::strerror(errno));
    }
    off += static_cast<std::size_t>(n);
  }
  fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
  lseek(fd, 0, SEEK_SET);
  return fd;
}

/// One warm fork server: a bwrap process whose PID 1 is sandbox_worker.py.
struct Worker {
  pid_t bwrap_pid = -1;   ///< our child
  pid_t server_pid = -1;  ///< PID 1 of the sandbox, as the host sees it
  int channel = -1;       ///< socket that is the server's fd 0 and 1
  int diagnostics = -1;   ///< bwrap's and the server's stderr (non-blocking)
  bool ready = false;     ///< READY line received
  bool healthy = true;
  /// RES was read but not the DONE that follows once the server has wiped the job's files;
  /// read before the next job so a job's result is not held up by the clean-up.
  bool done_pending = false;
  std::string ready_info;  ///< READY's JSON
  std::string inbox;       ///< bytes received but not consumed yet

  ~Worker() { Kill(); }

  /// Ends the whole sandbox: killing PID 1 of a PID namespace kills every process in it.
  void Kill() {
    if (server_pid > 0) kill(server_pid, SIGKILL);
    if (bwrap_pid > 0) {
      kill(bwrap_pid, SIGKILL);
      while (waitpid(bwrap_pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    server_pid = bwrap_pid = -1;
    if (channel >= 0) close(channel);
    if (diagnostics >= 0) close(diagnostics);
    channel = diagnostics = -1;
    healthy = false;
  }

  /// What the worker printed to stderr so far (last 2 KiB), for error messages.
  std::string Diagnostics() {
    std::string text;
    if (diagnostics < 0) return text;
    char buf[4096];
    for (;;) {
      ssize_t n = read(diagnostics, buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, static_cast<std::size_t>(n));
      if (text.size() > 8192) text.erase(0, text.size() - 2048);
    }
    if (text.size() > 2048) text.erase(0, text.size() - 2048);
    return Trim(text);
  }

  /// Fills `inbox` until it holds `n` bytes. False on EOF, error or deadline.
  bool Fill(std::size_t n, Clock::time_point deadline) {
    char buf[65536];
    while (inbox.size() < n) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd pfd{channel, POLLIN, 0};
      int rc = poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
      if (rc < 0 && errno != EINTR) return false;
      if (rc <= 0) continue;
      ssize_t got = recv(channel, buf, sizeof buf, 0);
      if (got == 0) return false;
      if (got < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return false;
      }
      inbox.append(buf, static_cast<std::size_t>(got));
    }
    return true;
  }

  /// Reads one protocol line (without '\n'), at most 4 KiB.
  std::optional<std::string> ReadLine(Clock::time_point deadline) {
    for (;;) {
      auto pos = inbox.find('\n');
      if (pos != std::string::npos) {
        std::string line = inbox.substr(0, pos);
        inbox.erase(0, pos + 1);
        return line;
      }
      if (inbox.size() > 4096 || !Fill(inbox.size() + 1, deadline)) return std::nullopt;
    }
  }

  std::optional<std::string> ReadExact(std::size_t n, Clock::time_point deadline) {
    if (!Fill(n, deadline)) return std::nullopt;
    std::string out = inbox.substr(0, n);
    inbox.erase(0, n);
    return out;
  }

  bool SendAll(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      ssize_t n = send(channel, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      off += static_cast<std::size_t>(n);
    }
    return true;
  }
};

/// Runs closures on one long-lived thread. Workers are forked from it because bwrap's
/// --die-with-parent (PR_SET_PDEATHSIG) fires when the forking *thread* exits; a worker forked
/// from a short-lived request thread would die with that thread.
class SpawnThread {
 public:
  SpawnThread() : thread_([this] { Loop(); }) {}
  ~SpawnThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  template <typename F>
  auto Call(F f) -> decltype(f()) {
    using R = decltype(f());
    std::packaged_task<R()> task(std::move(f));
    auto future = task.get_future();
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.emplace_back([&task] { task(); });
    }
    cv_.notify_all();
    return future.get();
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::thread thread_;
};

class BwrapSandbox final : public Sandbox {
 public:
  BwrapSandbox(SandboxOptions options, std::string bwrap_path, bool drop_to_nobody,
               SeccompFilter seccomp)
      : options_(std::move(options)),
        bwrap_path_(std::move(bwrap_path)),
        drop_to_nobody_(drop_to_nobody),
        seccomp_(std::move(seccomp)),
        max_workers_(options_.max_workers > 0 ? options_.max_workers
                                              : std::max(2, 2 * options_.warm_workers)) {}

  ~BwrapSandbox() override {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.clear();  // kills them
  }

  /// Starts the warm workers and runs the self-test; any failure is a kFailedPrecondition.
  Status Start(std::string* describe) {
    auto worker = SpawnWorker();
    if (!worker.ok()) return worker.status();
    Status ready = WaitReady(**worker);
    if (!ready.ok()) return ready;
    json info = json::parse((*worker)->ready_info, nullptr, false);
    {
      std::lock_guard<std::mutex> lock(mu_);
      idle_.push_back(std::move(*worker));
      total_ = 1;
    }
    // The self-test goes through the normal job path: what it checks is what jobs get.
    SandboxJob probe;
    probe.wall_limit = std::chrono::milliseconds(60000);
    probe.code = R"PY(
import errno, json, os, socket
r = {"uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid(),
     "procs": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
try:
    open("/etc/shadow").read(); r["shadow"] = "readable"
except OSError as e:
    r["shadow"] = errno.errorcode.get(e.errno, str(e.errno))
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2).close(); r["net"] = "connected"
except OSError as e:
    r["net"] = errno.errorcode.get(e.errno, str(e))
try:
    open("/usr/roilens_probe", "w"); r["usr"] = "writable"
except OSError as e:
    r["usr"] = errno.errorcode.get(e.errno, str(e.errno))
r["ifaces"] = sorted(n for _, n in socket.if_nameindex())
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
r["seccomp"] = status.get("Seccomp", "?").strip()
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
r["unshare"] = ("allowed" if libc.unshare(0x10000000) == 0  # CLONE_NEWUSER
                else errno.errorcode.get(ctypes.get_errno(), "?"))
print(json.dumps(r))
)PY";
    SandboxResult res = Run(probe);
    if (!res.ok) {
      return FailedPreconditionError("sandbox self-test job failed: " + res.error + ": " +
                                     Trim(res.stderr_text).substr(0, 500));
    }
    json r = json::parse(res.stdout_text, nullptr, false);
    if (r.is_discarded()) {
      return FailedPreconditionError("sandbox self-test printed no JSON: " + res.stdout_text);
    }
    if (r.value("uid", -1) != static_cast<int>(kNobody)) {
      return FailedPreconditionError("sandbox self-test: job runs as uid " +
                                     std::to_string(r.value("uid", -1)) + ", expected 65534");
    }
    if (r.value("shadow", "") == "readable") {
      return FailedPreconditionError("sandbox self-test: /etc/shadow is readable in the sandbox");
    }
    if (r.value("net", "") == "connected") {
      return FailedPreconditionError("sandbox self-test: the network is reachable (no net ns)");
    }
    if (r.value("usr", "") == "writable") {
      return FailedPreconditionError("sandbox self-test: /usr is writable in the sandbox");
    }
    auto procs = r.value("procs", std::vector<int>{});
    if (procs.empty() || procs.front() != 1 || procs.size() > 8) {
      return FailedPreconditionError(
          "sandbox self-test: job sees host processes (no PID namespace): " + r["procs"].dump());
    }
    for (const auto& iface : r.value("ifaces", std::vector<std::string>{})) {
      if (iface != "lo") {
        return FailedPreconditionError("sandbox self-test: network interface " + iface +
                                       " visible in the sandbox");
      }
    }
    if (r.value("seccomp", "") != "2" || r.value("unshare", "") != "EPERM") {
      return FailedPreconditionError(
          "sandbox self-test: the seccomp filter is not in force (Seccomp: " +
          r.value("seccomp", std::string("?")) + ", unshare(CLONE_NEWUSER): " +
          r.value("unshare", std::string("?")) + "); refusing to run code without it");
    }
    // Bring the pool up to the configured number of warm workers.
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (total_ >= options_.warm_workers) break;
        ++total_;
      }
      auto extra = SpawnWorker();
      std::lock_guard<std::mutex> lock(mu_);
      if (!extra.ok()) {
        --total_;
        break;
      }
      idle_.push_back(std::move(*extra));
    }
    if (options_.warm_workers <= 0) {
      std::lock_guard<std::mutex> lock(mu_);
      idle_.clear();
      total_ = 0;
    }
    std::ostringstream d;
    d << BwrapVersion() << " (host uid " << (drop_to_nobody_ ? "nobody" : std::to_string(getuid()))
      << "), userns ok, pid ns ok, net ns ok, job uid 65534, seccomp filter (" << seccomp_.refused
      << " syscalls refused, native ABI only), python " << info.value("python", std::string("?"))
      << " with numpy " << info.value("numpy", std::string("?")) << ", cv2 "
      << info.value("cv2", std::string("?")) << ", matplotlib "
      << info.value("matplotlib", std::string("?")) << " pre-imported, " << options_.warm_workers
      << " warm workers, self-test job " << res.elapsed_ms << " ms";
    *describe = d.str();
    return OkStatus();
  }

  std::string Describe() const override { return describe_; }
  void set_describe(std::string d) { describe_ = std::move(d); }

  SandboxResult Run(const SandboxJob& job) override {
    auto started = Clock::now();
    SandboxResult result = RunOnce(job);
    result.elapsed_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
    return result;
  }

 private:
  /// Builds the bwrap command line. Binds only what python3 and its pre-imported modules need,
  /// all read-only; the job dir (/job) and a scratch /tmp are size-capped tmpfs.
  std::vector<std::string> BwrapArgs() const {
    std::vector<std::string> a = {bwrap_path_,
                                  "--unshare-user",
                                  "--uid",
                                  "65534",
                                  "--gid",
                                  "65534",
                                  "--cap-drop",
                                  "ALL",
                                  "--unshare-pid",
                                  "--unshare-net",
                                  "--unshare-ipc",
                                  "--unshare-uts",
                                  "--unshare-cgroup-try",
                                  "--hostname",
                                  "sandbox",
                                  "--die-with-parent",
                                  "--new-session",
                                  "--as-pid-1",
                                  "--clearenv",
                                  "--ro-bind",
                                  "/usr",
                                  "/usr"};
    // Merged-/usr systems have /bin, /lib... as symlinks into /usr; mirror them, else bind.
    for (const char* top : {"/bin", "/sbin", "/lib", "/lib64", "/lib32"}) {
      char target[256];
      ssize_t n = readlink(top, target, sizeof target - 1);
      if (n > 0) {
        a.insert(a.end(), {"--symlink", std::string(target, static_cast<std::size_t>(n)), top});
      } else {
        a.insert(a.end(), {"--ro-bind-try", top, top});
      }
    }
    for (const char* etc : {"/etc/ld.so.cache", "/etc/alternatives", "/etc/matplotlibrc",
                            "/etc/fonts", "/etc/localtime"}) {
      a.insert(a.end(), {"--ro-bind-try", etc, etc});
    }
    a.insert(a.end(), {"--proc", "/proc", "--size", "65536", "--tmpfs", "/dev"});
    for (const char* dev : {"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"}) {
      a.insert(a.end(), {"--dev-bind", dev, dev});
    }
    a.insert(a.end(), {"--symlink", "/proc/self/fd", "/dev/fd", "--remount-ro", "/dev"});
    a.insert(a.end(), {"--size", std::to_string(options_.job_dir_limit_bytes), "--tmpfs", "/job",
                       "--size", std::to_string(kScratchTmpBytes), "--tmpfs", "/tmp"});
    a.insert(a.end(), {"--chdir", "/job"});
    for (auto [k, v] : {std::pair{"PATH", "/usr/bin:/bin"},
                        {"HOME", "/job"},
                        {"LANG", "C.UTF-8"},
                        {"MPLCONFIGDIR", "/tmp/mpl"},
                        {"MPLBACKEND", "Agg"},
                        {"OPENBLAS_NUM_THREADS", "1"},
                        {"OMP_NUM_THREADS", "1"}}) {
      a.insert(a.end(), {"--setenv", k, v});
    }
    // bwrap loads the filter last, just before it runs python: its own set-up is not filtered.
    a.insert(a.end(),
             {"--remount-ro", "/", "--info-fd", "3", "--seccomp", std::to_string(kSeccompFd),
              options_.python, "-I", "-B", "-c", roilens_embedded_sandbox_worker});
    return a;
  }

  StatusOr<std::unique_ptr<Worker>> SpawnWorker() {
    return spawner_.Call([this]() -> StatusOr<std::unique_ptr<Worker>> { return Fork(); });
  }

  /// Runs on the spawn thread only. Everything the child needs is prepared before fork(); the
  /// child calls only async-signal-safe functions.
  StatusOr<std::unique_ptr<Worker>> Fork() {
    std::vector<std::string> args = BwrapArgs();
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    char* envp[] = {nullptr};

    int sock[2], err[2], info[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock) != 0) {
      return InternalError(std::string("sandbox: socketpair: ") + std::strerror(errno));
    }
    if (pipe2(err, O_CLOEXEC) != 0 || pipe2(info, O_CLOEXEC) != 0) {
      return InternalError(std::string("sandbox: pipe: ") + std::strerror(errno));
    }
    // Close-on-exec here, so children other threads start never hold it; only the bwrap child
    // dup2()s it to kSeccompFd, and bwrap closes it after reading.
    auto seccomp_fd = SeccompProgramFd(seccomp_.program);
    if (!seccomp_fd.ok()) {
      for (int fd : {sock[0], sock[1], err[0], err[1], info[0], info[1]}) close(fd);
      return seccomp_fd.status();
    }
    const int program_fd = *seccomp_fd;
    const bool drop = drop_to_nobody_;
    // The host-level process cap for the whole sandbox; the job gets its own, lower, cap inside.
    const rlim_t nproc = static_cast<rlim_t>(4 * (options_.max_processes + kSupervisorTasks) + 16);
    const long max_fd = std::max(1024L, sysconf(_SC_OPEN_MAX));
    pid_t pid = fork();
    if (pid < 0) {
      const int fork_errno = errno;
      for (int fd : {sock[0], sock[1], err[0], err[1], info[0], info[1], program_fd}) close(fd);
      return InternalError(std::string("sandbox: fork: ") + std::strerror(fork_errno));
    }
    if (pid == 0) {
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      dup2(sock[1], 0);
      dup2(sock[1], 1);
      dup2(err[1], 2);
      dup2(info[1], 3);
      dup2(program_fd, kSeccompFd);  // program_fd > kSeccompFd: a real dup, without CLOEXEC
      // Nothing of the host (sockets, files) may leak into the sandbox: close every other fd.
      if (syscall(SYS_close_range, kSeccompFd + 1U, ~0U, 0U) != 0) {
        for (long fd = kSeccompFd + 1; fd < max_fd; ++fd) close(static_cast<int>(fd));
      }
      if (drop) {
        // Host root would be exempt from RLIMIT_NPROC and uid 65534 inside would map to host
        // root; as nobody neither holds.
        if (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0) _exit(126);
        rlimit rl{nproc, nproc};
        setrlimit(RLIMIT_NPROC, &rl);
      }
      execve(argv[0], argv.data(), envp);
      _exit(127);
    }
    close(sock[1]);
    close(err[1]);
    close(info[1]);
    close(program_fd);
    auto worker = std::make_unique<Worker>();
    worker->bwrap_pid = pid;
    worker->channel = sock[0];
    worker->diagnostics = err[0];
    fcntl(err[0], F_SETFL, fcntl(err[0], F_GETFL) | O_NONBLOCK);
    // bwrap writes {"child-pid": N} once the sandbox exists, or closes the pipe on failure.
    std::string info_text;
    char buf[512];
    for (;;) {
      pollfd pfd{info[0], POLLIN, 0};
      int rc = poll(&pfd, 1, 30000);
      if (rc < 0 && errno == EINTR) continue;
      if (rc <= 0) break;
      ssize_t n = read(info[0], buf, sizeof buf);
      if (n <= 0) break;
      info_text.append(buf, static_cast<std::size_t>(n));
    }
    close(info[0]);
    json parsed = json::parse(info_text, nullptr, false);
    if (parsed.is_discarded() || !parsed.contains("child-pid")) {
      int status = 0;
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      worker->bwrap_pid = -1;
      std::string why = worker->Diagnostics();
      if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && why.empty()) {
        why = "cannot execute " + bwrap_path_;
      }
      return ClassifyStartFailure(why);
    }
    worker->server_pid = parsed["child-pid"].get<pid_t>();
    return worker;
  }

  static Status ClassifyStartFailure(const std::string& why) {
    const bool userns = why.find("namespace") != std::string::npos ||
                        why.find("uid map") != std::string::npos ||
                        why.find("setting up uid") != std::string::npos;
    if (userns) {
      return FailedPreconditionError("user namespaces disabled or restricted: " + why +
                                     " (check /proc/sys/user/max_user_namespaces, "
                                     "kernel.unprivileged_userns_clone, AppArmor userns policy)");
    }
    return FailedPreconditionError("sandbox worker failed to start: " +
                                   (why.empty() ? std::string("no diagnostics") : why));
  }

  Status WaitReady(Worker& w) {
    if (w.ready && w.done_pending) {
      auto done = w.ReadLine(Clock::now() + kReportGrace);
      if (!done || *done != "DONE") {
        std::string why = w.Diagnostics();
        w.Kill();
        return UnavailableError("sandbox worker did not finish cleaning up after the last job" +
                                (why.empty() ? std::string() : ": " + why));
      }
      w.done_pending = false;
    }
    if (w.ready) return OkStatus();
    auto line = w.ReadLine(Clock::now() + kStartupTimeout);
    if (!line || line->rfind("READY ", 0) != 0) {
      std::string why = w.Diagnostics();
      w.Kill();
      return FailedPreconditionError(
          "sandbox worker failed to start python (" + options_.python + "): " +
          (why.empty()
               ? std::string("no READY within ") + std::to_string(kStartupTimeout.count()) + " s"
               : why));
    }
    w.ready = true;
    w.ready_info = line->substr(6);
    return OkStatus();
  }

  /// Takes an idle worker or starts a new one (up to max_workers); waits while all are busy.
  StatusOr<std::unique_ptr<Worker>> Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !idle_.empty() || total_ < max_workers_; });
    if (!idle_.empty()) {
      auto w = std::move(idle_.front());
      idle_.pop_front();
      return w;
    }
    ++total_;
    lock.unlock();
    auto w = SpawnWorker();
    if (!w.ok()) {
      lock.lock();
      --total_;
      cv_.notify_one();
    }
    return w;
  }

  /// Returns a worker to the pool. Dead, killed or surplus workers are dropped; a dropped warm
  /// worker is replaced at once so the pool stays warm.
  void Release(std::unique_ptr<Worker> w) {
    std::unique_lock<std::mutex> lock(mu_);
    if (w->healthy && static_cast<int>(idle_.size()) < options_.warm_workers) {
      idle_.push_back(std::move(w));
      cv_.notify_one();
      return;
    }
    --total_;
    const bool replace = total_ < options_.warm_workers;
    if (replace) ++total_;
    lock.unlock();
    w.reset();  // kills the sandbox
    if (replace) {
      auto fresh = SpawnWorker();
      lock.lock();
      if (fresh.ok()) {
        idle_.push_back(std::move(*fresh));
      } else {
        --total_;
      }
    }
    cv_.notify_one();
  }

  SandboxResult RunOnce(const SandboxJob& job) {
    SandboxResult result;
    for (const auto& f : job.inputs) {
      if (!ValidInputName(f.name)) {
        result.error = "invalid input file name \"" + f.name + "\": plain file names only";
        return result;
      }
    }
    const auto wall = job.wall_limit.count() > 0 ? job.wall_limit : options_.wall_limit;
    json header;
    header["code"] = job.code;
    header["dir"] = "job";
    header["inputs"] = json::array();
    for (const auto& f : job.inputs) {
      header["inputs"].push_back({{"name", f.name}, {"size", f.bytes.size()}});
    }
    header["limits"] = {{"wall_ms", wall.count()},
                        {"memory_bytes", options_.memory_limit_bytes},
                        {"file_bytes", options_.job_dir_limit_bytes},
                        {"output_bytes", options_.output_limit_bytes},
                        {"tasks", options_.max_processes + kSupervisorTasks},
                        {"max_processes", options_.max_processes},
                        {"max_images", kMaxImages},
                        {"max_image_bytes", kMaxImageBytes}};
    std::string head = header.dump(-1, ' ', false, json::error_handler_t::replace);
    std::string payload;
    std::uint32_t hlen = static_cast<std::uint32_t>(head.size());
    payload.append(reinterpret_cast<const char*>(&hlen), 4);  // little-endian hosts only
    payload += head;
    for (const auto& f : job.inputs) payload.append(f.bytes.begin(), f.bytes.end());
    const std::string frame = "RUN " + std::to_string(payload.size()) + "\n" + payload;

    // A worker found dead when the job is handed over (it crashed or was killed between jobs)
    // is replaced and the job retried once; a job that already started is never re-run.
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto acquired = Acquire();
      if (!acquired.ok()) {
        result.error = acquired.status().message();
        return result;
      }
      std::unique_ptr<Worker> w = std::move(*acquired);
      Status ready = WaitReady(*w);
      if (!ready.ok() || !w->SendAll(frame)) {
        result.error = ready.ok() ? "sandbox worker died before the job: " + w->Diagnostics()
                                  : ready.message();
        w->healthy = false;
        Release(std::move(w));
        continue;
      }
      Collect(*w, wall, &result);
      Release(std::move(w));
      return result;
    }
    return result;
  }

  /// Reads RES + DONE from the worker into `result`; enforces the host-side wall-clock backstop.
  void Collect(Worker& w, std::chrono::milliseconds wall, SandboxResult* result) {
    const auto deadline = Clock::now() + wall + kReportGrace;
    const std::size_t max_body =
        static_cast<std::size_t>(options_.output_limit_bytes + kMaxImageBytes + (1 << 20));
    auto line = w.ReadLine(deadline);
    if (!line) {
      const bool late = Clock::now() >= deadline;
      std::string why = w.Diagnostics();
      w.Kill();
      if (late) {
        result->timed_out = true;
        result->error = "timed out after " + FormatSeconds(wall) + " (sandbox killed)";
      } else {
        result->error = "sandbox worker died during the job" + (why.empty() ? "" : ": " + why);
      }
      return;
    }
    if (*line == "DONE") {
      // The job's supervisor died before reporting (the job may have killed it). The channel
      // may hold unread job bytes, so this worker is not reused.
      std::string why = w.Diagnostics();
      w.Kill();
      result->error = "sandbox supervisor failed" + (why.empty() ? "" : ": " + why);
      return;
    }
    std::size_t size = 0;
    if (line->rfind("RES ", 0) == 0) size = std::strtoull(line->c_str() + 4, nullptr, 10);
    std::optional<std::string> body;
    if (size >= 4 && size <= max_body) body = w.ReadExact(size, deadline);
    if (!body) {
      w.Kill();
      result->error = "sandbox protocol error (worker restarted)";
      return;
    }
    // The supervisor killed every process of the job before writing RES; the server's DONE
    // (files wiped, ready for the next job) is read when the worker is next used.
    w.done_pending = true;
    std::uint32_t hlen = 0;
    std::memcpy(&hlen, body->data(), 4);
    json h =
        json::parse(body->substr(4, std::min<std::size_t>(hlen, body->size() - 4)), nullptr, false);
    if (hlen > body->size() - 4 || h.is_discarded()) {
      w.Kill();
      result->error = "sandbox protocol error: bad result header";
      return;
    }
    std::size_t off = 4 + hlen;
    auto take = [&](std::size_t n) {
      n = std::min(n, body->size() - off);
      std::string s = body->substr(off, n);
      off += n;
      return s;
    };
    result->stdout_text = take(h.value("stdout_size", std::size_t{0}));
    result->stderr_text = take(h.value("stderr_size", std::size_t{0}));
    for (const auto& im : h.value("images", json::array())) {
      std::string bytes = take(im.value("size", std::size_t{0}));
      SandboxImage image;
      image.name = im.value("name", std::string());
      image.mime_type = im.value("mime_type", std::string("image/png"));
      image.bytes.assign(bytes.begin(), bytes.end());
      result->images.push_back(std::move(image));
    }
    for (const auto& note : h.value("notes", json::array())) {
      result->stderr_text += "\n[sandbox] " + note.get<std::string>();
    }
    Interpret(h, wall, result);
  }

  /// Turns the supervisor's report into ok / exit_code / flags and a one-line error.
  void Interpret(const json& h, std::chrono::milliseconds wall, SandboxResult* r) const {
    const json status = h.value("status", json::object());
    const std::string exc_type = status.value("exc_type", std::string());
    const std::string exc_message = status.value("exc_message", std::string());
    const bool memory_error = status.value("memory", false);
    const int err_no = status.contains("errno") && status["errno"].is_number_integer()
                           ? status["errno"].get<int>()
                           : 0;
    const int signal_no =
        h.contains("signal") && h["signal"].is_number_integer() ? h["signal"].get<int>() : 0;
    r->exit_code = h.contains("exit_code") && h["exit_code"].is_number_integer()
                       ? h["exit_code"].get<int>()
                       : (signal_no > 0 ? 128 + signal_no : -1);
    const std::string limit =
        h.value("limit", json()).is_string() ? h["limit"].get<std::string>() : std::string();
    const std::string exception = exc_type.empty()
                                      ? std::string()
                                      : exc_type + (exc_message.empty() ? "" : ": " + exc_message);
    if (h.value("timed_out", false)) {
      r->timed_out = true;
      r->error = "timed out after " + FormatSeconds(wall);
      if (h.value("peak_processes", 0) >= options_.max_processes) {
        r->error += " (process limit " + std::to_string(options_.max_processes) + " reached)";
      }
    } else if (!limit.empty()) {
      r->killed_by_limit = true;
      r->error = limit;
      if (limit.rfind("output limit", 0) == 0) {
        r->error = "output limit " + FormatMiB(options_.output_limit_bytes) +
                   " exceeded (stdout+stderr; job killed)";
        r->stderr_text += "\n[sandbox] output cut at " +
                          std::to_string(options_.output_limit_bytes) + " bytes; job killed";
      }
    } else if (memory_error || signal_no == SIGSEGV || signal_no == SIGBUS) {
      if (memory_error) {
        r->killed_by_limit = true;
        r->error = "memory limit " + FormatMiB(options_.memory_limit_bytes) + " exceeded (" +
                   exc_type + ")";
      } else {
        r->error = "killed by signal " + std::to_string(signal_no) + " (" + strsignal(signal_no) +
                   "; memory limit " + FormatMiB(options_.memory_limit_bytes) +
                   " may have been hit)";
      }
    } else if (err_no == EFBIG) {
      r->killed_by_limit = true;
      r->error = "file size limit " + FormatMiB(options_.job_dir_limit_bytes) + " exceeded (" +
                 exception + ")";
    } else if (err_no == ENOSPC) {
      r->killed_by_limit = true;
      r->error = "job dir limit " + FormatMiB(options_.job_dir_limit_bytes) + " exceeded (" +
                 exception + ")";
    } else if (err_no == EAGAIN && exc_type == "BlockingIOError") {
      r->killed_by_limit = true;
      r->error = "process limit " + std::to_string(options_.max_processes) + " reached (" +
                 exception + ")";
    } else if (signal_no == SIGXCPU) {
      r->killed_by_limit = true;
      r->error = "CPU time limit exceeded (SIGXCPU)";
    } else if (signal_no > 0) {
      r->error =
          "killed by signal " + std::to_string(signal_no) + " (" + strsignal(signal_no) + ")";
    } else if (r->exit_code != 0) {
      r->error = "exit code " + std::to_string(r->exit_code) +
                 (exception.empty() ? std::string() : ": " + exception);
    }
    r->ok = r->error.empty();
  }

  std::string BwrapVersion() const {
    std::string out;
    std::string cmd = "'" + bwrap_path_ + "' --version 2>/dev/null";
    if (FILE* p = popen(cmd.c_str(), "r")) {
      char buf[128];
      while (fgets(buf, sizeof buf, p)) out += buf;
      pclose(p);
    }
    out = Trim(out);
    return out.empty() ? "bwrap" : out;
  }

  const SandboxOptions options_;
  const std::string bwrap_path_;
  const bool drop_to_nobody_;
  const SeccompFilter seccomp_;
  const int max_workers_;
  std::string describe_;
  SpawnThread spawner_;  // declared after the options it reads; joined before they go
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Worker>> idle_;
  int total_ = 0;  ///< idle + busy workers
};

}  // namespace

std::string ResultText(const SandboxResult& r) {
  std::string text = r.stdout_text;
  if (!r.ok) {
    if (!r.stderr_text.empty()) {
      if (!text.empty() && text.back() != '\n') text += "\n";
      text += r.stderr_text;
    }
    if (!r.error.empty()) {
      if (!text.empty() && text.back() != '\n') text += "\n";
      text += "Error: " + r.error;
    }
  }
  return text;
}

StatusOr<std::unique_ptr<Sandbox>> Sandbox::Create(SandboxOptions options) {
  if (options.wall_limit.count() <= 0 || options.memory_limit_bytes < (64 << 20) ||
      options.job_dir_limit_bytes < 4096 || options.output_limit_bytes < 1024 ||
      options.max_processes < 1 || options.warm_workers < 0) {
    return InvalidArgumentError(
        "sandbox options: wall_limit > 0, memory_limit_bytes >= 64 MiB, job_dir_limit_bytes >= "
        "4 KiB, output_limit_bytes >= 1 KiB, max_processes >= 1, warm_workers >= 0 required");
  }
  auto bwrap = FindExecutable(options.bwrap);
  if (!bwrap) {
    return FailedPreconditionError("bubblewrap not found on PATH (\"" + options.bwrap +
                                   "\"): apt-get install bubblewrap; refusing to run code "
                                   "unsandboxed");
  }
  auto seccomp = BuildSeccompFilter();
  if (!seccomp.ok()) return seccomp.status();
  if (options.python.empty() || options.python[0] != '/' || options.python.rfind("/usr/", 0) != 0 ||
      access(options.python.c_str(), X_OK) != 0) {
    return FailedPreconditionError("sandbox python \"" + options.python +
                                   "\" must be an executable under /usr (only /usr is visible "
                                   "in the sandbox)");
  }
  {
    std::ifstream max_ns("/proc/sys/user/max_user_namespaces");
    long long n = -1;
    if (max_ns >> n && n == 0) {
      return FailedPreconditionError(
          "user namespaces disabled: /proc/sys/user/max_user_namespaces is 0");
    }
  }
  // As root, bwrap runs as nobody so that RLIMIT_NPROC binds and no sandbox uid maps to host
  // root. Where unprivileged user namespaces are off, fall back to bwrap as root (uid 65534
  // inside still; processes then capped by the supervisor's polling).
  Status first;
  for (bool drop : {geteuid() == 0, false}) {
    auto sandbox = std::make_unique<BwrapSandbox>(options, *bwrap, drop, *seccomp);
    std::string describe;
    Status s = sandbox->Start(&describe);
    if (s.ok()) {
      sandbox->set_describe(std::move(describe));
      return std::unique_ptr<Sandbox>(std::move(sandbox));
    }
    if (first.ok()) first = s;
    if (!drop || s.message().rfind("user namespaces", 0) != 0) break;
  }
  return first;
}

}  // namespace roilens::backend
