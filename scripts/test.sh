#!/usr/bin/env bash
# Runs every test: sets up (idempotent; llama.cpp is rebuilt only when its pin, patches or flags
# change), makes the Python environment of the test oracles, builds, and runs ctest.
#
#   bash scripts/test.sh            # all tests
#   bash scripts/test.sh -R Engine  # extra arguments go to ctest
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

cmake -S "$here" -B "$build_dir" -DDIOR_PYTHON="$venv/bin/python" >/dev/null
cmake --build "$build_dir" -j "${JOBS:-$(nproc)}"
cd "$build_dir"
ctest --output-on-failure "$@"
