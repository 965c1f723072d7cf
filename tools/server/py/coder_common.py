# --- roilens coder: shared helpers (input discovery, answer line, drawing) ---
import glob
import json
import math
import os
import sys

import numpy as np
import cv2


def load_input():
    """Returns (BGR image, file name) of input_0.* in the working directory."""
    names = sorted(glob.glob("input_0.*"))
    if not names and STRATEGY.get("any_input", False):
        names = sorted(glob.glob("input_*.*")) + sorted(
            n for n in os.listdir(".") if n.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".webp")))
    if not names:
        raise FileNotFoundError("no input image (expected input_0.png or input_0.jpg in %s)" % os.getcwd())
    img = cv2.imread(names[0], cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("could not decode %s" % names[0])
    side = STRATEGY.get("max_side", 0)
    if side and max(img.shape[:2]) > side:
        f = side / float(max(img.shape[:2]))
        img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    return img, names[0]


def emit(answer):
    """Prints the answer as the last stdout line (one JSON object)."""
    sys.stdout.flush()
    print(json.dumps(answer, separators=(", ", ": ")))
    sys.stdout.flush()


def save(img, name="annotated.png"):
    if not cv2.imwrite(name, img):
        raise IOError("could not write %s" % name)


def put_label(img, text, org, scale=None, colour=(0, 0, 255)):
    # Hershey fonts draw ASCII only; the degree sign would come out as "??".
    text = text.replace("\u00b0", "deg").encode("ascii", "replace").decode("ascii")
    h, w = img.shape[:2]
    if scale is None:
        scale = max(0.4, min(h, w) / 400.0)
    thick = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x = int(max(0, min(org[0], w - tw - 2)))
    y = int(max(th + 2, min(org[1], h - base - 2)))
    cv2.rectangle(img, (x - 2, y - th - 2), (x + tw + 2, y + base + 2), (255, 255, 255), -1)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)


def clamp01(x):
    return float(max(0.0, min(1.0, x)))
