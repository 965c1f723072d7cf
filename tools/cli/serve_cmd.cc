// `roilens serve`: runs the local backend (Interactions API emulator) standalone until SIGINT
// or SIGTERM, for other clients (the official SDKs, curl, another roilens).
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <semaphore>
#include <sstream>
#include <thread>

#include "commands.h"
#include "roilens/backend/server.h"

namespace roilens::cli {
namespace {

struct ServeFlags {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::vector<std::string> api_keys;
  std::string coder = "cv";
  int latency_ms = 0;
  double fault_rate = 0;
  std::string faults = "429,500,503,slow,reset,garbage,truncated";
  int fault_retry_delay_ms = 1000;
  unsigned fault_seed = 1;
  int max_attempts = 5;
  double timeout_s = 30;
  int threads = 16;
  int max_connections = 256;
  int store_max_mib = 256;
};

// Signal handlers may only do async-signal-safe things: release a semaphore that a waiter
// thread turns into LocalBackend::Stop().
// Counting (not binary): a second Ctrl-C before shutdown ends must not overflow it.
std::counting_semaphore<1024> g_stop_signal{0};
extern "C" void OnStopSignal(int) { g_stop_signal.release(); }

/// Comma-separated items, each trimmed; empty items dropped ("k1, k2," -> k1, k2).
std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item = backend::TrimWhitespace(item); !item.empty()) out.push_back(item);
  }
  return out;
}

int RunServe(const ServeFlags& flags) {
  backend::BackendOptions options;
  options.host = flags.host;
  options.port = flags.port;
  // Keys are trimmed and blank ones dropped: ROILENS_SERVER_KEYS=", ," configures no key (so
  // only loopback is served), never a key of blanks.
  for (const auto& key : flags.api_keys) {
    if (std::string trimmed = backend::TrimWhitespace(key); !trimmed.empty())
      options.api_keys.push_back(trimmed);
  }
  if (flags.api_keys.empty()) {
    if (const char* env = std::getenv("ROILENS_SERVER_KEYS")) options.api_keys = SplitCommas(env);
  }
  const bool keys_configured = !flags.api_keys.empty() || std::getenv("ROILENS_SERVER_KEYS");
  if (keys_configured && options.api_keys.empty()) {
    std::cerr << "roilens serve: every configured API key is blank; serving without keys "
                 "(loopback only)\n";
  }
  options.coder = flags.coder;
  options.latency = std::chrono::milliseconds(flags.latency_ms);
  options.faults.rate = flags.fault_rate;
  if (flags.fault_rate > 0) options.faults.kinds = SplitCommas(flags.faults);
  options.faults.retry_delay = std::chrono::milliseconds(flags.fault_retry_delay_ms);
  options.faults.seed = flags.fault_seed;
  options.max_attempts = flags.max_attempts;
  options.sandbox.wall_limit =
      std::chrono::milliseconds(static_cast<std::int64_t>(flags.timeout_s * 1000));
  options.threads = flags.threads;
  options.max_connections = flags.max_connections;
  options.store_max_bytes = static_cast<std::size_t>(flags.store_max_mib) << 20;

  auto backend = backend::LocalBackend::Start(options);
  if (!backend.ok()) {
    std::cerr << "roilens serve: " << backend.status().message() << "\n";
    return backend.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitBackend;
  }
  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGTERM, OnStopSignal);
  std::cout << "roilens serve: listening on " << (*backend)->base_url() << " ("
            << (*backend)->Describe() << (options.api_keys.empty() ? "" : ", api keys required")
            << ")" << std::endl;
  std::thread stopper([&] {
    g_stop_signal.acquire();
    (*backend)->Stop();
  });
  (*backend)->Wait();
  g_stop_signal.release();  // lets the stopper exit when Stop() came from elsewhere
  stopper.join();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  std::cout << "roilens serve: stopped" << std::endl;
  return kExitOk;
}

CommandRegistration registration("serve", [](CLI::App& root, int& exit_code) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = root.add_subcommand(
      "serve", "Run the local Interactions API backend (coder + code sandbox) until Ctrl-C");
  cmd->add_option("--host", flags->host, "Address to bind; anything but loopback needs --api-key")
      ->capture_default_str();
  cmd->add_option("--port", flags->port, "Port (0 = any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", flags->api_keys,
                  "Accepted API key (repeatable; default: comma-separated $ROILENS_SERVER_KEYS)");
  cmd->add_option("--coder", flags->coder, "cv (writes and runs Python) or echo (no code)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cv", "echo"}));
  cmd->add_option("--latency-ms", flags->latency_ms, "Delay added to every model turn")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--fault-rate", flags->fault_rate, "Fraction of requests given a fault")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--faults", flags->faults,
                  "Fault kinds: 429,500,503,slow,reset,garbage,truncated,stall")
      ->capture_default_str();
  cmd->add_option("--fault-retry-delay-ms", flags->fault_retry_delay_ms,
                  "Retry delay advertised by injected 429s")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--fault-seed", flags->fault_seed, "Seed of the fault sequence")
      ->capture_default_str();
  cmd->add_option("--max-attempts", flags->max_attempts, "Code executions per interaction")
      ->capture_default_str()
      ->check(CLI::Range(1, 20));
  cmd->add_option("--timeout-s", flags->timeout_s, "Wall-clock limit of one code execution")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threads", flags->threads,
                  "Connection threads started up front (more start on demand)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--max-connections", flags->max_connections,
                  "Connections served at once; beyond, new ones are answered 503")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--store-max-mib", flags->store_max_mib,
                  "Memory bound of the stored interactions (least recently used evicted)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->callback([flags, &exit_code] { exit_code = RunServe(*flags); });
});

}  // namespace
}  // namespace roilens::cli
