// The Pipeline engine: a oneTBB flow graph that prepares frames in parallel, decides per ROI (in
// frame order) whether a model call is needed, hands calls to the client's I/O thread through an
// async_node, joins each frame's answers, merges them, and restores submission order.
//
//   Submit -> prepare (parallel: preprocess, FindRois, crops, thumbnails)
//          -> sequencer -> gate (serial, frame order: change gate, every_n, live/batch policy)
//               |-- calls --> async_node (client I/O thread) --> answer (parallel: parse)
//               |                                                 | completes waiting frames
//               '-- frames with nothing to wait for ------------->+--> merge (parallel)
//          -> sequencer -> deliver (serial: output queue, stats, frame token released)
#include "roilens/stages/pipeline.h"

#include <tbb/flow_graph.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <tuple>

#include "roilens/client/interactions_client.h"
#include "roilens/client/retry.h"
#include "roilens/outputs/alarm_sinks.h"
#include "roilens/outputs/audit.h"
#include "roilens/outputs/report.h"
#include "roilens/stages/alarm.h"
#include "roilens/stages/answer.h"
#include "roilens/stages/change_gate.h"
#include "roilens/stages/crop_transform.h"
#include "roilens/stages/frame_pool.h"
#include "roilens/stages/merge.h"
#include "roilens/stages/preprocess.h"
#include "roilens/stages/prompt.h"
#include "roilens/stages/rois.h"

namespace roilens {

nlohmann::json PipelineSummary::ToJson() const {
  return {{"frames", frames},
          {"roi_results", roi_results},
          {"calls", calls},
          {"cache_hits", cache_hits},
          {"errors", errors},
          {"skipped", skipped},
          {"uncertain", uncertain},
          {"latency_p50_ms", latency_p50_ms},
          {"latency_p95_ms", latency_p95_ms},
          {"input_tokens", input_tokens},
          {"output_tokens", output_tokens},
          {"total_tokens", total_tokens},
          {"fatal_error", fatal_error.empty() ? nlohmann::json() : nlohmann::json(fatal_error)}};
}

namespace {

using Clock = std::chrono::steady_clock;
namespace flow = tbb::flow;

struct FrameJob;
using JobPtr = std::shared_ptr<FrameJob>;

/// One ROI instance of one frame, from crop to shown answer.
struct RoiSlot {
  RoiInstance roi;
  CropTransform transform;
  /// Moved into the call this slot makes; kept while it waits for another frame's call (if that
  /// one fails, this slot makes its own call from it) and released once an answer is shown.
  cv::Mat crop;
  cv::Mat thumbnail;
  bool failed = false;  ///< the crop itself failed: `answer` already holds the error
  RoiAnswer answer;
  std::optional<double> age_s;  ///< live mode: age of the shown answer
};

struct FrameJob {
  std::uint64_t seq = 0;  ///< submission sequence (sequencer key)
  FrameInput input;
  PreprocessedFrame pre;
  Status frame_error;  ///< not ok: every ROI gets an error line
  std::vector<RoiSlot> slots;
  /// Answers still to arrive before the frame can be merged (+1 guard while the gate runs).
  std::atomic<int> outstanding{0};
  FrameOutput output;
};

struct CallRecord;
using CallPtr = std::shared_ptr<CallRecord>;

/// A frame slot waiting for a call's answer.
struct Waiter {
  JobPtr job;
  std::size_t slot = 0;
  bool caller = false;  ///< this slot made the call (its line carries latency and usage)
};

/// One model call for one ROI instance, shared by every frame that shows its answer.
struct CallRecord {
  std::string key;
  int roi_index = 0;
  std::int64_t frame = 0;
  cv::Rect frame_rect;  ///< the ROI in original frame pixels (for the audit trail)
  cv::Mat crop;         ///< kept until the answer is final (a re-issue builds the request again)
  cv::Mat thumbnail;    ///< reference for the change gate
  double frame_time_s = 0;
  Clock::time_point started;
  /// Built and not yet sent: held here while the first call checks the API key.
  std::optional<wire::InteractionRequest> request;
  bool probe = false;           ///< the run's first call: the others wait for its answer
  int reissues = 0;             ///< times the pipeline sent it again after the client gave up
  bool not_sent = false;        ///< refused without a request (the key was rejected): not a call
  bool budget_counted = false;  ///< backend.budget counted it when the gate made it
  std::optional<StatusOr<wire::Interaction>> result;
  /// output.audit only: the prompt and the image block (base64) as first sent.
  std::string audit_prompt, audit_crop_base64, audit_crop_mime_type;

  std::mutex mu;  ///< guards done/answer/waiters
  bool done = false;
  RoiAnswer answer;
  std::vector<Waiter> waiters;
  bool shown = false;  ///< live mode: already shown once (later frames show it as cached)
};

/// Per ROI instance (keyed by instance name) decision state.
struct RoiState {
  CallPtr latest;       ///< last call issued
  CallPtr latest_done;  ///< live: last call answered
  bool in_flight = false;
};

/// A reused answer: status cached (an error stays an error, an uncertain reading stays uncertain
/// so it never raises an alarm or passes for a trusted one), no latency and no usage, because
/// this line made no call (see RunStats: a line made a call iff latency_ms > 0).
RoiAnswer ReusedAnswer(const RoiAnswer& answer) {
  RoiAnswer copy = answer;
  if (copy.status == "ok") copy.status = "cached";
  copy.latency_ms = 0;
  copy.usage = nullptr;
  return copy;
}

/// A copy of `image` in a recycled buffer: the annotated frame drawn on and handed out.
cv::Mat PooledCopy(const cv::Mat& image) {
  cv::Mat copy = FramePool::NewMat();
  image.copyTo(copy);
  return copy;
}

/// The image to draw the annotations on: `image` itself when nothing else holds its pixels (the
/// usual case: the source's decoded frame, handed to Submit), else a pooled copy, so a caller
/// that kept the frame it submitted never sees it drawn on. Drawing in place saves a full-frame
/// copy per frame (6 MB at 1080p) and a buffer in flight.
cv::Mat TakeOrCopy(cv::Mat& image) {
  // An atomic read: a caller may let go of its reference on another thread meanwhile.
  const bool sole_owner = image.u != nullptr && CV_XADD(&image.u->refcount, 0) == 1 &&
                          image.isContinuous() && image.data == image.datastart &&
                          image.dataend == image.datastart + image.total() * image.elemSize();
  if (!sole_owner) return PooledCopy(image);
  cv::Mat taken = std::move(image);
  image.release();
  return taken;
}

RoiAnswer ErrorAnswer(const std::string& message) {
  RoiAnswer answer;
  answer.status = "error";
  answer.error = message;
  return answer;
}

/// A call that failed only on transient errors after the client's whole retry budget is sent
/// again this many times while the backend answers other calls (flaky, not down): at half the
/// answers faulty, one budget of 5 attempts still fails 1 call in ~140; three fail 1 in ~3e6.
constexpr int kMaxReissues = 2;

/// Whether the backend has accepted the API key yet (see FlowPipeline::Call).
enum class KeyState {
  kUnverified,  ///< no call made yet
  kProbing,     ///< the first call is on the wire; later calls are held until it is answered
  kAccepted,    ///< answered without a key rejection: calls go out as they come
  kRejected,    ///< an answer rejected the key: no further calls
};

class FlowPipeline final : public Pipeline {
 public:
  FlowPipeline(StationConfig config, std::unique_ptr<InteractionsClient> client,
               std::string key_source, std::unique_ptr<AlarmDispatcher> alarm_sinks,
               std::unique_ptr<AuditLog> audit, std::string endpoint, std::string coder,
               const nlohmann::json& monitor_state, bool snapshot_monitor)
      : config_(std::move(config)),
        client_(std::move(client)),
        key_source_(std::move(key_source)),
        start_(Clock::now()),
        monitor_(config_),
        alarm_sinks_(std::move(alarm_sinks)),
        audit_(std::move(audit)),
        endpoint_(std::move(endpoint)),
        coder_(std::move(coder)),
        snapshot_monitor_(snapshot_monitor) {
    (void)monitor_.Restore(monitor_state);  // Create checked it
    // Frames in flight: each holds a decoded frame, its processed image and crops, so this is
    // what bounds memory on long inputs. It must also be large enough that the frames waiting for
    // answers can keep the client's max_in_flight transfers busy (a frame carries up to rois.size()
    // calls), plus two so the CPU stages have a frame to work on while the rest wait.
    const int rois = std::max<int>(1, static_cast<int>(config_.rois.size()));
    max_frames_ = std::max(config_.pipeline.max_frames_in_flight,
                           (config_.backend.max_in_flight + rois - 1) / rois + 2);
    live_ = config_.pipeline.mode == PipelineMode::kLive;
    BuildGraph();
  }

  ~FlowPipeline() override {
    // Calls held for the key check end cancelled; no new call reaches the client from here on
    // (Send waits for none in progress). Then cancel what is still on the wire (callbacks run
    // with kCancelled) and let the graph drain before the nodes are destroyed.
    std::vector<CallPtr> held;
    {
      std::unique_lock lock(key_mu_);
      closing_ = true;
      held.swap(held_);
      sends_done_.wait(lock, [&] { return sending_ == 0; });
    }
    for (const CallPtr& call : held) {
      Complete(call, call_->gateway(), CancelledError("the pipeline was destroyed"));
    }
    client_.reset();
    graph_.wait_for_all();
    audit_.reset();  // writes what is still queued
    // Idle frame buffers are kept for the next frame; with no pipeline left to use them, a plugin
    // host gets that memory back. Frames still held by the caller return to the pool later.
    FramePool::Shared().Trim();
  }

  Status Submit(FrameInput frame) override {
    if (flushed_.load()) return FailedPreconditionError("Pipeline::Submit after Flush");
    {
      std::unique_lock lock(token_mu_);
      token_cv_.wait(lock, [&] { return frames_in_flight_ < max_frames_ || Cancelled(); });
      if (Cancelled()) return CancelledError("Pipeline::Submit after Cancel");
      ++frames_in_flight_;
    }
    auto job = std::make_shared<FrameJob>();
    job->seq = next_seq_++;
    job->input = std::move(frame);
    ++submitted_;
    prepare_->try_put(job);
    return OkStatus();
  }

  std::vector<FrameOutput> TakeReady() override {
    std::lock_guard lock(out_mu_);
    std::vector<FrameOutput> ready(std::make_move_iterator(ready_.begin()),
                                   std::make_move_iterator(ready_.end()));
    ready_.clear();
    return ready;
  }

  std::optional<FrameOutput> Take() override {
    std::unique_lock lock(out_mu_);
    out_cv_.wait(lock, [&] { return !ready_.empty() || drained_; });
    if (ready_.empty()) return std::nullopt;
    FrameOutput next = std::move(ready_.front());
    ready_.pop_front();
    return next;
  }

  void Flush() override {
    flushed_ = true;
    graph_.wait_for_all();
    if (audit_) audit_->Drain();  // every call of the run is on disk once Flush returns
    std::lock_guard lock(out_mu_);
    drained_ = true;
    out_cv_.notify_all();
  }

  void Cancel() override {
    // Set before any call sees it, so every frame whose answers come back cancelled reaches
    // Deliver after this flag is up and is dropped there.
    cancel_->store(true);
    std::lock_guard lock(token_mu_);
    token_cv_.notify_all();
  }

  PipelineSummary summary() const override {
    PipelineSummary summary;
    {
      std::lock_guard lock(stats_mu_);
      summary = stats_.Summary();
    }
    std::lock_guard lock(key_mu_);
    summary.fatal_error = fatal_error_;
    return summary;
  }

  std::int64_t requests_in_flight() const override { return in_flight_.load(); }
  int frames_in_flight_limit() const override { return max_frames_; }
  std::string budget_spent() const override {
    if (!over_budget_.load()) return "";
    std::lock_guard lock(key_mu_);
    return budget_spent_;
  }

 private:
  using PrepareNode = flow::function_node<JobPtr, JobPtr>;
  using Sequencer = flow::sequencer_node<JobPtr>;
  using GateNode = flow::multifunction_node<JobPtr, std::tuple<CallPtr, JobPtr>>;
  using CallNode = flow::async_node<CallPtr, CallPtr>;
  /// Outputs: frames whose answers are all in (to merge), and the calls of frames whose shared
  /// call failed (each makes its own, back to the call node).
  using AnswerNode = flow::multifunction_node<CallPtr, std::tuple<JobPtr, CallPtr>>;
  using MergeNode = flow::function_node<JobPtr, JobPtr>;
  using DeliverNode = flow::function_node<JobPtr, flow::continue_msg>;

  double Now() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  bool Cancelled() const { return cancel_->load(); }

  void BuildGraph() {
    auto seq_of = [](const JobPtr& job) { return static_cast<std::size_t>(job->seq); };
    prepare_ = std::make_unique<PrepareNode>(graph_, flow::unlimited,
                                             [this](const JobPtr& job) { return Prepare(job); });
    ordered_for_gate_ = std::make_unique<Sequencer>(graph_, seq_of);
    // Serial and in frame order: the gate's decisions (reuse or call) depend on the frames
    // before, so they must be made in order for batch results to be deterministic.
    gate_ = std::make_unique<GateNode>(
        graph_, flow::serial,
        [this](const JobPtr& job, GateNode::output_ports_type& ports) { Gate(job, ports); });
    // unlimited: the body only hands the request over; the client bounds transfers in flight.
    call_ = std::make_unique<CallNode>(
        graph_, flow::unlimited,
        [this](const CallPtr& call, CallNode::gateway_type& gateway) { Call(call, gateway); });
    answer_ = std::make_unique<AnswerNode>(
        graph_, flow::unlimited,
        [this](const CallPtr& call, AnswerNode::output_ports_type& ports) { Answer(call, ports); });
    merge_ = std::make_unique<MergeNode>(graph_, flow::unlimited,
                                         [this](const JobPtr& job) { return Merge(job); });
    ordered_for_output_ = std::make_unique<Sequencer>(graph_, seq_of);
    deliver_ = std::make_unique<DeliverNode>(graph_, flow::serial, [this](const JobPtr& job) {
      Deliver(job);
      return flow::continue_msg();
    });

    flow::make_edge(*prepare_, *ordered_for_gate_);
    flow::make_edge(*ordered_for_gate_, *gate_);
    flow::make_edge(flow::output_port<0>(*gate_), *call_);
    flow::make_edge(flow::output_port<1>(*gate_), *merge_);
    flow::make_edge(*call_, *answer_);
    flow::make_edge(flow::output_port<0>(*answer_), *merge_);
    flow::make_edge(flow::output_port<1>(*answer_), *call_);
    flow::make_edge(*merge_, *ordered_for_output_);
    flow::make_edge(*ordered_for_output_, *deliver_);
  }

  std::string FrameLabel(const FrameJob& job) const {
    std::string label = "frame " + std::to_string(job.input.index);
    if (!job.input.source.empty()) label += " (" + job.input.source + ")";
    return label;
  }

  /// Every configured ROI with an error answer: for frames that could not be prepared.
  void FailAllRois(FrameJob& job, const std::string& why) {
    job.slots.clear();
    for (std::size_t i = 0; i < config_.rois.size(); ++i) {
      RoiSlot slot;
      slot.roi.roi_index = static_cast<int>(i);
      slot.roi.name = config_.rois[i].name;
      if (config_.rois[i].rect) slot.roi.rect = slot.roi.frame_rect = *config_.rois[i].rect;
      slot.failed = true;
      slot.answer = ErrorAnswer("roi '" + slot.roi.name + "' " + FrameLabel(job) + ": " + why);
      job.slots.push_back(std::move(slot));
    }
  }

  JobPtr Prepare(const JobPtr& job) {
    if (Cancelled()) return job;  // dropped at Deliver: no crops to cut
    try {
      if (job->input.bgr.empty()) {
        job->frame_error =
            Status(StatusCode::kDataLoss,
                   job->input.error.empty() ? "frame could not be decoded" : job->input.error);
      } else {
        auto pre = Preprocess(job->input.bgr, config_.pipeline.preprocess);
        if (!pre.ok()) {
          job->frame_error = pre.status();
        } else {
          job->pre = std::move(*pre);
          auto rois = FindRois(config_, job->pre);
          if (!rois.ok()) {
            job->frame_error = rois.status();
          } else {
            for (auto& roi : *rois) {
              if (Cancelled()) break;  // thousands of ROIs: stop between crops
              RoiSlot slot;
              slot.roi = std::move(roi);
              const RoiConfig& rc = config_.rois.at(slot.roi.roi_index);
              auto crop = MakeCrop(job->pre.image, slot.roi, rc.zoom);
              if (!crop.ok()) {
                slot.failed = true;
                slot.answer = ErrorAnswer("roi '" + slot.roi.name + "' " + FrameLabel(*job) + ": " +
                                          crop.status().message());
              } else {
                slot.transform = crop->transform;
                slot.crop = std::move(crop->image);
                // Threshold 0: every call frame calls, no crop is ever compared (Difference is
                // never below 0), so the thumbnail would only cost a resize per crop.
                if (rc.change_threshold > 0) slot.thumbnail = ChangeGate::Thumbnail(slot.crop);
              }
              job->slots.push_back(std::move(slot));
            }
          }
        }
      }
    } catch (const std::exception& e) {
      job->frame_error = InternalError(e.what());
    }
    if (!job->frame_error.ok()) FailAllRois(*job, job->frame_error.message());
    return job;
  }

  void Gate(const JobPtr& job, GateNode::output_ports_type& ports) {
    job->outstanding = 1;  // guard: answers arriving while we decide cannot release the frame
    const int every_n = std::max(1, config_.pipeline.every_n_frames);
    const bool call_frame = job->input.index % every_n == 0;
    for (std::size_t i = 0; i < job->slots.size(); ++i) {
      if (Cancelled()) break;  // the frame is dropped: start no more calls for it
      if (job->slots[i].failed) continue;
      if (live_) {
        GateLive(job, i, call_frame, ports);
      } else {
        GateBatch(job, i, call_frame, ports);
      }
    }
    if (--job->outstanding == 0) std::get<1>(ports).try_put(job);
  }

  CallPtr NewCall(const FrameJob& job, RoiSlot& slot) {
    auto call = std::make_shared<CallRecord>();
    call->key = slot.roi.name;
    call->roi_index = slot.roi.roi_index;
    call->frame = job.input.index;
    call->frame_rect = slot.roi.frame_rect;
    call->crop = std::move(slot.crop);
    call->thumbnail = slot.thumbnail;
    call->frame_time_s = job.input.time_s;
    return call;
  }

  /// Whether `reference`'s answer may stand for this slot's crop.
  bool Unchanged(const RoiSlot& slot, const FrameJob& job, const CallRecord& reference) const {
    const RoiConfig& rc = config_.rois[slot.roi.roi_index];
    return job.input.time_s - reference.frame_time_s <= rc.max_age_s &&
           ChangeGate::Difference(slot.thumbnail, reference.thumbnail) < rc.change_threshold;
  }

  /// Batch: the frame shows the answer for its own crop. It reuses the last call for this ROI
  /// (answered or still pending: then it waits for it) when that call succeeded or is pending and
  /// either this is not a call frame (every_n_frames) or the crop has not changed; otherwise it
  /// makes a new call. Waiting on a pending call coalesces frames that arrive while it runs.
  /// An uncertain answer is reused only on frames that make no call (every_n_frames): the change
  /// gate never freezes it, so the next call frame asks again even when the crop is unchanged.
  void GateBatch(const JobPtr& job, std::size_t index, bool call_frame,
                 GateNode::output_ports_type& ports) {
    RoiSlot& slot = job->slots[index];
    CallPtr latest;
    {
      std::lock_guard lock(states_mu_);
      latest = states_[slot.roi.name].latest;
    }
    if (latest) {
      std::lock_guard lock(latest->mu);
      const std::string& status = latest->answer.status;
      const bool reuse = (!latest->done || status == "ok")
                             ? (!call_frame || Unchanged(slot, *job, *latest))
                             : (status == "uncertain" && !call_frame);
      if (reuse) {
        if (latest->done) {
          slot.crop.release();
          slot.answer = ReusedAnswer(latest->answer);
        } else {
          // The slot keeps its crop: should this call fail, it makes its own (see Answer).
          ++job->outstanding;
          latest->waiters.push_back({job, index, false});
        }
        return;
      }
    }
    if (key_rejected_.load()) {
      slot.crop.release();
      slot.answer = NotCalledAnswer(*job, slot);
      return;
    }
    // Counted here, serially in frame order, so the budget goes to the earliest frames: the first
    // frame a --resume redoes gets its calls (when max_calls covers one frame's ROIs).
    std::string over_budget;
    {
      std::lock_guard lock(key_mu_);
      if (!TakeBudget()) over_budget = budget_spent_;
    }
    if (!over_budget.empty()) {
      slot.crop.release();
      slot.answer = ErrorAnswer("roi '" + slot.roi.name + "' " + FrameLabel(*job) + ": " +
                                kBudgetNotCalled + ": " + over_budget);
      return;
    }
    CallPtr call = NewCall(*job, slot);
    call->budget_counted = true;
    call->waiters.push_back({job, index, true});
    ++job->outstanding;
    {
      std::lock_guard lock(states_mu_);
      states_[slot.roi.name].latest = call;
    }
    std::get<0>(ports).try_put(call);
  }

  /// Live: the frame never waits. It shows the latest answer for this ROI (its status the first
  /// time it is shown, "cached" after, with its age) or "skipped" when there is none yet, and
  /// starts a call when none is in flight for this ROI and the crop changed (or the answer aged,
  /// or the last call failed or was uncertain), at most one call per ROI at a time.
  void GateLive(const JobPtr& job, std::size_t index, bool call_frame,
                GateNode::output_ports_type& ports) {
    RoiSlot& slot = job->slots[index];
    CallPtr start_call;
    {
      std::lock_guard lock(states_mu_);
      RoiState& state = states_[slot.roi.name];
      if (!state.in_flight && !key_rejected_.load()) {
        const CallRecord* reference = state.latest.get();  // done: nothing is in flight
        const bool want = !reference || (call_frame && (reference->answer.status != "ok" ||
                                                        !Unchanged(slot, *job, *reference)));
        if (want) {
          start_call = NewCall(*job, slot);
          state.latest = start_call;
          state.in_flight = true;
        }
      }
      if (CallPtr shown = state.latest_done) {
        if (!shown->shown) {
          slot.answer = shown->answer;
          shown->shown = true;
        } else {
          slot.answer = ReusedAnswer(shown->answer);
        }
        slot.age_s = std::max(0.0, Now() - shown->answer.answered_at_s);
      } else {
        slot.answer = RoiAnswer();
        slot.answer.status = "skipped";
      }
    }
    slot.crop.release();
    if (start_call) std::get<0>(ports).try_put(start_call);
  }

  /// Builds the request and hands it to the client. Until the backend has answered once, only
  /// the first call goes out and the rest are held: a missing or rejected API key then costs one
  /// request, not one per frame x ROI, and after a rejection nothing more is sent.
  void Call(const CallPtr& call, CallNode::gateway_type& gateway) {
    const RoiConfig& rc = config_.rois[call->roi_index];
    if (Cancelled()) {
      // Not even encoded: with many ROIs thousands of these can be queued behind the gate.
      call->result.emplace(CancelledError("the run was cancelled before this call started"));
      call->crop.release();
      call->started = Clock::now();
      gateway.try_put(call);
      return;
    }
    try {
      call->request = BuildRoiRequest(rc, call->crop, config_.backend.model);
      if (audit_ && call->audit_prompt.empty()) KeepForAudit(*call);
    } catch (const std::exception& e) {
      call->result.emplace(InternalError("building the request failed: " + std::string(e.what())));
    }
    if (!call->request) {
      if (call->reissues == 0) call->started = Clock::now();  // a sent call's starts in Send
      gateway.try_put(call);
      return;
    }
    // Keeps graph.wait_for_all() from returning while the call is held or on the wire; the
    // answer comes on the client's I/O thread, so no TBB worker waits on the network.
    gateway.reserve_wait();
    ++in_flight_;
    bool refuse = false;
    {
      std::lock_guard lock(key_mu_);
      if (!call->budget_counted && call->reissues == 0 && key_state_ != KeyState::kRejected &&
          !TakeBudget()) {
        refuse = true;  // over backend.budget (a re-sent call was counted when first sent)
      } else {
        switch (key_state_) {
          case KeyState::kUnverified:
            key_state_ = KeyState::kProbing;
            call->probe = true;
            break;
          case KeyState::kProbing:
            held_.push_back(call);
            return;
          case KeyState::kAccepted:
            break;
          case KeyState::kRejected:
            refuse = true;
            break;
        }
      }
    }
    if (refuse) return Refuse(call, gateway);
    Send(call, gateway);
  }

  /// Copies what the request sends (prompt, crop bytes) for the audit record: a string copy
  /// here; hashing and writing happen on the audit log's own thread.
  static void KeepForAudit(CallRecord& call) {
    const auto* blocks = std::get_if<std::vector<wire::ContentBlock>>(&call.request->input);
    if (!blocks) return;
    for (const wire::ContentBlock& block : *blocks) {
      if (block.type == "text" && call.audit_prompt.empty()) call.audit_prompt = block.text;
      if (block.type == "image" && call.audit_crop_base64.empty()) {
        call.audit_crop_base64 = block.data;
        call.audit_crop_mime_type = block.mime_type;
      }
    }
  }

  /// Hands a finished call to output.audit (queued; see AuditLog::Record). Calls never sent (key
  /// rejected, cancelled before the request was built) or cancelled have nothing to audit.
  void Audit(CallRecord& call, const RoiAnswer& answer) {
    if (!audit_ || call.not_sent || call.audit_prompt.empty() || !call.result) return;
    // Cancelled by Ctrl-C or shutdown: no answer to keep, nothing a replay could compare.
    if (!call.result->ok() && call.result->status().code() == StatusCode::kCancelled) return;
    AuditCall record;
    record.frame = call.frame;
    record.time_s = call.frame_time_s;
    record.roi = call.key;
    record.roi_index = call.roi_index;
    record.rect = call.frame_rect;
    record.roi_config = AuditRoiConfig(config_.rois[call.roi_index]);
    record.model = config_.backend.model;
    record.endpoint = endpoint_;
    record.coder = coder_;
    record.prompt = std::move(call.audit_prompt);
    record.crop_base64 = std::move(call.audit_crop_base64);
    record.crop_mime_type = std::move(call.audit_crop_mime_type);
    if (call.result->ok()) {
      record.interaction = std::move(**call.result);
    } else {
      record.status = call.result->status();
    }
    record.answer = AuditAnswerJson(answer);
    record.latency_ms = answer.latency_ms;
    record.reissues = call.reissues;
    audit_->Record(std::move(record));
  }

  void Send(const CallPtr& call, CallNode::gateway_type& gateway) {
    {
      std::lock_guard lock(key_mu_);
      if (closing_) {
        call->request.reset();
        return Complete(call, gateway, CancelledError("the pipeline was destroyed"));
      }
      ++sending_;
    }
    struct SendDone {
      FlowPipeline* self;
      ~SendDone() {
        std::lock_guard lock(self->key_mu_);
        if (--self->sending_ == 0) self->sends_done_.notify_all();
      }
    } send_done{this};
    wire::InteractionRequest request = std::move(*call->request);
    call->request.reset();
    if (call->reissues == 0) call->started = Clock::now();
    CallOptions options;
    options.cancel = cancel_;  // Cancel() stops it, on the wire or queued in the client
    client_->CreateInteraction(
        std::move(request),
        [this, call, &gateway](StatusOr<wire::Interaction> result) {
          if (result.ok()) ++ok_answers_;  // before held calls go out: they may need to know
          std::vector<CallPtr> held;
          bool rejected = false;
          {
            std::lock_guard lock(key_mu_);
            if (result.ok() && result->usage) tokens_used_ += result->usage->total_tokens;
            if (!result.ok() && IsKeyRejected(result.status())) {
              rejected = true;
              if (key_state_ != KeyState::kRejected) {
                key_state_ = KeyState::kRejected;
                key_rejected_ = true;
                fatal_error_ =
                    "the API key is missing or was rejected: " + result.status().ToString() +
                    " — " + key_source_ + "; no further model calls were made";
              }
            } else if (call->probe) {
              key_state_ = KeyState::kAccepted;
            }
            if (call->probe || rejected) held.swap(held_);
          }
          Complete(call, gateway, std::move(result));
          for (const CallPtr& next : held) {
            if (rejected) {
              Refuse(next, gateway);
            } else {
              Send(next, gateway);
            }
          }
        },
        std::move(options));
  }

  /// Ends a call refused after the key was rejected or the budget was spent: an error, and no
  /// request was made.
  void Refuse(const CallPtr& call, CallNode::gateway_type& gateway) {
    call->not_sent = true;
    call->request.reset();
    if (key_rejected_.load() || !over_budget_.load()) {
      return Complete(call, gateway, FailedPreconditionError("not called: " + FatalError()));
    }
    std::string why;
    {
      std::lock_guard lock(key_mu_);
      why = budget_spent_;
    }
    Complete(call, gateway,
             Status(StatusCode::kResourceExhausted, std::string(kBudgetNotCalled) + ": " + why));
  }

  /// Counts a new call against backend.budget; false (and budget_spent_ set) when the budget
  /// does not allow it. Tokens are those of the answers in so far. Requires key_mu_.
  bool TakeBudget() {
    const BudgetConfig& budget = config_.backend.budget;
    if (!budget.enabled()) return true;
    if (over_budget_.load()) return false;
    if (budget.max_calls > 0 && calls_made_ >= budget.max_calls) {
      budget_spent_ = "max_calls (" + std::to_string(budget.max_calls) + ") reached";
    } else if (budget.max_tokens > 0 && tokens_used_ >= budget.max_tokens) {
      budget_spent_ = "max_tokens (" + std::to_string(budget.max_tokens) +
                      ") reached: " + std::to_string(tokens_used_) + " tokens used";
    } else {
      ++calls_made_;
      return true;
    }
    over_budget_ = true;
    return false;
  }

  void Complete(const CallPtr& call, CallNode::gateway_type& gateway,
                StatusOr<wire::Interaction> result) {
    call->result.emplace(std::move(result));
    --in_flight_;
    gateway.try_put(call);
    gateway.release_wait();
  }

  std::string FatalError() const {
    std::lock_guard lock(key_mu_);
    return fatal_error_;
  }

  /// The line of a slot that gets no call because the key was rejected.
  RoiAnswer NotCalledAnswer(const FrameJob& job, const RoiSlot& slot) const {
    return ErrorAnswer("roi '" + slot.roi.name + "' " + FrameLabel(job) +
                       ": not called: " + FatalError());
  }

  /// Whether a failed call is sent again (see kMaxReissues): its failures were all transient,
  /// retries are on (max_retries > 0), and the backend is up but flaky: it has answered calls in
  /// this run, or its last answer to this one was an HTTP answer (429, 5xx, a garbled 200) rather
  /// than no connection. That covers the run's first call, which no answer precedes. Against a
  /// backend that cannot be reached, a call fails after one retry budget.
  bool ShouldReissue(const CallRecord& call) const {
    if (call.not_sent || !call.result || call.result->ok() || call.crop.empty()) return false;
    const Status& status = call.result->status();
    return call.reissues < kMaxReissues && config_.backend.max_retries > 0 &&
           LimitedErrorCountRetryPolicy::IsRetryable(status) &&
           (ok_answers_.load() > 0 || status.http_status() != 0) && !key_rejected_.load();
  }

  void Answer(const CallPtr& call, AnswerNode::output_ports_type& ports) {
    if (ShouldReissue(*call)) {
      ++call->reissues;
      call->result.reset();
      std::get<1>(ports).try_put(call);  // frames waiting for it keep waiting
      return;
    }
    call->crop.release();
    const RoiConfig& rc = config_.rois[call->roi_index];
    RoiAnswer answer;
    try {
      answer = ParseRoiAnswer(rc, *call->result);
    } catch (const std::exception& e) {
      answer = ErrorAnswer("roi '" + call->key + "': answer could not be parsed: " + e.what());
    }
    if (answer.status == "error" && answer.error.find("frame ") == std::string::npos) {
      answer.error += " (frame " + std::to_string(call->frame) + ")";
    }
    // latency_ms > 0 marks "this line made a call" (RunStats); a sub-microsecond failure still
    // counts as a call, a refused one (key rejected) does not.
    answer.latency_ms =
        call->not_sent
            ? 0
            : std::max(
                  1e-3,
                  std::chrono::duration<double, std::milli>(Clock::now() - call->started).count());
    answer.answered_at_s = Now();
    Audit(*call, answer);
    call->result.reset();

    std::vector<Waiter> waiters;
    {
      std::lock_guard lock(call->mu);
      call->answer = answer;
      call->done = true;
      waiters.swap(call->waiters);
    }
    if (live_) {
      std::lock_guard lock(states_mu_);
      RoiState& state = states_[call->key];
      state.latest_done = call;
      state.in_flight = false;
    }
    // An uncertain answer is an answer: frames waiting for it show it (still uncertain) rather
    // than each asking again; the next call frame asks again (see GateBatch).
    const bool failed = answer.status == "error";
    for (Waiter& waiter : waiters) {
      RoiSlot& slot = waiter.job->slots[waiter.slot];
      if (failed && !waiter.caller) {
        // A failed answer is never shown for another frame: this frame asks for itself, from
        // the crop it kept (its own call has the client's whole retry budget).
        if (key_rejected_.load()) {
          slot.crop.release();
          slot.answer = NotCalledAnswer(*waiter.job, slot);
        } else {
          CallPtr own = NewCall(*waiter.job, slot);
          own->waiters.push_back({waiter.job, waiter.slot, true});
          std::get<1>(ports).try_put(own);
          continue;  // the frame's outstanding count now waits for `own`
        }
      } else {
        slot.crop.release();
        slot.answer = waiter.caller ? answer : ReusedAnswer(answer);
      }
      if (--waiter.job->outstanding == 0) std::get<0>(ports).try_put(waiter.job);
    }
  }

  JobPtr Merge(const JobPtr& job) {
    if (Cancelled()) {  // dropped at Deliver: neither drawing nor result lines
      job->input.bgr.release();
      job->pre = PreprocessedFrame();
      job->slots.clear();
      return job;
    }
    FrameOutput& out = job->output;
    out.index = job->input.index;
    out.time_s = job->input.time_s;
    out.source = job->input.source;
    bool in_place = false;
    try {
      if (job->frame_error.ok()) {
        // The input usually shares its pixels with the preprocessed image (no preprocessing):
        // let go of it so that the image can be drawn on in place.
        if (job->input.bgr.u == job->pre.image.u) job->input.bgr.release();
        out.annotated = TakeOrCopy(job->pre.image);
        in_place = job->pre.image.empty();
        for (const RoiSlot& slot : job->slots) {
          if (slot.failed) continue;
          MergeAnswer(out.annotated, slot.roi, slot.transform, slot.answer, config_.merge,
                      live_ ? slot.age_s : std::nullopt);
        }
      }
    } catch (const std::exception& e) {
      // A drawing failure must not lose the frame: keep the unannotated image (drawn in place:
      // the image as far as it was drawn).
      if (!in_place) out.annotated = PooledCopy(job->pre.image);
    }
    out.results.reserve(job->slots.size());
    for (const RoiSlot& slot : job->slots) {
      const RoiConfig& rc = config_.rois.at(slot.roi.roi_index);
      out.results.push_back(
          MakeRoiResult(out.index, out.source, out.time_s, slot.roi, rc, slot.answer));
    }
    // Drop what the output does not need before the frame waits in the sequencer.
    job->input.bgr.release();
    job->pre = PreprocessedFrame();
    job->slots.clear();
    return job;
  }

  void Deliver(const JobPtr& job) {
    // After Cancel no frame is delivered, complete or not: a frame with a cancelled answer always
    // gets here after the flag went up, and later frames must not follow a dropped one.
    if (!Cancelled()) {
      // Fusion and alarm state run here: serial and in frame order.
      job->output.alarms = monitor_.Process(job->output.results);
      if (snapshot_monitor_) job->output.monitor_state = monitor_.Save();
      if (alarm_sinks_) {
        for (const auto& event : job->output.alarms) alarm_sinks_->Post(event);
      }
      {
        std::lock_guard lock(stats_mu_);
        stats_.AddFrame();
        for (const auto& result : job->output.results) stats_.AddLine(ToJson(result));
      }
      std::lock_guard lock(out_mu_);
      ready_.push_back(std::move(job->output));
      out_cv_.notify_all();
    }
    {
      std::lock_guard lock(token_mu_);
      --frames_in_flight_;
      token_cv_.notify_all();
    }
  }

  const StationConfig config_;
  std::unique_ptr<InteractionsClient> client_;
  const std::string key_source_;  ///< where the key came from, for the fatal error's advice
  const Clock::time_point start_;
  ReadingMonitor monitor_;                        ///< Deliver's only
  std::unique_ptr<AlarmDispatcher> alarm_sinks_;  ///< null when no output.mqtt/webhook
  std::unique_ptr<AuditLog> audit_;               ///< null when output.audit is off
  const std::string endpoint_;                    ///< base URL the client calls (audit records)
  const std::string coder_;                       ///< PipelineOptions::coder (audit records)
  const bool snapshot_monitor_;                   ///< PipelineOptions::snapshot_monitor
  int max_frames_ = 8;
  bool live_ = false;

  flow::graph graph_;
  std::unique_ptr<PrepareNode> prepare_;
  std::unique_ptr<Sequencer> ordered_for_gate_;
  std::unique_ptr<GateNode> gate_;
  std::unique_ptr<CallNode> call_;
  std::unique_ptr<AnswerNode> answer_;
  std::unique_ptr<MergeNode> merge_;
  std::unique_ptr<Sequencer> ordered_for_output_;
  std::unique_ptr<DeliverNode> deliver_;

  std::uint64_t next_seq_ = 0;
  std::atomic<std::int64_t> submitted_{0};
  std::atomic<bool> flushed_{false};
  /// Set by Cancel(); handed to every model call as its CallOptions::cancel.
  const std::shared_ptr<std::atomic<bool>> cancel_ = std::make_shared<std::atomic<bool>>(false);
  std::atomic<std::int64_t> in_flight_{0};

  std::mutex token_mu_;
  std::condition_variable token_cv_;
  int frames_in_flight_ = 0;

  std::mutex states_mu_;
  std::map<std::string, RoiState> states_;

  mutable std::mutex key_mu_;  ///< guards key_state_, held_, fatal_error_, closing_, sending_
  KeyState key_state_ = KeyState::kUnverified;
  std::vector<CallPtr> held_;  ///< built calls waiting for the first answer
  std::string fatal_error_;
  bool closing_ = false;  ///< the destructor runs: no call reaches the client any more
  int sending_ = 0;       ///< Send calls handing a request to the client right now
  std::condition_variable sends_done_;
  std::atomic<bool> key_rejected_{false};
  std::int64_t calls_made_ = 0;   ///< counted by TakeBudget (key_mu_)
  std::int64_t tokens_used_ = 0;  ///< usage.total_tokens of the answers so far (key_mu_)
  std::string budget_spent_;      ///< key_mu_; set once, with over_budget_
  std::atomic<bool> over_budget_{false};
  std::atomic<std::int64_t> ok_answers_{0};  ///< calls answered without error so far

  std::mutex out_mu_;
  std::condition_variable out_cv_;
  std::deque<FrameOutput> ready_;
  bool drained_ = false;

  mutable std::mutex stats_mu_;
  RunStats stats_;
};

}  // namespace

StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(StationConfig config,
                                                     PipelineOptions options) {
  if (config.rois.empty()) return InvalidArgumentError("station config has no rois");
  if (Status s = ReadingMonitor(config).Restore(options.monitor_state); !s.ok()) return s;
  ClientOptions client_options;
  client_options.base_url = options.base_url;
  if (client_options.base_url.empty()) {
    if (config.backend.endpoint == "local") {
      // "local" means this machine: never fall back to the client's default (hosted) endpoint.
      return InvalidArgumentError(
          "backend.endpoint is \"local\" but no local backend URL was given: start one "
          "(roilens::backend::LocalBackend::Start) and pass its base_url() in "
          "PipelineOptions::base_url, or set backend.endpoint to the Interactions API base URL "
          "(e.g. \"https://generativelanguage.googleapis.com\")");
    }
    client_options.base_url = config.backend.endpoint;
  }
  client_options.api_key_env = config.backend.api_key_env;
  client_options.api_key = options.api_key;
  client_options.max_in_flight = std::max(1, config.backend.max_in_flight);
  client_options.request_timeout =
      std::chrono::milliseconds(static_cast<std::int64_t>(config.backend.request_timeout_s * 1000));
  client_options.max_retries = std::max(0, config.backend.max_retries);
  client_options.requests_per_minute = config.backend.requests_per_minute;
  const std::string key_source =
      options.api_key
          ? "check the key passed in PipelineOptions::api_key"
          : "put a valid key in the environment variable " + config.backend.api_key_env +
                " (named by backend.api_key_env; GOOGLE_API_KEY is the fallback)";
  const std::string endpoint = client_options.base_url;
  // The audit log scrubs the key from everything it stores (the client resolves it the same way).
  std::string key;
  if (options.api_key) {
    key = *options.api_key;
  } else if (const char* env = std::getenv(config.backend.api_key_env.c_str()); env && *env) {
    key = env;
  } else if (const char* fallback = std::getenv("GOOGLE_API_KEY"); fallback && *fallback) {
    key = fallback;
  }
  auto client = InteractionsClient::Create(std::move(client_options));
  if (!client.ok()) return client.status();
  auto alarm_sinks = AlarmDispatcher::Create(config.output);
  if (!alarm_sinks.ok()) return alarm_sinks.status();
  std::unique_ptr<AuditLog> audit;
  if (!config.output.audit.dir.empty()) {
    AuditOptions audit_options;
    audit_options.dir = config.output.audit.dir;
    audit_options.max_bytes = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(config.output.audit.max_mb * 1024 * 1024));
    audit_options.redact = key;
    auto opened = AuditLog::Open(std::move(audit_options));
    if (!opened.ok()) return opened.status();
    audit = std::move(*opened);
  }
  return std::unique_ptr<Pipeline>(std::make_unique<FlowPipeline>(
      std::move(config), std::move(*client), key_source, std::move(*alarm_sinks), std::move(audit),
      endpoint, options.coder, options.monitor_state, options.snapshot_monitor));
}

}  // namespace roilens
