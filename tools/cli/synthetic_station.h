// The synthetic gauge station that `roilens bench` runs: read_gauge dials named dial0, dial1, ...
// on the embedded local backend. Header-only: the CLI and the station-ops library both use it.
#pragma once

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace roilens::cli {

inline std::string SyntheticConfig(const std::vector<cv::Rect>& rects, int max_in_flight) {
  nlohmann::json rois = nlohmann::json::array();
  for (std::size_t i = 0; i < rects.size(); ++i) {
    const cv::Rect& r = rects[i];
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
  nlohmann::json config = {{"backend", {{"endpoint", "local"}, {"max_in_flight", max_in_flight}}},
                           {"pipeline", {{"mode", "batch"}}},
                           {"rois", rois},
                           {"merge", {{"mode", "replace"}, {"labels", true}}}};
  return config.dump(2);
}

}  // namespace roilens::cli
