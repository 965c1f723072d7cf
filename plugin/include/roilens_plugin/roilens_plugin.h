/* roilens plugin C ABI: the one entry point an OpenCV application (or any C, C++ or ctypes caller)
 * loads from libroilens_plugin.so.1 to run the roilens pipeline inside its own capture loop.
 *
 * Shaped after OpenCV's videoio plugins: the library exports exactly one symbol,
 * roilens_plugin_init_v1(abi_version, api_version, reserved), which returns a table of function
 * pointers. The ABI version changes when the table or a struct changes incompatibly (a caller
 * built for another ABI is refused); the API version grows when functions are appended to the
 * table (a caller asking for an older API gets the same table, and `size` says how much of it
 * there is). Plain C, no C++ types cross the boundary.
 *
 * Errors: every function returns a roilens_result; negative values are errors and the calling
 * thread's last_error() then says what went wrong (naming the field, frame or argument).
 *
 * Thread-safety, per function (one handle; different handles are independent):
 *   create, destroy of different handles, last_error, frame_release: any thread, any time.
 *   submit: one submitting thread at a time per handle (frames must arrive in order).
 *   take:   one taking thread at a time per handle; it may differ from the submitting thread and
 *           run concurrently with submit.
 *   flush:  any thread; concurrently with take; not concurrently with submit on the same handle.
 *   destroy: may be called while another thread is blocked in take (that take returns
 *           ROILENS_ERROR_INVALID_HANDLE); every call that starts after destroy returned gets
 *           ROILENS_ERROR_INVALID_HANDLE. Handles are never-reused registry ids, not addresses, so
 *           a stale handle is always detected (it is never confused with a newer session).
 */
#ifndef ROILENS_PLUGIN_ROILENS_PLUGIN_H_
#define ROILENS_PLUGIN_ROILENS_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Breaking version: the table layout and structs below. The SONAME carries it (.so.1). */
#define ROILENS_PLUGIN_ABI_VERSION 1
/** Compatible version: functions appended to the table.
 *  1: create .. last_error.  2: roi_count, roi_result, roi_object (typed results). */
#define ROILENS_PLUGIN_API_VERSION 2

/** Name of the single exported symbol (for dlsym). */
#define ROILENS_PLUGIN_INIT_SYMBOL "roilens_plugin_init_v1"

typedef int32_t roilens_result;
#define ROILENS_OK 0
/** take: no finished frame yet (try again later). */
#define ROILENS_NOT_READY 1
/** take: flush() was called and every frame has been taken; no more will come. */
#define ROILENS_END 2
/** A null pointer, bad size, stride or frame index, or an unknown option. */
#define ROILENS_ERROR_INVALID_ARGUMENT (-1)
/** Not a live handle: null, never created, or already destroyed. */
#define ROILENS_ERROR_INVALID_HANDLE (-2)
/** The config (or options) JSON is invalid; last_error names the field path. */
#define ROILENS_ERROR_CONFIG (-3)
/** Call not allowed now (e.g. submit after flush). */
#define ROILENS_ERROR_STATE (-4)
/** The backend could not be started or reached. */
#define ROILENS_ERROR_BACKEND (-5)
/** Anything else (a bug or resource exhaustion); last_error has the details. */
#define ROILENS_ERROR_INTERNAL (-6)

/** Opaque session: one pipeline (and, for endpoint "local", one embedded backend). */
typedef struct roilens_handle roilens_handle;

/** A finished frame returned by take(). Filled by the plugin; the caller reads it and hands it
 *  back with frame_release(). Layout frozen for ABI 1. */
typedef struct roilens_frame_out {
  int64_t frame_index; /**< as given to submit */
  double timestamp_s;  /**< as given to submit */
  int32_t width;       /**< annotated frame, pixels */
  int32_t height;
  size_t stride;            /**< bytes from one row of `pixels` to the next (>= width * 3) */
  const uint8_t* pixels;    /**< annotated frame, BGR, 8 bits per channel; owned by the plugin */
  const char* results_json; /**< NUL-terminated JSON array: one results.jsonl object per ROI */
  size_t results_json_size; /**< strlen(results_json) */
  void* internal;           /**< the plugin's; NULL after frame_release */
} roilens_frame_out;

/** Filled by roilens_plugin_init_v1 when it returns NULL and `reserved` points to one. Part of
 *  the init_v1 contract itself, so it stays the same for every ABI version. */
typedef struct roilens_init_error {
  int32_t plugin_abi_version; /**< what this library implements */
  int32_t plugin_api_version;
  char message[256]; /**< e.g. "roilens plugin ABI 1, caller asked for ABI 2" */
} roilens_init_error;

/** One ROI's result on a taken frame, filled by roi_result() (API 2): the fields of its
 *  results.jsonl object without JSON. Set `size` to sizeof(roilens_roi_result) before the call;
 *  the plugin fills what fits in `size` bytes, so members appended in a later API leave older
 *  callers working. Strings are NUL-terminated, never NULL ("" when absent), owned by the frame
 *  and valid until frame_release(). */
typedef struct roilens_roi_result {
  size_t size;                /**< set by the caller: sizeof(roilens_roi_result) */
  int64_t frame_index;        /**< as given to submit */
  const char* roi;            /**< ROI name from the config */
  const char* task;           /**< read_gauge | count | zoom | annotate | ask */
  const char* status;         /**< ok | cached | skipped | uncertain | error */
  int32_t rect[4];            /**< x, y, width, height of the ROI in the submitted frame, pixels */
  int32_t has_value;          /**< 1 when `value` holds a reading */
  double value;               /**< read_gauge: the reading, in `unit` */
  const char* unit;           /**< "" when none */
  int32_t has_count;          /**< 1 when `count` holds a count */
  int64_t count;              /**< count: how many objects */
  int32_t has_confidence;     /**< 1 when `confidence` is set */
  double confidence;          /**< 0..1 as the model reported it */
  const char* alarm;          /**< "" | "low" | "high": the alarm threshold `value` crossed */
  const char* error;          /**< one line when status is "error", else "" */
  const char* text;           /**< free-text answer, "" when none */
  int32_t attempts;           /**< code executions in the interaction */
  double latency_ms;          /**< model call time, milliseconds */
  const char* interaction_id; /**< "" when none */
  int32_t object_count;       /**< count: objects with boxes, read with roi_object() */
} roilens_roi_result;

/** One object a count found (API 2), filled by roi_object(); `size` as for roilens_roi_result. */
typedef struct roilens_roi_object {
  size_t size;                /**< set by the caller: sizeof(roilens_roi_object) */
  double x, y, width, height; /**< box in the submitted frame, pixels */
  int32_t has_score;          /**< 1 when the model gave a score */
  double score;               /**< 0..1 */
} roilens_roi_object;

/** The function table. Append-only within one ABI version; `size` is sizeof of the table the
 *  library was built with, so a caller checks `size` before using a member newer than it knows. */
typedef struct roilens_plugin_api {
  int32_t abi_version;         /**< ROILENS_PLUGIN_ABI_VERSION of the library */
  int32_t api_version;         /**< ROILENS_PLUGIN_API_VERSION of the library */
  size_t size;                 /**< sizeof(roilens_plugin_api) in the library */
  const char* library_version; /**< roilens release, e.g. "0.1.0" */

  /** Creates a session from a station config (the same JSON as `roilens run --config`, comments
   *  allowed). Endpoint "local" starts an embedded local backend owned by this session; otherwise
   *  the config's endpoint and api_key_env are used. `options_json` may be NULL or a JSON object
   *  of plugin-only options, none required:
   *    {"coder": "cv" | "echo",   local backend's coder (default "cv")
   *     "latency_ms": 0,          local backend: added to every model turn
   *     "queue_frames": 8}        finished frames held for take() before the pipeline waits
   *  On success *out is a new handle; on failure *out is NULL and last_error says why. */
  roilens_result (*create)(const char* config_json, const char* options_json, roilens_handle** out);

  /** Copies one BGR frame (8 bits per channel) into the pipeline. `bgr` must hold
   *  (height - 1) * stride + width * 3 bytes; stride >= width * 3 (ROI views of a bigger image
   *  are fine). frame_index must increase strictly from call to call. May block while the
   *  pipeline has its maximum of frames in flight (batch mode; untaken finished frames count once
   *  queue_frames are waiting), so a single-threaded caller takes between submits (take with
   *  timeout 0, as the sample apps do); never blocks in live mode. */
  roilens_result (*submit)(roilens_handle* handle, const uint8_t* bgr, int32_t width,
                           int32_t height, size_t stride, int64_t frame_index, double timestamp_s);

  /** Takes the next finished frame, in submission order. timeout_ms == 0: never blocks (returns
   *  ROILENS_NOT_READY when none is ready); > 0: waits at most that long; < 0: waits until a
   *  frame is ready or the end. Returns ROILENS_END after flush once every frame was taken.
   *  On ROILENS_OK the caller owns *out until frame_release(out). */
  roilens_result (*take)(roilens_handle* handle, int32_t timeout_ms, roilens_frame_out* out);

  /** Frees what take() put in *out and clears it. NULL, or an already released frame, is a
   *  no-op. Any thread; a frame stays valid after its session is destroyed until released. */
  void (*frame_release)(roilens_frame_out* out);

  /** No more frames: blocks until every submitted frame is finished (they are still to be
   *  taken). submit afterwards returns ROILENS_ERROR_STATE. */
  roilens_result (*flush)(roilens_handle* handle);

  /** Ends the session: waits for frames in flight to finish (and drops those not taken), stops
   *  the embedded backend, and invalidates the handle. Frames already taken stay valid. */
  roilens_result (*destroy)(roilens_handle* handle);

  /** Text of the most recent failure of a call made by the calling thread (thread-local, like
   *  errno); "" when the last call succeeded. Every table function except last_error and
   *  frame_release resets it on entry. Valid until the thread's next call into the plugin. */
  const char* (*last_error)(void);

  /* ---- API 2: typed results. Check api_version >= 2 (or size) before calling these. ----
   * `frame` is a frame from take() not yet released. Any thread, but not concurrently with
   * frame_release of the same frame. They never change last_error unless they fail. */

  /** *out_count = how many ROI results `frame` has (one per ROI, config order). */
  roilens_result (*roi_count)(const roilens_frame_out* frame, int32_t* out_count);

  /** Fills *out with ROI result `roi_index` (0 .. count-1) of `frame`; out->size must be set. */
  roilens_result (*roi_result)(const roilens_frame_out* frame, int32_t roi_index,
                               roilens_roi_result* out);

  /** Fills *out with object `object_index` (0 .. object_count-1) of ROI result `roi_index`. */
  roilens_result (*roi_object)(const roilens_frame_out* frame, int32_t roi_index,
                               int32_t object_index, roilens_roi_object* out);
} roilens_plugin_api;

/** The single exported entry point. Returns the table for `abi_version` ==
 *  ROILENS_PLUGIN_ABI_VERSION and any api_version <= ROILENS_PLUGIN_API_VERSION; otherwise NULL,
 *  and when `reserved` is non-NULL it must point to a roilens_init_error, which is filled with a
 *  message naming both versions. The table is static: valid until the library is unloaded. */
typedef const roilens_plugin_api* (*roilens_plugin_init_fn)(int abi_version, int api_version,
                                                            void* reserved);

#if defined(ROILENS_PLUGIN_BUILDING)
#define ROILENS_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define ROILENS_PLUGIN_EXPORT
#endif

ROILENS_PLUGIN_EXPORT const roilens_plugin_api* roilens_plugin_init_v1(int abi_version,
                                                                       int api_version,
                                                                       void* reserved);

#ifdef __cplusplus
}
#endif

#endif /* ROILENS_PLUGIN_ROILENS_PLUGIN_H_ */
