#!/usr/bin/env bash
# Installs every Debian 12 package moai needs, only those missing.
# Usage: scripts/setup.sh [--bench]   (as root, or a user with sudo)
#   --bench  also what the benchmarks' peers need (Node.js and npm for
#            onnxruntime-node)
set -euo pipefail

PACKAGES=(
  # toolchain
  cmake ninja-build gcc g++ pkg-config make
  # LLVM/MLIR 22 C API, tools (mlir-22-tools is required by MLIR's CMake
  # config; llvm-22-tools brings FileCheck and lit)
  libmlir-22-dev mlir-22-tools llvm-22-dev llvm-22-tools
  # clang-22 + its runtime: libFuzzer for the importer's fuzz target
  clang-22 libclang-rt-22-dev
  # ONNX protobuf: onnx.proto and the protobuf-c generator/runtime
  protobuf-c-compiler libprotobuf-c-dev libonnx-dev
  # TorchScript archives (torch.jit.save's zip)
  libzip-dev
  # JSON (manifest, metadata) and unit tests
  libjansson-dev libcunit1-dev
  # SHA-256 of plan files (OpenSSL's libcrypto, EVP)
  libssl-dev
  # data-parallel training under mpirun: libmoai_mpi.so (docs/training.md)
  libopenmpi-dev openmpi-bin
  # ONNX's own conformance data; PyTorch + onnx for test models and references
  libonnx-testdata python3-torch python3-onnx python3-numpy
  # the import benchmark checks with strace that weights are never opened
  strace
  # OpenBLAS behind Debian's torch (libblas.so.3 is otherwise the slow
  # reference BLAS): the PyTorch references and the benchmarks' peer
  libopenblas0-pthread
)
if [ "${1:-}" = "--bench" ]; then
  PACKAGES+=(nodejs)
  # npm comes with NodeSource's nodejs (which conflicts with Debian's npm
  # package); Debian's nodejs needs Debian's npm.
  command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "setup: installing ${#missing[@]} missing packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo"
  else
    echo "setup: error: installing packages needs root. Run 'sudo bash scripts/setup.sh'" >&2
    echo "       (or as root), or install them yourself: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
