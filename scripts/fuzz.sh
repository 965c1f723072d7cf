#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) into build-fuzz/ and runs each for a
# bounded time on a copy of its checked-in corpus (tests/fuzz/corpus/<target>/).
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET=60] [TARGET...]
#        scripts/fuzz.sh --configure-only   (installs clang and configures the tree, builds nothing)
# A crash leaves its input as build-fuzz/findings/<target>/crash-*; add it to the corpus with the fix.
# The tree is a whole ASan+UBSan build (FUZZ_BUILD_DIR picks another folder): CI builds its
# sanitizer test suites in the same tree, so the libraries compile once for both.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
configure_only=false
if [ "${1:-}" = --configure-only ]; then configure_only=true; shift; fi
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(station_config interaction_response create_request)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}

if ! command -v clang++ >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends clang libclang-rt-dev
fi
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
if [ ! -f "$build/CMakeCache.txt" ]; then
  # -O1 -g1: line tables are all a sanitizer report needs, and the tree compiles in about two
  # thirds of the time -O2 -g takes.
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DROILENS_FUZZ=ON -DROILENS_BUILD_BENCH=OFF \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
fi
$configure_only && exit 0
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/%/_fuzzer}"

# Leaks are reported by the corpus replay test under LeakSanitizer; here the fuzzers look for
# crashes, overflows, UB, hangs (-timeout) and runaway memory (-rss_limit_mb).
export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
total=0
for t in "${targets[@]}"; do
  work="$build/corpus/$t"; findings="$build/findings/$t"
  mkdir -p "$work" "$findings"
  cp -n "$root/tests/fuzz/corpus/$t/"* "$work/" 2>/dev/null || true
  log="$build/$t.log"
  echo "== fuzz $t for ${seconds}s"
  if ! "$build/tests/${t}_fuzzer" "$work" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -artifact_prefix="$findings/" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz $t: FOUND A CRASH (input in $findings/)"
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  echo "fuzz $t: $runs executions, no crash"
  total=$((total + runs))
done
echo "fuzz: $total executions over ${#targets[@]} targets, no crash"
