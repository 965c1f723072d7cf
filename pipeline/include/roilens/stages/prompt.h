// The ROI task prompt (DESIGN.md "Task prompt contract") and the Interactions request around it.
#pragma once

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>

#include "roilens/client/interactions.h"
#include "roilens/config/config.h"

namespace roilens {

/// The prompt text: a plain-language instruction for the task, the task spec in a ```json fenced
/// block (the local coder parses exactly that fence), and the "end with one JSON line" instruction.
std::string RenderTaskPrompt(const RoiConfig& roi);

/// {"task": "read_gauge"|..., "calibration"{min_value,max_value,min_angle_deg,max_angle_deg,unit}
/// (read_gauge), "object" (count), "zoom", "prompt" (when set)}.
nlohmann::json TaskSpec(const RoiConfig& roi);

/// Encodes a crop for the request: PNG for small crops (lossless, small anyway), JPEG quality 92
/// for large ones (PNG of a photo is several times larger). Sets `mime_type`.
std::vector<std::uint8_t> EncodeCropImage(const cv::Mat& crop, std::string* mime_type);

/// Full request: model, input = [text block, image block (PNG or JPEG, base64)], tools =
/// [{"type":"code_execution"}], store=false (pipeline calls are independent).
wire::InteractionRequest BuildRoiRequest(const RoiConfig& roi, const cv::Mat& crop,
                                         const std::string& model);

}  // namespace roilens
