#!/usr/bin/env bash
# README's test command: sets up (packages, npm lock, build) and runs every test suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
# CI (CI=true, as .ci/run sets it) builds our code with warnings as errors.
cmake_args=()
[ "${CI:-}" = true ] && cmake_args+=(-DROILENS_WERROR=ON)
"$root/scripts/setup.sh" "$build" "${cmake_args[@]}"
cd "$build"
ctest --output-on-failure -j"$(nproc)" "$@"
