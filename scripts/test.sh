#!/usr/bin/env bash
# README's test command: sets up (packages, npm lock, build) and runs every test suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
# CI (CI=true, as .ci/run sets it) builds our code with warnings as errors, and with line tables
# only (-g1) instead of full debug info: backtraces keep file:line, the build takes a quarter less.
cmake_args=()
[ "${CI:-}" = true ] && cmake_args+=(-DROILENS_WERROR=ON "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG")
"$root/scripts/setup.sh" "$build" "${cmake_args[@]}"
cd "$build"
ctest --output-on-failure -j"$(nproc)" "$@"
