#!/usr/bin/python3
"""families.py OUT [SEEDS]: draws scene families that the generated trays (dump_trays,
samples.cc) do not hold, six scenes each (SEEDS, default 6), as a camera sees them (blur 1.2 px,
sensor noise), with a truth.json in dump_trays' format for count_harness.py (names FAMILY_N.png).

Each family is one condition a counting rule may not have been tuned for; a confident wrong
count on any of them is a finding (issue 10, stop of 2026-12-07: vignette and glare):
  wood        light discs on wood grain          capsgrad   two-tone capsules on a light ramp
  vignette    dark discs, the whole view darkened to 0.2 at the corners (after drawing)
  lowgrey     grey discs on grey, noise 6        shadow     discs casting soft shadows
  packed      hex-packed touching discs          pillsdark  two-tone capsules on dark grey
  smallmany   25-45 small dark discs             denim      white tablets on a denim texture
  samehue     green discs on a green tray        screws     dark screws (head and shaft)
  glarespots  light discs on dark, 3 soft spots   cutborder  discs cut by the border (in when
  ramp        a 0.35-1.25 light ramp                         over half shows; 0.3-0.7 not drawn)
Deterministic: the same OUT for the same SEEDS on every run."""
import json, os, sys
import cv2
import numpy as np

H, W = 420, 600
# Each family's look: surface and part colour (BGR), part radius, and the least distance between
# part centres and from them to the border, in px (packed and screws place their own).
SPREAD = (2.6 * 22 * 1.15, 2.6 * 22)
LOOK = {"wood": ((90, 140, 190), (200, 200, 205), 22) + SPREAD,
        "capsgrad": ((150, 150, 150), (40, 60, 200), 22) + SPREAD,
        "vignette": ((170, 175, 180), (60, 60, 65), 22) + SPREAD,
        "lowgrey": ((128, 128, 128), (150, 150, 150), 22) + SPREAD,
        "shadow": ((200, 205, 210), (120, 140, 150), 22) + SPREAD,
        "packed": ((60, 120, 60), (210, 215, 220), 20, None, None),
        "pillsdark": ((45, 42, 40), (40, 60, 200), 22) + SPREAD,
        "smallmany": ((230, 230, 230), (50, 50, 60), 10, 30, 30),
        "denim": ((140, 90, 50), (225, 225, 230), 18, 2.4 * 18, 36),
        "samehue": ((60, 130, 60), (40, 170, 60), 22, 2.4 * 22, 44),
        "screws": ((215, 215, 210), (70, 70, 75), None, 70, 40),
        "glarespots": ((50, 45, 45), (200, 200, 200), 16, 2.4 * 16, 32),
        "cutborder": ((180, 185, 190), (50, 50, 140), 24, 2.4 * 24, 0.3 * 24),
        "ramp": ((180, 180, 185), (80, 110, 200), 20, 2.4 * 20, 40)}
FAMILIES = list(LOOK)


def seen(img, rng, noise):
    s = cv2.GaussianBlur(img, (0, 0), 1.2) + rng.normal(0, noise, img.shape).astype(np.float32)
    return np.clip(s, 0, 255).astype(np.uint8)


def places(rng, n, gap, margin):
    pts = []
    for _ in range(5000):
        if len(pts) >= n:
            break
        p = (rng.uniform(margin, W - margin), rng.uniform(margin, H - margin))
        if all(np.hypot(p[0] - q[0], p[1] - q[1]) >= gap for q in pts):
            pts.append(p)
    return pts


def disc(img, c, r, col):
    cv2.circle(img, (int(c[0] * 16), int(c[1] * 16)), int(r * 16), col, -1, cv2.LINE_AA, 4)


def stroke(p1, p2, width, head=0):
    """The mask of a stroke `width` px wide from p1 to p2 (and a round head at p1), its box."""
    m = np.zeros((H, W), np.uint8)
    cv2.line(m, (int(p1[0] * 16), int(p1[1] * 16)), (int(p2[0] * 16), int(p2[1] * 16)), 255,
             int(width), cv2.LINE_AA, 4)
    if head:
        cv2.circle(m, (int(p1[0] * 16), int(p1[1] * 16)), head * 16, 255, -1, cv2.LINE_AA, 4)
    return m, list(cv2.boundingRect(m))


def scene(fam, seed):
    rng = np.random.default_rng(seed * 131 + sum(map(ord, fam)))
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    n = int(rng.integers(6, 18))
    surface, colour, r, gap, margin = LOOK[fam]
    img = np.ones((H, W, 3), np.float32) * np.array(surface, np.float32)
    if fam == "wood":
        grain = (np.sin(xx / 7.0 + 3 * np.sin(yy / 60.0)) * 0.5 + 0.5) * 18 + rng.normal(0, 4, (H, W))
        img -= grain[..., None] * np.array([0.6, 0.8, 1.0], np.float32)
    elif fam == "capsgrad":
        img += (xx / W * 70)[..., None]
    elif fam == "denim":
        tex = (np.sin((xx + yy) / 2.0) * 0.5 + 0.5) * 25 + rng.normal(0, 10, (H, W))
        img += tex[..., None] * np.array([0.8, 0.6, 0.4], np.float32)
    boxes = []
    if fam == "smallmany":
        n = int(rng.integers(25, 45))
    if fam == "packed":
        cx0, cy0 = rng.uniform(150, 250), rng.uniform(120, 200)
        rows, cols = int(rng.integers(2, 4)), int(rng.integers(3, 5))
        for i in range(rows):
            for j in range(cols):
                c = (cx0 + j * 2 * r + (i % 2) * r, cy0 + i * r * np.sqrt(3))
                disc(img, c, r, colour)
                boxes.append([int(c[0] - r), int(c[1] - r), 2 * r, 2 * r])
        for c in places(rng, 5, 60, 60):
            if any(abs(c[0] - b[0] - r) < 3 * r and abs(c[1] - b[1] - r) < 3 * r for b in boxes):
                continue
            disc(img, c, r, colour)
            boxes.append([int(c[0] - r), int(c[1] - r), 2 * r, 2 * r])
    elif fam == "screws":
        for c in places(rng, n, gap, margin):
            a = rng.uniform(0, np.pi)
            d = np.array([np.cos(a), np.sin(a)])
            m, box = stroke(np.array(c) - d * 28, np.array(c) + d * 22, 7, head=9)
            mm = m.astype(np.float32)[..., None] / 255
            img = img * (1 - mm) + np.array(colour, np.float32) * mm
            boxes.append(box)
    elif fam in ("capsgrad", "pillsdark"):
        for c in places(rng, n, gap, margin):
            a = rng.uniform(0, np.pi)
            d = np.array([np.cos(a), np.sin(a)]) * 0.7 * r
            m, box = stroke(np.array(c) + d, np.array(c) - d, 1.2 * r)
            mm = m.astype(np.float32)[..., None] / 255
            half = ((xx - c[0]) * np.cos(a) + (yy - c[1]) * np.sin(a)) > 0
            two = np.where(half[..., None], np.array(colour, np.float32),
                           np.array([200, 200, 60], np.float32))
            img = img * (1 - mm) + two * mm
            boxes.append(box)
    else:
        for c in places(rng, n, gap, margin):
            x0, y0, x1, y1 = int(c[0] - r), int(c[1] - r), int(c[0] + r), int(c[1] + r)
            shows = (min(x1, W) - max(x0, 0)) * (min(y1, H) - max(y0, 0)) / float((2 * r) ** 2)
            if 0.3 < shows < 0.7:
                continue  # too close to the border rule's decision to say
            if fam == "shadow":
                sh = np.zeros((H, W), np.float32)
                cv2.circle(sh, (int(c[0] + 8), int(c[1] + 6)), r, 1.0, -1)
                img = img * (1 - 0.45 * cv2.GaussianBlur(sh, (0, 0), 4)[..., None])
            disc(img, c, r, colour)
            if shows >= 0.5:
                boxes.append([max(x0, 0), max(y0, 0), min(x1, W) - max(x0, 0), min(y1, H) - max(y0, 0)])
    if fam == "glarespots":
        for _ in range(3):
            c, sg = (rng.uniform(50, W - 50), rng.uniform(50, H - 50)), rng.uniform(12, 25)
            img += (150 * np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (2 * sg * sg)))[..., None]
    if fam == "vignette":  # the lens darkens the parts as much as the tray
        v = np.hypot((xx - W / 2) / (W / 2), (yy - H / 2) / (H / 2))
        img *= np.clip(1 - 0.55 * v ** 2, 0.2, 1)[..., None]
    if fam == "ramp":
        img *= (0.35 + 0.9 * (xx / W))[..., None]
    return seen(img, rng, 6 if fam == "lowgrey" else 3), boxes


def main():
    out = sys.argv[1]
    seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    os.makedirs(out, exist_ok=True)
    truth = {}
    for fam in FAMILIES:
        for seed in range(1, seeds + 1):
            img, boxes = scene(fam, seed)
            name = "%s_%d.png" % (fam, seed)
            cv2.imwrite(os.path.join(out, name), img)
            truth[name] = {"count": len(boxes), "boxes": boxes}
    json.dump(truth, open(os.path.join(out, "truth.json"), "w"))
    print(len(truth), "scenes in", out)


if __name__ == "__main__":
    main()
