// Drawing ROI answers onto output frames.
#pragma once

#include <opencv2/core.hpp>
#include <optional>
#include <string>

#include "roilens/config/config.h"
#include "roilens/stages/answer.h"
#include "roilens/stages/crop_transform.h"
#include "roilens/stages/rois.h"

namespace roilens {

/// The label as OpenCV's Hershey fonts can draw it (ASCII): the degree sign becomes "deg", any
/// other non-ASCII character one '?'.
std::string HersheyText(const std::string& utf8);

/// The label text for an answer: "boiler: 4.2 bar", "pallets: 3", "boiler: error", an uncertain
/// reading as "boiler: 4.2 bar? uncertain", with " +Ns" appended when age_s is
/// given.
std::string LabelText(const RoiInstance& roi, const RoiAnswer& answer, std::optional<double> age_s);

/// Status colour (BGR): green ok, grey cached/skipped, orange alarm, amber uncertain, red error.
cv::Scalar StatusColour(const RoiAnswer& answer);

/// Draws one ROI's answer onto the frame: replace (paste the returned image mapped back through
/// the transform), blend (alpha), inset (small picture-in-picture next to the ROI), none; plus
/// a label (value + unit / count / text, status colour: green ok, grey cached, orange alarm,
/// amber uncertain, red error; "+Ns" age in live mode when age_s is given). Everything is clipped
/// to the frame; an empty answer image or a rect outside the frame draws only what fits, never
/// crashes. `frame` must be 8-bit BGR.
void MergeAnswer(cv::Mat& frame, const RoiInstance& roi, const CropTransform& transform,
                 const RoiAnswer& answer, const MergeConfig& config, std::optional<double> age_s);

}  // namespace roilens
