// Shared helpers for the sandbox tests: one Sandbox per test binary (workers are expensive to
// start), and a scan of the host's /proc for processes whose command line carries a marker.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "roilens/backend/sandbox.h"

namespace roilens::testing {

/// Options the sandbox tests use: 2 warm workers, short wall limit, small caps so limit tests
/// stay fast.
backend::SandboxOptions SandboxTestOptions();

/// A process-wide Sandbox created on first use with SandboxTestOptions(); nullptr when Create()
/// failed (then `SandboxCreateError()` says why). Thread-safe.
backend::Sandbox* SharedSandbox();
std::string SandboxCreateError();

/// The contents of a /proc file; what was read before an error (a process that exited while
/// it was read: ESRCH), empty when it cannot be opened. Never throws.
std::string ReadProcFile(const std::string& path);
/// Host PIDs whose /proc/<pid>/cmdline or environ contains `marker`.
std::vector<int> HostProcessesWith(const std::string& marker);
/// The subset of HostProcessesWith(marker) that descends from this process.
std::vector<int> DescendantProcessesWith(const std::string& marker);

/// A job that runs `code` with the given wall limit.
backend::SandboxJob MakeJob(std::string code,
                            std::chrono::milliseconds wall = std::chrono::milliseconds(20000));

/// A bland job (prints "alive <n>") and whether its result is what it must be: proof that the
/// sandbox keeps serving while or after something hostile runs.
backend::SandboxJob HealthyJob(int n);
bool IsHealthyResult(const backend::SandboxResult& r, int n);

}  // namespace roilens::testing
