// LocalBackend: an Interactions API emulator on loopback (cpp-httplib), backed by the Coder and
// the Sandbox. Embedded by `roilens run` and run standalone by `roilens serve`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "roilens/backend/coder.h"
#include "roilens/backend/sandbox.h"
#include "roilens/client/status.h"

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

/// `text` without leading and trailing blanks (space, tab, CR, LF): how API keys are compared,
/// so that a caller can drop the keys that would be refused as blank.
std::string TrimWhitespace(std::string_view text);

struct BackendOptions {
  std::string host = "127.0.0.1";
  int port = 0;  ///< 0 = any free port
  /// Accepted keys, compared after trimming whitespace (a key that is empty after trimming is
  /// refused by Start). Empty: no key needed, and only a loopback host may be bound.
  std::vector<std::string> api_keys;
  std::string coder = "cv";              ///< "cv" | "echo"
  std::chrono::milliseconds latency{0};  ///< added to every model turn
  FaultOptions faults;
  SandboxOptions sandbox;
  int max_attempts = 5;  ///< code executions per interaction
  std::size_t store_max_interactions = 10000;
  /// The store's memory bound in bytes (approximate: JSON strings plus per-node overhead). The
  /// least recently used interactions are evicted first; one larger than this on its own is
  /// answered but not stored (a later GET answers 404).
  std::size_t store_max_bytes = std::size_t{256} << 20;
  std::chrono::seconds store_ttl{3600};
  /// Largest request body, bytes, whether sent with Content-Length or chunked: 413 (and the
  /// connection closed) as soon as it is crossed.
  std::size_t max_request_bytes = 32 << 20;
  /// Connection threads started up front; more start on demand, up to max_connections.
  int threads = 16;
  /// Connections served at once (one thread each, whether busy or idle). A connection beyond
  /// it is answered 503 UNAVAILABLE and closed without reading its request.
  int max_connections = 256;
  /// How long a connection may wait for its next request to begin before it is closed; also the
  /// longest silence allowed within a request body.
  std::chrono::milliseconds idle_timeout{5000};
  /// A request's line and headers must have arrived within this long of its first byte (a total
  /// deadline: a client dribbling one header line every few seconds is cut off).
  std::chrono::milliseconds header_timeout{5000};
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
