// The classical-CV coder: reads the task spec (or infers the task from the wording), writes a
// Python program from the embedded templates (tools/server/py/coder_*.py) with the spec injected,
// revises it after a failed execution, and turns the last good run's JSON line into the answer.
#include "roilens/backend/coder.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "roilens/client/bounded_json.h"

extern const char* const roilens_embedded_coder_common;
extern const char* const roilens_embedded_coder_gauge;
extern const char* const roilens_embedded_coder_count;
extern const char* const roilens_embedded_coder_zoom;
extern const char* const roilens_embedded_coder_annotate;
extern const char* const roilens_embedded_coder_ask;

namespace roilens::backend {
namespace {

using nlohmann::json;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool Contains(const std::string& haystack, const char* needle) {
  return haystack.find(needle) != std::string::npos;
}

/// The last ```json fenced block of `text` that parses as an object (nullopt if none).
std::optional<json> FencedSpec(const std::string& text) {
  std::optional<json> found;
  std::size_t pos = 0;
  while ((pos = text.find("```json", pos)) != std::string::npos) {
    std::size_t begin = pos + 7;
    std::size_t end = text.find("```", begin);
    if (end == std::string::npos) break;
    json parsed = ParseBoundedJsonOrDiscard(std::string_view(text).substr(begin, end - begin),
                                            /*ignore_comments=*/true);
    if (parsed.is_object()) found = std::move(parsed);
    pos = end + 3;
  }
  return found;
}

/// Task from free-form wording, for prompts that carry no spec.
std::string InferTask(const std::string& text) {
  const std::string t = Lower(text);
  if (Contains(t, "gauge") || Contains(t, "dial") || Contains(t, "needle") ||
      Contains(t, "meter reading") || Contains(t, "pressure reading"))
    return "read_gauge";
  if (Contains(t, "how many") || Contains(t, "count") || Contains(t, "number of")) return "count";
  if (Contains(t, "zoom") || Contains(t, "enlarge") || Contains(t, "magnify") ||
      Contains(t, "close-up") || Contains(t, "close up"))
    return "zoom";
  if (Contains(t, "circle") || Contains(t, "draw") || Contains(t, "arrow") ||
      Contains(t, "box around") || Contains(t, "bounding box") || Contains(t, "annotate") ||
      Contains(t, "highlight") || Contains(t, "mark ") || Contains(t, "label"))
    return "annotate";
  return "ask";
}

/// "count the bolts" -> "bolts"; "how many nuts are ..." -> "nuts".
std::string InferObject(const std::string& text) {
  std::istringstream words(Lower(text));
  std::vector<std::string> w;
  for (std::string s; words >> s;) {
    s.erase(std::remove_if(s.begin(), s.end(),
                           [](unsigned char c) { return !std::isalnum(c) && c != '-'; }),
            s.end());
    if (!s.empty()) w.push_back(s);
  }
  static const std::vector<std::string> kSkip = {"the", "all", "of", "many", "number", "visible"};
  for (std::size_t i = 0; i + 1 < w.size(); ++i) {
    if (w[i] == "count" || w[i] == "many" || w[i] == "of") {
      for (std::size_t j = i + 1; j < w.size(); ++j)
        if (std::find(kSkip.begin(), kSkip.end(), w[j]) == kSkip.end()) return w[j];
    }
  }
  return "objects";
}

/// The spec the program gets: the fenced one, else one inferred from the wording.
json ResolveSpec(const CoderInput& input) {
  const std::string all =
      input.system_instruction.empty() ? input.text : input.system_instruction + "\n" + input.text;
  json spec = FencedSpec(input.text).value_or(FencedSpec(all).value_or(json::object()));
  std::string task = spec.contains("task") && spec["task"].is_string()
                         ? Lower(spec["task"].get<std::string>())
                         : std::string();
  if (task == "gauge" || task == "read") task = "read_gauge";
  if (task != "read_gauge" && task != "count" && task != "zoom" && task != "annotate" &&
      task != "ask")
    task = InferTask(input.text);
  spec["task"] = task;
  if (task == "count" && !(spec.contains("object") && spec["object"].is_string()))
    spec["object"] = InferObject(input.text);
  if ((task == "annotate" || task == "ask" || task == "zoom") &&
      !(spec.contains("prompt") && spec["prompt"].is_string())) {
    // the plain instruction without the fenced block
    std::string plain = input.text.substr(0, input.text.find("```"));
    while (!plain.empty() && std::isspace(static_cast<unsigned char>(plain.back())))
      plain.pop_back();
    spec["prompt"] = plain;
  }
  if (task == "read_gauge" && !(spec.contains("calibration") && spec["calibration"].is_object()))
    spec["calibration"] = json::object();
  return spec;
}

/// First line of the last failure, e.g. "ModuleNotFoundError: No module named 'scipy'".
std::string LastError(const std::vector<CoderObservation>& history) {
  for (auto it = history.rbegin(); it != history.rend(); ++it) {
    const SandboxResult& r = it->result;
    if (r.ok) continue;
    std::string err = r.stderr_text;
    // the last non-empty line of a traceback names the exception
    std::istringstream lines(err);
    std::string line, last;
    while (std::getline(lines, line))
      if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
    if (!last.empty()) return last.substr(0, 300);
    if (!r.error.empty()) return r.error.substr(0, 300);
    return "exit code " + std::to_string(r.exit_code);
  }
  return {};
}

const char* TemplateFor(const std::string& task) {
  if (task == "read_gauge") return roilens_embedded_coder_gauge;
  if (task == "count") return roilens_embedded_coder_count;
  if (task == "zoom") return roilens_embedded_coder_zoom;
  if (task == "annotate") return roilens_embedded_coder_annotate;
  return roilens_embedded_coder_ask;
}

const char* EntryFor(const std::string& task) {
  if (task == "read_gauge") return "read_gauge";
  if (task == "count") return "count_parts";
  if (task == "zoom") return "zoom";
  if (task == "annotate") return "annotate";
  return "ask";
}

/// Strategy of attempt `attempt`: each revision takes a more defensive path, and the previous
/// error (missing module, missing input, timeout, memory) switches off what caused it.
json StrategyFor(const std::string& task, int attempt, const std::string& last_error) {
  json s;
  const int a = std::clamp(attempt, 0, 4);
  if (task == "read_gauge") {
    static const json kLadder[] = {
        {{"dial", "hough"}, {"ellipse", true}, {"scipy", true}},
        {{"dial", "hough"}, {"ellipse", false}, {"scipy", false}},
        {{"dial", "centre"}, {"ellipse", true}, {"scipy", false}},
        {{"dial", "centre"}, {"ellipse", false}, {"scipy", false}},
        {{"dial", "centre"}, {"ellipse", false}, {"scipy", false}, {"band", {0.15, 0.7}}},
    };
    s = kLadder[a];
  } else if (task == "count") {
    static const json kLadder[] = {
        // later attempts smooth more and stop splitting clusters: fewer ways to fail
        {{"smooth", 1.5}, {"min_threshold", 30.0}, {"split", true}},
        {{"smooth", 2.0}, {"min_threshold", 24.0}, {"split", true}, {"peak_prominence", 0.3}},
        {{"smooth", 1.0}, {"min_threshold", 36.0}, {"split", false}},
        {{"smooth", 2.5}, {"min_threshold", 20.0}, {"split", false}},
        {{"smooth", 1.5}, {"min_threshold", 30.0}, {"split", false}},
    };
    s = kLadder[a];
  } else {
    s = json::object();
  }
  if (a >= 1) s["any_input"] = true;
  if (a >= 2) s["max_side"] = 1600;
  const std::string e = Lower(last_error);
  if (Contains(e, "scipy")) s["scipy"] = false;
  if (Contains(e, "timed out") || Contains(e, "memory") || Contains(e, "killed"))
    s["max_side"] = a >= 3 ? 600 : 900;
  if (Contains(e, "no input image") || Contains(e, "could not decode")) s["any_input"] = true;
  return s;
}

std::string Describe(const json& spec) {
  const std::string task = spec["task"];
  std::ostringstream out;
  if (task == "read_gauge") {
    const json& c = spec["calibration"];
    auto num = [&](const char* k, double d) {
      return c.contains(k) && c[k].is_number() ? c[k].get<double>() : d;
    };
    std::string unit =
        c.contains("unit") && c["unit"].is_string() ? c["unit"].get<std::string>() : std::string();
    out << "Read the gauge: locate the dial (circle, then the rim's ellipse to undo tilt), find "
           "the needle with a polar scan restricted to the calibrated sweep, fit its axis, and "
           "map the angle through the calibration ("
        << num("min_value", 0) << " at " << num("min_angle_deg", 225) << " deg to "
        << num("max_value", 10) << " at " << num("max_angle_deg", -45) << " deg, clockwise"
        << (unit.empty() ? "" : ", unit " + unit)
        << "). Draw the dial, needle and value; print the JSON answer.";
  } else if (task == "count") {
    out << "Count the " << spec["object"].get<std::string>()
        << ": estimate the background locally (a median mesh, refined without the parts), "
           "segment what stands out from it, fill the round holes of parts, split clusters at "
           "the maxima of the distance transform, count each piece against the typical part's "
           "area and thickness (cut-off parts at the border count when half a typical part is "
           "visible); draw numbered boxes; print the JSON answer with the objects and a "
           "confidence from the agreement of the counts.";
  } else if (task == "zoom") {
    out << "Zoom: crop the requested region, upscale it (cubic) and sharpen it (unsharp mask); "
           "save the crop and describe it.";
  } else if (task == "annotate") {
    out << "Annotate: find the region the prompt names (or the most salient one), draw the "
           "requested mark and a label, and describe what was drawn.";
  } else {
    out << "Describe the image: size, dominant colours, brightness, sharpness and text-like "
           "regions, to answer the question as well as classical vision allows.";
  }
  return out.str();
}

/// The last line of `stdout_text` that parses as a JSON object.
std::optional<json> LastJsonLine(const std::string& stdout_text) {
  std::istringstream lines(stdout_text);
  std::optional<json> found;
  for (std::string line; std::getline(lines, line);) {
    auto first = line.find('{');
    if (first == std::string::npos) continue;
    json parsed = ParseBoundedJsonOrDiscard(std::string_view(line).substr(first));
    if (parsed.is_object()) found = std::move(parsed);
  }
  return found;
}

/// The count's objects that are well formed: {"box": [x, y, w, h], "score": s} with four finite
/// non-negative numbers and a score in 0..1 (missing: 1); others are dropped, and at most
/// kMaxObjects are kept, so a runaway program cannot bloat results.jsonl.
json ValidObjects(const json& raw) {
  constexpr std::size_t kMaxObjects = 1000;
  json out = json::array();
  if (!raw.is_array()) return out;
  for (const json& o : raw) {
    if (out.size() >= kMaxObjects) break;
    if (!o.is_object() || !o.contains("box") || !o["box"].is_array() || o["box"].size() != 4)
      continue;
    json box = json::array();
    for (const json& v : o["box"]) {
      if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0) break;
      const double x = std::round(v.get<double>() * 100) / 100;
      if (x == std::floor(x) && x < 1e15)
        box.push_back(static_cast<std::int64_t>(x));  // pixels are usually whole: keep them so
      else
        box.push_back(x);
    }
    if (box.size() != 4) continue;
    double score = 1.0;
    if (o.contains("score")) {
      if (!o["score"].is_number()) continue;
      score = o["score"].get<double>();
      if (!std::isfinite(score) || score < 0 || score > 1) continue;
    }
    out.push_back({{"box", box}, {"score", std::round(score * 1000) / 1000}});
  }
  return out;
}

/// Validates and normalises an answer for `spec`'s task; nullopt when it is unusable.
std::optional<json> Normalise(const json& spec, const json& raw) {
  const std::string task = spec["task"];
  json out;
  auto confidence = [&](double def) {
    double c = raw.contains("confidence") && raw["confidence"].is_number()
                   ? raw["confidence"].get<double>()
                   : def;
    return std::isfinite(c) ? std::clamp(c, 0.0, 1.0) : def;
  };
  if (task == "read_gauge") {
    if (!raw.contains("value") || !raw["value"].is_number()) return std::nullopt;
    double v = raw["value"].get<double>();
    if (!std::isfinite(v)) return std::nullopt;
    std::string unit;
    if (raw.contains("unit") && raw["unit"].is_string()) unit = raw["unit"];
    const json& c = spec["calibration"];
    if (unit.empty() && c.contains("unit") && c["unit"].is_string()) unit = c["unit"];
    out = {{"value", std::round(v * 1e4) / 1e4}, {"unit", unit}, {"confidence", confidence(0.5)}};
    // the pivot the program found, as fractions of its input (optional)
    if (raw.contains("pivot") && raw["pivot"].is_array() && raw["pivot"].size() == 2 &&
        raw["pivot"][0].is_number() && raw["pivot"][1].is_number()) {
      const double fx = raw["pivot"][0].get<double>(), fy = raw["pivot"][1].get<double>();
      if (std::isfinite(fx) && std::isfinite(fy) && fx >= 0 && fx <= 1 && fy >= 0 && fy <= 1)
        out["pivot"] = {fx, fy};
    }
  } else if (task == "count") {
    if (!raw.contains("count") || !raw["count"].is_number()) return std::nullopt;
    double n = raw["count"].get<double>();
    if (!std::isfinite(n) || n < 0 || n > 1e15) return std::nullopt;
    out = {{"count", static_cast<std::int64_t>(std::llround(n))}, {"confidence", confidence(0.5)}};
    if (raw.contains("objects")) out["objects"] = ValidObjects(raw["objects"]);
  } else {
    if (!raw.contains("text") || !raw["text"].is_string()) return std::nullopt;
    out = {{"text", raw["text"]}};
  }
  return out;
}

class CvCoder final : public Coder {
 public:
  CoderProgram Write(const CoderInput& input, int attempt,
                     const std::vector<CoderObservation>& history) override {
    const json spec = ResolveSpec(input);
    const std::string task = spec["task"];
    const std::string last_error = LastError(history);
    const json strategy = StrategyFor(task, attempt, last_error);

    CoderProgram program;
    program.plan = Describe(spec);
    if (attempt > 0) {
      program.plan = "Attempt " + std::to_string(attempt + 1) + ": the previous program failed" +
                     (last_error.empty() ? std::string(".") : " (" + last_error + ").") +
                     " Revised it to take a more defensive path (" + strategy.dump() + "). " +
                     program.plan;
    }

    std::ostringstream code;
    code << "# roilens local coder: task " << task << ", attempt " << attempt + 1 << "\n";
    if (!last_error.empty()) code << "# revising after: " << Sanitise(last_error) << "\n";
    code << "import json\n";
    // JSON string literals are valid Python string literals: the spec needs no other escaping.
    code << "SPEC = json.loads(" << json(spec.dump()).dump() << ")\n";
    code << "STRATEGY = json.loads(" << json(strategy.dump()).dump() << ")\n";
    code << roilens_embedded_coder_common << "\n" << TemplateFor(task) << "\n";
    const std::string entry = EntryFor(task);
    if (attempt < 2) {
      code << entry << "()\n";
    } else {
      // Defensive entry: a failure of the primary path retries once on the plainest settings
      // instead of ending the attempt.
      code << "try:\n    " << entry << "()\n"
           << "except Exception as exc:  # noqa: BLE001 - fall back, then report\n"
           << "    print('primary path failed: %r; retrying with plain settings' % (exc,), "
              "file=sys.stderr)\n"
           << "    STRATEGY.update({'dial': 'centre', 'ellipse': False, 'scipy': False, "
              "'split': False, 'any_input': True, 'max_side': 800})\n"
           << "    " << entry << "()\n";
    }
    program.code = code.str();
    return program;
  }

  std::string Answer(const CoderInput& input,
                     const std::vector<CoderObservation>& history) override {
    const json spec = ResolveSpec(input);
    const std::string task = spec["task"];
    for (auto it = history.rbegin(); it != history.rend(); ++it) {
      if (!it->result.ok) continue;
      auto raw = LastJsonLine(it->result.stdout_text);
      if (!raw) continue;
      auto answer = Normalise(spec, *raw);
      if (!answer) continue;
      return Sentence(task, spec, *answer) + "\n" + answer->dump();
    }
    std::string reason = LastError(history);
    if (reason.empty())
      reason = history.empty() ? "no program was run" : "the program printed no valid answer line";
    json error = {{"error", "could not complete " + task + " after " +
                                std::to_string(history.size()) + " attempt(s): " + reason}};
    return "I could not complete the " + task + " task: every attempt failed.\n" + error.dump();
  }

 private:
  static std::string Sanitise(const std::string& s) {
    std::string out = s;
    std::replace(out.begin(), out.end(), '\n', ' ');
    std::replace(out.begin(), out.end(), '\r', ' ');
    return out;
  }

  static std::string Sentence(const std::string& task, const json& spec, const json& answer) {
    std::ostringstream out;
    if (task == "read_gauge") {
      out << "The gauge reads " << answer["value"].get<double>();
      if (!answer["unit"].get<std::string>().empty())
        out << " " << answer["unit"].get<std::string>();
      out << ".";
    } else if (task == "count") {
      out << "I count " << answer["count"].get<std::int64_t>() << " "
          << spec["object"].get<std::string>() << ".";
    } else {
      out << answer["text"].get<std::string>();
    }
    return out.str();
  }
};

}  // namespace

std::unique_ptr<Coder> MakeCvCoder() { return std::make_unique<CvCoder>(); }

}  // namespace roilens::backend
