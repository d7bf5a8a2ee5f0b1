#!/usr/bin/env bash
# Tests of scripts/setup.sh's package step and toolchain probe (issue 22).
#
#   setup_test.sh hidden       each toolchain piece hidden in turn (a private mount over it):
#                              setup stops within seconds, before llama.cpp, naming its package
#   setup_test.sh resolve      resolve_pin against a stand-in archive: exact pin, a fix of the
#                              same release, another release (stops), DIOR_ALLOW_UNPINNED
#   setup_test.sh pins         every exact pin of versions.sh is served by the Debian archive now
#   setup_test.sh consistent   every package the probe names is one versions.sh installs
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
passes=0
pass() {
  passes=$((passes + 1))
  echo "ok: $*"
}
fail() {
  failures=$((failures + 1))
  echo "FAIL: $*"
}
finish() {
  echo "$passes passed, $failures failed"
  [ "$failures" -eq 0 ]
  exit $?
}

# --- hidden ---------------------------------------------------------------------------------------
# A private mount namespace hides one path (an empty tmpfs over a folder, /dev/null over a file);
# setup then runs with DIOR_SKIP_APT=1, as for a user who installed packages by hand.
in_private_mounts() { # $1 = shell command
  if [ "$(id -u)" -eq 0 ]; then unshare --mount bash -c "$1"; else unshare --map-root-user --mount bash -c "$1"; fi
}

hide_and_run_setup() { # $1 = path to hide, $2 = package the probe must name
  local path=$1 package=$2 cover log="$tmp/hidden.log" rc
  if [ -d "$path" ]; then cover="mount -t tmpfs none '$path'"; else cover="mount --bind /dev/null '$path'"; fi
  rm -rf "$tmp/cache" "$tmp/build"
  in_private_mounts "$cover && DIOR_SKIP_APT=1 DIOR_TEST_PACKAGES=1 DIOR_CACHE='$tmp/cache' \
      DIOR_BUILD_DIR='$tmp/build' bash '$here/scripts/setup.sh'" >"$log" 2>&1
  rc=$?
  local lines
  lines=$(grep -c '^\[probe\]' "$log")
  if [ "$rc" -eq 0 ]; then
    fail "$path hidden: setup passed"
  elif ! grep -q "install the Debian package $package " "$log"; then
    fail "$path hidden: no line names $package"
    cat "$log"
  elif [ "$lines" -ne 1 ]; then
    fail "$path hidden: $lines probe lines, expected the one for $package"
    cat "$log"
  elif [ -e "$tmp/cache" ] || grep -q 'llama.cpp' "$log"; then
    fail "$path hidden: setup went on to llama.cpp"
  else
    pass "$path hidden: setup stopped at the probe: $(grep '^\[probe\]' "$log")"
  fi
}

test_hidden() {
  # First, nothing hidden: the probe passes here (else every case below would prove nothing).
  if bash "$here/scripts/probe.sh" --tests >"$tmp/probe.log" 2>&1; then
    pass "probe passes with nothing hidden"
  else
    fail "probe fails with nothing hidden"
    cat "$tmp/probe.log"
    finish
  fi
  local multiarch py_include
  multiarch=$(gcc -print-multiarch)
  py_include=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  hide_and_run_setup "$(clang++ -print-resource-dir)/lib/linux" libclang-rt-14-dev
  hide_and_run_setup /usr/include/cairo libcairo2-dev
  hide_and_run_setup "/usr/include/$multiarch/openblas-pthread" libopenblas-dev
  hide_and_run_setup /usr/include/faiss libfaiss-dev
  hide_and_run_setup /usr/include/archive.h libarchive-dev
  hide_and_run_setup "/usr/include/$multiarch/curl" libcurl4-openssl-dev
  hide_and_run_setup /usr/include/gtest libgtest-dev
  hide_and_run_setup "$py_include" python3-dev
  hide_and_run_setup "$(readlink -f "$(command -v chromium)")" chromium
  finish
}

# --- resolve --------------------------------------------------------------------------------------
# resolve_pin with apt-cache answering from a list of versions, as `apt-cache madison` prints them.
test_resolve() {
  source "$here/scripts/debian-packages.sh"
  pins_apply() { return 0; } # as on Debian 12, wherever the test runs
  log() { printf '[setup] %s\n' "$*" >&2; }
  die() {
    printf '[setup] error: %s\n' "$*" >&2
    exit 1
  }
  ARCHIVE=""
  apt-cache() { # madison NAME
    local v
    for v in $ARCHIVE; do printf '%10s | %s | http://deb.example/debian bookworm/main amd64 Packages\n' "$2" "$v"; done
  }
  expect() { # $1 = what, $2 = spec, $3 = archive, $4 = expected output or "STOP", $5 = warning pattern
    local out rc
    ARCHIVE=$3
    out=$(resolve_pin "$2" 2>"$tmp/err")
    rc=$?
    if [ "$4" = STOP ]; then
      if [ "$rc" -ne 0 ] && grep -q "$5" "$tmp/err"; then pass "$1"; else fail "$1: rc $rc, '$out', $(cat "$tmp/err")"; fi
    elif [ "$rc" -eq 0 ] && [ "$out" = "$4" ] && { [ -z "$5" ] || grep -q "$5" "$tmp/err"; } &&
      { [ -n "$5" ] || [ ! -s "$tmp/err" ]; }; then
      pass "$1"
    else
      fail "$1: rc $rc, got '$out' (expected '$4'), stderr: $(cat "$tmp/err")"
    fi
  }
  expect "a package by release is left to apt" libssl-dev "3.0.22-1~deb12u2" libssl-dev ""
  expect "an exact pin the archive has" libfoo-dev=1.2.3-4+deb12u1 "1.2.3-4+deb12u2 1.2.3-4+deb12u1" \
    libfoo-dev=1.2.3-4+deb12u1 ""
  expect "an exact pin with an epoch" libjpeg-dev=1:2.1.5-2 "1:2.1.5-2" libjpeg-dev=1:2.1.5-2 ""
  expect "a pin replaced by fixes of its release: the newest fix, with a warning" libfoo-dev=1.2.3-4 \
    "1.2.3-4+deb12u9 1.2.3-4+deb12u10 2.0.0-1" libfoo-dev=1.2.3-4+deb12u10 "move the pin"
  expect "a pin whose release is gone stops setup" libfoo-dev=1.2.3-4 "1.2.4-1 2.0.0-1" STOP \
    "pins libfoo-dev=1.2.3-4, but the Debian archive has only"
  expect "a pin of a package the archive lacks stops setup" libfoo-dev=1.2.3-4 "" STOP "has only nothing"
  DIOR_ALLOW_UNPINNED=1 expect "DIOR_ALLOW_UNPINNED=1 takes the archive's version" libfoo-dev=1.2.3-4 \
    "1.2.4-1" libfoo-dev "DIOR_ALLOW_UNPINNED=1"
  # Elsewhere than Debian 12 the exact pins name nothing: the system's own version is taken.
  pins_apply() { return 1; }
  expect "on another system an exact pin is left to apt" libfoo-dev=1.2.3-4 "2.0.0-1" libfoo-dev ""
  local v
  for v in "1.2.3-4:1.2.3" "1:2.1.5-2:2.1.5" "0.3.21+ds-4:0.3.21+ds" "12.2.0-14+deb12u1:12.2.0" "3.11.2-1+b1:3.11.2"; do
    if [ "$(upstream_of "${v%:*}")" = "${v##*:}" ]; then pass "upstream_of ${v%:*}"; else fail "upstream_of ${v%:*}: $(upstream_of "${v%:*}")"; fi
  done
  finish
}

# --- pins -----------------------------------------------------------------------------------------
# Against the archive itself, with package lists of our own (the system's are left alone).
test_pins() {
  source "$here/scripts/versions.sh"
  local opts=(-o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o Debug::NoLocking=1)
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
  if ! apt-get "${opts[@]}" update -qq >"$tmp/update.log" 2>&1; then
    fail "the Debian archive could not be read (apt-get update): $(tail -n 3 "$tmp/update.log")"
    finish
  fi
  local spec name pin available
  for spec in "${DEB_PACKAGES[@]}" "${TEST_DEB_PACKAGES[@]}"; do
    name=${spec%%=*}
    available=$(apt-cache "${opts[@]}" madison "$name" | awk '{print $3}')
    if [ -z "$available" ]; then
      fail "$name: not in the archive"
      continue
    fi
    [ "$name" = "$spec" ] && continue
    pin=${spec#*=}
    if grep -qxF "$pin" <<<"$available"; then
      pass "$spec is in the archive"
    else
      fail "$spec is no longer in the archive (it has: $(echo $available)): move the pin in scripts/versions.sh"
    fi
  done
  finish
}

# --- consistent -----------------------------------------------------------------------------------
test_consistent() {
  source "$here/scripts/versions.sh"
  local listed=" " spec package
  for spec in "${DEB_PACKAGES[@]}" "${TEST_DEB_PACKAGES[@]}"; do listed+="${spec%%=*} "; done
  local named
  named=$(grep -oE '^\s*check [a-z0-9.+-]+' "$here/scripts/probe.sh" | awk '{print $2}' | sort -u)
  [ -n "$named" ] || fail "no checks found in scripts/probe.sh"
  for package in $named; do
    if [[ "$listed" == *" $package "* ]]; then pass "probe's $package is installed by setup"; else fail "probe names $package, which versions.sh does not list"; fi
  done
  local tool
  for tool in $(grep -oE 'for tool in [^;]*' "$here/scripts/probe.sh" | cut -d' ' -f4-); do
    package=${tool#*:}
    [ "$package" = npm ] && continue # setup installs npm only where none is on PATH
    if [[ "$listed" == *" $package "* ]]; then pass "probe's $package is installed by setup"; else fail "probe names $package, which versions.sh does not list"; fi
  done
  finish
}

case "${1:-}" in
  hidden) test_hidden ;;
  resolve) test_resolve ;;
  pins) test_pins ;;
  consistent) test_consistent ;;
  *)
    echo "usage: $0 hidden|resolve|pins|consistent" >&2
    exit 2
    ;;
esac
