#!/usr/bin/env bash
# One-command setup on a fresh Debian 12 machine (as root, or with sudo): installs the missing
# Debian packages, the pinned npm packages of the conformance suite, then configures and builds.
# Usage: scripts/setup.sh [BUILD_DIR] [extra cmake args...]   (BUILD_DIR defaults to build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shift || true

packages=(
  build-essential cmake pkg-config ninja-build git clang-format
  libopencv-dev libcurl4-openssl-dev nlohmann-json3-dev libtbb-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev libcli11-dev
  libmosquitto-dev mosquitto
  libavcodec-dev libavformat-dev libswscale-dev
  bubblewrap libseccomp-dev ffmpeg python3 python3-dev pybind11-dev python3-pybind11 python3-pytest
  python3-numpy python3-opencv python3-matplotlib python3-pil python3-scipy python3-yaml
  nodejs npm
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs may come from elsewhere on some images; only ask apt when node/npm are really absent.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs/}"); missing=("${missing[@]/npm/}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# ROILENS_SKIP_NPM=1 (the container build): the npm packages only serve the conformance tests.
if [ -z "${ROILENS_SKIP_NPM:-}" ] && [ -f "$root/tests/conformance/package-lock.json" ]; then
  (cd "$root/tests/conformance" && { [ -d node_modules/@google/genai ] || npm ci --no-audit --no-fund --loglevel=error; })
fi

gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
# Extra cmake args (e.g. scripts/test.sh's -DROILENS_WERROR=ON in CI) also reach an existing build.
if [ ! -f "$build/CMakeCache.txt" ] || [ $# -gt 0 ]; then
  cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
fi
cmake --build "$build" -j"$(nproc)"
