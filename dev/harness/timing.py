#!/usr/bin/python3
"""timing.py A_PY_DIR B_PY_DIR SETDIR... : times two versions of the count program on the same
images, in one process each and in turn (A, B, A, B, ... per image, best of R runs each, env R=3),
so that both see the same machine load. Prints per image the seconds of each and B's count where
it differs from A's, then the totals and B's time as a share of A's. Sets as in count_harness.py
(WIRE=1 re-encodes as the pipeline sends crops); ONLY=substring limits the images."""
import os, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))


def worker(src):
    """One process that loads `src`'s program and counts the images it is sent (one per line)."""
    code = ("import sys, os, time, json\n"
            "sys.path.insert(0, %r)\n"
            "os.environ['SRC'] = %r\n"
            "import count_harness as h\n"
            "h.SRC = %r\n"
            "for line in sys.stdin:\n"
            "    p, r = json.loads(line)\n"
            "    t = time.perf_counter(); res = h.run_one((p, r))\n"
            "    print(json.dumps([time.perf_counter() - t, res['count']]), flush=True)\n"
            % (HERE, src, src))
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def ask(proc, item):
    import json
    proc.stdin.write(json.dumps(item) + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def main():
    sys.path.insert(0, HERE)
    import count_harness
    a, b = worker(sys.argv[1]), worker(sys.argv[2])
    runs = int(os.environ.get("R", "3"))
    total = [0.0, 0.0]
    for d in sys.argv[3:]:
        for name, path, rect, _ in count_harness.items_of(d):
            best = [float("inf"), float("inf")]
            counts = [None, None]
            for _ in range(runs):
                for i, proc in enumerate((a, b)):
                    t, c = ask(proc, [path, rect])
                    best[i] = min(best[i], t)
                    counts[i] = c
            total[0] += best[0]
            total[1] += best[1]
            diff = "" if counts[0] == counts[1] else "  counts %d -> %d" % tuple(counts)
            print("%-12s %-10s A %6.2f s  B %6.2f s  B/A %.2f%s" %
                  (os.path.basename(d.rstrip("/")), name, best[0], best[1],
                   best[1] / max(best[0], 1e-9), diff), flush=True)
    print("total: A %.1f s, B %.1f s, B/A %.2f" % (total[0], total[1], total[1] / max(total[0], 1e-9)))
    for proc in (a, b):
        proc.stdin.close()
        proc.wait()


if __name__ == "__main__":
    main()
