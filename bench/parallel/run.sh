#!/bin/sh
# The planner's predicted step time and memory against measurements on this
# machine (bench/parallel/predict_vs_measure.py).
#   bash bench/parallel/run.sh [--steps S] [--threads T] [--micro-batches K]
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-bench}
bash "$ROOT/scripts/setup.sh"
[ -f "$BUILD/build.ninja" ] || cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$BUILD" moaicc moai-run >/dev/null
exec /usr/bin/python3 "$ROOT/bench/parallel/predict_vs_measure.py" --build "$BUILD" "$@"
