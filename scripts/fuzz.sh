#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, sanitizers) and runs them on the committed seed corpus.
#
#   bash scripts/fuzz.sh                      # every target for 20 s (the test suite: 40,000 runs each, seed 1)
#   bash scripts/fuzz.sh decode_image 3600    # one target for an hour
#   bash scripts/fuzz.sh reference_json 0 -runs=2000000   # extra arguments go to libFuzzer
#
# New inputs that raise coverage go to a scratch corpus (build-fuzz/corpus/TARGET), never into the
# committed seeds; a crash leaves its input as build-fuzz/crash-* and the script fails.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$here/scripts/versions.sh"
cache=${DIOR_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/dior.cpp}
build=${DIOR_FUZZ_BUILD_DIR:-$here/build-fuzz}
targets=(decode_image reference_json)
[ $# -ge 1 ] && [ -n "$1" ] && targets=("$1")  # "" = every target
seconds=${2:-20}
shift $(( $# >= 2 ? 2 : $# ))

src=$(ls -d "$cache"/install-"$NODE_LLAMA_CPP_VERSION"-*/source 2>/dev/null | head -1)
[ -n "$src" ] || { echo "[fuzz] no llama.cpp source in $cache: run scripts/setup.sh first" >&2; exit 1; }
command -v clang++ >/dev/null || { echo "[fuzz] clang++ not found: run scripts/setup.sh (it installs clang)" >&2; exit 1; }

CC=clang CXX=clang++ cmake -S "$here/fuzz" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDIOR_LLAMA_SOURCE="$src" >/dev/null
cmake --build "$build" -j "${JOBS:-$(nproc)}" --target "${targets[@]/#/fuzz_}" >/dev/null

for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t"
  echo "[fuzz] $t ($([ "$seconds" = 0 ] && echo "until -runs" || echo "${seconds}s"))"
  args=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -artifact_prefix="$build/")
  [ "$seconds" = 0 ] && args=(-rss_limit_mb=2048 -timeout=20 -artifact_prefix="$build/")
  if ! "$build/fuzz_$t" "${args[@]}" "$@" "$build/corpus/$t" "$here/fuzz/corpus/$t" >"$build/$t.log" 2>&1; then
    tail -n 60 "$build/$t.log" >&2
    echo "[fuzz] $t FAILED: the input that broke it is in $build (crash-*, timeout-*, oom-*)" >&2
    exit 1
  fi
  grep -E "^#[0-9]+ +(INITED|DONE)|Done [0-9]+ runs" "$build/$t.log" | tail -n 2
done
