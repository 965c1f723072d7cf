#!/usr/bin/python3
"""stages.py SRC_PY_DIR IMAGE [x,y,w,h] -> stages.png (env OUT to name it): one read of the count
program drawn stage by stage: the image, its contrast to the local background, the foreground as
segmented, after soft blobs are dropped, the pieces the clusters are split into, and the boxes
counted. env S=scale; SEGS=y0,y1 prints the pieces whose top lies in that band; FILT=1 prints the
pieces the thin / filled-hole / soft-rim rules drop."""
import sys, os
import numpy as np, cv2
os.environ["SRC"] = sys.argv[1]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import count_harness as harness
ns = harness.build_ns(); harness.NS = ns
cap = {}
orig_seg, orig_drop, orig_split = ns["segment"], ns["drop_soft_blobs"], ns["split_clusters"]
def seg(img):
    r = orig_seg(img)
    if "seg" not in cap: cap["seg"] = r[0].copy(); cap["guess"] = r[3]; cap["thr"] = r[2]; cap["dist"] = r[1]
    return r
def drop(m, d, *a):
    r = orig_drop(m, d, *a)
    if "seg" in cap and "drop" not in cap: cap["drop"] = r.copy()
    return r
def split(rest, raw, dist, *more):
    r = orig_split(rest, raw, dist, *more)
    if "split" not in cap: cap["split"] = r
    return r
ns["segment"], ns["drop_soft_blobs"], ns["split_clusters"] = seg, drop, split
img = cv2.imread(sys.argv[2])
if len(sys.argv) > 3:
    x, y, w, h = [int(v) for v in sys.argv[3].split(",")]; img = img[y:y+h, x:x+w].copy()
H, W = img.shape[:2]
f = 1.0
if max(H, W) > ns["WORK_SIDE"]:
    f = ns["WORK_SIDE"] / float(max(H, W)); img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
objs, conf = ns["count_in"](img)
print("count", len(objs), "conf", round(conf, 2), "guess", cap["guess"], "thr", round(cap["thr"], 1), {k: v for k, v in ns["EVIDENCE"].items() if not isinstance(v, float) or True})
def col(m): return cv2.cvtColor((m > 0).astype(np.uint8) * 255, cv2.COLOR_GRAY2BGR)
out = img.copy()
for o in objs:
    x, y, bw, bh = o["box"]
    c = (0, 255, 0) if o["score"] >= 0.7 else (0, 165, 255) if o["score"] >= 0.5 else (0, 0, 255)
    cv2.rectangle(out, (x, y), (x + bw, y + bh), c, 1)
segs = cap["split"][0]
pieces = np.zeros_like(img)
rng = np.random.RandomState(1)
for sg in segs:
    p = sg["pts"].astype(int)
    pieces[p[:, 1], p[:, 0]] = rng.randint(60, 255, 3)
d = cap["dist"]; dv = cv2.cvtColor(np.clip(d * 255.0 / max(1, np.percentile(d, 99)), 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
tiles = [img, dv, col(cap["seg"]), col(cap["drop"]), pieces, out]
sc = float(os.environ.get("S", "1"))
tiles = [cv2.resize(t, None, fx=sc, fy=sc, interpolation=cv2.INTER_NEAREST) for t in tiles]
if W >= H:
    g = np.vstack([np.hstack(tiles[:3]), np.hstack(tiles[3:])])
else:
    g = np.hstack(tiles)
cv2.imwrite(os.environ.get("OUT", "stages.png"), g)
if os.environ.get("SEGS"):
    y0, y1 = [int(v) for v in os.environ["SEGS"].split(",")]
    for s in segs:
        x, y, bw, bh = s["box"]
        if y0 <= y <= y1:
            print("seg box", s["box"], "area", s["area"], "raw", s["raw"], "wall %.1f thick %.1f soft %.2f" % (s["wall"], s["thick"], s["soft"]))
    print("soft median", np.median([s["soft"] for s in segs]), "wall median", np.median([s["wall"] for s in segs]))
if os.environ.get("FILT"):
    edge = 2 + int(ns["STRATEGY"].get("smooth", 1.5))
    walls = [s["wall"] for s in segs]
    w1 = float(np.median(walls)); sm = float(np.median([s["soft"] for s in segs]))
    print("w1 %.1f soft_med %.2f" % (w1, sm))
    for s in segs:
        why = []
        if s["wall"] < 0.35 * w1: why.append("thin")
        if s["raw"] < 0.25 * s["area"]: why.append("hole")
        if s["soft"] > 2 * sm and s["soft"] > 4: why.append("soft %.1f" % s["soft"])
        if why: print("drop", s["box"], s["area"], why)
