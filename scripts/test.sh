#!/usr/bin/env bash
# Runs every test: sets up (idempotent; llama.cpp is rebuilt only when its pin, patches or flags
# change), makes the Python environment of the test oracles, builds, and runs ctest.
#
#   bash scripts/test.sh            # all tests
#   bash scripts/test.sh -R Engine  # extra arguments go to ctest
#
# The results go to build/test-results/: junit.xml, and environment.txt (the Debian packages,
# llama.cpp build and Python packages they were obtained with).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${DIOR_BUILD_DIR:-$here/build}
venv=${DIOR_VENV:-$here/.venv}

DIOR_TEST_PACKAGES=1 bash "$here/scripts/setup.sh"

# Python for the test oracles only (Pillow, later PyTorch / transformers / pytorch-metric-learning).
req="$here/tests/requirements.txt"
stamp="$venv/.dior-requirements"
if [ ! -f "$stamp" ] || ! cmp -s "$req" "$stamp"; then
  echo "[test] preparing the oracle environment in $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
fi

# A second, newer transformers for the family the reference's pin lacks (Qwen3-VL).
req2="$here/tests/requirements-transformers-4.57.txt"
tf2="$venv/transformers-4.57.3"
if [ ! -f "$tf2/.dior-requirements" ] || ! cmp -s "$req2" "$tf2/.dior-requirements"; then
  rm -rf "$tf2"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --target "$tf2" -r "$req2"
  cp "$req2" "$tf2/.dior-requirements"
fi

cmake -S "$here" -B "$build_dir" -DDIOR_PYTHON="$venv/bin/python" -DDIOR_TRANSFORMERS_NEW="$tf2" >/dev/null
cmake --build "$build_dir" -j "${JOBS:-$(nproc)}"

# The results (JUnit XML) and what they were obtained with, side by side in build/test-results/.
results="$build_dir/test-results"
mkdir -p "$results"
{
  echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$here" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  echo "# $(uname -srm), $(nproc) cores, $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "# Debian packages (scripts/versions.sh; pinned = exact)"
  cat "$build_dir/debian-versions.txt"
  echo "# llama.cpp: $(grep -m1 '^DIOR_LLAMA_PREFIX:' "$build_dir/CMakeCache.txt" | cut -d= -f2-)"
  echo "# Python packages of the oracles ($("$venv/bin/python" --version))"
  "$venv/bin/python" -m pip freeze --disable-pip-version-check
  echo "# and, for Qwen3-VL only: $(ls "$tf2" | grep -m1 '^transformers-.*dist-info')"
} >"$results/environment.txt"
cd "$build_dir"
ctest --output-on-failure --output-junit "$results/junit.xml" "$@"
