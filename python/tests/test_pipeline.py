"""The roilens Python package against the embedded local backend."""
import copy
import gc
import threading

import numpy as np
import pytest

import roilens
from conftest import FRAMES, sandbox_unavailable

SPAN_TOLERANCE = 0.03  # of the gauge's span, as the plugin sample test


def run(pipeline, frames):
    out = []
    for i, frame in enumerate(frames):
        pipeline.submit(frame, i, i / 25.0)
        out += pipeline.take_ready()
    return out + pipeline.flush()


def test_reads_the_sample_station(station):
    # The station's own config: the change gate reuses answers while a needle stands still, so a
    # reading on every frame costs a call only where something changed.
    config = station["config"]
    with roilens.Pipeline(config, coder="cv") as p:
        frames = run(p, station["frames"])
        summary = p.summary()
    results = [r for f in frames for r in f["results"]]
    if sandbox_unavailable(results):
        pytest.skip("the code sandbox cannot start here: " + results[0]["error"])
    assert [f["index"] for f in frames] == list(range(FRAMES))
    assert summary["frames"] == FRAMES and summary["errors"] == 0
    spans = {r["name"]: r["gauge"]["max_value"] - r["gauge"]["min_value"]
             for r in config["rois"] if "gauge" in r}
    misses = []
    for f in frames:
        assert [r["roi"] for r in f["results"]] == [r["name"] for r in config["rois"]]
        for r in f["results"]:
            t = station["truth"][(f["index"], r["roi"])]
            if "value" in t:
                ok = isinstance(r.get("value"), float) and \
                    abs(r["value"] - t["value"]) <= SPAN_TOLERANCE * spans[r["roi"]]
            else:
                ok = r.get("count") == t["count"]
            if not ok:
                misses.append((t, r))
    assert not misses


def test_annotated_frame_shares_the_cpp_buffer(station):
    frame = station["frames"][0]
    with roilens.Pipeline(station["config"], coder="echo") as p:
        p.submit(frame, 0)
        (out,) = p.flush()
    annotated = out["annotated"]
    assert annotated.shape == frame.shape and annotated.dtype == np.uint8
    # No copy: the array does not own its pixels; its base is the capsule holding the cv::Mat.
    assert not annotated.flags.owndata
    assert type(annotated.base).__name__ == "PyCapsule"
    assert annotated.flags.writeable and annotated.flags.c_contiguous
    assert not np.shares_memory(annotated, frame)  # submit copied the input
    # Merge drew on it: it differs from the input inside the ROIs.
    assert np.any(annotated != frame)
    # The pixels outlive the pipeline and the dict: the capsule keeps the Mat alive.
    del out, p
    gc.collect()
    view = annotated[10:20, 10:20]
    assert view.base is not None and int(view.sum()) >= 0
    annotated[0, 0] = (1, 2, 3)
    assert tuple(annotated[0, 0]) == (1, 2, 3)


def test_config_from_a_path_and_take(station):
    frames = station["frames"][:3]
    with roilens.Pipeline(station["config_path"], coder="echo") as p:  # pathlib.Path
        for i, frame in enumerate(frames):
            p.submit(frame, 10 + i, float(i))
        first = p.take()  # blocks until frame 10 is finished
        assert first["index"] == 10 and len(first["results"]) == 3
        rest = p.flush()
        assert [f["index"] for f in rest] == [11, 12]
        assert p.take() is None  # drained
    with roilens.Pipeline(str(station["config_path"]), coder="echo") as p:  # str path
        assert p.base_url.startswith("http://127.0.0.1:")


def test_bad_config_names_the_field(station):
    config = copy.deepcopy(station["config"])
    config["rois"][0]["gauge"]["max_value"] = config["rois"][0]["gauge"]["min_value"] - 1
    with pytest.raises(roilens.ConfigError, match=r"rois\[0\]\.gauge\.max_value"):
        roilens.Pipeline(config)
    config = copy.deepcopy(station["config"])
    config["rois"][1]["zooom"] = 2
    with pytest.raises(ValueError, match=r"rois\[1\]\.zooom"):  # ConfigError is a ValueError
        roilens.Pipeline(config)
    with pytest.raises(ValueError, match="no_such_station.json"):
        roilens.Pipeline(station["dir"] / "no_such_station.json")
    with pytest.raises(TypeError):
        roilens.Pipeline(42)
    with pytest.raises(ValueError, match="coder"):
        roilens.Pipeline(station["config"], coder="gpt")


def test_bad_frames_are_refused(station):
    frame = station["frames"][0]
    with roilens.Pipeline(station["config"], coder="echo") as p:
        with pytest.raises(ValueError, match="uint8"):
            p.submit(frame.astype(np.float32), 0)
        with pytest.raises(ValueError, match="HxWx3"):
            p.submit(frame[:, :, 0], 0)
        # An ROI outside the frame: the config does not fit this input.
        with pytest.raises(roilens.ConfigError, match="boiler|coolant|tray"):
            p.submit(np.ascontiguousarray(frame[:50, :50]), 0)
        # A strided view (every other column) is accepted and copied.
        wide = np.repeat(frame, 2, axis=1)[:, ::2]
        assert not wide.flags.c_contiguous
        p.submit(wide, 1)
        with pytest.raises(ValueError, match="not greater"):
            p.submit(frame, 1)
        (out,) = p.flush()
        assert out["index"] == 1


def cancel_when(pipeline, event):
    def body():
        event.wait()
        pipeline.cancel()
    thread = threading.Thread(target=body)
    thread.start()
    return thread


def test_flush_releases_the_gil(station):
    # Each model turn takes 60 s. flush() can only return early, with the frame dropped, if the
    # other Python thread runs while flush() waits in C++ and cancels: with the GIL held it could
    # not, and flush() would return the finished frame after a minute.
    p = roilens.Pipeline(station["config"], coder="echo", latency_ms=60000)
    p.submit(station["frames"][0], 0)
    go = threading.Event()
    thread = cancel_when(p, go)
    go.set()
    frames = p.flush()
    thread.join()
    assert frames == []
    p.close()


def test_blocked_submit_releases_the_gil(station):
    config = copy.deepcopy(station["config"])
    config["backend"]["max_in_flight"] = 1
    config["pipeline"]["max_frames_in_flight"] = 1
    p = roilens.Pipeline(config, coder="echo", latency_ms=60000)
    go = threading.Event()
    thread = cancel_when(p, go)
    # Each model turn takes 60 s, one at a time: the submit after frames_in_flight_limit frames
    # blocks. Only the other Python thread's cancel() can end it early (CancelledError); with the
    # GIL held it could not run, and the submit would return after a minute, without an error.
    limit = p.frames_in_flight_limit
    assert limit + 1 <= len(station["frames"])
    with pytest.raises(roilens.CancelledError):
        for i, frame in enumerate(station["frames"][:limit + 1]):
            if i == limit:
                go.set()
            p.submit(frame, i)
    thread.join()
    assert p.flush() == []
    p.close()
