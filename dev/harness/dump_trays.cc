// Writes generated trays as PNG files with a truth.json, for count_harness.py.
//
//   dump_trays random OUT SEED TRAYS WIDER [key=value ...]
//       the trays `roilens accuracy --gauges 0 --trays TRAYS --wider WIDER --seed SEED` renders,
//       in its order (tNNN.png)
//   dump_trays fixed OUT SEED0 N COUNT [key=value ...]
//       N trays of COUNT parts in one style, tray i from cv::RNG(SEED0 + i), as the coder
//       accuracy tests' ExpectEachSeedExact renders them (sNNN.png, NNN = the seed)
//
// key=value overrides a style field (after RandomTrayStyle in random mode): kind, tone (0
// palette, 1 dark on light, 2 light on dark), glare, vignette, gradient, clusters, noise, blur,
// jpeg, contrast, size_mix, touch, border, tray (grey level), texture, scale, and count (random
// mode only: every tray holds that many parts).
#include <roilens/samples.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

using roilens::TrayStyle;

namespace {

bool Apply(const std::map<std::string, double>& overrides, TrayStyle& s, int& count) {
  for (const auto& [k, v] : overrides) {
    if (k == "kind")
      s.kind = int(v);
    else if (k == "tone")
      s.tone = roilens::TrayTone(int(v));
    else if (k == "glare")
      s.glare_spots = int(v);
    else if (k == "vignette")
      s.vignette = v;
    else if (k == "gradient")
      s.light_gradient = v;
    else if (k == "clusters")
      s.clusters = int(v);
    else if (k == "noise")
      s.noise_sigma = v;
    else if (k == "blur")
      s.blur_sigma = v;
    else if (k == "jpeg")
      s.jpeg_quality = int(v);
    else if (k == "contrast")
      s.contrast = v;
    else if (k == "size_mix")
      s.size_mix = v;
    else if (k == "touch")
      s.touch_chance = v;
    else if (k == "border")
      s.border_parts = int(v);
    else if (k == "tray")
      s.tray = cv::Scalar::all(v);
    else if (k == "texture")
      s.texture = v;
    else if (k == "scale")
      s.part_scale = v;
    else if (k == "count")
      count = int(v);
    else {
      std::fprintf(stderr, "unknown style key %s\n", k.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: dump_trays random|fixed OUT SEED N M [key=value ...]\n");
    return 2;
  }
  const std::string mode = argv[1], out = argv[2];
  const int seed = std::stoi(argv[3]), n = std::stoi(argv[4]), m = std::stoi(argv[5]);
  std::map<std::string, double> overrides;
  for (int i = 6; i < argc; ++i) {
    const std::string a = argv[i];
    const auto eq = a.find('=');
    if (eq == std::string::npos) return 2;
    overrides[a.substr(0, eq)] = std::stod(a.substr(eq + 1));
  }
  std::ofstream truth(out + "/truth.json");
  truth << "{";
  const bool fixed = mode == "fixed";
  cv::RNG rng(seed);
  const int total = fixed ? n : n + m;
  for (int i = 0; i < total; ++i) {
    TrayStyle style;
    int count = m;
    bool wider = false;
    if (fixed) {
      rng = cv::RNG(seed + i);
    } else {
      // the order of draws is EvaluateCoder's
      style = roilens::RandomTrayStyle(rng);
      wider = i >= n;
      if (wider) {
        style.border_parts = 0;
        style.surround = roilens::RandomTraySurround(rng);
      }
      count = rng.uniform(1, 26);
    }
    if (!Apply(overrides, style, count)) return 2;
    std::vector<cv::Rect> boxes;
    const cv::Mat image = roilens::RenderTray(count, style, rng, &boxes);
    char name[32];
    std::snprintf(name, sizeof name, fixed ? "s%03d.png" : "t%03d.png", fixed ? seed + i : i);
    cv::imwrite(out + "/" + name, image);
    truth << (i ? ",\n" : "\n") << "\"" << name << "\": {\"count\": " << boxes.size()
          << ", \"uneven\": " << style.UnevenLight() << ", \"clustered\": " << style.Clustered()
          << ", \"wider\": " << wider << ", \"kind\": " << style.kind << ", \"boxes\": [";
    for (std::size_t b = 0; b < boxes.size(); ++b)
      truth << (b ? ", [" : "[") << boxes[b].x << ", " << boxes[b].y << ", " << boxes[b].width
            << ", " << boxes[b].height << "]";
    truth << "]}";
  }
  truth << "\n}\n";
  return 0;
}
