#!/usr/bin/env bash
# Issue 24's GPU check and benchmark, on a CUDA machine with a compiler, CMake (and ninja) but
# neither network nor dior's Debian packages. Everything else comes in .devcarry/, which
# scripts/gpu_bundle.sh makes on the development machine (not committed). Builds llama.cpp with
# CUDA (one architecture) and dior against the bundle, then runs scripts/bench_gpu.py (its checks
# and numbers). Without nvcc / a GPU it builds for the CPU and runs bench_gpu.py --cpu-only: the
# script's own check, on any machine. Logs and numbers go to $OUT (default /tmp/gpu-check-out).
#   bash scripts/gpu_check.sh [CUDA architecture, default 90-real] [bench_gpu.py options...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
carry=${DIOR_CARRY:-$here/.devcarry}
out=${OUT:-/tmp/gpu-check-out}
work=${DIOR_GPU_WORK:-/tmp/dior-gpu}
arch=${1:-90-real}
shift || true
jobs=$(nproc)
mkdir -p "$out" "$work"
t0=$(date +%s)
stamp() { echo "[$(($(date +%s) - t0)) s] $*" | tee -a "$out/steps.log"; }
fail() {
  stamp "error: $*"
  exit 1
}
[ -f "$carry/deps.tar.gz" ] && [ -f "$carry/llama-src.tar.gz" ] ||
  fail "no bundle in $carry: run bash scripts/gpu_bundle.sh on the development machine first"

# The bundle's packages (configure llama.cpp before its LD_LIBRARY_PATH is set: nvcc and the
# system's tools keep their own libraries).
if [ ! -f "$work/deps/.done" ]; then
  mkdir -p "$work/deps" && tar -xzf "$carry/deps.tar.gz" -C "$work/deps" && cp "$carry/env.sh" "$work/deps/"
  touch "$work/deps/.done"
fi
if command -v nvcc >/dev/null && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  backend=cuda
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$out/steps.log"
  flags=(-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" -DGGML_NATIVE=ON)
  bench=()
else
  backend=cpu
  flags=(-DGGML_NATIVE=OFF)
  bench=(--cpu-only)
fi
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
stamp "backend $backend; $(cmake --version | head -1); $(g++ --version | head -1)"

src=$work/llama-src
prefix=$work/llama-$backend
if [ ! -f "$prefix/.dior-complete" ]; then
  rm -rf "$src" && mkdir -p "$src" && tar -xzf "$carry/llama-src.tar.gz" -C "$src"
  cmake -S "$src" -B "$work/llama-build-$backend" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
    '-DCMAKE_INSTALL_RPATH=$ORIGIN' -DCMAKE_INSTALL_PREFIX="$prefix" "${flags[@]}" -DLLAMA_BUILD_MTMD=ON \
    -DMTMD_VIDEO=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF \
    -DGGML_CCACHE=OFF >"$out/llama-cmake.log" 2>&1 || fail "configuring llama.cpp; see $out/llama-cmake.log"
  cmake --build "$work/llama-build-$backend" -j "$jobs" >"$out/llama-build.log" 2>&1 ||
    fail "building llama.cpp; see $out/llama-build.log"
  cmake --install "$work/llama-build-$backend" >/dev/null
  ln -sfn "$src" "$prefix/source"
  touch "$prefix/.dior-complete"
fi
stamp "llama.cpp ($backend) built"

# shellcheck disable=SC1091
source "$work/deps/env.sh"
# shellcheck disable=SC2086
eval "dargs=($DIOR_DEPS_CMAKE_ARGS)"
cmake -S "$here" -B "$work/dior-build-$backend" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DDIOR_BUILD_TESTS=OFF \
  -DDIOR_LLAMA_PREFIX="$prefix" "${dargs[@]}" >"$out/dior-cmake.log" 2>&1 ||
  fail "configuring dior; see $out/dior-cmake.log"
cmake --build "$work/dior-build-$backend" -j "$jobs" >"$out/dior-build.log" 2>&1 ||
  fail "building dior; see $out/dior-build.log"
stamp "dior built: $("$work/dior-build-$backend/bin/dior" --version 2>&1 | head -1)"

"${DIOR_PYTHON:-python3}" "$here/scripts/bench_gpu.py" --build "$work/dior-build-$backend" --work "$work/bench" "${bench[@]}" "$@" 2>&1 |
  tee "$out/bench.log"
rc=${PIPESTATUS[0]}
stamp "done (bench_gpu.py exit $rc)"
exit "$rc"
