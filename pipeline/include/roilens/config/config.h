// Station config: the JSON (comments allowed) that says where to send crops, which ROIs to cut,
// what to ask about each, how to merge answers and where outputs go. Validated once, at load.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "roilens/client/status.h"

namespace roilens {

/// backend.budget: a cost guard for hosted runs, counted per `roilens run` invocation (a --resume
/// gets the budget again). 0 means no limit. When a limit is reached no further call is made.
struct BudgetConfig {
  std::int64_t max_calls = 0;  ///< model calls made (a re-sent call counts once)
  /// Tokens the answers reported (usage.total_tokens). Checked before each call: calls already
  /// on the wire when it is reached still finish, so a run may overshoot by max_in_flight calls.
  std::int64_t max_tokens = 0;
  bool enabled() const { return max_calls > 0 || max_tokens > 0; }
};

/// backend.prices["<model>"]: US dollars per million tokens, for summary.json's estimated_cost.
struct ModelPrice {
  double input_per_million = 0;
  double output_per_million = 0;
};

struct BackendConfig {
  /// "local" (embedded backend, started in-process) or a base URL.
  std::string endpoint = "local";
  std::string model = "gemini-3-flash-preview";
  std::string api_key_env = "GEMINI_API_KEY";
  int max_in_flight = 16;
  double request_timeout_s = 120;
  int max_retries = 4;
  double requests_per_minute = 0;
  BudgetConfig budget;
  /// By model name. The default holds one example entry for the default model (see README):
  /// illustrative figures, not a quote of current prices; set your own in the config.
  std::map<std::string, ModelPrice> prices = {{"gemini-3-flash-preview", {0.50, 3.00}}};
};

/// The cost of `input_tokens` and `output_tokens` at `model`'s price in `backend.prices`, in the
/// prices' currency; nullopt when the table has no entry for the model.
std::optional<double> EstimateCost(const BackendConfig& backend, const std::string& model,
                                   std::int64_t input_tokens, std::int64_t output_tokens);

enum class PipelineMode { kBatch, kLive };

/// Default cap on the pixels of one input image or video frame: 64 Mi pixels (64 * 1024 * 1024 =
/// 67,108,864, e.g. 8192 x 8192; 192 MiB decoded as BGR). Larger inputs are refused before they
/// are decoded, so one hostile or huge file cannot take gigabytes.
inline constexpr std::int64_t kDefaultMaxInputPixels = std::int64_t{64} * 1024 * 1024;
/// The highest cap a config may set: OpenCV's own decode limit (CV_IO_MAX_IMAGE_PIXELS, 2^30).
inline constexpr std::int64_t kMaxInputPixelsLimit = std::int64_t{1} << 30;

struct PreprocessConfig {
  int max_width = 0;  ///< resize cap (0 = none); aspect kept
  bool clahe = false;
  bool denoise = false;
  double rotate_deg = 0;  ///< counter-clockwise, about the centre, same canvas size
};

/// pipeline.reconnect: how a live stream or camera that drops is reopened (roilens run --mode
/// live; ReconnectOptions): the first wait, doubled per failed open (full jitter) up to the cap.
struct ReconnectConfig {
  double initial_delay_s = 0.5;  ///< (0, 3600]
  double max_delay_s = 30;       ///< >= initial_delay_s, at most 86400
};

struct PipelineConfig {
  PipelineMode mode = PipelineMode::kBatch;
  int every_n_frames =
      1;  ///< ROI calls on every Nth frame; other frames reuse (status cached/skipped)
  int max_frames_in_flight = 8;
  /// Images and video frames with more pixels (width x height) than this are refused, read from
  /// the file's header before decoding; 1..kMaxInputPixelsLimit.
  std::int64_t max_input_pixels = kDefaultMaxInputPixels;
  /// How video files are decoded: "auto" (libav, falling back to OpenCV for a file libav cannot
  /// open), "ffmpeg" (libav only) or "opencv" (cv::VideoCapture). Cameras and stream URLs always
  /// use cv::VideoCapture.
  std::string decoder = "auto";
  PreprocessConfig preprocess;
  ReconnectConfig reconnect;
};

/// One point of a printed scale: the value written at a tick and the tick's angle.
struct ScalePoint {
  double value = 0;
  double angle_deg = 0;  ///< 0 = 3 o'clock, CCW positive; unwrapped (may leave -180..180)
};

struct GaugeCalibration {
  double min_value = 0, max_value = 10;
  double min_angle_deg = 225, max_angle_deg = -45;  ///< 0 = 3 o'clock, CCW positive
  std::string unit;
  /// Non-linear scale (`gauge.scale`): values strictly increasing, angles strictly monotonic.
  /// Piecewise linear between its points, extrapolated from the end segments outside them;
  /// overrides the linear min/max mapping. Empty: linear from min to max.
  std::vector<ScalePoint> scale;
  /// The needle's pivot in the ROI crop, as fractions of the crop's width and height (so the
  /// ROI's zoom does not change it); written by `roilens calibrate`.
  std::optional<cv::Point2d> pivot;
  /// The scale's (tick ring's) radius as a fraction of the crop's shorter side.
  std::optional<double> radius;
};

/// The angle (degrees, as in GaugeCalibration) at which `value` sits on the gauge's scale:
/// piecewise through `scale` when given, else linear from min to max (extrapolated outside).
double GaugeAngleForValue(const GaugeCalibration& g, double value);

/// The value the needle at `angle_deg` shows: the inverse of GaugeAngleForValue. The angle is
/// taken modulo 360, at the turn nearest to the middle of the scale.
double GaugeValueForAngle(const GaugeCalibration& g, double angle_deg);

/// Thresholds of a read_gauge/count ROI (in the reading's unit), applied to the fused value by
/// AlarmStateMachine (roilens/stages/alarm.h).
struct AlarmConfig {
  std::optional<double> low, high;
  /// An alarm clears only once the reading is back past its threshold by this much (>= 0):
  /// a low alarm at value >= low + hysteresis, a high one at value <= high - hysteresis.
  double hysteresis = 0;
  /// The condition must hold this long (frame time, seconds) over certain readings before the
  /// alarm is raised; 0 = on the first reading past the threshold.
  double min_duration_s = 0;
};

/// Temporal fusion of a read_gauge ROI's readings (ReadingFusion, roilens/stages/fusion.h).
/// Unset fields take the mode's default: live mode fuses (window 5, window_s 10, max_rate 0.5),
/// batch mode does not (window 1, no rate check), because a batch's images are often unrelated.
struct FusionConfig {
  std::optional<int> window;       ///< fresh readings in the median (1..100; 1 = no fusion)
  std::optional<double> window_s;  ///< and at most this old (frame time, s; 0 = any age)
  std::optional<double> max_rate;  ///< fraction of the gauge span per second; 0 = no check
};

/// The confidence below which a read_gauge or count answer is "uncertain" when the ROI does not
/// set `min_confidence`.
inline constexpr double kDefaultMinConfidence = 0.5;

enum class TaskKind { kReadGauge, kCount, kZoom, kAnnotate, kAsk };
std::string TaskName(TaskKind t);  ///< "read_gauge", "count", "zoom", "annotate", "ask"

struct RoiConfig {
  std::string name;
  TaskKind task = TaskKind::kAsk;
  std::optional<cv::Rect> rect;
  std::vector<cv::Point>
      polygon;       ///< alternative to rect (bounding rect is cropped, outside masked)
  std::string find;  ///< "" | "gauges" | "grid"
  int grid_rows = 2, grid_cols = 2;
  double zoom = 1;         ///< crop upscale factor sent to the model
  GaugeCalibration gauge;  ///< read_gauge
  AlarmConfig alarm;
  FusionConfig fusion;  ///< read_gauge only
  /// read_gauge/count: an answer whose confidence (0..1) is below this gets status "uncertain"
  /// (its value/count is still reported, no alarm fires). Unset = kDefaultMinConfidence, and an
  /// answer without a confidence then counts as certain; when set explicitly (> 0) an answer
  /// without a confidence is uncertain too: the operator asked for evidence it did not give.
  std::optional<double> min_confidence;
  std::string object;              ///< count: what to count
  std::string prompt;              ///< annotate/ask/zoom: free text
  double change_threshold = 0.02;  ///< mean abs grey diff (0..1) under which a crop is "unchanged"
  double max_age_s = 10;           ///< a cached answer older than this is refreshed
};

enum class MergeMode { kReplace, kBlend, kInset, kNone };

struct MergeConfig {
  MergeMode mode = MergeMode::kReplace;
  bool labels = true;
  double blend_alpha = 0.6;
};

/// `output.video_encoder`: the libav writer's H.264 settings. Defaults favour throughput: x264's
/// "veryfast" preset encodes ~2.3x faster than its default "medium" and holds a 10-frame instead
/// of a 40-frame lookahead (~210 MB less at 1080p), at a few percent larger files for the same
/// quality (crf 23 is x264's default quality).
struct VideoEncoderConfig {
  std::string codec = "libx264";  ///< any libavcodec encoder name; falls back to mpeg4 if absent
  std::string preset = "veryfast";
  int crf = 23;          ///< constant quality 0..51 (lower = better); used when bitrate_kbps == 0
  int bitrate_kbps = 0;  ///< > 0: average bitrate instead of crf
  std::string tune;      ///< x264 tune: "", "film", "animation", "zerolatency", ...
  int threads = 0;       ///< encoder threads, 0 = the codec's choice
  int gop = 0;           ///< key frame interval in frames, 0 = the codec's default
  std::string pix_fmt = "yuv420p";  ///< yuv420p plays everywhere (browsers)
};

/// Alarm events to an MQTT broker (libmosquitto; needs a build with ROILENS_HAVE_MOSQUITTO).
/// Each event is published QoS 1, retained, on "<topic_prefix>/<roi>", so a subscriber that
/// connects later gets every ROI's last alarm state.
struct MqttConfig {
  std::string host;  ///< "" = MQTT off
  int port = 1883;
  std::string topic_prefix = "roilens";  ///< e.g. "plant1/line3/station7"
  std::string client_id;                 ///< "" = "roilens-<pid>"
  std::string username;
  std::string password_env;  ///< environment variable holding the password (never logged)
  int keepalive_s = 30;
};

/// Alarm events POSTed as JSON to `url`; failures (transport, 429, 5xx) are retried `retries`
/// times with exponential backoff from backoff_s (doubling, at most 60 s).
struct WebhookConfig {
  std::string url;  ///< "" = webhook off
  int retries = 3;
  double backoff_s = 1;
  double timeout_s = 10;
};

/// output.rotate: results.jsonl and the annotated video roll over when either limit is reached
/// (0 = no limit; both 0 = never). Rolled files are named like "results-000001-<UTC start>.jsonl".
struct RotateConfig {
  std::uint64_t max_bytes = 0;  ///< size of the active file (video: its closed segments)
  double max_seconds = 0;       ///< wall-clock age of the active file
};

/// output.audit: every model call kept for later checks (`roilens replay`): the crop as sent, the
/// prompt, the model's code, its stdout/stderr, returned images and the parsed answer, stored by
/// SHA-256 so an unchanged crop or identical code is kept once (roilens/outputs/audit.h).
struct AuditConfig {
  /// "" = off. A relative path is inside the output directory (`roilens run --out`).
  std::string dir;
  /// Size bound of the whole audit directory (records + blobs), MiB: past it the oldest record
  /// files and the blobs only they referenced are deleted. > 0.
  double max_mb = 1024;
};

struct OutputConfig {
  std::string video = "annotated.mp4";
  std::string video_backend = "ffmpeg";  ///< "ffmpeg" (libav) | "opencv" (cv::VideoWriter)
  VideoEncoderConfig video_encoder;
  std::string results = "results.jsonl";
  std::string summary = "summary.json";
  std::string report = "report.html";
  std::string alarms = "alarms.jsonl";  ///< alarm raise/clear events, one JSON object a line
  MqttConfig mqtt;
  WebhookConfig webhook;
  RotateConfig rotate;
  AuditConfig audit;
};

struct StationConfig {
  BackendConfig backend;
  PipelineConfig pipeline;
  std::vector<RoiConfig> rois;
  MergeConfig merge;
  OutputConfig output;
  std::string source_path;  ///< file it came from ("<string>" for text)
};

/// Parses and validates; errors name the JSON path of the bad field ("rois[2].gauge.max_value:
/// must be greater than min_value") and the file.
StatusOr<StationConfig> ParseStationConfig(const std::string& text,
                                           const std::string& source_name = "<string>");
StatusOr<StationConfig> LoadStationConfig(const std::string& path);
/// Checks every static ROI lies inside a frame of `size`; the error names the ROI.
Status ValidateRoisForFrame(const StationConfig& config, cv::Size size);

}  // namespace roilens
