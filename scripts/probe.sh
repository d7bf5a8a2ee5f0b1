#!/usr/bin/env bash
# Checks, in seconds, that every toolchain piece the build and the tests use is really there: one
# tiny program compiled and linked (and run, where running is what could fail) per piece. A piece
# that fails gets one line naming the Debian package that brings it, and the probe exits 1 before
# any long step. scripts/setup.sh runs it after installing packages, every time.
#
#   bash scripts/probe.sh            # what the build and the tools need
#   bash scripts/probe.sh --tests    # also what only the tests need (clang's fuzzer and
#                                    # sanitizers, GoogleTest, Python headers, Chromium)
#
# Packages are named as scripts/versions.sh lists them (tests/setup checks that they are there).
set -uo pipefail
tests=0
[ "${1:-}" = --tests ] && tests=1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cxx=${CXX:-g++}

# check PACKAGE WHAT COMMAND...: runs COMMAND in $work, two at a time (the machines this runs on
# may have two cores); its output goes to $work/N.log and its exit status to $work/N.rc.
names=()
running=0
check() {
  local package=$1 what=$2 id=${#names[@]}
  shift 2
  names+=("$package|$what")
  (
    cd "$work" && "$@" >"$work/$id.log" 2>&1
    echo $? >"$work/$id.rc"
  ) &
  running=$((running + 1))
  if [ "$running" -ge 2 ]; then
    wait -n 2>/dev/null
    running=$((running - 1))
  fi
}

src() { # NAME: writes stdin to $work/NAME
  cat >"$work/$1"
}

# --- the build ------------------------------------------------------------------------------------
src cxx20.cpp <<'EOF'
#include <concepts>
#include <span>
#include <thread>
template <std::integral T> T twice(T x) { return 2 * x; }
int main() {
  int a[2] = {1, 2};
  std::span<int> s(a);
  std::jthread t([] {});
  return twice(s[0]) == 2 ? 0 : 1;
}
EOF
check g++-12 "C++20 compiler (g++)" sh -c "$cxx -std=c++20 cxx20.cpp -o cxx20 -pthread && ./cxx20"

src openmp.cpp <<'EOF'
#include <omp.h>
int main() {
  int n = 0;
#pragma omp parallel reduction(+ : n)
  n += 1;
  return n == omp_get_max_threads() ? 0 : 1;
}
EOF
check g++-12 "OpenMP (libgomp)" sh -c "$cxx -fopenmp openmp.cpp -o openmp && ./openmp"

src openblas.c <<'EOF'
#include <cblas.h>
int main(void) {
  float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1}, c[4] = {0};
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2);
  return c[3] == 4.0f ? 0 : 1;
}
EOF
check libopenblas-dev "OpenBLAS (cblas.h, libopenblas)" sh -c \
  'cc openblas.c -I/usr/include/$(gcc -print-multiarch)/openblas-pthread -o openblas -lopenblas && ./openblas'

src sqlite.c <<'EOF'
#include <sqlite3.h>
int main(void) {
  sqlite3 * db;
  return sqlite3_open(":memory:", &db) == SQLITE_OK && sqlite3_close(db) == SQLITE_OK ? 0 : 1;
}
EOF
check libsqlite3-dev "SQLite" sh -c 'cc sqlite.c -o sqlite -lsqlite3 && ./sqlite'

src jpeg.c <<'EOF'
#include <stdio.h>
#include <jpeglib.h>
int main(void) {
  struct jpeg_decompress_struct d;
  struct jpeg_error_mgr e;
  d.err = jpeg_std_error(&e);
  jpeg_create_decompress(&d);
  jpeg_destroy_decompress(&d);
  return 0;
}
EOF
check libjpeg62-turbo-dev "libjpeg-turbo" sh -c 'cc jpeg.c -o jpeg -ljpeg && ./jpeg'

src crypto.c <<'EOF'
#include <openssl/evp.h>
int main(void) { return EVP_sha256() != 0 ? 0 : 1; }
EOF
check libssl-dev "OpenSSL's libcrypto" sh -c 'cc crypto.c -o crypto -lcrypto && ./crypto'

src curl.c <<'EOF'
#include <curl/curl.h>
int main(void) {
  CURL * c = curl_easy_init();
  curl_easy_cleanup(c);
  return c ? 0 : 1;
}
EOF
check libcurl4-openssl-dev "libcurl" sh -c 'cc curl.c -o curl -lcurl && ./curl'

src archive.c <<'EOF'
#include <archive.h>
int main(void) {
  struct archive * a = archive_read_new();
  return a && archive_read_free(a) == ARCHIVE_OK ? 0 : 1;
}
EOF
check libarchive-dev "libarchive" sh -c 'cc archive.c -o archive -larchive && ./archive'

src zlib.c <<'EOF'
#include <zlib.h>
int main(void) { return zlibVersion()[0] ? 0 : 1; }
EOF
check zlib1g-dev "zlib" sh -c 'cc zlib.c -o zlib -lz && ./zlib'

src cairo.c <<'EOF'
#include <cairo.h>
int main(void) {
  cairo_surface_t * s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 4, 4);
  int ok = cairo_surface_status(s) == CAIRO_STATUS_SUCCESS;
  cairo_surface_destroy(s);
  return ok ? 0 : 1;
}
EOF
check libcairo2-dev "cairo (pkg-config cairo)" sh -c \
  'cc cairo.c $(pkg-config --cflags cairo) -o cairo $(pkg-config --libs cairo) && ./cairo'

src faiss.cpp <<'EOF'
#include <faiss/IndexFlat.h>
int main() {
  faiss::IndexFlatL2 index(2);
  float x[2] = {1, 2};
  index.add(1, x);
  return index.ntotal == 1 ? 0 : 1;
}
EOF
check libfaiss-dev "faiss" sh -c "$cxx -std=c++20 -fopenmp faiss.cpp -o faiss -lfaiss -lopenblas && ./faiss"

check nlohmann-json3-dev "nlohmann-json (nlohmann/json.hpp)" sh -c \
  "echo '#include <nlohmann/json.hpp>' | $cxx -std=c++20 -x c++ -fsyntax-only -"
check libcli11-dev "CLI11 (CLI/CLI.hpp)" sh -c "echo '#include <CLI/CLI.hpp>' | $cxx -std=c++20 -x c++ -fsyntax-only -"

for tool in cmake:cmake git:git patch:patch pkg-config:pkg-config npm:npm unshare:util-linux; do
  check "${tool#*:}" "the command ${tool%%:*}" sh -c "command -v ${tool%%:*}"
done
check python3-venv "Python's venv (ensurepip)" python3 -c 'import ensurepip, venv'

# --- what only the tests use ----------------------------------------------------------------------
if [ "$tests" = 1 ]; then
  src fuzz.cpp <<'EOF'
#include <cstddef>
#include <cstdint>
extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
  return size > 0 && data[0] == 0xff ? 0 : 0;
}
EOF
  check libclang-rt-14-dev "clang's libFuzzer and its address / undefined-behaviour sanitizer runtimes" sh -c \
    'clang++ -std=c++20 -fsanitize=fuzzer,address,undefined fuzz.cpp -o fuzz && ./fuzz -runs=10 >/dev/null'

  src gtest.cpp <<'EOF'
#include <gtest/gtest.h>
TEST(Probe, Runs) { EXPECT_EQ(1 + 1, 2); }
EOF
  check libgtest-dev "GoogleTest" sh -c "$cxx -std=c++20 gtest.cpp -o gtest -lgtest_main -lgtest -pthread && ./gtest"

  check python3-dev "Python's headers (Python.h, for the Python package's build)" \
    python3 -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'

  check chromium "headless Chromium (the browser test)" sh -c \
    'timeout 60 chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
       --disable-component-update --disable-sync --user-data-dir="$PWD/chromium-profile" \
       --dump-dom "data:text/html,<p>probe</p>" | grep -q "<p>probe</p>"'
  check fonts-dejavu-core "the DejaVu fonts (the browser test's screenshots)" \
    test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
fi

wait
failed=0
for id in "${!names[@]}"; do
  [ "$(cat "$work/$id.rc" 2>/dev/null)" = 0 ] && continue
  failed=1
  package=${names[$id]%%|*}
  printf '[probe] %s: does not compile, link or run; install the Debian package %s (apt-get install %s)\n' \
    "${names[$id]#*|}" "$package" "$package" >&2
  [ -n "${DIOR_PROBE_VERBOSE:-}" ] && sed 's/^/    /' "$work/$id.log" >&2
done
exit "$failed"
