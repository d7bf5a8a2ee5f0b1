#!/usr/bin/env bash
# The issue-12 benchmark on a CUDA machine that has a compiler, CMake and the CUDA toolkit but
# neither network nor dior's Debian packages (the lent GPU machine of this workplace). Everything it
# needs comes in .devcarry/ (made on the development machine, not committed):
#   llama-src.tar.gz  the pinned llama.cpp source with our patches applied (no .git, no models)
#   vocab.tar         models/ggml-vocab-qwen2.gguf of that source
#   debs/             Debian 12 packages of dior's build dependencies (SQLite, OpenSSL, libjpeg,
#                     nlohmann-json, CLI11, OpenBLAS, faiss), unpacked into a private prefix
# It builds llama.cpp with CUDA (llama-server from the same tree: our patches touch only CPU and
# model-loading code), then dior against it, then runs scripts/bench_server.py. Logs go to $OUT.
#   bash scripts/gpu_bench.sh [CUDA architectures, default 90]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${OUT:-/tmp/gpu-bench-out}
arch=${1:-90}
jobs=$(nproc)
mkdir -p "$out"
t0=$(date +%s)
stamp() { echo "[$(($(date +%s) - t0)) s] $*" | tee -a "$out/steps.log"; }

deps=/tmp/deps
if [ ! -f "$deps/.done" ]; then
  for f in "$here"/.devcarry/debs/*.deb; do dpkg -x "$f" "$deps"; done
  lib=$deps/usr/lib/x86_64-linux-gnu
  # what update-alternatives would have linked
  for n in libopenblas.so libopenblas.so.0 libblas.so libblas.so.3 liblapack.so liblapack.so.3; do
    [ -e "$lib/openblas-pthread/$n" ] && ln -sfn "openblas-pthread/$n" "$lib/$n"
  done
  sed -i "s|/usr/lib/x86_64-linux-gnu/|$lib/|g" "$lib/cmake/faiss/faiss-targets.cmake"
  touch "$deps/.done"
fi
export LD_LIBRARY_PATH=$deps/usr/lib/x86_64-linux-gnu:$deps/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}
stamp "dependencies unpacked; $(nvcc --version | tail -1); $(cmake --version | head -1); $(g++ --version | head -1)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$out/steps.log"

src=/tmp/llama-src
prefix=/tmp/llama-cuda
if [ ! -f "$prefix/.dior-complete" ]; then
  mkdir -p "$src" && tar -xzf "$here/.devcarry/llama-src.tar.gz" -C "$src" && tar -xf "$here/.devcarry/vocab.tar" -C "$src"
  cmake -S "$src" -B /tmp/llama-build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
    '-DCMAKE_INSTALL_RPATH=$ORIGIN' -DCMAKE_INSTALL_PREFIX="$prefix" -DGGML_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$arch" -DGGML_NATIVE=ON -DLLAMA_BUILD_MTMD=ON -DMTMD_VIDEO=OFF \
    -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF -DGGML_CCACHE=OFF \
    >"$out/llama-cmake.log" 2>&1
  cmake --build /tmp/llama-build -j "$jobs" >"$out/llama-build.log" 2>&1
  cmake --install /tmp/llama-build >/dev/null
  ln -sfn "$src" "$prefix/source"
  touch "$prefix/.dior-complete"
fi
stamp "llama.cpp (CUDA, sm_$arch) built"

inc=$deps/usr/include
cmake -S "$here" -B /tmp/dior-build -G Ninja -DCMAKE_BUILD_TYPE=Release -DDIOR_BUILD_TESTS=OFF \
  -DDIOR_LLAMA_PREFIX="$prefix" -DCMAKE_PREFIX_PATH="$deps/usr" -DOPENSSL_ROOT_DIR="$deps/usr" \
  "-DCMAKE_CXX_FLAGS=-isystem $inc/x86_64-linux-gnu -isystem $inc" "-DCMAKE_C_FLAGS=-isystem $inc/x86_64-linux-gnu" \
  >"$out/dior-cmake.log" 2>&1
cmake --build /tmp/dior-build -j "$jobs" >"$out/dior-build.log" 2>&1
stamp "dior built: $(/tmp/dior-build/bin/dior --version)"

python3 "$here/scripts/bench_server.py" --build /tmp/dior-build --work /tmp/bench --threads 8 --skip-reference \
  --skip-extra --server /tmp/llama-build/bin/llama-server --server-args "-ngl 999" 2>&1 | tee "$out/bench.log"
stamp "done"
