// The embedded local backend for library users: what `roilens run` and the plugin do for
// backend.endpoint "local", as one call for an app that links roilens::backend.
#pragma once

#include <memory>

#include "roilens/backend/server.h"
#include "roilens/client/status.h"
#include "roilens/config/config.h"
#include "roilens/stages/pipeline.h"

namespace roilens::backend {

/// Pipeline::Create, except that a config whose backend.endpoint is "local" (and no
/// options.base_url) first starts a LocalBackend with `backend` on a free loopback port and points
/// the pipeline at it, as `roilens run` does. The returned pipeline owns that backend: it stops
/// after the pipeline is destroyed. When options.api_key is unset the key sent to the embedded
/// backend is "" (the environment's API key never goes to the emulator). Any other endpoint, or a
/// set options.base_url, is exactly Pipeline::Create (`backend` is then unused).
///
/// Errors: the backend's Start error (prefixed "starting the embedded local backend: "), or
/// Pipeline::Create's. Thread-safety of the result is Pipeline's.
StatusOr<std::unique_ptr<Pipeline>> CreatePipeline(StationConfig config, PipelineOptions options,
                                                   BackendOptions backend = {});

}  // namespace roilens::backend
