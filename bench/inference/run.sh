#!/bin/sh
# Inference latency: moai against onnxruntime-node and PyTorch eager on the
# same models, inputs and thread count. No target yet; see bench/README.md.
#
#   bash bench/inference/run.sh [--threads N] [--runs K]   (BUILD_DIR defaults to build-bench)
#
# N defaults to every CPU (nproc), K (rounds, each peer once per round) to 7.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/inference
BUILD=${BUILD_DIR:-$ROOT/build-bench}
PY=/usr/bin/python3
THREADS=$(nproc)
RUNS=7
while [ $# -gt 0 ]; do
  case $1 in
    --threads) THREADS=${2:?--threads needs a value}; shift 2 ;;
    --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
    *) echo "usage: bench/inference/run.sh [--threads N] [--runs K]" >&2; exit 2 ;;
  esac
done

# The project's packages plus the peers' (Node.js and npm for onnxruntime-node).
bash "$ROOT/scripts/setup.sh" --bench
for tool in node npm; do
  command -v $tool >/dev/null 2>&1 ||
    { echo "error: $tool not found (scripts/setup.sh --bench installs nodejs and npm)" >&2; exit 2; }
done

# Configure if needed; ninja rebuilds the tools only when something changed.
[ -f "$BUILD/build.ninja" ] || cmake -S "$ROOT" -B "$BUILD" -G Ninja >/dev/null
ninja -C "$BUILD" moaicc moai-run >/dev/null

# onnxruntime-node, pinned in package.json. --ignore-scripts: its install
# script would download; the CPU binaries are in the package itself.
if ! node -e "process.exit(require('$HERE/node_modules/onnxruntime-node/package.json').version === require('$HERE/package.json').dependencies['onnxruntime-node'] ? 0 : 1)" 2>/dev/null; then
  (cd "$HERE" && npm install --ignore-scripts --no-audit --no-fund)
fi

# The Mistral-style model, exported again when it or its sources changed.
OUT=$BUILD/bench/inference
MODEL=$OUT/mistral_bench.onnx
mkdir -p "$OUT"
stale=0
[ -f "$MODEL" ] && [ -f "$OUT/mistral_bench.pt" ] || stale=1
for src in "$HERE/bench_models.py" "$HERE/make_bench_model.py" "$ROOT/examples/make_models.py"; do
  [ $stale -eq 1 ] || [ ! "$src" -nt "$MODEL" ] || stale=1
done
[ $stale -eq 0 ] || $PY "$HERE/make_bench_model.py" --config bench --out "$OUT"

# Plans, compiled every time (well under a second each).
"$BUILD/bin/moaicc" "$MODEL" -o "$OUT/mistral_bench.plan"
"$BUILD/bin/moaicc" "$ROOT/examples/cnn/cnn.onnx" -o "$OUT/cnn.plan"

exec $PY "$HERE/bench.py" --build "$BUILD" --threads "$THREADS" --runs "$RUNS"
