// LocalBackend: an Interactions API emulator on loopback (cpp-httplib), backed by the Coder and
// the Sandbox. Embedded by `roilens run` and run standalone by `roilens serve`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "roilens/backend/coder.h"
#include "roilens/backend/sandbox.h"
#include "roilens/status.h"

namespace roilens::backend {

/// Faults injected at `rate` (0..1) per request, for tests and benchmarks.
struct FaultOptions {
  double rate = 0;
  /// any of "429", "500", "503", "slow" (body dribbled over 1.5 s), "reset", "garbage" (a 200
  /// that is not JSON), "truncated" (a 200 whose JSON is cut mid-way), "stall" (answered after
  /// 4 s); one is picked per faulted request.
  std::vector<std::string> kinds;
  std::chrono::milliseconds retry_delay{1000};  ///< advertised on 429 (RetryInfo + Retry-After)
  std::uint32_t seed = 1;
};

struct BackendOptions {
  std::string host = "127.0.0.1";
  int port = 0;                          ///< 0 = any free port
  std::vector<std::string> api_keys;     ///< empty: no key needed, loopback only
  std::string coder = "cv";              ///< "cv" | "echo"
  std::chrono::milliseconds latency{0};  ///< added to every model turn
  FaultOptions faults;
  SandboxOptions sandbox;
  int max_attempts = 5;  ///< code executions per interaction
  std::size_t store_max_interactions = 10000;
  std::chrono::seconds store_ttl{3600};
  std::size_t max_request_bytes = 32 << 20;
  int threads = 16;  ///< HTTP worker threads
  /// Tests: when set, makes the coder for each model turn instead of `coder` (a sandbox is
  /// still created when the coder ExecutesCode()). Called concurrently from worker threads.
  std::function<std::unique_ptr<Coder>()> coder_factory;
};

/// Thread-safe. Start() binds and serves on a background thread; the destructor stops it.
class LocalBackend {
 public:
  static StatusOr<std::unique_ptr<LocalBackend>> Start(BackendOptions options);
  virtual ~LocalBackend() = default;
  virtual int port() const = 0;
  /// "http://127.0.0.1:PORT" (no version path): hand this to ClientOptions::base_url.
  virtual std::string base_url() const = 0;
  /// Blocks until Stop() is called from another thread (or a signal handler path).
  virtual void Wait() = 0;
  virtual void Stop() = 0;
  /// Which coder and sandbox answer, e.g. "coder=cv, sandbox=bwrap 0.8.0, userns ok, ..." or
  /// "coder=cv, sandbox=UNAVAILABLE: <why>" (then code-execution requests are refused).
  virtual std::string Describe() const = 0;
};

}  // namespace roilens::backend
