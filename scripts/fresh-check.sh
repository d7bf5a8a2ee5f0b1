#!/usr/bin/env bash
# Proves the README's two commands on a brand-new Debian 12: makes a minimal bookworm root
# (mmdebstrap --variant=minbase: no compiler, no Python, no CA certificates), puts a clean clone of
# this repository's HEAD in it, and inside it (chroot, own mount and PID namespaces) runs
#
#   1. bash scripts/setup.sh, then bash scripts/test.sh      (from nothing)
#   2. the same again in a second fresh clone                  (llama.cpp build and venv cached)
#
# timing each command. The summary goes to stdout and to OUT/fresh-check.txt, the logs beside it.
#
#   bash scripts/fresh-check.sh                 # both rounds (about 40 minutes on 2 cores)
#   bash scripts/fresh-check.sh --once          # round 1 only
#   FRESH_DIR=/var/tmp/dior-fresh bash scripts/fresh-check.sh
#
# Needs root (chroot, mounts), mmdebstrap (apt-get install mmdebstrap; installed when missing) and
# a reachable Debian archive. Nothing of this machine goes into the root but the clone, the DNS
# configuration and what every new machine of this workplace has: the certificate authorities of
# its registry proxy (/usr/local/share/ca-certificates) and its PyPI configuration (pip.conf, and
# the wheel folders it names, read-only; without them torch==2.13.0 is not to be had).
# The root is removed at the end unless --keep is given.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${FRESH_DIR:-/var/tmp/dior-fresh}
rounds=2
keep=0
for arg in "$@"; do
  case "$arg" in
    --once) rounds=1 ;;
    --keep) keep=1 ;;
    *) echo "usage: $0 [--once] [--keep]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "[fresh] needs root (chroot and mounts)" >&2; exit 1; }
command -v mmdebstrap >/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null

root="$dir/root"
out="$dir/out"
grep -qF " $root/" /proc/mounts && { echo "[fresh] something is mounted under $root: unmount it first" >&2; exit 1; }
rm -rf "$root" "$out"
mkdir -p "$out"
log() { printf '[fresh] %s\n' "$*" | tee -a "$out/fresh-check.txt" >&2; }

log "$(date -u '+%Y-%m-%d %H:%M UTC'): commit $(git -C "$here" rev-parse --short=12 HEAD), $(nproc) cores"
mmdebstrap --quiet --variant=minbase bookworm "$root" \
  "deb http://deb.debian.org/debian bookworm main" \
  "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main" >"$out/mmdebstrap.log" 2>&1
log "minbase root: $(chroot "$root" dpkg-query -W -f='.\n' | wc -l) packages, no compiler: $(chroot "$root" sh -c 'command -v cc || echo none')"

cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# This workplace reaches the registries through a proxy with its own certificate authorities,
# which every machine here trusts; the root's ca-certificates (installed by setup) takes them in.
if [ -d /usr/local/share/ca-certificates ]; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi
for f in /etc/pip.conf /etc/xdg/pip; do
  [ -e "$f" ] && mkdir -p "$root$(dirname "$f")" && cp -a "$f" "$root$f"
done
binds=()
for d in /opt/wheels /opt/pypi /opt/pypi-more; do
  [ -d "$d" ] && mkdir -p "$root$d" && binds+=("$d")
done

# One round: a fresh clone at /work/dior-N, then the README's two commands, each timed.
run_round() { # $1 = round number
  local n=$1 clone="/work/dior-$1" t0 t1 t2 rc=0
  git clone -q "$here" "$root$clone"
  t0=$(date +%s)
  in_root "cd $clone && bash scripts/setup.sh" >"$out/setup-$n.log" 2>&1 || rc=$?
  t1=$(date +%s)
  if [ "$rc" -ne 0 ]; then
    log "round $n: setup.sh FAILED (exit $rc) after $((t1 - t0)) s; see $out/setup-$n.log"
    tail -n 20 "$out/setup-$n.log" >&2
    return 1
  fi
  log "round $n: setup.sh passed in $((t1 - t0)) s ($(fmt $((t1 - t0))))"
  in_root "cd $clone && bash scripts/test.sh" >"$out/test-$n.log" 2>&1 || rc=$?
  t2=$(date +%s)
  local summary
  summary=$(grep -E 'tests passed|tests failed' "$out/test-$n.log" | tail -n 1 || true)
  if [ "$rc" -ne 0 ]; then
    log "round $n: test.sh FAILED (exit $rc) after $((t2 - t1)) s: ${summary:-no ctest summary}; see $out/test-$n.log"
    grep -E '^\s+[0-9]+ - .*\((Failed|Timeout|Not Run|SEGFAULT|Subprocess)' "$out/test-$n.log" >&2 || tail -n 30 "$out/test-$n.log" >&2
    return 1
  fi
  log "round $n: test.sh passed in $((t2 - t1)) s ($(fmt $((t2 - t1)))): $summary"
  [ -f "$root$clone/build/test-environment.txt" ] && cp "$root$clone/build/test-environment.txt" "$out/test-environment-$n.txt"
  return 0
}

fmt() { printf '%d min %02d s' $(($1 / 60)) $(($1 % 60)); }

# The command runs as a fresh login would: a clean environment, its own mounts (gone on exit) and
# its own PID namespace (every process it started ends with it).
in_root() { # $1 = shell command
  # The root bound onto itself first: a machine's / is a mount point, which tests that make
  # mount namespaces of their own (unshare --mount) need.
  local mounts="mount --bind '$root' '$root' && mount --rbind /dev '$root/dev' && mount -t proc proc '$root/proc'"
  mounts+=" && mount --rbind /sys '$root/sys'"
  local d
  for d in "${binds[@]}"; do mounts+=" && mount --bind -o ro '$d' '$root$d'"; done
  unshare --mount --pid --fork --kill-child bash -c "$mounts && exec chroot '$root' env -i HOME=/root \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb \
    bash -c '$1'"
}

status=0
for n in $(seq 1 "$rounds"); do
  run_round "$n" || { status=1; break; }
done
log "versions installed in the root: $out/versions-installed.txt"
chroot "$root" dpkg-query -W -f='${Package}=${Version}\n' >"$out/versions-installed.txt" 2>/dev/null || true
[ "$status" -eq 0 ] && log "RESULT: passed ($rounds round(s))" || log "RESULT: FAILED"
# The mounts lived in the namespace of each command; never delete through one that outlived it.
if [ "$keep" -eq 0 ] && ! grep -qF " $root/" /proc/mounts; then rm -rf "$root"; fi
exit "$status"
