#!/bin/sh
# Data-parallel step time with and without the gradient sum overlapped with
# the backward (moai-run --no-overlap). See bench/training/overlap.py.
#
#   bash bench/training/overlap.sh [--threads N] [--runs K] [--config bench|small]
#        [--micro-batches K] [--mpi]
#
# BUILD_DIR defaults to build-bench (configured and built here when needed).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-bench}
bash "$ROOT/scripts/setup.sh"
[ -f "$BUILD/build.ninja" ] || cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$BUILD" moaicc moai-run moai_mpi >/dev/null
exec /usr/bin/python3 "$ROOT/bench/training/overlap.py" --build "$BUILD" "$@"
