#!/usr/bin/env bash
# README's first command: sets up (packages + build), writes the sample station, and runs it
# through roilens with the embedded local backend. Sample video in; annotated video, results.jsonl,
# summary.json and report.html out.
# Usage: scripts/demo.sh [BUILD_DIR]   (outputs under ./out relative to the repository root)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}

"$root/scripts/setup.sh" "$build"
roilens="$build/tools/roilens"
[ -x "$roilens" ] || { echo "demo: $roilens was not built" >&2; exit 1; }

cd "$root"
"$roilens" samples out/samples
status=0
# --overwrite: a rerun replaces the previous demo's outputs in out/run (a non-empty --out is
# otherwise refused).
"$roilens" run out/samples/station.mp4 --config out/samples/station.json --out out/run \
  --overwrite || status=$?

echo
if [ "$status" -eq 0 ] || [ "$status" -eq 1 ]; then
  echo "demo: annotated video  $root/out/run/annotated.mp4"
  echo "demo: results          $root/out/run/results.jsonl (one line per frame and ROI)"
  echo "demo: summary          $root/out/run/summary.json"
  echo "demo: report           $root/out/run/report.html (open in a browser; self-contained)"
  echo "demo: ground truth     $root/out/samples/ground_truth.jsonl"
fi
exit "$status"
