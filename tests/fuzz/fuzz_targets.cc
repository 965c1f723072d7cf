// The fuzz target bodies (see fuzz_targets.h). Each returns 0; a crash, a sanitizer report or a
// failed invariant (abort) is the finding.
#include "fuzz_targets.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "roilens/client/interactions.h"
#include "roilens/config/config.h"
#include "roilens/stages/answer.h"
#include "server_internal.h"

namespace roilens::fuzz {
namespace {

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "fuzz invariant failed: %s\n", what);
    std::abort();
  }
}

std::string_view AsText(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

RoiConfig RoiFor(TaskKind task) {
  RoiConfig roi;
  roi.name = "fuzz";
  roi.task = task;
  roi.rect = cv::Rect(0, 0, 64, 64);
  roi.object = "parts";
  roi.prompt = "look";
  roi.gauge.unit = "bar";
  roi.alarm.low = 1;
  roi.alarm.high = 8;
  return roi;
}

}  // namespace

int StationConfig(const std::uint8_t* data, std::size_t size) {
  auto config = ParseStationConfig(std::string(AsText(data, size)), "fuzz.json");
  if (!config.ok()) {
    Check(!config.status().message().empty(), "a refused config says why");
    return 0;
  }
  Check(!config->rois.empty(), "a valid config has ROIs");
  Check(config->backend.max_in_flight >= 1, "max_in_flight >= 1");
  Check(config->pipeline.every_n_frames >= 1, "every_n_frames >= 1");
  for (const auto& roi : config->rois) {
    Check(!roi.name.empty(), "ROI names are not empty");
    Check(std::isfinite(roi.zoom) && roi.zoom > 0, "zoom is finite and positive");
    Check(std::isfinite(roi.change_threshold), "change_threshold is finite");
    if (roi.rect) Check(roi.rect->width > 0 && roi.rect->height > 0, "rects are not empty");
    if (roi.task == TaskKind::kReadGauge) {
      Check(roi.gauge.max_value > roi.gauge.min_value, "gauge span is positive");
    }
  }
  return 0;
}

int InteractionResponse(const std::uint8_t* data, std::size_t size) {
  auto parsed = wire::ParseInteraction(AsText(data, size));
  // What the pipeline does with any answer, good or bad: it must never crash or throw.
  for (TaskKind task : {TaskKind::kReadGauge, TaskKind::kCount, TaskKind::kAsk}) {
    const RoiConfig roi = RoiFor(task);
    RoiAnswer answer = ParseRoiAnswer(roi, parsed);
    Check(answer.status == "ok" || answer.status == "uncertain" || answer.status == "error",
          "an answer is ok, uncertain or error");
    if (answer.status == "error") Check(!answer.error.empty(), "an error says why");
    if (answer.status == "uncertain") Check(answer.alarm.empty(), "uncertain raises no alarm");
    if (answer.value) Check(std::isfinite(*answer.value), "values are finite");
    if (answer.count) Check(*answer.count >= 0, "counts are not negative");
    Check(answer.objects.size() <= kMaxCountedObjects, "objects are capped");
    for (const CountedObject& o : answer.objects) {
      Check(std::isfinite(o.box.x) && std::isfinite(o.box.y) && o.box.width > 0 && o.box.height > 0,
            "object boxes are finite and not empty");
      if (o.score) Check(*o.score >= 0 && *o.score <= 1, "object scores are in 0..1");
    }
    // Mapped to frame pixels through a zoomed, offset ROI: boxes stay inside its rect.
    RoiInstance instance;
    instance.name = roi.name;
    instance.rect = cv::Rect(3, 5, 64, 64);
    instance.frame_rect = cv::Rect(6, 10, 128, 128);
    instance.image_to_frame = cv::Matx23d(2, 0, 0, 0, 2, 0);
    const nlohmann::json line = ResultLine(0, "", 0, instance, roi, answer);
    if (task == TaskKind::kCount) {
      Check(line["objects"].is_array(), "count lines list objects");
      for (const auto& o : line["objects"]) {
        const cv::Rect box(o["box"][0].get<int>(), o["box"][1].get<int>(), o["box"][2].get<int>(),
                           o["box"][3].get<int>());
        Check(!box.empty() && (box & instance.frame_rect) == box, "object boxes lie in rect");
      }
    } else {
      Check(line["objects"].is_null(), "other lines have null objects");
    }
  }
  if (!parsed.ok()) return 0;
  (void)parsed->FinalText();
  (void)parsed->LastJsonObject();
  (void)parsed->CodeRuns();
  (void)parsed->OutputImages();
  // Unknown fields pass through: what we parsed serialises and parses back to the same JSON.
  nlohmann::json once = *parsed;
  auto again =
      wire::ParseInteraction(once.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  Check(again.ok(), "a parsed interaction serialises to a parseable one");
  return 0;
}

int CreateRequest(const std::uint8_t* data, std::size_t size) {
  static backend::internal::InteractionStore store(16, 1 << 20, std::chrono::seconds(60));
  using backend::internal::Json;
  auto request = backend::internal::ParseCreateBody(AsText(data, size), store);
  if (!request.ok()) {
    auto error = backend::internal::ErrorFromStatus(request.status());
    Check(error.http_status >= 400 && error.http_status < 500, "a bad request is a 4xx");
    (void)backend::internal::GoogleErrorBody(error).dump();
    return 0;
  }
  (void)backend::internal::MakeCoderInput(*request);
  (void)backend::internal::EstimateUsage(request->input_steps, Json::array());
  return 0;
}

}  // namespace roilens::fuzz
