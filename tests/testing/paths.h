// Where tests find the source tree, the build tree and the roilens CLI.
#pragma once
#include <string>

namespace roilens::testing {
std::string SourceDir();  ///< repository root
std::string BinaryDir();  ///< CMake build root
std::string CliPath();    ///< the built `roilens` executable ("" if not built)
}  // namespace roilens::testing
