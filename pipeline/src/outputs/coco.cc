// COCO detection JSON from a run directory's results.jsonl count objects.
#include "roilens/outputs/coco.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

namespace roilens {

using nlohmann::json;

json CocoFromResults(const std::vector<RoiResult>& results, const CocoOptions& options) {
  json images = json::array(), categories = json::array(), annotations = json::array();
  std::map<std::string, int> category_ids;
  std::set<std::int64_t> frames;
  for (const RoiResult& r : results) {
    if (frames.insert(r.frame).second) {
      std::string file_name = r.source;
      if (file_name.empty()) {
        char name[40];
        std::snprintf(name, sizeof(name), "frame_%06lld.png", static_cast<long long>(r.frame));
        file_name = name;
      }
      images.push_back({{"id", r.frame},
                        {"file_name", file_name},
                        {"width", options.frame_size.width},
                        {"height", options.frame_size.height},
                        {"time_s", r.time_s}});
    }
    if (r.objects.empty()) continue;
    auto kind = options.object_kinds.find(r.roi);
    const std::string name =
        kind != options.object_kinds.end() && !kind->second.empty() ? kind->second : r.roi;
    auto [it, added] = category_ids.emplace(name, static_cast<int>(category_ids.size()) + 1);
    if (added) categories.push_back({{"id", it->second}, {"name", name}, {"supercategory", ""}});
    for (const RoiObject& o : r.objects) {
      json a = {{"id", annotations.size() + 1},
                {"image_id", r.frame},
                {"category_id", it->second},
                {"bbox", {o.box.x, o.box.y, o.box.width, o.box.height}},
                {"area", o.box.area()},
                {"iscrowd", 0},
                {"roi", r.roi},
                {"status", r.status}};
      if (o.score) a["score"] = *o.score;
      annotations.push_back(std::move(a));
    }
  }
  return {{"info", {{"description", "roilens count objects"}}},
          {"images", std::move(images)},
          {"categories", std::move(categories)},
          {"annotations", std::move(annotations)}};
}

StatusOr<json> CocoFromRunDir(const std::string& run_dir) {
  namespace fs = std::filesystem;
  const fs::path dir(run_dir);
  const fs::path summary_path = dir / "summary.json";
  std::ifstream summary_in(summary_path);
  if (!summary_in) return NotFoundError("cannot read '" + summary_path.string() + "'");
  const json summary = json::parse(summary_in, nullptr, /*allow_exceptions=*/false);
  if (!summary.is_object()) {
    return InvalidArgumentError("'" + summary_path.string() + "' is not a JSON object");
  }
  CocoOptions options;
  const auto size = summary.find("frame_size");
  if (size == summary.end() || !size->is_array() || size->size() != 2 ||
      !(*size)[0].is_number_integer() || !(*size)[1].is_number_integer()) {
    return InvalidArgumentError("'" + summary_path.string() +
                                "' has no frame_size [width, height] (written by roilens run "
                                "since the COCO export exists): run again to export it");
  }
  options.frame_size = cv::Size((*size)[0].get<int>(), (*size)[1].get<int>());
  if (auto kinds = summary.find("count_objects"); kinds != summary.end() && kinds->is_object()) {
    for (const auto& [roi, kind] : kinds->items()) {
      if (kind.is_string()) options.object_kinds[roi] = kind.get<std::string>();
    }
  }

  const fs::path results_path = dir / "results.jsonl";
  std::ifstream in(results_path);
  if (!in) return NotFoundError("cannot read '" + results_path.string() + "'");
  std::vector<RoiResult> results;
  std::string text;
  for (int line_number = 1; std::getline(in, text); ++line_number) {
    if (text.empty()) continue;
    const json line = json::parse(text, nullptr, /*allow_exceptions=*/false);
    StatusOr<RoiResult> result = RoiResultFromJson(line);
    if (!result.ok()) {
      return InvalidArgumentError(results_path.string() + ":" + std::to_string(line_number) + ": " +
                                  result.status().message());
    }
    results.push_back(std::move(*result));
  }
  return CocoFromResults(results, options);
}

}  // namespace roilens
