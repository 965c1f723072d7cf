// Hostile code against the Sandbox: each attack must be contained and reported as an error
// result while a bystander job runs concurrently, the sandbox must serve normally afterwards, and
// no process of the attack may survive on the host.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <iostream>
#include <random>
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

TEST_F(SandboxHostileTest, InfiniteLoopTimesOut) {
  auto r = RunHostile(MakeJob("while True:\n    pass\n", std::chrono::milliseconds(2000)));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.error, "timed out after 2.0 s");
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

}  // namespace
}  // namespace roilens::backend
