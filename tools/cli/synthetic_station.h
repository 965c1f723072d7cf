// The synthetic gauge station that `roilens bench` and the live soak run: read_gauge dials named
// dial0, dial1, ... on the embedded local backend. Header-only: the CLI and the station-ops
// library both use it.
#pragma once

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace roilens::cli {

/// What SyntheticGaugeConfig describes. Every dial reads 0..10 bar over 225..-45 degrees.
struct SyntheticGaugeStation {
  std::vector<cv::Rect> dials;  ///< one ROI each, frame pixels; named dial0, dial1, ... in order
  int max_in_flight = 16;       ///< backend.max_in_flight
  std::string mode = "batch";   ///< pipeline.mode: "batch" | "live"
  /// merge: "replace" with labels (the bench's annotated video); false leaves merge unset.
  bool merge_labels = false;
};

/// The station config, as a config file holds it, with backend.endpoint "local". Pure function.
inline nlohmann::json SyntheticGaugeConfig(const SyntheticGaugeStation& station) {
  nlohmann::json rois = nlohmann::json::array();
  for (std::size_t i = 0; i < station.dials.size(); ++i) {
    const cv::Rect& r = station.dials[i];
    rois.push_back({{"name", "dial" + std::to_string(i)},
                    {"rect", {r.x, r.y, r.width, r.height}},
                    {"task", "read_gauge"},
                    {"gauge",
                     {{"min_value", 0},
                      {"max_value", 10},
                      {"min_angle_deg", 225},
                      {"max_angle_deg", -45},
                      {"unit", "bar"}}}});
  }
  nlohmann::json config = {
      {"backend", {{"endpoint", "local"}, {"max_in_flight", station.max_in_flight}}},
      {"pipeline", {{"mode", station.mode}}},
      {"rois", rois}};
  if (station.merge_labels) config["merge"] = {{"mode", "replace"}, {"labels", true}};
  return config;
}

}  // namespace roilens::cli
