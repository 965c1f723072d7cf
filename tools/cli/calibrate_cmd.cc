// `roilens calibrate IMAGE --config station.json --roi NAME`: measures a gauge ROI's geometry on a
// reference frame (pivot, tick ring, scale ends or a non-linear scale) and writes it into the
// config, with an overlay picture for a person to confirm.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <sstream>

#include "commands.h"
#include "roilens/config/calibrate.h"
#include "roilens/config/config.h"
#include "roilens/stages/preprocess.h"
#include "roilens/stages/rois.h"

namespace roilens::cli {
namespace {

namespace fs = std::filesystem;

struct CalibrateArgs {
  std::string image;
  std::string config;
  std::string roi;
  std::string out;
  bool in_place = false;
  std::string overlay;
};

int Fail(int code, const std::string& message) {
  std::cerr << "roilens calibrate: " << message << "\n";
  return code;
}

/// The reference frame: an image, or the first frame of a video.
cv::Mat ReadFrame(const std::string& path) {
  cv::Mat frame = cv::imread(path, cv::IMREAD_COLOR);
  if (!frame.empty()) return frame;
  cv::VideoCapture video(path);
  if (video.isOpened()) video.read(frame);
  return frame;
}

std::string Format(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

int Calibrate(const CalibrateArgs& args) {
  auto loaded = LoadStationConfig(args.config);
  if (!loaded.ok()) return Fail(kExitBadConfig, loaded.status().message());
  const StationConfig& config = *loaded;
  int index = -1;
  for (std::size_t i = 0; i < config.rois.size(); ++i)
    if (config.rois[i].name == args.roi) index = int(i);
  if (index < 0) return Fail(kExitUsage, args.config + ": no ROI named '" + args.roi + "'");
  const RoiConfig& roi = config.rois[std::size_t(index)];
  const std::string where = args.image + ", ROI '" + roi.name + "'";
  if (roi.task != TaskKind::kReadGauge)
    return Fail(kExitUsage, "ROI '" + roi.name + "' is a " + TaskName(roi.task) +
                                " ROI; only read_gauge ROIs are calibrated");
  if (!roi.find.empty())
    return Fail(kExitUsage, "ROI '" + roi.name + "' uses find \"" + roi.find +
                                "\"; calibrate a ROI with a fixed rect or polygon");

  const cv::Mat frame = ReadFrame(args.image);
  if (frame.empty()) return Fail(kExitBadInput, args.image + ": cannot read an image from it");
  // The crop exactly as the pipeline cuts it: preprocessing, ROI placement, polygon mask, zoom.
  auto processed = Preprocess(frame, config.pipeline.preprocess);
  if (!processed.ok()) return Fail(kExitBadInput, args.image + ": " + processed.status().message());
  if (Status s = ValidateRoisForFrame(config, frame.size()); !s.ok())
    return Fail(kExitBadConfig, args.config + ": " + s.message());
  auto instances = FindRois(config, *processed);
  if (!instances.ok()) return Fail(kExitBadConfig, instances.status().message());
  const RoiInstance* instance = nullptr;
  for (const RoiInstance& r : *instances)
    if (r.roi_index == index) instance = &r;
  if (!instance) return Fail(kExitBadInput, where + ": the ROI is not inside the frame");
  auto crop = MakeCrop(processed->image, *instance, roi.zoom);
  if (!crop.ok()) return Fail(kExitBadInput, where + ": " + crop.status().message());

  auto geometry = CalibrateGauge(crop->image, roi.gauge);
  if (!geometry.ok())
    return Fail(kExitFailure, where + ": cannot calibrate: " + geometry.status().message());
  const GaugeGeometry& g = *geometry;

  // Write the geometry into the config's JSON (comments are not kept: nlohmann drops them).
  std::ifstream in(args.config, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false, /*ignore_comments=*/true);
  if (!doc.is_object() || !doc.contains("rois") || !doc["rois"].is_array())
    return Fail(kExitBadConfig, args.config + ": cannot re-read the config's JSON");
  const bool had_comments = nlohmann::json::parse(text, nullptr, false).is_discarded();
  nlohmann::json* target = nullptr;
  for (auto& r : doc["rois"])
    if (r.is_object() && r.value("name", std::string()) == roi.name) target = &r;
  if (!target) return Fail(kExitBadConfig, args.config + ": ROI '" + roi.name + "' not found");
  if (!target->contains("gauge")) (*target)["gauge"] = nlohmann::json::object();
  WriteCalibration(g, (*target)["gauge"]);
  const std::string written = doc.dump(2) + "\n";
  // What we write must load: the same validation as `roilens run`.
  if (auto check = ParseStationConfig(written, args.config); !check.ok())
    return Fail(kExitFailure,
                where + ": the calibrated config does not validate: " + check.status().message());

  fs::path out_path;
  if (args.in_place) {
    out_path = args.config;
  } else if (!args.out.empty()) {
    out_path = args.out;
  } else {
    const fs::path config_path(args.config);
    out_path = config_path.parent_path() / (config_path.stem().string() + ".calibrated.json");
  }
  {
    const fs::path tmp = out_path.string() + ".tmp";
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << written;
    out.close();
    std::error_code ec;
    if (!out || (fs::rename(tmp, out_path, ec), ec)) {
      fs::remove(tmp, ec);
      return Fail(kExitFailure, out_path.string() + ": cannot write the calibrated config");
    }
  }
  if (!args.overlay.empty()) {
    const cv::Mat overlay = DrawCalibrationOverlay(crop->image, g);
    bool ok = false;
    try {
      ok = cv::imwrite(args.overlay, overlay);
    } catch (const cv::Exception&) {
    }
    if (!ok) return Fail(kExitFailure, args.overlay + ": cannot write the overlay");
  }

  const GaugeCalibration& c = g.calibration;
  std::cout << "calibrated ROI '" << roi.name << "' on " << args.image << " (crop "
            << g.crop_size.width << "x" << g.crop_size.height << ")\n";
  std::cout << "  dial face: centre (" << Format(g.dial_centre.x) << ", " << Format(g.dial_centre.y)
            << ") px, radius " << Format(g.dial_radius) << " px"
            << (g.dial_found ? "" : " (no face circle seen; the crop's centre was assumed)")
            << "\n";
  std::cout << "  pivot: [" << Format(c.pivot->x) << ", " << Format(c.pivot->y) << "] ("
            << Format(g.pivot.x) << ", " << Format(g.pivot.y) << " px; "
            << Format(cv::norm(g.pivot - g.dial_centre)) << " px from the face centre)\n";
  std::cout << "  radius: " << Format(*c.radius) << " of the shorter side ("
            << Format(g.ring_radius) << " px); tick ring fit residual "
            << Format(g.ring_residual_px) << " px RMS\n";
  int on_scale = 0;
  for (const auto& t : g.ticks) on_scale += t.on_scale;
  std::cout << "  ticks: " << g.ticks.size() << " found, " << on_scale << " on the scale, "
            << g.major_ticks << " major; dead zone " << Format(g.dead_zone_deg) << " deg\n";
  std::cout << "  ends: min " << Format(c.min_value) << " at " << Format(g.min_angle_deg)
            << " deg, max " << Format(c.max_value) << " at " << Format(g.max_angle_deg)
            << " deg (config had " << Format(roi.gauge.min_angle_deg) << ", "
            << Format(roi.gauge.max_angle_deg) << ")\n";
  if (!g.scale.empty()) {
    std::cout << "  non-linear scale (" << g.scale.size() << " points):";
    for (const ScalePoint& p : g.scale)
      std::cout << " [" << Format(p.value) << ", " << Format(p.angle_deg) << "]";
    std::cout << "\n";
  }
  if (auto reading = CalibratedReading(g))
    std::cout << "  needle now: " << Format(*g.needle_angle_deg) << " deg = " << Format(*reading)
              << (c.unit.empty() ? "" : " " + c.unit) << "\n";
  else
    std::cout << "  needle now: not seen\n";
  for (const std::string& w : g.warnings) std::cout << "  warning: " << w << "\n";
  std::cout << "wrote " << out_path.string()
            << (had_comments ? " (the original's comments are not kept)" : "") << "\n";
  if (!args.overlay.empty())
    std::cout << "wrote " << args.overlay << ": check the pivot, ticks and scale arc\n";
  return kExitOk;
}

const CommandRegistration kCalibrate("calibrate", [](CLI::App& root, int& exit_code) {
  auto args = std::make_shared<CalibrateArgs>();
  CLI::App* cmd = root.add_subcommand(
      "calibrate",
      "Measure a gauge ROI on a reference frame (pivot, tick ring, scale ends) and write it into "
      "the config");
  cmd->add_option("image", args->image, "Reference frame (image, or a video's first frame)")
      ->required();
  cmd->add_option("-c,--config", args->config, "Station config (JSON)")->required();
  cmd->add_option("--roi", args->roi, "Name of the read_gauge ROI")->required();
  auto* out = cmd->add_option("-o,--out", args->out,
                              "Calibrated config to write (default: <config>.calibrated.json)");
  cmd->add_flag("--in-place", args->in_place, "Rewrite the config itself")->excludes(out);
  cmd->add_option("--overlay", args->overlay, "Overlay PNG to write for a person to confirm");
  cmd->callback([args, &exit_code] { exit_code = Calibrate(*args); });
});

}  // namespace
}  // namespace roilens::cli
