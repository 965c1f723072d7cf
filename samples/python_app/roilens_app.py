#!/usr/bin/env python3
"""A Python OpenCV app that adds roilens through the plugin's C ABI with ctypes.

    roilens_app.py VIDEO CONFIG [--plugin PATH] [--out results.jsonl] [--coder cv|echo]
                   [--frames N]

Frames come from cv2.VideoCapture as numpy arrays and go to the plugin's submit(); finished frames
(annotated image + one results.jsonl object per ROI) come back in order from take(). Needs only
python3, numpy and cv2: the ctypes definitions below mirror plugin/include/roilens_plugin/
roilens_plugin.h (ABI 1).
"""
import argparse
import ctypes
import json
import os
import sys

import cv2
import numpy as np

ABI_VERSION = 1
API_VERSION = 1

OK, NOT_READY, END = 0, 1, 2
ERROR_NAMES = {-1: "INVALID_ARGUMENT", -2: "INVALID_HANDLE", -3: "CONFIG", -4: "STATE",
               -5: "BACKEND", -6: "INTERNAL"}


class FrameOut(ctypes.Structure):
    _fields_ = [("frame_index", ctypes.c_int64),
                ("timestamp_s", ctypes.c_double),
                ("width", ctypes.c_int32),
                ("height", ctypes.c_int32),
                ("stride", ctypes.c_size_t),
                ("pixels", ctypes.POINTER(ctypes.c_uint8)),
                ("results_json", ctypes.c_char_p),
                ("results_json_size", ctypes.c_size_t),
                ("internal", ctypes.c_void_p)]


class InitError(ctypes.Structure):
    _fields_ = [("plugin_abi_version", ctypes.c_int32),
                ("plugin_api_version", ctypes.c_int32),
                ("message", ctypes.c_char * 256)]


Handle = ctypes.c_void_p
Result = ctypes.c_int32


class Api(ctypes.Structure):
    _fields_ = [("abi_version", ctypes.c_int32),
                ("api_version", ctypes.c_int32),
                ("size", ctypes.c_size_t),
                ("library_version", ctypes.c_char_p),
                ("create", ctypes.CFUNCTYPE(Result, ctypes.c_char_p, ctypes.c_char_p,
                                            ctypes.POINTER(Handle))),
                ("submit", ctypes.CFUNCTYPE(Result, Handle, ctypes.c_void_p, ctypes.c_int32,
                                            ctypes.c_int32, ctypes.c_size_t, ctypes.c_int64,
                                            ctypes.c_double)),
                ("take", ctypes.CFUNCTYPE(Result, Handle, ctypes.c_int32,
                                          ctypes.POINTER(FrameOut))),
                ("frame_release", ctypes.CFUNCTYPE(None, ctypes.POINTER(FrameOut))),
                ("flush", ctypes.CFUNCTYPE(Result, Handle)),
                ("destroy", ctypes.CFUNCTYPE(Result, Handle)),
                ("last_error", ctypes.CFUNCTYPE(ctypes.c_char_p))]


class PluginError(RuntimeError):
    def __init__(self, code, message):
        super().__init__(f"{message} ({ERROR_NAMES.get(code, code)})")
        self.code = code


class Plugin:
    """The loaded library and its function table (checked against ABI/API 1)."""

    def __init__(self, path=None):
        path = path or os.environ.get("ROILENS_PLUGIN_PATH") or "libroilens_plugin.so.1"
        self.path = path
        self._lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
        init = self._lib.roilens_plugin_init_v1
        init.restype = ctypes.POINTER(Api)
        init.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
        error = InitError()
        table = init(ABI_VERSION, API_VERSION, ctypes.byref(error))
        if not table:
            raise PluginError(-6, f"{path} refused: {error.message.decode()}")
        self.api = table.contents
        if self.api.size < ctypes.sizeof(Api):
            raise PluginError(-6, f"{path}: function table too small ({self.api.size} bytes)")

    def check(self, code, what):
        if code < 0:
            raise PluginError(code, f"{what}: {self.api.last_error().decode(errors='replace')}")
        return code


class Session:
    """One pipeline inside the plugin; use as a context manager (destroy on exit)."""

    def __init__(self, plugin, config_text, options=None):
        self._p = plugin
        self._api = plugin.api
        self._handle = Handle()
        options_text = json.dumps(options).encode() if options else None
        plugin.check(self._api.create(config_text.encode(), options_text,
                                      ctypes.byref(self._handle)), "create")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._handle:
            self._api.destroy(self._handle)
            self._handle = Handle()

    def submit(self, bgr, index, time_s):
        # Any row stride works (slices of a bigger image too); pixels within a row must be packed.
        if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
            raise PluginError(-1, f"frame {index}: need an HxWx3 uint8 BGR array")
        if bgr.strides[1] != 3 or bgr.strides[2] != 1:
            bgr = np.ascontiguousarray(bgr)
        height, width = bgr.shape[:2]
        self._p.check(self._api.submit(self._handle, bgr.ctypes.data, width, height,
                                       bgr.strides[0], index, time_s), f"submit frame {index}")

    def take(self, timeout_ms=0):
        """(index, time_s, annotated ndarray, results list), or None (not ready / end)."""
        out = FrameOut()
        code = self._p.check(self._api.take(self._handle, timeout_ms, ctypes.byref(out)), "take")
        if code in (NOT_READY, END):
            self.ended = code == END
            return None
        try:
            annotated = None
            if out.pixels and out.width > 0 and out.height > 0:
                rows = np.ctypeslib.as_array(out.pixels, shape=(out.height * out.stride,))
                annotated = (rows.reshape(out.height, out.stride)[:, :out.width * 3]
                             .reshape(out.height, out.width, 3).copy())
            results = json.loads(out.results_json[:out.results_json_size].decode())
            return out.frame_index, out.timestamp_s, annotated, results
        finally:
            self._api.frame_release(ctypes.byref(out))

    def flush(self):
        self._p.check(self._api.flush(self._handle), "flush")


def describe(result):
    if isinstance(result.get("value"), (int, float)):
        return f"{result['value']:g} {result.get('unit', '')}"
    if isinstance(result.get("count"), int):
        return str(result["count"])
    if isinstance(result.get("text"), str):
        return result["text"]
    if isinstance(result.get("error"), str):
        return "error: " + result["error"]
    return ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("config")
    parser.add_argument("--plugin", help="plugin library (default $ROILENS_PLUGIN_PATH, then "
                        "libroilens_plugin.so.1 on the library path)")
    parser.add_argument("--out", help="also write one results.jsonl line per frame and ROI")
    parser.add_argument("--coder", choices=["cv", "echo"], help="local backend coder")
    parser.add_argument("--frames", type=int, default=-1, help="stop after N frames")
    args = parser.parse_args()

    try:
        plugin = Plugin(args.plugin)
        with open(args.config, encoding="utf-8") as f:
            config_text = f.read()
        capture = cv2.VideoCapture(args.video)
        if not capture.isOpened():
            print(f"roilens_app: cannot open video {args.video}", file=sys.stderr)
            return 4
        fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
        out = open(args.out, "w", encoding="utf-8") if args.out else None

        def emit(taken):
            index, time_s, _annotated, results = taken
            for r in results:
                print(f"frame {index}  t={time_s:.2f}s  {r.get('roi', '?')}: {describe(r)} "
                      f"[{r.get('status', '?')}]")
                if out:
                    out.write(json.dumps(r) + "\n")

        options = {"coder": args.coder} if args.coder else None
        with Session(plugin, config_text, options) as session:
            index = 0
            while args.frames < 0 or index < args.frames:
                ok, frame = capture.read()
                if not ok:
                    break
                session.submit(frame, index, index / fps)
                index += 1
                while (taken := session.take(0)) is not None:  # never waits for the model
                    emit(taken)
            session.flush()
            while (taken := session.take(-1)) is not None:
                emit(taken)
        if out:
            out.close()
        print(f"roilens_app: {index} frames through {plugin.path} "
              f"(plugin {plugin.api.library_version.decode()})", file=sys.stderr)
        return 0
    except PluginError as e:
        print(f"roilens_app: {e}", file=sys.stderr)
        return {-3: 3, -5: 5}.get(e.code, 1)
    except OSError as e:
        print(f"roilens_app: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
