#!/bin/sh
# Training step time: moai against a PyTorch eager loop (AdamW) on the same
# Mistral-style model, batches and thread count. See bench/training/bench.py.
#
#   bash bench/training/run.sh [--threads N] [--runs K] [--config bench|small]
#
# BUILD_DIR defaults to build-bench (configured and built here when needed).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-bench}
bash "$ROOT/scripts/setup.sh"
[ -f "$BUILD/build.ninja" ] || cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$BUILD" moaicc moai-run >/dev/null
exec /usr/bin/python3 "$ROOT/bench/training/bench.py" --build "$BUILD" "$@"
