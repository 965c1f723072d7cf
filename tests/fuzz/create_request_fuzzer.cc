// libFuzzer entry point for roilens::fuzz::CreateRequest (see fuzz_targets.h; scripts/fuzz.sh runs
// it).
#include "fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return roilens::fuzz::CreateRequest(data, size);
}
