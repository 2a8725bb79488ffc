#!/usr/bin/env bash
# Install what ppc-llm needs on Debian 12 / Ubuntu: the PowerPC cross-compilers, QEMU user mode,
# clang and tcc (the tests compile --emit-source bundles with them), full-system QEMU (seabios
# holds the VGA ROM of mac99's default display) and what building a guest kernel takes (Debian's
# linux-source-6.1, make, flex, bison, bc), clang's sanitizer and libFuzzer runtimes (the fuzz
# tests), the s390x / MIPS / SPARC64 cross-compilers (portability test targets), and the Python package (with its test extras) in a
# virtual environment at .venv.
# Safe to run again: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(gcc gcc-powerpc-linux-gnu libc6-dev-powerpc-cross binutils-powerpc-linux-gnu
              gcc-powerpc64-linux-gnu libc6-dev-ppc64-cross binutils-powerpc64-linux-gnu
              qemu-user python3-venv make clang tcc
              qemu-system-ppc seabios linux-source-6.1 flex bison bc xz-utils
              libclang-rt-14-dev libfuzzer-14-dev
              gcc-s390x-linux-gnu libc6-dev-s390x-cross gcc-mips-linux-gnu libc6-dev-mips-cross
              gcc-sparc64-linux-gnu libc6-dev-sparc64-cross
              cmake ninja-build g++)  # llama.cpp, the reference (toolkit/llamacpp)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "+ apt-get install ${missing[*]}" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
        --no-install-recommends "${missing[@]}" >&2
fi

if [ ! -x .venv/bin/python ]; then
    echo "+ python3 -m venv .venv" >&2
    python3 -m venv .venv
fi
echo "+ pip install -e .[test]" >&2
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' >&2
