// The embedded local backend for library users: what `roilens run`, `roilens replay`, the plugin
// and the Python package do for backend.endpoint "local", as one call for an app that links
// roilens::backend.
#pragma once

#include <memory>

#include "roilens/backend/server.h"
#include "roilens/client/status.h"
#include "roilens/config/config.h"
#include "roilens/stages/pipeline.h"

namespace roilens::backend {

/// Starts the embedded local backend: LocalBackend::Start(options), by default on a free loopback
/// port with no API keys (host, port and api_keys are taken as given). The one place that every
/// embedded use starts it, so that they fail alike. Callers pass what is theirs as `options`: the
/// coder (`roilens run --coder`, `roilens replay --coder`, the plugin's and the Python package's
/// `coder`), the added latency, faults.
///
/// The caller owns the result; destroying it stops the backend, so it must outlive every client
/// and pipeline that calls it (CreateEmbeddedPipeline hands it to the pipeline, which takes care
/// of that). A client pointed at it should send the API key "" (ClientOptions::api_key): the
/// environment's key never goes to the emulator. Thread-safety of the result is LocalBackend's;
/// this function may be called from any thread.
///
/// Errors: Start's, code kept, message prefixed "starting the embedded local backend: ".
StatusOr<std::unique_ptr<LocalBackend>> StartEmbeddedBackend(BackendOptions options = {});

/// Pipeline::Create pointed at `backend` (normally from StartEmbeddedBackend): options.base_url
/// becomes backend->base_url(), and when options.api_key is unset the key sent is "" (the
/// environment's API key never goes to the emulator). The returned pipeline owns `backend`: it is
/// stopped after the pipeline is destroyed (its calls drained). `backend` must not be null.
///
/// Errors: Pipeline::Create's (`backend` is then stopped). Thread-safety of the result is
/// Pipeline's.
StatusOr<std::unique_ptr<Pipeline>> CreateEmbeddedPipeline(StationConfig config,
                                                           PipelineOptions options,
                                                           std::unique_ptr<LocalBackend> backend);

/// Pipeline::Create, except that a config whose backend.endpoint is "local" (and no
/// options.base_url) first starts the embedded backend (StartEmbeddedBackend(backend)) and
/// creates the pipeline on it (CreateEmbeddedPipeline), as `roilens run` does: the returned
/// pipeline owns that backend. Any other endpoint, or a set options.base_url, is exactly
/// Pipeline::Create (`backend` is then unused).
///
/// Errors: StartEmbeddedBackend's or Pipeline::Create's. Thread-safety of the result is
/// Pipeline's.
StatusOr<std::unique_ptr<Pipeline>> CreatePipeline(StationConfig config, PipelineOptions options,
                                                   BackendOptions backend = {});

}  // namespace roilens::backend
