#!/usr/bin/python3
"""count_harness.py SRC_PY_DIR SETDIR... : runs the local coder's count program in-process on
every image of each set and prints exact counts, confident readings (>= 0.8), the wrong ones
among them, and reach. SRC_PY_DIR is a copy of tools/server/py (the program the coder sends to
the sandbox: coder_common.py + coder_count.py with the first attempt's strategy); copy it before
editing so that a run measures one version. A set is a folder with a truth.json, either
{name: {"count": n, ...}} (dump_trays) or dev/real's {"images": [...]} (count images only, cut to
their "rect").
env: OUTJSON=file (every result with its evidence and objects [x, y, w, h, score], for compare.py;
dump_trays sets add the true boxes), ONLY=name substring, WIRE=1 (each image re-encoded as the
pipeline sends it: over 256 x 256 px as JPEG q92, so real photos count as in `roilens accuracy`),
V=1 (every image), W=1 (the wrong ones), J=jobs (2), VIZ=dir (boxes drawn: green >= 0.7,
orange >= 0.5, red below)."""
import json, os, sys, glob, multiprocessing as mp
import numpy as np, cv2

SRC = os.environ.get("SRC") or sys.argv[1]
def build_ns():
    ns = {}
    code = "import json\nSPEC = {'task': 'count', 'object': 'parts'}\nSTRATEGY = {'smooth': 1.5, 'min_threshold': 30.0, 'split': True}\n"
    code += open(os.path.join(SRC, "coder_common.py")).read() + "\n" + open(os.path.join(SRC, "coder_count.py")).read()
    exec(compile(code, "coder_count", "exec"), ns)
    return ns
NS = None
def run_one(item):
    global NS
    if NS is None:
        NS = build_ns()
    path, rect = item
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if rect:
        x, y, w, h = rect
        img = img[y:y + h, x:x + w].copy()
    if os.environ.get("WIRE") and img.shape[0] * img.shape[1] > 256 * 256:
        # as the pipeline sends it (EncodeCropImage): crops over 256 x 256 px as JPEG q92
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    res = {}
    NS["load_input"] = lambda: (img, path)
    def fin(img_, name, f, objects, count, conf):
        res["count"] = int(count); res["conf"] = round(float(conf), 3)
        res["objects"] = [[round(v / f, 1) for v in o["box"]] + [round(float(o["score"]), 3)] + ([o["why"]] if "why" in o else []) for o in objects]
        if os.environ.get("VIZ"):
            out = img_.copy()
            for o in objects:
                x, y, bw, bh = [int(round(v / f)) for v in o["box"]]
                col = (0, 255, 0) if o["score"] >= 0.7 else (0, 165, 255) if o["score"] >= 0.5 else (0, 0, 255)
                cv2.rectangle(out, (x, y), (x + bw, y + bh), col, 1)
            cv2.imwrite(os.path.join(os.environ["VIZ"], os.path.basename(path) + ".png"), out)
    NS["finish"] = fin
    NS["EVIDENCE"].clear()
    NS["STRATEGY"].clear(); NS["STRATEGY"].update({'smooth': 1.5, 'min_threshold': 30.0, 'split': True})
    try:
        NS["count_parts"]()
    except Exception as e:
        res = {"count": -1, "conf": 0.0, "err": repr(e)}
    res["ev"] = {k: v for k, v in NS["EVIDENCE"].items() if isinstance(v, (int, float, str, list))}
    return res

def items_of(d):
    t = json.load(open(os.path.join(d, "truth.json")))
    out = []
    if "images" in t:
        for im in t["images"]:
            if im.get("task") != "count": continue
            out.append((os.path.basename(im["file"]), os.path.join(d, im["file"]), im.get("rect"), {"count": im["truth"]}))
    else:
        for k, v in t.items():
            out.append((k, os.path.join(d, k), None, v))
    only = os.environ.get("ONLY")
    if only: out = [o for o in out if only in o[0]]
    return out

def main():
    allres = {}
    pool = mp.Pool(int(os.environ.get("J", "2")))
    for d in sys.argv[2:]:
        its = items_of(d)
        res = pool.map(run_one, [(p, r) for _, p, r, _ in its], chunksize=1)
        sname = os.path.basename(d.rstrip("/"))
        ok = conf = confw = 0
        for (name, _, _, tr), r in zip(its, res):
            r["truth"] = tr["count"]; r.update({k: tr[k] for k in ("uneven", "clustered", "wider", "kind", "boxes") if k in tr})
            allres[sname + "/" + name] = r
            right = r["count"] == tr["count"]
            ok += right
            if r["conf"] >= 0.8:
                conf += 1; confw += (not right)
            if os.environ.get("V") or (not right and os.environ.get("W")):
                print("  %s %s: %d for %d conf %.2f %s" % (sname, name, r["count"], tr["count"], r["conf"], "" if right else "WRONG"))
        n = len(its)
        print("%-12s n=%4d exact %5.1f%%  conf>=0.8 %d wrong %d reach %.1f%%" % (sname, n, 100.0 * ok / max(1, n), conf, confw, 100.0 * conf / max(1, n)))
    if os.environ.get("OUTJSON"):
        json.dump(allres, open(os.environ["OUTJSON"], "w"), indent=0)
if __name__ == "__main__":
    main()
