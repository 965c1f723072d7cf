// COCO detection JSON from a run's count objects (`roilens export --coco`).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "roilens/client/status.h"
#include "roilens/stages/roi_result.h"

namespace roilens {

/// What a COCO export needs besides the results.
struct CocoOptions {
  /// Width x height of the original frames: the pixel space of rect and object boxes.
  cv::Size frame_size;
  /// Count ROI name -> the kind of object it counts (the config's "object"); categories are
  /// these kinds, one per distinct kind. A count ROI missing here is its own category, named
  /// after the ROI.
  std::map<std::string, std::string> object_kinds;
};

/// COCO detection JSON: "images" (one per frame: id = frame index, file_name = the result's
/// source for image inputs, else "frame_%06d.png" of the frame index, as
/// `ffmpeg -i VIDEO -start_number 0 frame_%06d.png` names them; width, height), "categories"
/// (id from 1, name = object kind, in order of first appearance) and "annotations" (id from 1,
/// image_id, category_id, bbox [x, y, w, h] in original frame pixels, area = w * h, iscrowd 0,
/// score when the model gave one, and roi/status as extra keys). Frames with no objects are
/// images without annotations. Pure function; thread-safe.
nlohmann::json CocoFromResults(const std::vector<RoiResult>& results, const CocoOptions& options);

/// Reads RUN_DIR/results.jsonl and RUN_DIR/summary.json (frame_size and count_objects, written
/// by `roilens run`) and returns CocoFromResults of them. Errors name the file (and line).
StatusOr<nlohmann::json> CocoFromRunDir(const std::string& run_dir);

}  // namespace roilens
