"""roilens for Python: the C++ pipeline (and its embedded local backend) bound with pybind11.

    import roilens
    with roilens.Pipeline("station.json", coder="cv") as p:   # or a config dict
        p.submit(frame, index=0, time_s=0.0)                   # HxWx3 uint8 BGR numpy array
        for f in p.flush():                                     # also take_ready(), take()
            print(f["index"], [r["value"] for r in f["results"]], f["annotated"].shape)

Pipeline(config, *, coder="cv", latency_ms=0, endpoint="", api_key=None)
    config: a dict (the station JSON as Python values) or a path to a station config file.
    coder / latency_ms: the embedded backend's coder ("cv" | "echo") and added think time;
    they apply when the endpoint is "local" (the default), which starts the backend in-process.
    endpoint overrides backend.endpoint; api_key overrides the key read from api_key_env.
    Errors: ConfigError (a ValueError naming the JSON path of the bad field), BackendError
    (a RuntimeError), CancelledError (a RuntimeError, submit after cancel()).

Frames come back as dicts {"index", "time_s", "source", "results", "annotated"}: `results` holds
one results.jsonl object per ROI (config order) as Python values; `annotated` is a writeable
HxWx3 uint8 array over the C++ frame's pixels (no copy; its .base keeps them alive).
submit() copies the input frame (the caller may reuse its array). Blocking calls (submit in batch
mode, take, flush, close) release the GIL. Thread-safety: submit from one thread, take /
take_ready from one thread; flush, cancel and summary from any.
"""
from ._roilens import BackendError, CancelledError, ConfigError, Pipeline

__all__ = ["Pipeline", "ConfigError", "BackendError", "CancelledError"]
