// Coder: the local "model". Reads the task prompt (and its ```json task spec), writes a Python
// program for it, revises the program after an execution error, and writes the final answer.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "roilens/backend/sandbox.h"

namespace roilens::backend {

struct CoderInputImage {
  std::string mime_type;
  std::vector<std::uint8_t> bytes;
};

/// What the user sent, flattened: all text joined with "\n", images in order.
struct CoderInput {
  std::string text;
  std::string system_instruction;
  std::vector<CoderInputImage> images;
};

/// One program to run. The sandbox places input images as input_0.<ext>, input_1.<ext>, ...
struct CoderProgram {
  std::string plan;  ///< short plain-language plan, sent as a model_output text step
  std::string code;  ///< Python; prints one JSON answer line last; writes result images
};

/// Outcome of one execution, as the coder sees it.
struct CoderObservation {
  SandboxResult result;
};

class Coder {
 public:
  virtual ~Coder() = default;
  /// Program for attempt `attempt` (0-based); `history` holds the outcomes of earlier attempts.
  virtual CoderProgram Write(const CoderInput& input, int attempt,
                             const std::vector<CoderObservation>& history) = 0;
  /// The final text (plain sentence + the answer JSON line) after the last execution.
  virtual std::string Answer(const CoderInput& input,
                             const std::vector<CoderObservation>& history) = 0;
  /// false for coders that need no code execution (echo).
  virtual bool ExecutesCode() const { return true; }
  /// Images for the final model_output step. Default: every image written by the last
  /// successful execution (none when no execution succeeded).
  virtual std::vector<SandboxImage> OutputImages(const CoderInput& input,
                                                 const std::vector<CoderObservation>& history) {
    (void)input;
    for (auto it = history.rbegin(); it != history.rend(); ++it) {
      if (it->result.ok) return it->result.images;
    }
    return {};
  }
};

/// The classical-CV coder (read_gauge, count, zoom, annotate, ask).
std::unique_ptr<Coder> MakeCvCoder();

/// The echo coder: runs no code. Answers from the prompt's ```json task spec (read_gauge: the
/// midpoint of the calibrated range, count: 0, otherwise "echo: <first 80 chars>") and returns
/// the first input image as its output image. For measuring the pipeline alone. Thread-safe.
std::unique_ptr<Coder> MakeEchoCoder();

}  // namespace roilens::backend
