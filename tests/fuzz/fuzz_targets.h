// The bodies of the libFuzzer targets, shared by the fuzzers (clang, -fsanitize=fuzzer) and by
// fuzz_corpus_test (any compiler), which replays the checked-in corpus in the ordinary suite.
#pragma once

#include <cstddef>
#include <cstdint>

namespace roilens::fuzz {

/// Station config text -> ParseStationConfig; a config that parses must hold its invariants.
int StationConfig(const std::uint8_t* data, std::size_t size);
/// Response body -> ParseInteraction, then what the pipeline reads of it (final text, answer
/// JSON, code runs, images, ParseRoiAnswer for each task) and a serialise/parse round trip.
int InteractionResponse(const std::uint8_t* data, std::size_t size);
/// Request body -> the local backend's create-request parsing, as the server runs it.
int CreateRequest(const std::uint8_t* data, std::size_t size);

}  // namespace roilens::fuzz
