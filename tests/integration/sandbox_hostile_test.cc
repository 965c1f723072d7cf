// Hostile code against the Sandbox: each attack must be contained and reported as an error
// result while a bystander job runs concurrently, the sandbox must serve normally afterwards, and
// no process of the attack may survive on the host.
#include <dirent.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <future>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "roilens/backend/sandbox.h"
#include "testing/sandbox_fixture.h"

namespace roilens::backend {
namespace {

using roilens::testing::HealthyJob;
using roilens::testing::HostProcessesWith;
using roilens::testing::IsHealthyResult;
using roilens::testing::MakeJob;
using roilens::testing::SharedSandbox;

constexpr char kSecret[] = "AIza-TEST-SECRET-7f3c";
/// Text every worker's command line carries (the embedded worker program's first line).
constexpr char kWorkerMarker[] = "Warm fork server that runs inside bubblewrap";

/// Puts a fake API key into this process's environment before the sandbox exists, as the
/// backend's host process would have one.
class SecretEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { setenv("GEMINI_API_KEY", kSecret, 1); }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new SecretEnvironment);

std::string UniqueMarker(const std::string& what) {
  std::random_device rd;
  return "roilens-hostile-" + what + "-" + std::to_string(rd()) + std::to_string(getpid());
}

class SandboxHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sandbox_ = SharedSandbox();
    ASSERT_NE(sandbox_, nullptr) << roilens::testing::SandboxCreateError();
  }

  /// Runs `job` while a bystander job runs at the same time, then checks the sandbox still
  /// serves, no secret leaked and the worker processes are back to the pool's size.
  SandboxResult RunHostile(const SandboxJob& job) {
    auto hostile = std::async(std::launch::async, [&] { return sandbox_->Run(job); });
    auto bystander = sandbox_->Run(HealthyJob(7));
    EXPECT_TRUE(IsHealthyResult(bystander, 7))
        << "bystander during the attack: " << bystander.error << " " << bystander.stdout_text;
    SandboxResult result = hostile.get();
    std::cout << "[hostile] " << ::testing::UnitTest::GetInstance()->current_test_info()->name()
              << ": " << (result.ok ? "ok" : result.error) << " (" << result.elapsed_ms << " ms)\n";
    auto after = sandbox_->Run(HealthyJob(9));
    EXPECT_TRUE(IsHealthyResult(after, 9))
        << "job after the attack: " << after.error << " " << after.stdout_text;
    for (const std::string* text : {&result.stdout_text, &result.stderr_text, &result.error}) {
      EXPECT_EQ(text->find(kSecret), std::string::npos) << "secret leaked: " << *text;
    }
    // Each worker is PID 1 + a pre-forked supervisor + runner; anything more is a survivor.
    // Only this process's own workers count: ctest runs other sandbox tests beside this one.
    const auto workers = roilens::testing::DescendantProcessesWith(kWorkerMarker);
    EXPECT_LE(workers.size(),
              static_cast<std::size_t>(3 * roilens::testing::SandboxTestOptions().max_workers));
    return result;
  }

  Sandbox* sandbox_ = nullptr;
};

bool HostPathExists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

/// Python that defines `attempt(name, fn)`: runs fn in a forked child and prints "name RESULT",
/// RESULT being "ok", the errno name of the OSError it raised, or the signal that killed it.
/// `NR` maps syscall names to this architecture's numbers; `sys_(name, *args)` calls one raw.
std::string SyscallProbe(const std::string& attempts) {
  std::ostringstream nr;
  nr << "NR = {";
  for (auto [name, number] : std::initializer_list<std::pair<const char*, long>>{
           {"unshare", SYS_unshare},
           {"clone", SYS_clone},
           {"clone3", SYS_clone3},
           {"setns", SYS_setns},
           {"mount", SYS_mount},
           {"umount2", SYS_umount2},
           {"pivot_root", SYS_pivot_root},
           {"chroot", SYS_chroot},
           {"ptrace", SYS_ptrace},
           {"process_vm_readv", SYS_process_vm_readv},
           {"process_vm_writev", SYS_process_vm_writev},
           {"bpf", SYS_bpf},
           {"keyctl", SYS_keyctl},
           {"add_key", SYS_add_key},
           {"request_key", SYS_request_key},
           {"perf_event_open", SYS_perf_event_open},
           {"init_module", SYS_init_module},
           {"finit_module", SYS_finit_module},
           {"delete_module", SYS_delete_module},
           {"kexec_load", SYS_kexec_load},
           {"kexec_file_load", SYS_kexec_file_load},
           {"reboot", SYS_reboot},
           {"swapon", SYS_swapon},
           {"swapoff", SYS_swapoff},
           {"acct", SYS_acct},
           {"open_by_handle_at", SYS_open_by_handle_at},
           {"userfaultfd", SYS_userfaultfd},
           {"personality", SYS_personality},
           {"io_uring_setup", SYS_io_uring_setup},
           {"getpid", SYS_getpid}}) {
    nr << "\"" << name << "\": " << number << ", ";
  }
  nr << "}\n";
  return R"PY(
import ctypes, errno, os, signal, struct, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
)PY" + nr.str() +
         R"PY(
CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x2000000, 0x4000000, 0x8000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000

def sys_(name, *args):
    args = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    r = libc.syscall(ctypes.c_long(NR[name]), *args)
    if r < 0:
        raise OSError(ctypes.get_errno(), name)
    return r

def clone_and_reap(result):
    # A fork-like raw clone/clone3 (no new stack): the child leaves at once.
    if result == 0:
        os._exit(0)
    os.waitpid(result, 0)

def attempt(name, fn):
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fn()
        except OSError as e:
            code = e.errno or 255
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 254
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        result = signal.Signals(os.WTERMSIG(status)).name
    elif os.WEXITSTATUS(status) == 0:
        result = "ok"
    else:
        result = errno.errorcode.get(os.WEXITSTATUS(status), str(os.WEXITSTATUS(status)))
    print(name, result, flush=True)
)PY" + attempts;
}

/// "name RESULT" lines of a SyscallProbe run, by name.
std::map<std::string, std::string> ProbeResults(const SandboxResult& r) {
  std::map<std::string, std::string> results;
  std::istringstream lines(r.stdout_text);
  std::string name, result;
  while (lines >> name >> result) results[name] = result;
  return results;
}

/// Every attempt named in `expected` printed exactly the expected result.
void ExpectProbeResults(const SandboxResult& r,
                        const std::map<std::string, std::string>& expected) {
  EXPECT_TRUE(r.ok) << r.error << "\n" << r.stderr_text;
  const auto got = ProbeResults(r);
  for (const auto& [name, result] : expected) {
    auto it = got.find(name);
    ASSERT_NE(it, got.end()) << name << " did not report; stdout:\n"
                             << r.stdout_text << "\nstderr:\n"
                             << r.stderr_text;
    EXPECT_EQ(it->second, result) << name;
  }
}

TEST_F(SandboxHostileTest, InfiniteLoopTimesOut) {
  auto r = RunHostile(MakeJob("while True:\n    pass\n", std::chrono::milliseconds(2000)));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.error, "timed out after 2.0 s");
}

TEST(SandboxFixtureTest, AProcFileWhoseReadFailsReadsAsWhatWasReadNeverThrows) {
  // Regression: the survivor scan after an attack read /proc/<pid>/cmdline through an
  // ifstream; a process that exited between open and read failed the read with ESRCH, and
  // libstdc++'s filebuf threw ("basic_filebuf::underflow error reading the file: No such
  // process"), failing MemoryBombHitsTheMemoryLimit once in CI. A directory fails its read the
  // same way (EISDIR), deterministically.
  std::string text = "unset";
  EXPECT_NO_THROW(text = roilens::testing::ReadProcFile("/proc/self"));
  EXPECT_EQ(text, "");
  EXPECT_EQ(roilens::testing::ReadProcFile("/proc/self/no-such-file"), "");
  EXPECT_NE(roilens::testing::ReadProcFile("/proc/self/cmdline").find("sandbox_hostile_test"),
            std::string::npos);
}

TEST_F(SandboxHostileTest, MemoryBombHitsTheMemoryLimit) {
  auto r = RunHostile(MakeJob(R"PY(
hoard = []
while True:
    hoard.append(bytearray(64 << 20))
)PY"));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.killed_by_limit);
  EXPECT_EQ(r.error, "memory limit 1024 MiB exceeded (MemoryError)");
  EXPECT_NE(r.stderr_text.find("MemoryError"), std::string::npos);

  auto numpy_bomb = RunHostile(MakeJob("import numpy as np\na = np.ones((1 << 40,), np.uint8)\n"));
  EXPECT_FALSE(numpy_bomb.ok);
  EXPECT_TRUE(numpy_bomb.killed_by_limit);
  EXPECT_NE(numpy_bomb.error.find("memory limit 1024 MiB exceeded"), std::string::npos)
      << numpy_bomb.error;
}

TEST_F(SandboxHostileTest, ForkBombIsContained) {
  auto r = RunHostile(MakeJob(R"PY(
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
)PY",
                              std::chrono::milliseconds(3000)));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.timed_out || r.killed_by_limit) << r.error;
  EXPECT_NE(r.error.find("process limit 16"), std::string::npos) << r.error;
}

TEST_F(SandboxHostileTest, ThreadBombIsContained) {
  auto r = RunHostile(MakeJob(R"PY(
import threading, time
threads = []
while True:
    t = threading.Thread(target=time.sleep, args=(100,), daemon=True)
    t.start()
    threads.append(t)
)PY",
                              std::chrono::milliseconds(3000)));
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.error.empty());
}

TEST_F(SandboxHostileTest, NetworkIsUnreachableEvenOnLoopback) {
  httplib::Server server;
  std::atomic<int> hits{0};
  server.Get("/.*", [&](const httplib::Request&, httplib::Response& res) {
    ++hits;
    res.set_content("reached", "text/plain");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread serving([&] { server.listen_after_bind(); });
  // bind_to_any_port already listens: connections queue until the accept loop runs.
  // The listener is real: the host reaches it.
  httplib::Client probe("127.0.0.1", port);
  auto reached = probe.Get("/probe");
  ASSERT_TRUE(reached) << "test server not reachable from the host";
  ASSERT_EQ(hits.load(), 1);

  auto r = RunHostile(MakeJob("import socket\nsocket.create_connection(('127.0.0.1', " +
                              std::to_string(port) +
                              "), timeout=3).sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("exit code 1: "), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("Error"), std::string::npos) << r.error;  // OSError family
  EXPECT_EQ(hits.load(), 1) << "the sandbox reached the host's loopback server";

  auto external =
      RunHostile(MakeJob("import socket\nsocket.create_connection(('8.8.8.8', 53), "
                         "timeout=3)\n"));
  EXPECT_FALSE(external.ok);
  server.stop();
  serving.join();
}

TEST_F(SandboxHostileTest, EtcShadowIsUnreadable) {
  auto r = RunHostile(MakeJob("print(open('/etc/shadow').read())\n"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.stdout_text.find("root:"), std::string::npos);
  EXPECT_NE(r.error.find("FileNotFoundError"), std::string::npos) << r.error;
  auto passwd = RunHostile(MakeJob("print(open('/etc/passwd').read())\n"));
  EXPECT_FALSE(passwd.ok) << "only the files python needs are bound: " << passwd.stdout_text;
}

TEST_F(SandboxHostileTest, OtherProcessesAndTheHostEnvironmentAreInvisible) {
  ASSERT_STREQ(std::getenv("GEMINI_API_KEY"), kSecret);
  auto r = RunHostile(MakeJob(R"PY(
import os
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print("pids", pids)
for pid in pids:
    for entry in ("environ", "cmdline"):
        try:
            with open("/proc/%d/%s" % (pid, entry), "rb") as f:
                print(pid, entry, f.read()[:20000])
        except OSError as e:
            print(pid, entry, "denied", e.errno)
print("environ", dict(os.environ))
try:
    print("host init", open("/proc/1/root/etc/shadow").read())
except OSError as e:
    print("host init denied", e.errno)
raise SystemExit(7)
)PY"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_NE(r.stdout_text.find("pids [1, "), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("environ {"), std::string::npos);
  EXPECT_EQ(r.stdout_text.find("GEMINI_API_KEY"), std::string::npos) << r.stdout_text;
  EXPECT_EQ(r.stdout_text.find("/work"), std::string::npos) << r.stdout_text;
}

TEST_F(SandboxHostileTest, WritesOutsideTheJobDirNeverReachTheHost) {
  const std::string marker = UniqueMarker("write");
  const std::vector<std::string> host_paths = {
      "/usr/" + marker, "/tmp/" + marker, "/work/" + marker, "/etc/" + marker,
      "/" + marker,     "/dev/" + marker, "/proc/" + marker};
  std::string code = "import os\nwritten = []\nfor p in [";
  for (const auto& p : host_paths) code += "'" + p + "', ";
  code += R"PY(]:
    try:
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write("escaped")
        written.append(p)
    except OSError:
        pass
print("written inside the sandbox:", written)
raise SystemExit(1)
)PY";
  auto r = RunHostile(MakeJob(code));
  EXPECT_FALSE(r.ok);
  // Only the sandbox's own scratch /tmp (a small tmpfs wiped after the job) may take a write.
  EXPECT_EQ(r.stdout_text, "written inside the sandbox: ['/tmp/" + marker + "']\n");
  for (const auto& p : host_paths) EXPECT_FALSE(HostPathExists(p)) << p;
}

TEST_F(SandboxHostileTest, FillingTheJobDirHitsItsCap) {
  auto r = RunHostile(MakeJob(R"PY(
i = 0
while True:
    with open("chunk_%d.bin" % i, "wb") as f:
        f.write(b"x" * (4 << 20))
    i += 1
)PY"));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.killed_by_limit);
  EXPECT_NE(r.error.find("job dir limit 32 MiB exceeded"), std::string::npos) << r.error;
}

TEST_F(SandboxHostileTest, HundredMegabytesOfStdoutAreCut) {
  auto r = RunHostile(MakeJob(R"PY(
import sys
line = "y" * 1023 + "\n"
for _ in range(100 * 1024):
    sys.stdout.write(line)
)PY"));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.killed_by_limit);
  EXPECT_EQ(r.error, "output limit 0.25 MiB exceeded (stdout+stderr; job killed)");
  const std::size_t cap = roilens::testing::SandboxTestOptions().output_limit_bytes;
  EXPECT_LE(r.stdout_text.size() + r.stderr_text.size(), cap + 1024);
  EXPECT_GT(r.stdout_text.size(), cap / 2);
}

TEST_F(SandboxHostileTest, ChildrenLeftSleepingAfterATimeoutDie) {
  const std::string marker = UniqueMarker("sleeper");
  auto r = RunHostile(MakeJob(R"PY(
import os, subprocess, sys, time
marker = ")PY" + marker + R"PY("
subprocess.Popen([marker, "1000"], executable="/usr/bin/sleep")
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)", marker],
                 start_new_session=True)
if os.fork() == 0:  # a double-forked daemon
    os.setsid()
    if os.fork() == 0:
        os.execv("/usr/bin/sleep", [marker, "1000"])
    os._exit(0)
print("spawned", flush=True)
time.sleep(1000)
)PY",
                              std::chrono::milliseconds(2000)));
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.stdout_text, "spawned\n");
  EXPECT_TRUE(HostProcessesWith(marker).empty()) << "a process of the job survived";
}

TEST_F(SandboxHostileTest, DaemonsOfAJobThatExitedNormallyDie) {
  const std::string marker = UniqueMarker("daemon");
  auto r = RunHostile(MakeJob(R"PY(
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)", ")PY" +
                              marker +
                              R"PY("], start_new_session=True)
print("left a daemon")
)PY"));
  EXPECT_TRUE(r.ok) << r.error;  // leaving a daemon is not an error, it just does not survive
  EXPECT_TRUE(HostProcessesWith(marker).empty()) << "the daemon survived its job";
}

TEST_F(SandboxHostileTest, KillingItsSupervisorOnlyFailsThatJob) {
  auto r =
      RunHostile(MakeJob("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
                         "import time\ntime.sleep(5)\n"));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("supervisor"), std::string::npos) << r.error;
  auto pid1 =
      RunHostile(MakeJob("import os, signal\nfor s in (signal.SIGKILL, signal.SIGTERM, "
                         "signal.SIGINT):\n    os.kill(1, s)\nprint('still here')\n"));
  EXPECT_TRUE(pid1.ok) << pid1.error << pid1.stderr_text;
}

TEST_F(SandboxHostileTest, SupervisorCannotBeTracedOrRead) {
  auto r = RunHostile(MakeJob(R"PY(
import os
ppid = os.getppid()
for path in ("/proc/%d/mem" % ppid, "/proc/%d/environ" % ppid, "/proc/1/mem", "/proc/1/environ"):
    try:
        open(path, "rb").read(16)
        print("read", path)
    except OSError as e:
        print("denied", path)
)PY"));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.stdout_text.find("read "), std::string::npos) << r.stdout_text;
}

// The seccomp filter: what a job could use to widen its reach into the kernel (new namespaces,
// in which it would hold every capability; mounts; tracing; keyrings; BPF; modules) is refused.
// Each attempt runs in a forked child so that one that gets through cannot disturb the next.

TEST_F(SandboxHostileTest, SeccompFilterIsInForce) {
  auto r = RunHostile(MakeJob(R"PY(
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
print("seccomp", status["Seccomp"].strip(), "filters", status.get("Seccomp_filters", "?").strip())
)PY"));
  ASSERT_TRUE(r.ok) << r.error << r.stderr_text;
  EXPECT_EQ(r.stdout_text.rfind("seccomp 2 filters ", 0), 0u) << r.stdout_text;  // 2 = filter
  EXPECT_EQ(r.stdout_text.find("filters 0"), std::string::npos) << r.stdout_text;
}

TEST_F(SandboxHostileTest, SeccompProgramFdIsHeldByNoOneAfterStart) {
  // Each worker's bwrap gets the filter on an fd of its own and closes it after reading; neither
  // this process nor any worker (bwrap or sandbox side) keeps it. Workers started concurrently.
  std::vector<std::future<SandboxResult>> jobs;
  for (int i = 0; i < roilens::testing::SandboxTestOptions().max_workers; ++i) {
    jobs.push_back(std::async(std::launch::async, [this] { return sandbox_->Run(HealthyJob(5)); }));
  }
  for (auto& job : jobs) EXPECT_TRUE(IsHealthyResult(job.get(), 5));
  std::vector<int> pids = roilens::testing::DescendantProcessesWith(kWorkerMarker);
  ASSERT_FALSE(pids.empty());
  pids.push_back(getpid());
  int fds_seen = 0;
  for (int pid : pids) {
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* fds = opendir(dir.c_str());
    if (fds == nullptr) continue;  // gone, or not ours to read (sandbox side, when not root)
    while (dirent* e = readdir(fds)) {
      char target[256] = {};
      if (readlink((dir + "/" + e->d_name).c_str(), target, sizeof target - 1) <= 0) continue;
      ++fds_seen;
      EXPECT_EQ(std::string(target).find("memfd:roilens-seccomp"), std::string::npos)
          << "pid " << pid << " fd " << e->d_name << " -> " << target;
    }
    closedir(fds);
  }
  EXPECT_GT(fds_seen, 0);
}

TEST_F(SandboxHostileTest, NewNamespacesAreRefused) {
  auto r = RunHostile(MakeJob(SyscallProbe(R"PY(
attempt("unshare_user", lambda: sys_("unshare", CLONE_NEWUSER))
attempt("unshare_user_mount", lambda: sys_("unshare", CLONE_NEWUSER | CLONE_NEWNS))
if hasattr(os, "unshare"):
    attempt("os_unshare", lambda: os.unshare(os.CLONE_NEWUSER))
else:
    attempt("os_unshare", lambda: sys_("unshare", CLONE_NEWUSER | CLONE_NEWNET))
for flag in ("NEWUSER", "NEWNS", "NEWPID", "NEWNET", "NEWUTS", "NEWIPC", "NEWCGROUP"):
    flags = globals()["CLONE_" + flag] | signal.SIGCHLD
    attempt("clone_" + flag, lambda: clone_and_reap(sys_("clone", flags, 0, 0, 0, 0)))
attempt("clone_NEWUSER_NEWNS", lambda: clone_and_reap(
    sys_("clone", CLONE_NEWUSER | CLONE_NEWNS | signal.SIGCHLD, 0, 0, 0, 0)))
args = struct.pack("<8Q", CLONE_NEWUSER, 0, 0, 0, signal.SIGCHLD, 0, 0, 0)
attempt("clone3_NEWUSER", lambda: clone_and_reap(sys_("clone3", args, len(args))))
def setns():
    sys_("setns", os.open("/proc/self/ns/net", os.O_RDONLY), CLONE_NEWNET)
attempt("setns", setns)
def userns_then_mount():  # the escalation these refusals stop: root in a fresh user namespace
    sys_("unshare", CLONE_NEWUSER | CLONE_NEWNS)
    sys_("mount", b"none", b"/tmp", b"tmpfs", 0, 0)
attempt("userns_then_mount", userns_then_mount)
)PY")));
  ExpectProbeResults(r, {{"unshare_user", "EPERM"},
                         {"unshare_user_mount", "EPERM"},
                         {"os_unshare", "EPERM"},
                         {"clone_NEWUSER", "EPERM"},
                         {"clone_NEWNS", "EPERM"},
                         {"clone_NEWPID", "EPERM"},
                         {"clone_NEWNET", "EPERM"},
                         {"clone_NEWUTS", "EPERM"},
                         {"clone_NEWIPC", "EPERM"},
                         {"clone_NEWCGROUP", "EPERM"},
                         {"clone_NEWUSER_NEWNS", "EPERM"},
                         {"clone3_NEWUSER", "ENOSYS"},  // so that glibc falls back to clone
                         {"setns", "EPERM"},
                         {"userns_then_mount", "EPERM"}});
}

TEST_F(SandboxHostileTest, MountsAndRootChangesAreRefused) {
  auto r = RunHostile(MakeJob(SyscallProbe(R"PY(
attempt("mount", lambda: sys_("mount", b"none", b"/tmp", b"tmpfs", 0, 0))
attempt("umount2", lambda: sys_("umount2", b"/tmp", 2))
attempt("pivot_root", lambda: sys_("pivot_root", b"/tmp", b"/tmp"))
attempt("chroot", lambda: sys_("chroot", b"/"))
handle = struct.pack("<Ii", 8, 1) + bytes(8)
attempt("open_by_handle_at", lambda: sys_("open_by_handle_at", -100, handle, 0))
)PY")));
  ExpectProbeResults(r, {{"mount", "EPERM"},
                         {"umount2", "EPERM"},
                         {"pivot_root", "EPERM"},
                         {"chroot", "EPERM"},
                         {"open_by_handle_at", "EPERM"}});
}

TEST_F(SandboxHostileTest, TracingIsRefused) {
  auto r = RunHostile(MakeJob(SyscallProbe(R"PY(
PTRACE_TRACEME, PTRACE_ATTACH = 0, 16
attempt("ptrace_traceme", lambda: sys_("ptrace", PTRACE_TRACEME, 0, 0, 0))
def attach():
    sleeper = subprocess.Popen(["/usr/bin/sleep", "30"])  # exec'd, so dumpable: traceable
    try:
        sys_("ptrace", PTRACE_ATTACH, sleeper.pid, 0, 0)
    finally:
        sleeper.kill()
        sleeper.wait()
attempt("ptrace_attach", attach)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
src, dst = ctypes.create_string_buffer(b"roilens", 8), ctypes.create_string_buffer(8)
here, there = iovec(ctypes.addressof(dst), 8), iovec(ctypes.addressof(src), 8)
for name in ("process_vm_readv", "process_vm_writev"):
    attempt(name, lambda: sys_(name, os.getpid(), ctypes.byref(here), 1, ctypes.byref(there), 1, 0))
)PY")));
  ExpectProbeResults(r, {{"ptrace_traceme", "EPERM"},
                         {"ptrace_attach", "EPERM"},
                         {"process_vm_readv", "EPERM"},
                         {"process_vm_writev", "EPERM"}});
}

TEST_F(SandboxHostileTest, KernelInterfacesAreRefused) {
  auto r = RunHostile(MakeJob(SyscallProbe(R"PY(
bpf_attr = struct.pack("<5I", 2, 4, 4, 1, 0) + bytes(52)  # BPF_MAP_TYPE_ARRAY
attempt("bpf", lambda: sys_("bpf", 0, bpf_attr, len(bpf_attr)))
attempt("keyctl", lambda: sys_("keyctl", 0, -3, 1))  # KEYCTL_GET_KEYRING_ID, session, create
attempt("add_key", lambda: sys_("add_key", b"user", b"roilens", b"x", 1, -2))
attempt("request_key", lambda: sys_("request_key", b"user", b"roilens-absent", 0, 0))
# Software CPU clock of this task, user space only: what perf_event_paranoid 2 still allows.
perf_attr = struct.pack("<IIQQQQQ", 1, 128, 0, 0, 0, 0, (1 << 5) | (1 << 6)).ljust(128, b"\0")
attempt("perf_event_open", lambda: sys_("perf_event_open", perf_attr, 0, -1, -1, 0))
attempt("init_module", lambda: sys_("init_module", bytes(16), 16, b""))
attempt("finit_module", lambda: sys_("finit_module", 0, b"", 0))
attempt("delete_module", lambda: sys_("delete_module", b"roilens_absent", 0))
attempt("kexec_load", lambda: sys_("kexec_load", 0, 0, 0, 0))
attempt("kexec_file_load", lambda: sys_("kexec_file_load", -1, -1, 0, b"", 2))
attempt("reboot", lambda: sys_("reboot", 0xfee1dead, 672274793, 0, 0))  # CAD off: harmless
attempt("swapon", lambda: sys_("swapon", b"/job/absent", 0))
attempt("swapoff", lambda: sys_("swapoff", b"/job/absent"))
attempt("acct", lambda: sys_("acct", 0))
attempt("userfaultfd", lambda: sys_("userfaultfd", 1))  # UFFD_USER_MODE_ONLY
attempt("personality_no_aslr", lambda: sys_("personality", 0x0040000))  # ADDR_NO_RANDOMIZE
attempt("io_uring_setup", lambda: sys_("io_uring_setup", 1, bytes(120)))
)PY")));
  ExpectProbeResults(r, {{"bpf", "EPERM"},
                         {"keyctl", "EPERM"},
                         {"add_key", "EPERM"},
                         {"request_key", "EPERM"},
                         {"perf_event_open", "EPERM"},
                         {"init_module", "EPERM"},
                         {"finit_module", "EPERM"},
                         {"delete_module", "EPERM"},
                         {"kexec_load", "EPERM"},
                         {"kexec_file_load", "EPERM"},
                         {"reboot", "EPERM"},
                         {"swapon", "EPERM"},
                         {"swapoff", "EPERM"},
                         {"acct", "EPERM"},
                         {"userfaultfd", "EPERM"},
                         {"personality_no_aslr", "EPERM"},
                         {"io_uring_setup", "EPERM"}});
}

#if defined(__x86_64__)
/// Whether this kernel runs i386 syscalls (int 0x80) from a 64-bit process: false where IA-32
/// emulation is compiled out or off (ia32_emulation=0), and int 0x80 raises SIGSEGV instead.
bool HostRunsI386Syscalls() {
  const unsigned char code[] = {0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3};  // getpid; ret
  const pid_t child = fork();
  if (child == 0) {
    void* page =
        mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) _exit(2);
    std::memcpy(page, code, sizeof code);
    const long pid = reinterpret_cast<long (*)()>(page)();
    _exit(pid == syscall(SYS_getpid) ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST_F(SandboxHostileTest, ForeignArchitectureSyscallsKillTheProcess) {
  // The filter knows only the native ABI: an i386 (int 0x80) or x32 syscall could otherwise
  // reach the refused calls under numbers the filter does not check.
  auto r = RunHostile(MakeJob(SyscallProbe(R"PY(
import mmap
def i386_getpid():
    code = bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3])  # mov eax, 20 (getpid); int 0x80; ret
    page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(code)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    ctypes.CFUNCTYPE(ctypes.c_long)(address)()
attempt("i386", i386_getpid)
NR["x32_getpid"] = 0x40000000 | NR["getpid"]  # __X32_SYSCALL_BIT
attempt("x32", lambda: sys_("x32_getpid"))
attempt("native", lambda: sys_("getpid"))
)PY")));
  const bool i386 = HostRunsI386Syscalls();
  if (!i386) std::cout << "this kernel has no IA-32 emulation: int 0x80 faults before seccomp\n";
  ExpectProbeResults(r,
                     {{"i386", i386 ? "SIGSYS" : "SIGSEGV"}, {"x32", "SIGSYS"}, {"native", "ok"}});
}
#endif

TEST_F(SandboxHostileTest, OrdinaryProcessesThreadsAndLibrariesStillWork) {
  auto r = RunHostile(MakeJob(SyscallProbe(R"PY(
import concurrent.futures, threading
import cv2, numpy as np
def threads():
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda n: int(np.arange(n).sum()), [10, 100])) == [45, 4950]
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
attempt("threads", threads)
def fork():
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7
attempt("fork", fork)
attempt("raw_clone", lambda: clone_and_reap(sys_("clone", signal.SIGCHLD, 0, 0, 0, 0)))
def spawn():
    out = subprocess.run([sys.executable, "-c", "print('child')"], capture_output=True)
    assert out.stdout == b"child\n", out
    assert subprocess.run(["/usr/bin/true"]).returncode == 0
attempt("subprocess", spawn)
attempt("personality_query", lambda: sys_("personality", 0xFFFFFFFF))
def opencv():
    img = np.zeros((64, 64, 3), np.uint8)
    cv2.circle(img, (32, 32), 20, (255, 255, 255), -1)
    assert cv2.Canny(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), 50, 150).any()
    ok, png = cv2.imencode(".png", img)
    assert ok and cv2.imdecode(png, cv2.IMREAD_COLOR).shape == (64, 64, 3)
attempt("opencv", opencv)
)PY")));
  ExpectProbeResults(r, {{"threads", "ok"},
                         {"fork", "ok"},
                         {"raw_clone", "ok"},
                         {"subprocess", "ok"},
                         {"personality_query", "ok"},
                         {"opencv", "ok"}});
}

}  // namespace
}  // namespace roilens::backend
