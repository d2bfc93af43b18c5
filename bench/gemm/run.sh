#!/bin/sh
# f32 GEMM: moai's matmul kernel against OpenBLAS's cblas_sgemm, 1 and 2
# threads, on square sizes and the benchmark model's shapes. See
# bench/gemm/gemm_bench.c and docs/benchmarks.md ("GEMM").
#
#   bash bench/gemm/run.sh [--threads 1,2] [--runs 5] [--isa avx512|avx2|generic]
#                          [--shapes all|model|square]
#
# BUILD_DIR defaults to build-bench (configured Release and built here).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-bench}
[ -f "$BUILD/build.ninja" ] || cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$BUILD" moairt >/dev/null
[ -e /usr/lib/x86_64-linux-gnu/libopenblas.so.0 ] || [ -e /usr/lib/libopenblas.so.0 ] ||
  { echo "run.sh: OpenBLAS missing: apt-get install libopenblas0-pthread (scripts/setup.sh)" >&2; exit 1; }
cc -O2 -std=c11 -D_GNU_SOURCE -fopenmp -I"$ROOT/runtime" "$ROOT/bench/gemm/gemm_bench.c" \
  -o "$BUILD/gemm_bench" -L"$BUILD/lib" -Wl,-rpath,"$BUILD/lib" -lmoairt -ldl
# OpenBLAS at its best for this CPU: the environment's OPENBLAS_CORETYPE /
# OPENBLAS_L2_SIZE (kept for tests) would select a slower kernel.
exec env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$BUILD/gemm_bench" "$@"
