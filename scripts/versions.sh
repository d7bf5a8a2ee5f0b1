# Pinned versions of everything dior.cpp builds on. Sourced by scripts/setup.sh and scripts/test.sh.

# llama.cpp: the source tree shipped inside this npm package (llama/gitRelease.bundle).
NODE_LLAMA_CPP_VERSION=3.21.1
LLAMA_CPP_COMMIT=80fb11ac73e6

# Debian 12 (bookworm) packages, pinned to the versions we build and test with.
DEB_PACKAGES=(
  build-essential=12.9
  cmake=3.25.1-1
  git=1:2.39.5-0+deb12u3
  patch=2.7.6-7
  pkg-config=1.8.1-1
  clang-format=1:14.0-55.7~deb12u1
  libsqlite3-dev=3.40.1-2+deb12u2
  nlohmann-json3-dev=3.11.2-2
  libcli11-dev=2.1.2+ds-1
  libgtest-dev=1.12.1-0.2
  python3-venv=3.11.2-1+b1
  libopenblas-dev=0.3.21+ds-4
  libfaiss-dev=1.7.3-2+b1
  libjpeg62-turbo-dev=1:2.1.5-2
  libssl-dev=3.0.19-1~deb12u2
  zlib1g-dev=1:1.2.13.dfsg-1
  util-linux=2.38.1-5+deb12u3
  clang=1:14.0-55.7~deb12u1
  libclang-rt-14-dev=1:14.0.6-12
  ca-certificates
  libcairo2-dev=1.16.0-7
  libcurl4-openssl-dev=7.88.1-10+deb12u15
  libarchive-dev=3.6.2-1+deb12u5
)

# For the tests only (scripts/test.sh): the headless browser that tests/browser/pages_test.py drives.
TEST_DEB_PACKAGES=(
  chromium=156.0.8078.108-1~deb12u1
  fonts-dejavu-core=2.37-6
)
