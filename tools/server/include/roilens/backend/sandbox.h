// Sandbox: runs untrusted Python (what the coder writes) under bubblewrap with a warm,
// pre-imported interpreter. Generated code is hostile until proven otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "roilens/client/status.h"

namespace roilens::backend {

struct SandboxOptions {
  std::string python = "/usr/bin/python3";
  std::string bwrap = "bwrap";  ///< found on PATH when not absolute
  std::chrono::milliseconds wall_limit{30000};
  std::int64_t memory_limit_bytes = 2LL << 30;    ///< RLIMIT_AS of the job
  std::int64_t job_dir_limit_bytes = 64LL << 20;  ///< size cap of the writable job dir
  std::int64_t output_limit_bytes = 1 << 20;      ///< stdout+stderr kept; the rest is cut
  int max_processes = 16;
  int warm_workers = 2;  ///< pre-imported interpreters kept ready
  /// Most jobs running at once (warm + cold-started workers); more callers wait for a free one.
  /// 0 = max(2, 2 * warm_workers). warm_workers = 0 starts a fresh interpreter per job.
  int max_workers = 0;
};

struct SandboxFile {
  std::string name;  ///< plain file name, no directories
  std::vector<std::uint8_t> bytes;
};

struct SandboxImage {
  std::string name;       ///< file name the code wrote (or "figure_N.png" for plt figures)
  std::string mime_type;  ///< image/png or image/jpeg
  std::vector<std::uint8_t> bytes;
};

struct SandboxJob {
  std::string code;                         ///< Python source
  std::vector<SandboxFile> inputs;          ///< placed in the job's working dir before the run
  std::chrono::milliseconds wall_limit{0};  ///< 0 = SandboxOptions::wall_limit
};

struct SandboxResult {
  bool ok = false;  ///< exited 0 and no limit hit
  int exit_code = -1;
  bool timed_out = false;
  bool killed_by_limit = false;      ///< memory/process/output/file-size limit
  std::string stdout_text;           ///< capped at output_limit_bytes
  std::string stderr_text;           ///< capped; holds the traceback on errors
  std::string error;                 ///< one-line reason when !ok ("timed out after 30 s", ...)
  std::vector<SandboxImage> images;  ///< images written by the code, in creation order
  double elapsed_ms = 0;
};

/// The text a code_execution_result carries for `result`: stdout, and when the run failed its
/// stderr and "Error: <reason>" on lines of their own (what the model, and a replay, compares).
std::string ResultText(const SandboxResult& result);

/// Thread-safe: Run may be called from many threads at once; jobs run concurrently up to the
/// number of warm workers plus cold starts. Every sandbox process runs under a seccomp filter
/// (libseccomp, applied by bwrap) that refuses namespace creation, mounts, ptrace, keyrings, BPF,
/// perf, modules, kexec, reboot and similar calls, and kills foreign-ABI (i386, x32) syscalls.
/// Create() runs a self-test and fails with kFailedPrecondition naming exactly what is missing
/// when isolation cannot be had (bwrap, user namespaces, the seccomp filter).
/// Destroy it only after every Run() has returned; destruction kills the worker sandboxes.
class Sandbox {
 public:
  static StatusOr<std::unique_ptr<Sandbox>> Create(SandboxOptions options);
  virtual ~Sandbox() = default;
  virtual SandboxResult Run(const SandboxJob& job) = 0;
  /// What the self-test found (e.g. "bwrap 0.8.0, userns ok, pid ns ok, net ns ok, ...,
  /// seccomp filter (40 syscalls refused, native ABI only), ...").
  virtual std::string Describe() const = 0;
};

}  // namespace roilens::backend
