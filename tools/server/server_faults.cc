// Local backend: fault injection (429/500/503/slow/reset/garbage/truncated/stall at a rate,
// reproducible by seed).
#include "server_internal.h"

namespace roilens::backend::internal {

const char kFaultKindNames[] = "429, 500, 503, slow, reset, garbage, truncated, stall";

FaultKind ParseFaultKind(std::string_view name) {
  if (name == "429") return FaultKind::k429;
  if (name == "500") return FaultKind::k500;
  if (name == "503") return FaultKind::k503;
  if (name == "slow") return FaultKind::kSlow;
  if (name == "reset") return FaultKind::kReset;
  if (name == "garbage") return FaultKind::kGarbage;
  if (name == "truncated") return FaultKind::kTruncated;
  if (name == "stall") return FaultKind::kStall;
  return FaultKind::kNone;
}

Status ValidateFaults(const FaultOptions& options) {
  if (!(options.rate >= 0 && options.rate <= 1)) {
    return InvalidArgumentError("fault rate must be within [0, 1], got " +
                                std::to_string(options.rate));
  }
  if (options.rate > 0 && options.kinds.empty()) {
    return InvalidArgumentError(std::string("fault rate > 0 needs at least one fault kind (") +
                                kFaultKindNames + ")");
  }
  for (const auto& kind : options.kinds) {
    if (ParseFaultKind(kind) == FaultKind::kNone) {
      return InvalidArgumentError("unknown fault kind '" + kind + "' (expected one of " +
                                  kFaultKindNames + ")");
    }
  }
  if (options.retry_delay.count() < 0) return InvalidArgumentError("fault retry_delay < 0");
  return OkStatus();
}

std::string TruncatedInteractionBody() {
  Json step_text = {{"type", "text"},
                    {"text", R"({"value": 5, "unit": "bar", "confidence": 0.9})"}};
  Json image = {{"type", "image"}, {"mime_type", "image/png"}, {"data", std::string(512, 'A')}};
  Json body = {
      {"id", "v1_truncated"},
      {"object", "interaction"},
      {"status", "completed"},
      {"steps", Json::array({{{"type", "model_output"}, {"content", {image, step_text}}}})}};
  const std::string whole = body.dump();
  return whole.substr(0, whole.size() / 2);  // inside the image data: the braces never close
}

FaultInjector::FaultInjector(const FaultOptions& options)
    : rate_(options.rate), rng_(options.seed) {
  for (const auto& kind : options.kinds) kinds_.push_back(ParseFaultKind(kind));
}

FaultKind FaultInjector::Next() {
  if (rate_ <= 0 || kinds_.empty()) return FaultKind::kNone;
  std::lock_guard lock(mu_);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  if (coin(rng_) >= rate_) return FaultKind::kNone;
  std::uniform_int_distribution<std::size_t> pick(0, kinds_.size() - 1);
  return kinds_[pick(rng_)];
}

}  // namespace roilens::backend::internal
