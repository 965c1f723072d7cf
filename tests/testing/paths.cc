#include "testing/paths.h"

#ifndef ROILENS_CLI_PATH
#define ROILENS_CLI_PATH ""
#endif

namespace roilens::testing {
std::string SourceDir() { return ROILENS_SOURCE_DIR; }
std::string BinaryDir() { return ROILENS_BINARY_DIR; }
std::string CliPath() { return ROILENS_CLI_PATH; }
}  // namespace roilens::testing
