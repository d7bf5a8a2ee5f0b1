# Pinned versions of everything dior.cpp builds on. Sourced by scripts/setup.sh, scripts/probe.sh,
# scripts/test.sh and scripts/fuzz.sh.
#
# Pinning policy (Debian 12 "bookworm")
# -------------------------------------
# Debian keeps a stable release's packages at one upstream release and replaces a package only with
# a fix (a point release or a security update: 3.40.1-2+deb12u1 -> +deb12u2), removing the version
# it replaces from the archive. So a pin of an exact Debian version stops existing whenever a fix
# lands. We therefore pin in two ways:
#
#   name=VERSION  Exact, for what dior's numbers or its build depend on: the compilers and their
#                 OpenMP runtime, CMake, OpenBLAS (every matrix product), libjpeg-turbo (decoded
#                 pixels), faiss (k-means: NMI, AMI), SQLite (the store), nlohmann-json (the JSON
#                 exports' numbers) and clang with its sanitizer runtime (the fuzz build). setup
#                 installs exactly VERSION. When the archive has replaced it by a fix of the same
#                 upstream release, setup installs the newest such fix and says, on one line, to move
#                 the pin; when only another upstream release is left, setup stops (the numbers may
#                 change: test with it, then move the pin; DIOR_ALLOW_UNPINNED=1 takes it anyway).
#                 Each VERSION here is one the archive serves (tests/setup checks it against the
#                 archive). On another system (Ubuntu, another Debian release) the exact pins
#                 name nothing: its own versions are installed, with one warning.
#   name          By release: bookworm's current version, security updates let through. For the
#                 rest (git, OpenSSL, curl, libarchive, cairo, Chromium, ...), whose fixes change
#                 no result.
#
# The versions actually installed are printed once by setup (and kept in build/debian-versions.txt);
# scripts/test.sh saves them with the test results (build/test-results/environment.txt), next to
# the Python packages of the oracles, which tests/requirements.txt pins exactly (PyPI keeps them).

# llama.cpp: the source tree shipped inside this npm package (llama/gitRelease.bundle).
NODE_LLAMA_CPP_VERSION=3.21.1
LLAMA_CPP_COMMIT=80fb11ac73e6

# Everything the build, the tools and the tests need.
DEB_PACKAGES=(
  # exact: the build and the numbers
  g++-12=12.2.0-14+deb12u1
  cmake=3.25.1-1
  libopenblas-dev=0.3.21+ds-4
  libopenblas0-pthread=0.3.21+ds-4
  libjpeg62-turbo-dev=1:2.1.5-2
  libfaiss-dev=1.7.3-2+b1
  libsqlite3-dev=3.40.1-2+deb12u2
  nlohmann-json3-dev=3.11.2-2
  clang-14=1:14.0.6-12
  libclang-rt-14-dev=1:14.0.6-12 # libFuzzer, ASan, UBSan: only *recommended* by clang
  # by release
  build-essential
  clang
  clang-format
  git
  patch
  pkg-config
  ca-certificates
  libcli11-dev
  libgtest-dev
  python3-venv
  python3-dev # Python.h: the Python package's build (nanobind) in scripts/test.sh's venv
  libssl-dev
  zlib1g-dev
  util-linux
  libcairo2-dev
  libcurl4-openssl-dev
  libarchive-dev
)

# For the tests only (scripts/test.sh): the headless browser that tests/browser/pages_test.py drives.
TEST_DEB_PACKAGES=(
  chromium
  fonts-dejavu-core
)
