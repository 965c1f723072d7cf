#!/usr/bin/python3
"""objects.py RESULT.json PREFIX[,PREFIX...] [-v] : the counted objects against the true boxes
(sets dumped by dump_trays carry them) for the results whose name starts with a prefix. Each
counted box is matched to at most one true box (greedy by IoU, at least 0.2): a box matched to
none lies on no single part (a spurious piece, glare, or one of a part split in two), a true box
matched by none is a part missed (or merged with another). Prints, per object score, how many
boxes were matched and how many not, then the totals; -v lists the unmatched boxes."""
import collections, json, sys


def iou(a, b):
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    i = max(0, x1 - x0) * max(0, y1 - y0)
    return i / (a[2] * a[3] + b[2] * b[3] - i + 1e-9)


def match(found, truth):
    pairs = sorted(((iou(p, t), i, j) for i, p in enumerate(found) for j, t in enumerate(truth)),
                   reverse=True)
    to, taken = {}, set()
    for v, i, j in pairs:
        if v < 0.2:
            break
        if i not in to and j not in taken:
            to[i] = j
            taken.add(j)
    return to, taken


def main():
    d = json.load(open(sys.argv[1]))
    prefixes = sys.argv[2].split(",")
    by_score = collections.Counter()
    spurious, missed = [], []
    for name, r in d.items():
        if not any(name.startswith(p) for p in prefixes) or "boxes" not in r:
            continue
        to, taken = match(r["objects"], r["boxes"])
        for i, o in enumerate(r["objects"]):
            by_score[(round(o[4], 2), i in to)] += 1
            if i not in to:
                spurious.append((name, o, r["count"] - r["truth"]))
        missed += [(name, t, r["count"] - r["truth"])
                   for j, t in enumerate(r["boxes"]) if j not in taken]
    print("score  matched  unmatched")
    for s in sorted({s for s, _ in by_score}):
        print("%5.2f  %7d  %9d" % (s, by_score[(s, True)], by_score[(s, False)]))
    print("counted boxes on no part: %d; parts without a box: %d" % (len(spurious), len(missed)))
    if "-v" in sys.argv[3:]:
        for name, o, off in spurious:
            print("unmatched", name, o, "count off by %+d" % off)
        for name, t, off in missed:
            print("missed   ", name, t, "count off by %+d" % off)


if __name__ == "__main__":
    main()
