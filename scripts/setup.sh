#!/usr/bin/env bash
# Sets up everything dior.cpp needs on Debian/Ubuntu and builds it.
#
#   bash scripts/setup.sh                 # Debian packages, pinned llama.cpp (cached), dior build
#   bash scripts/setup.sh --llama-server  # also llama-server, from the pinned source as published
#                                         # (without our patches), same flags; prints its path
#   bash scripts/setup.sh --llama-prefix  # packages and llama.cpp only; prints the install prefix
#                                         # (the Python package's build asks this)
#
# Environment (all optional):
#   DIOR_CACHE        where the pinned llama.cpp source and its build are kept
#                     (default: ${XDG_CACHE_HOME:-$HOME/.cache}/dior.cpp)
#   LLAMA_CPP_DIR     use this llama.cpp checkout instead of the pinned one (our patches are
#                     applied to a copy of it, never to the checkout itself)
#   DIOR_BACKEND      native (default: this CPU's instructions, AVX-512 where it has them), cpu
#                     (portable AVX2 baseline), cuda, vulkan or metal. native and cpu also route
#                     large matrix products through OpenBLAS (ggml's BLAS backend)
#   DIOR_BUILD_DIR    dior's build directory (default: build)
#   DIOR_SKIP_APT=1   do not install Debian packages (you installed them yourself)
#   DIOR_ALLOW_UNPINNED=1  take the archive's version of an exactly pinned package whose release
#                     the archive no longer has (see the policy in scripts/versions.sh)
#   DIOR_TEST_PACKAGES=1  also the packages only the tests need (Chromium; scripts/test.sh sets it)
#   JOBS              parallel build jobs (default: nproc)
#
# Re-running it when nothing changed rebuilds nothing: the llama.cpp build is keyed by the pinned
# version, the hash of patches/llama.cpp/*.patch and the backend, and reused while that key holds.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$here/scripts/versions.sh"

cache=${DIOR_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/dior.cpp}
backend=${DIOR_BACKEND:-native}
build_dir=${DIOR_BUILD_DIR:-$here/build}
jobs=${JOBS:-$(nproc)}

log() { printf '[setup] %s\n' "$*" >&2; }
die() {
  printf '[setup] error: %s\n' "$*" >&2
  exit 1
}

# --- 1. Debian packages (policy: scripts/versions.sh) ------------------------------------------
source "$here/scripts/debian-packages.sh"

# --- 2. llama.cpp source, pinned ----------------------------------------------------------------
patch_hash() { cat "$here"/patches/llama.cpp/*.patch | sha256sum | cut -c1-12; }

fetch_pinned_source() { # $1 = destination (a git checkout of the pinned commit)
  local dest=$1 tmp
  tmp=$(mktemp -d)
  log "fetching llama.cpp from npm package node-llama-cpp@$NODE_LLAMA_CPP_VERSION"
  (cd "$tmp" && npm pack --silent "node-llama-cpp@$NODE_LLAMA_CPP_VERSION" >/dev/null) ||
    die "npm could not fetch node-llama-cpp@$NODE_LLAMA_CPP_VERSION (its error is above); check that the npm registry is reachable (npm config get registry)"
  tar -xzf "$tmp"/node-llama-cpp-*.tgz -C "$tmp" package/llama/gitRelease.bundle ||
    die "node-llama-cpp@$NODE_LLAMA_CPP_VERSION has no llama/gitRelease.bundle"
  rm -rf "$dest.tmp"
  git -c advice.detachedHead=false clone -q "$tmp/package/llama/gitRelease.bundle" "$dest.tmp" ||
    die "cloning the llama.cpp bundle of node-llama-cpp@$NODE_LLAMA_CPP_VERSION failed"
  rm -rf "$tmp"
  local commit
  commit=$(git -C "$dest.tmp" rev-parse HEAD)
  case "$commit" in
    "$LLAMA_CPP_COMMIT"*) ;;
    *) die "the bundle in node-llama-cpp@$NODE_LLAMA_CPP_VERSION holds $commit, expected $LLAMA_CPP_COMMIT" ;;
  esac
  mv "$dest.tmp" "$dest"
}

prepare_source() { # prints the patched source directory
  local key src
  if [ -n "${LLAMA_CPP_DIR:-}" ]; then
    [ -f "$LLAMA_CPP_DIR/include/llama.h" ] || die "LLAMA_CPP_DIR=$LLAMA_CPP_DIR is not a llama.cpp checkout"
    key="custom-$(git -C "$LLAMA_CPP_DIR" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)-$(patch_hash)"
    src="$cache/src-$key"
    if [ ! -f "$src/.dior-patched" ]; then
      rm -rf "$src"
      mkdir -p "$cache"
      log "copying $LLAMA_CPP_DIR"
      cp -a "$LLAMA_CPP_DIR" "$src"
    fi
  else
    key="$NODE_LLAMA_CPP_VERSION-$(patch_hash)"
    src="$cache/src-$key"
    if [ ! -f "$src/.dior-patched" ]; then
      rm -rf "$src" "$src.tmp"
      mkdir -p "$cache"
      fetch_pinned_source "$src"
    fi
  fi
  if [ ! -f "$src/.dior-patched" ]; then
    local p
    for p in "$here"/patches/llama.cpp/*.patch; do
      log "applying $(basename "$p")"
      git -C "$src" apply "$p" 2>/dev/null || patch -d "$src" -p1 -s <"$p" ||
        die "patch $(basename "$p") does not apply to $src"
    done
    touch "$src/.dior-patched"
  fi
  echo "$src"
}

# A native build runs only on CPUs with the same instructions: their flags join its cache key.
cpu_key() {
  [ "$backend" = native ] || return 0
  echo "-cpu$(grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null | sha256sum | cut -c1-8)"
}

# ggml's AMX kernels (compiled in by -march=native where the CPU has AMX-INT8) crash in
# ggml_backend_amx_mul_mat on quantized models (Q8_0 here; llama.cpp issue 20824, open upstream):
# native builds leave them out. An explicit -mno-amx-int8 wins over -march=native.
no_amx() {
  grep -m1 -E '^flags' /proc/cpuinfo 2>/dev/null | grep -qw amx_int8 || return 0
  echo " -DCMAKE_C_FLAGS=-mno-amx-int8 -DCMAKE_CXX_FLAGS=-mno-amx-int8"
}

backend_flags() {
  case "$backend" in
    cpu) echo "-DGGML_NATIVE=OFF -DGGML_BLAS=ON -DGGML_BLAS_VENDOR=OpenBLAS" ;;
    native) echo "-DGGML_NATIVE=ON -DGGML_BLAS=ON -DGGML_BLAS_VENDOR=OpenBLAS$(no_amx)" ;;
    cuda) echo "-DGGML_NATIVE=OFF -DGGML_CUDA=ON" ;;
    vulkan) echo "-DGGML_NATIVE=OFF -DGGML_VULKAN=ON" ;;
    metal) echo "-DGGML_METAL=ON" ;;
    *) die "DIOR_BACKEND=$backend: use cpu, native, cuda, vulkan or metal" ;;
  esac
}

llama_cmake_args() {
  # shellcheck disable=SC2046
  echo -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON '-DCMAKE_INSTALL_RPATH=$ORIGIN' \
    -DLLAMA_BUILD_MTMD=ON -DMTMD_VIDEO=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_OPENSSL=OFF -DGGML_CCACHE=OFF $(backend_flags)
}

build_llama() { # $1 = patched source; prints the install prefix
  local src=$1 key prefix bdir args
  args=$(llama_cmake_args)
  # The key names the source, our patches, the backend and a hash of the exact configure flags.
  key="$(basename "$src" | sed 's/^src-//')-$backend-$(echo "$args" | sha256sum | cut -c1-8)$(cpu_key)"
  prefix="$cache/install-$key"
  bdir="$cache/build-$key"
  if [ -f "$prefix/.dior-complete" ]; then
    log "llama.cpp: using cached build $prefix"
    echo "$prefix"
    return
  fi
  log "building llama.cpp ($backend) in $bdir; this takes a few minutes once"
  # shellcheck disable=SC2086
  cmake -S "$src" -B "$bdir" -DCMAKE_INSTALL_PREFIX="$prefix" $args >"$cache/cmake-$key.log" 2>&1 ||
    die "configuring llama.cpp failed; see $cache/cmake-$key.log"
  cmake --build "$bdir" -j "$jobs" >"$cache/build-$key.log" 2>&1 ||
    die "building llama.cpp failed; see $cache/build-$key.log"
  cmake --install "$bdir" >/dev/null
  # convert_hf_to_gguf.py, the vocab files and stb_image are used from the source tree.
  ln -sfn "$src" "$prefix/source"
  touch "$prefix/.dior-complete"
  echo "$prefix"
}

# --- 3. dior itself -----------------------------------------------------------------------------
build_dior() { # $1 = llama.cpp install prefix
  cmake -S "$here" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DDIOR_LLAMA_PREFIX="$1" >/dev/null
  cmake --build "$build_dir" -j "$jobs"
}

# --- 4. llama-server, for comparisons (scripts/bench_server.py) ------------------------------------
build_llama_server() { # prints the path of llama-server built from the unpatched pinned source
  local pristine="$cache/src-$NODE_LLAMA_CPP_VERSION-unpatched" args key bdir
  if [ ! -d "$pristine" ]; then
    fetch_pinned_source "$pristine"
  fi
  args="$(llama_cmake_args | sed 's/-DLLAMA_BUILD_COMMON=OFF//; s/-DLLAMA_BUILD_TOOLS=OFF//; s/-DLLAMA_BUILD_SERVER=OFF//')"
  key="$NODE_LLAMA_CPP_VERSION-unpatched-$backend-$(echo "$args" | sha256sum | cut -c1-8)$(cpu_key)"
  bdir="$cache/server-$key"
  if [ ! -x "$bdir/bin/llama-server" ]; then
    log "building llama-server ($backend, unpatched pinned source) in $bdir; this takes a few minutes once"
    # shellcheck disable=SC2086
    cmake -S "$pristine" -B "$bdir" $args -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
      >"$cache/cmake-server-$key.log" 2>&1 || die "configuring llama-server failed; see $cache/cmake-server-$key.log"
    cmake --build "$bdir" -j "$jobs" --target llama-server >"$cache/build-server-$key.log" 2>&1 ||
      die "building llama-server failed; see $cache/build-server-$key.log"
  fi
  echo "$bdir/bin/llama-server"
}

install_debian_packages
# Seconds, every run: a missing toolchain piece stops here, not in a test ten minutes later.
probe_args=()
[ "${DIOR_TEST_PACKAGES:-0}" = 1 ] && probe_args=(--tests)
bash "$here/scripts/probe.sh" "${probe_args[@]}" ||
  die "a toolchain piece is missing (named above); install it, then run setup again"
src=$(prepare_source)
prefix=$(build_llama "$src")
if [ "${1:-}" = "--llama-prefix" ]; then
  echo "$prefix"
  exit 0
fi
build_dior "$prefix"
log "done: $build_dir/bin/dior"
if [ "${1:-}" = "--llama-server" ]; then
  build_llama_server
fi
