// The embedded local backend started, and handed to a pipeline, in one place for every caller.
#include "roilens/backend/local_pipeline.h"

#include <utility>

namespace roilens::backend {
namespace {

// A Pipeline that owns the embedded backend it calls. Declaration order matters: pipeline_ is
// destroyed (its calls drained) before backend_ stops.
class EmbeddedPipeline final : public Pipeline {
 public:
  EmbeddedPipeline(std::unique_ptr<LocalBackend> backend, std::unique_ptr<Pipeline> pipeline)
      : backend_(std::move(backend)), pipeline_(std::move(pipeline)) {}

  Status Submit(FrameInput frame) override { return pipeline_->Submit(std::move(frame)); }
  std::vector<FrameOutput> TakeReady() override { return pipeline_->TakeReady(); }
  std::optional<FrameOutput> Take() override { return pipeline_->Take(); }
  void Flush() override { pipeline_->Flush(); }
  void Cancel() override { pipeline_->Cancel(); }
  PipelineSummary summary() const override { return pipeline_->summary(); }
  std::int64_t requests_in_flight() const override { return pipeline_->requests_in_flight(); }
  int frames_in_flight_limit() const override { return pipeline_->frames_in_flight_limit(); }
  std::string budget_spent() const override { return pipeline_->budget_spent(); }

 private:
  std::unique_ptr<LocalBackend> backend_;
  std::unique_ptr<Pipeline> pipeline_;
};

}  // namespace

StatusOr<std::unique_ptr<LocalBackend>> StartEmbeddedBackend(BackendOptions options) {
  auto started = LocalBackend::Start(std::move(options));
  if (!started.ok()) {
    return Status(started.status().code(),
                  "starting the embedded local backend: " + started.status().message());
  }
  return started;
}

StatusOr<std::unique_ptr<Pipeline>> CreateEmbeddedPipeline(StationConfig config,
                                                           PipelineOptions options,
                                                           std::unique_ptr<LocalBackend> backend) {
  options.base_url = backend->base_url();
  if (!options.api_key) options.api_key = "";  // never send the environment's key to the emulator
  auto pipeline = Pipeline::Create(std::move(config), std::move(options));
  if (!pipeline.ok()) return pipeline.status();
  return std::unique_ptr<Pipeline>(
      std::make_unique<EmbeddedPipeline>(std::move(backend), std::move(*pipeline)));
}

StatusOr<std::unique_ptr<Pipeline>> CreatePipeline(StationConfig config, PipelineOptions options,
                                                   BackendOptions backend) {
  if (!options.base_url.empty() || config.backend.endpoint != "local") {
    return Pipeline::Create(std::move(config), std::move(options));
  }
  auto started = StartEmbeddedBackend(std::move(backend));
  if (!started.ok()) return started.status();
  return CreateEmbeddedPipeline(std::move(config), std::move(options), std::move(*started));
}

}  // namespace roilens::backend
