// `roilens replay AUDIT_DIR`: sends the calls an output.audit trail recorded again (same crops,
// same prompts) to a backend, or re-executes their recorded code in the sandbox (--exec), and
// prints where today's answer differs from the recorded one: a coder or model change checked
// against past station footage.
#include <cmath>
#include <cstdio>
#include <future>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "roilens/backend/local_pipeline.h"
#include "roilens/backend/sandbox.h"
#include "roilens/client/interactions_client.h"
#include "roilens/outputs/alarm_sinks.h"
#include "roilens/outputs/audit.h"
#include "roilens/stages/answer.h"

namespace roilens::cli {
namespace {

using json = nlohmann::json;

struct ReplayArgs {
  std::string audit_dir;
  std::string coder = "cv";
  std::string endpoint;
  std::string model;
  bool exec = false;
  double tolerance = 0;
  int max_in_flight = 4;
};

/// The answer fields a replay compares (AuditAnswerJson's keys, less error text and attempts:
/// an error message names the frame and the attempt count is the backend's business).
constexpr const char* kComparedFields[] = {"status", "value",      "unit",  "count",
                                           "text",   "confidence", "alarm", "objects"};

std::string Show(const json& value) {
  std::string text = value.is_string() ? value.get<std::string>() : value.dump();
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return value.is_string() ? "\"" + text + "\"" : text;
}

/// Whether `a` and `b` are equal with numbers allowed to differ by `tolerance`; sets `near`
/// when they are equal only thanks to it.
bool SameJson(const json& a, const json& b, double tolerance, bool& near) {
  if (a.is_number() && b.is_number()) {
    const double x = a.get<double>(), y = b.get<double>();
    if (x == y) return true;
    if (std::abs(x - y) <= tolerance) {
      near = true;
      return true;
    }
    return false;
  }
  if (a.is_array() && b.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!SameJson(a[i], b[i], tolerance, near)) return false;
    }
    return true;
  }
  if (a.is_object() && b.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto other = b.find(it.key());
      if (other == b.end() || !SameJson(*it, *other, tolerance, near)) return false;
    }
    return true;
  }
  return a == b;
}

/// One line per differing field: "value 3.25 -> 5" (recorded -> today).
std::vector<std::string> Differences(const json& recorded, const json& today, double tolerance,
                                     bool& near) {
  std::vector<std::string> out;
  for (const char* field : kComparedFields) {
    const json a = recorded.value(field, json()), b = today.value(field, json());
    if (!SameJson(a, b, tolerance, near)) {
      out.push_back(std::string(field) + " " + Show(a) + " -> " + Show(b));
    }
  }
  return out;
}

/// The last line of `text` that parses as a JSON object (the answer line code prints).
std::optional<json> LastJsonLine(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  std::optional<json> last;
  while (std::getline(in, line)) {
    const auto start = line.find('{');
    if (start == std::string::npos) continue;
    try {
      json parsed = json::parse(line.substr(start));
      if (parsed.is_object()) last = std::move(parsed);
    } catch (const json::exception&) {
    }
  }
  return last;
}

std::string Label(const json& record) {
  std::ostringstream out;
  out << "frame " << record.value("frame", json()).dump() << " roi "
      << record.value("roi", std::string("?"));
  return out.str();
}

/// One recorded call, loaded: its ROI config and the request as it was sent.
struct Replayable {
  RoiConfig roi;
  wire::InteractionRequest request;
  std::string crop;
  std::string crop_mime_type;
};

StatusOr<Replayable> Load(const std::string& dir, const json& record, const std::string& model) {
  Replayable r;
  auto roi_text = ReadAuditBlob(dir, record.value("roi_config", std::string()));
  if (!roi_text.ok()) return roi_text.status();
  auto config = ParseStationConfig("{\"rois\": [" + *roi_text + "]}", "recorded roi_config");
  if (!config.ok()) return config.status();
  r.roi = config->rois.at(0);
  auto prompt = ReadAuditBlob(dir, record.value("prompt", std::string()));
  if (!prompt.ok()) return prompt.status();
  std::vector<wire::ContentBlock> blocks{wire::ContentBlock::Text(*prompt)};
  if (const auto crop = record.find("crop"); crop != record.end() && crop->is_object()) {
    auto bytes = ReadAuditBlob(dir, crop->value("blob", std::string()));
    if (!bytes.ok()) return bytes.status();
    r.crop = std::move(*bytes);
    r.crop_mime_type = crop->value("mime_type", std::string("image/png"));
    blocks.push_back(wire::ContentBlock::ImageBytes(
        std::vector<std::uint8_t>(r.crop.begin(), r.crop.end()), r.crop_mime_type));
  }
  r.request.model = model.empty() ? record.value("model", std::string()) : model;
  r.request.input = std::move(blocks);
  r.request.tools.push_back({{"type", "code_execution"}});
  r.request.store = false;
  return r;
}

/// Verdict on one call.
struct Outcome {
  enum Kind { kSame, kDiffer, kFailed } kind = kSame;
  std::vector<std::string> lines;  ///< what differs, or why it failed
  bool near = false;               ///< same only within --tolerance
};

/// --exec: the recorded code of each code run, on the recorded crop, in the sandbox.
Outcome ExecOne(backend::Sandbox& sandbox, const std::string& dir, const json& record,
                const Replayable& call, double tolerance) {
  Outcome outcome;
  const json runs = record.value("code_runs", json::array());
  if (runs.empty()) {
    outcome.kind = Outcome::kFailed;
    outcome.lines.push_back("the recorded call ran no code (nothing to execute)");
    return outcome;
  }
  std::vector<backend::SandboxFile> inputs;
  if (!call.crop.empty()) {
    const std::string ext = call.crop_mime_type == "image/jpeg" ? "jpg" : "png";
    inputs.push_back(
        {"input_0." + ext, std::vector<std::uint8_t>(call.crop.begin(), call.crop.end())});
  }
  for (std::size_t i = 0; i < runs.size(); ++i) {
    auto code = ReadAuditBlob(dir, runs[i].value("code", std::string()));
    if (!code.ok()) {
      outcome.kind = Outcome::kFailed;
      outcome.lines.push_back(code.status().message());
      return outcome;
    }
    std::string recorded;
    if (runs[i].contains("result") && runs[i]["result"].is_string()) {
      auto text = ReadAuditBlob(dir, runs[i]["result"].get<std::string>());
      if (!text.ok()) {
        outcome.kind = Outcome::kFailed;
        outcome.lines.push_back(text.status().message());
        return outcome;
      }
      recorded = std::move(*text);
    }
    const std::string today = ResultText(sandbox.Run({*code, inputs, {}}));
    if (today == recorded) continue;
    const std::string run = "code run " + std::to_string(i + 1) + ": ";
    const auto a = LastJsonLine(recorded), b = LastJsonLine(today);
    if (a && b) {
      bool near = false;
      if (SameJson(*a, *b, tolerance, near)) {
        outcome.near = outcome.near || near;
        continue;  // the answer line agrees; only other output (timings, logs) changed
      }
      outcome.lines.push_back(run + "answer line " + Show(*a) + " -> " + Show(*b));
    } else {
      outcome.lines.push_back(run + "output " + Show(json(recorded)) + " -> " + Show(json(today)));
    }
    outcome.kind = Outcome::kDiffer;
  }
  return outcome;
}

void Print(const json& record, const Outcome& outcome) {
  if (outcome.kind == Outcome::kSame) return;
  const char* verdict = outcome.kind == Outcome::kDiffer ? "differs" : "failed";
  std::printf("%s: %s:", Label(record).c_str(), verdict);
  for (std::size_t i = 0; i < outcome.lines.size(); ++i) {
    std::printf("%s %s", i ? ";" : "", outcome.lines[i].c_str());
  }
  std::printf("\n");
}

int Replay(const ReplayArgs& args) {
  auto records = ReadAuditRecords(args.audit_dir);
  if (!records.ok()) {
    std::fprintf(stderr, "roilens replay: %s\n", records.status().message().c_str());
    return kExitBadInput;
  }
  if (records->empty()) {
    std::fprintf(stderr, "roilens replay: '%s' holds no recorded calls\n", args.audit_dir.c_str());
    return kExitBadInput;
  }
  std::vector<StatusOr<Replayable>> calls;
  calls.reserve(records->size());
  for (const json& record : *records) calls.push_back(Load(args.audit_dir, record, args.model));

  std::vector<Outcome> outcomes(records->size());
  if (args.exec) {
    auto sandbox = backend::Sandbox::Create({});
    if (!sandbox.ok()) {
      std::fprintf(stderr, "roilens replay: the sandbox is unavailable: %s\n",
                   sandbox.status().message().c_str());
      return kExitBackend;
    }
    std::printf("roilens replay: re-executing the recorded code of %zu call(s) in the sandbox\n",
                records->size());
    for (std::size_t i = 0; i < records->size(); ++i) {
      if (!calls[i].ok()) {
        outcomes[i] = {Outcome::kFailed, {calls[i].status().message()}};
      } else {
        outcomes[i] = ExecOne(**sandbox, args.audit_dir, (*records)[i], *calls[i], args.tolerance);
      }
      Print((*records)[i], outcomes[i]);
    }
  } else {
    std::unique_ptr<backend::LocalBackend> embedded;
    ClientOptions client_options;
    client_options.max_in_flight = std::max(1, args.max_in_flight);
    if (!args.endpoint.empty()) {
      client_options.base_url = args.endpoint;  // key from GEMINI_API_KEY / GOOGLE_API_KEY
    } else {
      backend::BackendOptions backend_options;
      backend_options.coder = args.coder;
      auto started = backend::StartEmbeddedBackend(backend_options);
      if (!started.ok()) {
        std::fprintf(stderr, "roilens replay: %s\n", started.status().message().c_str());
        return kExitBackend;
      }
      embedded = std::move(*started);
      client_options.base_url = embedded->base_url();
      client_options.api_key = "";  // never send a real key to the local emulator
    }
    auto client = InteractionsClient::Create(client_options);
    if (!client.ok()) {
      std::fprintf(stderr, "roilens replay: %s\n", client.status().message().c_str());
      return kExitBackend;
    }
    std::printf("roilens replay: sending %zu recorded call(s) to %s\n", records->size(),
                embedded ? (embedded->base_url() + " (embedded, coder " + args.coder + ")").c_str()
                         : RedactedUrl(args.endpoint).c_str());
    std::fflush(stdout);
    // All at once: the client keeps max_in_flight on the wire and queues the rest.
    std::vector<std::future<StatusOr<wire::Interaction>>> answers(records->size());
    for (std::size_t i = 0; i < records->size(); ++i) {
      if (calls[i].ok()) answers[i] = (*client)->CreateInteraction(calls[i]->request);
    }
    for (std::size_t i = 0; i < records->size(); ++i) {
      const json& record = (*records)[i];
      if (!calls[i].ok()) {
        outcomes[i] = {Outcome::kFailed, {calls[i].status().message()}};
      } else {
        const StatusOr<wire::Interaction> result = answers[i].get();
        RoiAnswer answer;
        try {
          answer = ParseRoiAnswer(calls[i]->roi, result);
        } catch (const std::exception& e) {
          answer.status = "error";
          answer.error = std::string("answer could not be parsed: ") + e.what();
        }
        const json recorded = record.value("answer", json::object());
        if (answer.status == "error" && recorded.value("status", std::string()) != "error") {
          outcomes[i] = {Outcome::kFailed, {answer.error}};
        } else {
          Outcome& o = outcomes[i];
          o.lines = Differences(recorded, AuditAnswerJson(answer), args.tolerance, o.near);
          o.kind = o.lines.empty() ? Outcome::kSame : Outcome::kDiffer;
        }
      }
      Print(record, outcomes[i]);
    }
  }

  int same = 0, differ = 0, failed = 0, near = 0;
  for (const Outcome& o : outcomes) {
    same += o.kind == Outcome::kSame;
    differ += o.kind == Outcome::kDiffer;
    failed += o.kind == Outcome::kFailed;
    near += o.kind == Outcome::kSame && o.near;
  }
  std::printf("replay: %zu call(s): %d same, %d differ, %d failed", records->size(), same, differ,
              failed);
  if (near > 0) std::printf(" (%d same only within --tolerance %g)", near, args.tolerance);
  std::printf("\n");
  return differ + failed == 0 ? kExitOk : kExitFailure;
}

const CommandRegistration kReplay("replay", [](CLI::App& root, int& exit_code) {
  auto args = std::make_shared<ReplayArgs>();
  CLI::App* cmd = root.add_subcommand(
      "replay",
      "Re-run the model calls an output.audit trail recorded and print where today's answers "
      "differ (exit 0: all same, 1: any differ or failed)");
  cmd->add_option("audit_dir", args->audit_dir, "an output.audit directory")->required();
  cmd->add_option("--coder", args->coder, "embedded backend coder: cv or echo")
      ->check(CLI::IsMember({"cv", "echo"}));
  cmd->add_option("--endpoint", args->endpoint,
                  "Interactions API base URL instead of the embedded backend");
  cmd->add_option("--model", args->model, "model name (default: the recorded one)");
  cmd->add_flag("--exec", args->exec,
                "re-execute the recorded code in the sandbox on the recorded crops instead");
  cmd->add_option("--tolerance", args->tolerance,
                  "numbers within this much of the recorded ones count as the same")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([args, &exit_code] { exit_code = Replay(*args); });
});

}  // namespace
}  // namespace roilens::cli
