"""Shared fixtures: the sample station written by the roilens CLI (`roilens samples`)."""
import json
import os
import pathlib
import shutil
import subprocess

import cv2
import pytest

FRAMES = 12  # covers every step of the station's needles and tray (at 1/4, 1/2, 3/4)


@pytest.fixture(scope="session")
def station(tmp_path_factory):
    cli = os.environ.get("ROILENS_CLI") or shutil.which("roilens")
    assert cli, "set ROILENS_CLI to the built roilens CLI (ctest does)"
    root = tmp_path_factory.mktemp("station")
    subprocess.run([cli, "samples", str(root), "--frames", str(FRAMES)], check=True,
                   stdout=subprocess.DEVNULL)
    config = json.loads((root / "station.json").read_text())
    truth = {}
    for line in (root / "ground_truth.jsonl").read_text().splitlines():
        t = json.loads(line)
        truth[(t["frame"], t["roi"])] = t
    capture = cv2.VideoCapture(str(root / "station.mp4"))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == FRAMES
    return {"dir": root, "config_path": root / "station.json", "config": config,
            "truth": truth, "frames": frames}


def sandbox_unavailable(results):
    """True when every result failed because the code sandbox cannot start on this machine."""
    return bool(results) and all(
        r["status"] == "error" and ("sandbox" in r.get("error", "") or "bwrap" in r.get("error", ""))
        for r in results)
