// Terminal progress line for `roilens run`.
#include "progress.h"

#include <unistd.h>

#include <cmath>

namespace roilens::cli {

Progress::Progress(std::FILE* out, bool enabled) : out_(out), enabled_(enabled) {}

bool Progress::StdoutIsTerminal() { return ::isatty(STDOUT_FILENO) == 1; }

std::string Progress::Format(const ProgressSnapshot& s, double elapsed_s, double fps) {
  char eta[32] = "";
  if (s.frames_total > 0 && fps > 0 && s.frames_done < s.frames_total) {
    const double seconds = static_cast<double>(s.frames_total - s.frames_done) / fps;
    std::snprintf(eta, sizeof eta, "  ETA %.0fs", std::ceil(seconds));
  }
  char total[32] = "";
  if (s.frames_total > 0) std::snprintf(total, sizeof total, "/%lld", (long long)s.frames_total);
  char line[256];
  std::snprintf(line, sizeof line,
                "frames %lld%s  %.1f fps  in flight %lld  calls %lld  cached %lld  errors %lld  "
                "%.0fs%s",
                (long long)s.frames_done, total, fps, (long long)s.in_flight, (long long)s.calls,
                (long long)s.cache_hits, (long long)s.errors, elapsed_s, eta);
  return line;
}

void Progress::Update(const ProgressSnapshot& snapshot, bool force) {
  if (!enabled_) return;
  const auto now = Clock::now();
  // A terminal does not need more than ~4 updates a second; more only costs time.
  if (!force && now - last_print_ < std::chrono::milliseconds(250)) return;
  last_print_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double fps = elapsed > 0 ? static_cast<double>(snapshot.frames_done) / elapsed : 0;
  std::fprintf(out_, "\r%s\x1b[K", Format(snapshot, elapsed, fps).c_str());
  std::fflush(out_);
}

void Progress::Finish(const ProgressSnapshot& snapshot) {
  if (!enabled_) return;
  Update(snapshot, /*force=*/true);
  std::fputc('\n', out_);
  std::fflush(out_);
}

}  // namespace roilens::cli
