// Replays the checked-in fuzz corpus (tests/fuzz/corpus/<target>/) through the fuzz targets in
// the ordinary build, so every input that once found a bug stays a regression test everywhere
// (also under the ASan/UBSan build), not only where clang's libFuzzer is built.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_targets.h"

namespace {

namespace fs = std::filesystem;

using Target = int (*)(const std::uint8_t*, std::size_t);

std::size_t Replay(const std::string& name, Target target) {
  const fs::path dir = fs::path(ROILENS_FUZZ_CORPUS_DIR) / name;
  EXPECT_TRUE(fs::is_directory(dir)) << dir;
  std::size_t inputs = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(entry.path().string());
    EXPECT_EQ(target(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), 0);
    ++inputs;
  }
  return inputs;
}

TEST(FuzzCorpus, StationConfig) {
  EXPECT_GT(Replay("station_config", roilens::fuzz::StationConfig), 5u);
}
TEST(FuzzCorpus, InteractionResponse) {
  EXPECT_GT(Replay("interaction_response", roilens::fuzz::InteractionResponse), 5u);
}
TEST(FuzzCorpus, CreateRequest) {
  EXPECT_GT(Replay("create_request", roilens::fuzz::CreateRequest), 5u);
}

}  // namespace
