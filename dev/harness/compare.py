#!/usr/bin/python3
"""compare.py A.json B.json: the images whose count, or whose side of 0.8, changed between two
count_harness.py runs, marked better / worse / same against the truth."""
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
for k in sorted(set(a) & set(b)):
    x, y = a[k], b[k]
    if x["count"] != y["count"] or abs(x["conf"] - y["conf"]) > 0.05 and (x["conf"] >= 0.8) != (y["conf"] >= 0.8):
        t = x["truth"]
        tag = "better" if abs(y["count"] - t) < abs(x["count"] - t) else ("worse" if abs(y["count"] - t) > abs(x["count"] - t) else "same")
        print("%-22s truth %3d: %3d (%.2f) -> %3d (%.2f) %s" % (k, t, x["count"], x["conf"], y["count"], y["conf"], tag))
