// The echo coder: a stand-in model that runs no code, answering from the prompt's ```json task
// spec, so benchmarks and tests can measure the pipeline and the wire alone.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "roilens/backend/coder.h"
#include "roilens/client/bounded_json.h"

namespace roilens::backend {
namespace {

using Json = nlohmann::json;

/// The last ```json fenced block of `text` that parses as an object.
std::optional<Json> FindTaskSpec(const std::string& text) {
  std::optional<Json> found;
  std::size_t pos = 0;
  while ((pos = text.find("```json", pos)) != std::string::npos) {
    const std::size_t begin = pos + 7;
    const std::size_t end = text.find("```", begin);
    if (end == std::string::npos) break;
    Json spec = ParseBoundedJsonOrDiscard(std::string_view(text).substr(begin, end - begin));
    if (spec.is_object()) found = std::move(spec);
    pos = end + 3;
  }
  return found;
}

/// `key` from spec.calibration, spec.gauge or spec itself (task specs put it in one of them).
const Json* FindField(const Json& spec, const char* key) {
  for (const char* group : {"calibration", "gauge"}) {
    if (auto g = spec.find(group); g != spec.end() && g->is_object() && g->contains(key)) {
      return &(*g)[key];
    }
  }
  if (auto it = spec.find(key); it != spec.end()) return &*it;
  return nullptr;
}

class EchoCoder final : public Coder {
 public:
  CoderProgram Write(const CoderInput&, int, const std::vector<CoderObservation>&) override {
    // Never called: ExecutesCode() is false, so the server asks for no program.
    return {"The echo coder writes no code.", "print('{}')"};
  }

  std::string Answer(const CoderInput& input, const std::vector<CoderObservation>&) override {
    const auto spec = FindTaskSpec(input.text);
    const std::string task = spec ? spec->value("task", "") : "";
    Json answer;
    if (task == "read_gauge") {
      const Json* lo = FindField(*spec, "min_value");
      const Json* hi = FindField(*spec, "max_value");
      const Json* unit = FindField(*spec, "unit");
      const double min = lo && lo->is_number() ? lo->get<double>() : 0.0;
      const double max = hi && hi->is_number() ? hi->get<double>() : 0.0;
      answer = {{"value", (min + max) / 2},
                {"unit", unit && unit->is_string() ? unit->get<std::string>() : ""},
                {"confidence", 0.5}};
    } else if (task == "count") {
      answer = {{"count", 0}, {"confidence", 0.5}};
      if (auto object = spec->find("object"); object != spec->end() && object->is_string()) {
        answer["object"] = *object;
      }
    } else {
      // First 80 bytes, cut back to a UTF-8 boundary so the JSON stays valid.
      std::size_t n = std::min<std::size_t>(input.text.size(), 80);
      while (n > 0 && n < input.text.size() &&
             (static_cast<unsigned char>(input.text[n]) & 0xC0) == 0x80) {
        --n;
      }
      answer = {{"text", "echo: " + input.text.substr(0, n)}};
    }
    return "Echo coder (no code executed) answering " + (task.empty() ? "the prompt" : task) +
           ".\n" + answer.dump();
  }

  bool ExecutesCode() const override { return false; }

  std::vector<SandboxImage> OutputImages(const CoderInput& input,
                                         const std::vector<CoderObservation>&) override {
    if (input.images.empty()) return {};
    const auto& first = input.images.front();
    return {SandboxImage{"echo.img", first.mime_type, first.bytes}};
  }
};

}  // namespace

std::unique_ptr<Coder> MakeEchoCoder() { return std::make_unique<EchoCoder>(); }

}  // namespace roilens::backend
