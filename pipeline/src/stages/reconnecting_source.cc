// ReconnectingSource: reopen a dropped live stream with capped exponential backoff and account
// for the outage (SourceGap) instead of ending the run.
#include "roilens/stages/reconnecting_source.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace roilens {

std::string SourceGap::Describe() const {
  auto seconds = [](double s) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3f s", s);
    return std::string(text);
  };
  std::string text = "stream outage after frame " + std::to_string(after_frame) +
                     ": no frames from " + seconds(from_time_s) +
                     (ongoing ? " until the run stopped at " : " to ") + seconds(to_time_s) +
                     " (about " + std::to_string(missing_frames) + " missing), " +
                     (ongoing ? "still down after " : "back after ") +
                     std::to_string(reconnect_attempts) + " reconnect attempt(s)";
  if (!error.empty()) text += "; last error: " + error;
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

std::vector<RoiResult> SourceGap::ToResults(const std::vector<RoiResult>& rois) const {
  const std::string reason = Describe();
  std::vector<RoiResult> lines;
  lines.reserve(rois.size());
  for (const RoiResult& roi : rois) {
    RoiResult line;
    line.frame = after_frame + 1;
    line.time_s = to_time_s;
    line.source = roi.source;
    line.roi = roi.roi;
    line.task = roi.task;
    line.rect = roi.rect;
    line.status = kGapStatus;
    line.error = reason;
    lines.push_back(std::move(line));
  }
  return lines;
}

StatusOr<std::unique_ptr<ReconnectingSource>> ReconnectingSource::Create(
    Opener opener, ReconnectOptions options, std::unique_ptr<FrameSource> first_source) {
  if (!opener) return InvalidArgumentError("ReconnectingSource needs an opener");
  if (options.initial_backoff.count() <= 0 || options.max_backoff < options.initial_backoff) {
    return InvalidArgumentError("reconnect backoff: need 0 < initial <= max");
  }
  if (first_source) {
    return std::unique_ptr<ReconnectingSource>(
        new ReconnectingSource(std::move(opener), std::move(options), std::move(first_source)));
  }
  auto first = opener();
  if (!first.ok()) return first.status();
  return std::unique_ptr<ReconnectingSource>(
      new ReconnectingSource(std::move(opener), std::move(options), std::move(*first)));
}

ReconnectingSource::ReconnectingSource(Opener opener, ReconnectOptions options,
                                       std::unique_ptr<FrameSource> first)
    : opener_(std::move(opener)),
      options_(std::move(options)),
      current_(std::move(first)),
      info_(current_->info()),
      start_(Clock::now()) {
  info_.total_frames = -1;  // live: no end
}

void ReconnectingSource::Log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    std::fprintf(stderr, "roilens: %s\n", line.c_str());
  }
}

bool ReconnectingSource::Wait(std::chrono::milliseconds delay) {
  std::unique_lock lock(mu_);
  stop_cv_.wait_for(lock, delay, [&] { return stopped_; });
  return !stopped_;
}

void ReconnectingSource::Stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  stop_cv_.notify_all();
}

Status ReconnectingSource::Skip(std::int64_t) {
  return Status(StatusCode::kFailedPrecondition,
                "input '" + info_.input + "' is a live stream; it cannot be skipped or resumed");
}

std::optional<SourceGap> ReconnectingSource::TakeGap() {
  auto gap = std::move(ready_gap_);
  ready_gap_.reset();
  return gap;
}

std::optional<SourceGap> ReconnectingSource::TakeOpenGap() {
  if (!pending_gap_) return std::nullopt;
  SourceGap gap = std::move(*pending_gap_);
  pending_gap_.reset();
  gap.ongoing = true;
  gap.to_time_s = std::chrono::duration<double>(Clock::now() - start_).count();
  const double fps = info_.fps > 0 ? info_.fps : 25;
  // Frames up to now were missed (no frame after the outage to exclude).
  gap.missing_frames =
      std::max<std::int64_t>(0, std::llround((gap.to_time_s - gap.from_time_s) * fps));
  return gap;
}

std::optional<FrameInput> ReconnectingSource::Next() {
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopped_) return std::nullopt;
    }
    if (current_) {
      std::optional<FrameInput> frame = current_->Next();
      if (frame && !frame->bgr.empty()) {
        frame->index = next_index_++;
        frame->time_s = std::chrono::duration<double>(Clock::now() - start_).count();
        if (pending_gap_) {
          SourceGap gap = std::move(*pending_gap_);
          pending_gap_.reset();
          gap.to_time_s = frame->time_s;
          const double fps = info_.fps > 0 ? info_.fps : 25;
          gap.missing_frames =
              std::max<std::int64_t>(0, std::llround((gap.to_time_s - gap.from_time_s) * fps) - 1);
          ready_gap_ = std::move(gap);
        }
        last_time_s_ = frame->time_s;
        return frame;
      }
      // Ended or an undecodable frame from a camera: treat as lost (a live camera does not
      // "end"), drop the capture and reconnect.
      current_.reset();
      connected_ = false;
      ++outages_;
      pending_gap_ = SourceGap{};
      pending_gap_->after_frame = next_index_ - 1;
      pending_gap_->from_time_s = last_time_s_;
      pending_gap_->error = frame ? "undecodable frame" : "stream ended";
      Log("input '" + info_.input + "' lost after frame " + std::to_string(next_index_ - 1) + " (" +
          pending_gap_->error + "); reconnecting");
    }
    ExponentialBackoffPolicy backoff(options_.initial_backoff, options_.max_backoff);
    while (!current_) {
      const auto delay = backoff.NextDelay(std::nullopt);
      if (!Wait(delay)) return std::nullopt;
      // Counted once the open has returned: whoever waits on reconnect_attempts() (an operator
      // restarting the camera, a metric) can rely on that many opens having failed.
      const int attempt = attempts_.load() + 1;
      auto opened = opener_();
      pending_gap_->reconnect_attempts = attempt;
      if (opened.ok()) {
        current_ = std::move(*opened);
        attempts_ = 0;
        connected_ = true;
        Log("input '" + info_.input + "' reconnected after " + std::to_string(attempt) +
            " attempt(s)");
      } else {
        attempts_ = attempt;
        pending_gap_->error = opened.status().message();
        Log("input '" + info_.input + "': reconnect attempt " + std::to_string(attempt) +
            " failed (" + opened.status().message() + "); next in up to " +
            std::to_string(std::min(options_.max_backoff, delay * 2).count()) + " ms");
      }
    }
  }
}

}  // namespace roilens
