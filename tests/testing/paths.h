// Where tests find the source tree, the build tree and the roilens CLI, and where they write.
#pragma once
#include <filesystem>
#include <string>

namespace roilens::testing {
std::string SourceDir();  ///< repository root
std::string BinaryDir();  ///< CMake build root
std::string CliPath();    ///< the built `roilens` executable ("" if not built)

/// An empty directory `name` under this test process's scratch root in the system temp dir
/// (emptied first if it exists). The whole root is removed when the process exits normally, so
/// test runs leave nothing behind; set ROILENS_KEEP_TEST_FILES=1 to keep it for a post-mortem.
std::filesystem::path ScratchDir(const std::string& name);
}  // namespace roilens::testing
