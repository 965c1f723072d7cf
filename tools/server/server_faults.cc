// Local backend: fault injection (429/500/503/slow/reset/garbage at a rate, reproducible by seed).
#include "server_internal.h"

namespace roilens::backend::internal {

FaultKind ParseFaultKind(std::string_view name) {
  if (name == "429") return FaultKind::k429;
  if (name == "500") return FaultKind::k500;
  if (name == "503") return FaultKind::k503;
  if (name == "slow") return FaultKind::kSlow;
  if (name == "reset") return FaultKind::kReset;
  if (name == "garbage") return FaultKind::kGarbage;
  return FaultKind::kNone;
}

Status ValidateFaults(const FaultOptions& options) {
  if (!(options.rate >= 0 && options.rate <= 1)) {
    return InvalidArgumentError("fault rate must be within [0, 1], got " +
                                std::to_string(options.rate));
  }
  if (options.rate > 0 && options.kinds.empty()) {
    return InvalidArgumentError(
        "fault rate > 0 needs at least one fault kind (429, 500, 503, slow, reset, garbage)");
  }
  for (const auto& kind : options.kinds) {
    if (ParseFaultKind(kind) == FaultKind::kNone) {
      return InvalidArgumentError("unknown fault kind '" + kind +
                                  "' (expected 429, 500, 503, slow, reset or garbage)");
    }
  }
  if (options.retry_delay.count() < 0) return InvalidArgumentError("fault retry_delay < 0");
  return OkStatus();
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
