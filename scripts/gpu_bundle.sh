#!/usr/bin/env bash
# Makes the offline bundle that scripts/gpu_check.sh builds from on a GPU machine without network
# (CUDA toolkit, CMake and a compiler there; none of dior's Debian packages). Run it here, on the
# Debian 12 development machine (after scripts/setup.sh); it writes OUT (default .devcarry/, ignored
# by git, about 40 MB):
#   llama-src.tar.gz  the pinned llama.cpp source with our patches applied, without .git, docs,
#                     tests, examples and models other than the Qwen2 vocabulary
#   deps.tar.gz       the Debian 12 packages dior's build needs beyond a compiler and libc (the .deb
#                     closure that apt would install on a base system: OpenBLAS, SQLite, libjpeg,
#                     OpenSSL, curl, libarchive, cairo, faiss, nlohmann-json, CLI11, pkg-config
#                     files), unpacked under root/, without static archives and documentation
#   env.sh            sourced there: points pkg-config, CMake and the loader at root/ wherever the
#                     bundle was unpacked (DIOR_DEPS_CMAKE_ARGS: the arguments for dior's CMake)
#   MANIFEST          what is in it, with the Debian versions
#   bash scripts/gpu_bundle.sh [OUT]
#   bash scripts/gpu_bundle.sh --check [OUT]   also configure dior against the unpacked bundle
#                                              alone (CMAKE_FIND_ROOT_PATH_MODE_*=ONLY)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
check=0
if [ "${1:-}" = --check ]; then
  check=1
  shift
fi
out=$(mkdir -p "${1:-$here/.devcarry}" && cd "${1:-$here/.devcarry}" && pwd)
log() { echo "[gpu_bundle] $*" >&2; }
die() {
  echo "[gpu_bundle] error: $*" >&2
  exit 1
}

# What dior's CMakeLists.txt finds (find_package, pkg-config, find_library), as Debian packages.
BUILD_DEPS=(libopenblas-dev libopenblas0-pthread libjpeg62-turbo-dev libfaiss-dev libsqlite3-dev
  nlohmann-json3-dev libcli11-dev libssl-dev zlib1g-dev libcurl4-openssl-dev libarchive-dev
  libcairo2-dev pkg-config)

# --- llama.cpp source ------------------------------------------------------------------------
prefix=$(bash "$here/scripts/setup.sh" --llama-prefix 2>/dev/null | tail -1) ||
  die "scripts/setup.sh --llama-prefix failed; run bash scripts/setup.sh first"
src=$(readlink -f "$prefix/source")
[ -f "$src/.dior-patched" ] || die "$src is not a patched llama.cpp source (scripts/setup.sh makes one)"
log "llama.cpp source: $src"
rm -f "$out/llama-src.tar" "$out/llama-src.tar.gz"
tar -cf "$out/llama-src.tar" -C "$src" --exclude=./.git --exclude=./docs --exclude=./tests \
  --exclude=./examples --exclude=./media --exclude=./tools/server/public --exclude=./tools/ui --exclude='./models/*' .
tar -rf "$out/llama-src.tar" -C "$src" ./models/ggml-vocab-qwen2.gguf # (an --exclude also drops named files)
gzip -n "$out/llama-src.tar"

# --- Debian packages ---------------------------------------------------------------------------
# A dpkg status of what a machine with a compiler already has (this machine's required and
# essential packages, the compiler and what they depend on): apt then downloads the rest.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/status" <<'EOF'
import re, sys
stanzas = {}
for s in open("/var/lib/dpkg/status").read().strip().split("\n\n"):
    if "Status: install ok installed" in s:
        stanzas[re.search(r"^Package: (.*)$", s, re.M).group(1)] = s
provides = {}
for n, s in stanzas.items():
    m = re.search(r"^Provides: (.*)$", s, re.M)
    for p in (m.group(1).split(",") if m else []):
        provides.setdefault(p.strip().split()[0], n)
toolchain = {"gcc", "g++", "gcc-12", "g++-12", "cpp", "make", "libc6-dev", "libstdc++-12-dev", "zlib1g"}
todo = [n for n, s in stanzas.items()
        if n in toolchain or re.search(r"^(Priority: required|Essential: yes)", s, re.M)]
keep = set()
while todo:
    n = todo.pop()
    if n in keep or n not in stanzas:
        continue
    keep.add(n)
    for field in ("Depends", "Pre-Depends"):
        m = re.search(r"^%s: (.*)$" % field, stanzas[n], re.M)
        for dep in (m.group(1).split(",") if m else []):
            for alt in (a.strip().split()[0].split(":")[0] for a in dep.split("|")):
                if alt in stanzas or alt in provides:
                    todo.append(alt if alt in stanzas else provides[alt])
                    break
open(sys.argv[1], "w").write("\n\n".join(stanzas[n] for n in sorted(keep)) + "\n")
EOF
mkdir -p "$tmp/debs/partial"
apt-get install -y -qq --download-only -o Dir::State::status="$tmp/status" -o Dir::Cache::archives="$tmp/debs" \
  -o Debug::NoLocking=1 -o APT::Install-Recommends=false "${BUILD_DEPS[@]}" >"$tmp/apt.log" 2>&1 ||
  die "apt-get could not download the packages: $(tail -3 "$tmp/apt.log")"
root=$tmp/root
mkdir -p "$root"
: >"$out/MANIFEST"
for d in "$tmp"/debs/*.deb; do
  dpkg -x "$d" "$root"
  dpkg-deb -f "$d" Package Version | paste -sd' ' >>"$out/MANIFEST"
done
lib=$root/usr/lib/x86_64-linux-gnu
# What update-alternatives would have linked: OpenBLAS as libblas / liblapack / libopenblas.
for n in libopenblas.so libopenblas.so.0 libblas.so libblas.so.3 liblapack.so liblapack.so.3; do
  [ -e "$lib/openblas-pthread/$n" ] && ln -sfn "openblas-pthread/$n" "$lib/$n"
done
# Not needed to build or run: static archives (but faiss, which Debian ships static only),
# documentation, Python and its tools.
find "$root" -name '*.a' ! -name 'libfaiss*.a' -delete
rm -rf "$root"/usr/share/{doc,man,info,locale,lintian,bug,gtk-doc} "$root"/usr/lib/python3* "$root"/usr/bin/python3*
# Absolute /usr paths in CMake package files: made relative to a placeholder env.sh fills in.
grep -rl "/usr/lib/x86_64-linux-gnu/" "$lib/cmake" 2>/dev/null | while read -r f; do
  sed -i 's|/usr/lib/x86_64-linux-gnu/|@DIOR_DEPS@/usr/lib/x86_64-linux-gnu/|g' "$f"
done
tar -czf "$out/deps.tar.gz" -C "$tmp" root

cat >"$out/env.sh" <<'EOF'
# Sourced after `tar -xzf deps.tar.gz` in this folder: the unpacked packages for pkg-config, CMake
# and the loader. Gives DIOR_DEPS (the root) and DIOR_DEPS_CMAKE_ARGS (for dior's CMake).
DIOR_DEPS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/root
[ -d "$DIOR_DEPS/usr" ] || { echo "env.sh: unpack deps.tar.gz next to it first" >&2; return 1; }
if grep -rlq "@DIOR_DEPS@" "$DIOR_DEPS/usr/lib/x86_64-linux-gnu/cmake" 2>/dev/null; then
  grep -rl "@DIOR_DEPS@" "$DIOR_DEPS/usr/lib/x86_64-linux-gnu/cmake" | xargs sed -i "s|@DIOR_DEPS@|$DIOR_DEPS|g"
fi
export PKG_CONFIG_LIBDIR=$DIOR_DEPS/usr/lib/x86_64-linux-gnu/pkgconfig:$DIOR_DEPS/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$DIOR_DEPS
export LD_LIBRARY_PATH=$DIOR_DEPS/usr/lib/x86_64-linux-gnu:$DIOR_DEPS/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# pkg-config itself comes with the bundle too
[ -x "$DIOR_DEPS/usr/bin/pkg-config" ] && export PKG_CONFIG=$DIOR_DEPS/usr/bin/pkg-config
DIOR_DEPS_CMAKE_ARGS="-DCMAKE_PREFIX_PATH=$DIOR_DEPS/usr -DOPENSSL_ROOT_DIR=$DIOR_DEPS/usr"
DIOR_DEPS_CMAKE_ARGS+=" -DCMAKE_CXX_FLAGS=-isystem\ $DIOR_DEPS/usr/include/x86_64-linux-gnu\ -isystem\ $DIOR_DEPS/usr/include"
export DIOR_DEPS DIOR_DEPS_CMAKE_ARGS
EOF
log "wrote $out: $(du -sh "$out" | cut -f1) ($(wc -l <"$out/MANIFEST") packages, llama.cpp $(du -sh "$out/llama-src.tar.gz" | cut -f1))"

# --- proof: dior configures against the bundle and nothing else -------------------------------
if [ "$check" = 1 ]; then
  un=$tmp/unpacked
  mkdir -p "$un"
  cp "$out/env.sh" "$un/"
  tar -xzf "$out/deps.tar.gz" -C "$un"
  # shellcheck disable=SC1091
  (
    source "$un/env.sh"
    cmake -S "$here" -B "$tmp/dior-build" -DDIOR_BUILD_TESTS=OFF -DDIOR_LLAMA_PREFIX="$prefix" \
      "-DCMAKE_FIND_ROOT_PATH=$DIOR_DEPS;$prefix" -DCMAKE_FIND_ROOT_PATH_MODE_PACKAGE=ONLY \
      -DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=ONLY -DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=ONLY \
      -DOPENSSL_ROOT_DIR="$DIOR_DEPS/usr" >"$tmp/configure.log" 2>&1 ||
      die "dior does not configure against the bundle alone: $(grep -m3 -i error "$tmp/configure.log")"
    # Every library and header CMake found lies in the bundle or the llama.cpp prefix.
    outside=$(grep -E '^[A-Za-z0-9_]+(_LIBRARY|_LIBRARIES|_INCLUDE_DIR|_INCLUDE_DIRS|_DIR):[A-Z]+=/' \
      "$tmp/dior-build/CMakeCache.txt" | grep -v -e "=$DIOR_DEPS" -e "=$prefix" -e "=$here" -e "=$tmp" -e "-NOTFOUND" |
      grep -v -e '^CMAKE_' -e '^OpenMP_' -e '^Threads' || true)
    [ -z "$outside" ] || die "found outside the bundle: $outside"
    found=$(grep -cE "^[A-Za-z0-9_]+(_LIBRARY|_INCLUDE_DIR|_DIR):[A-Z]+=$DIOR_DEPS" "$tmp/dior-build/CMakeCache.txt")
    log "dior configures against the unpacked bundle alone (CMAKE_FIND_ROOT_PATH_MODE_*=ONLY; $found packages," \
      "libraries and headers found in it)"
  )
fi
