#!/bin/sh
# Performance against PyTorch and onnxruntime in one run: the training step
# (tokens/s), the forward pass, peak memory of training, and model-FLOPs
# utilisation against the machine's measured GEMM and FMA peaks.
#
#   bash bench/perf/run.sh [--threads N] [--runs K]   (BUILD_DIR defaults to build-bench)
#
# N defaults to every CPU (nproc), K (interleaved runs, each peer once per run)
# to 5, at least 5. Writes BUILD_DIR/bench/perf/results.json and results.md.
# See bench/README.md and docs/benchmarks.md.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/perf
BUILD=${BUILD_DIR:-$ROOT/build-bench}
PY=/usr/bin/python3
THREADS=$(nproc)
RUNS=5
TRAIN_STEPS=4  # perf.py's TRAIN_WARMUP + TRAIN_TIMED
while [ $# -gt 0 ]; do
  case $1 in
    --threads) THREADS=${2:?--threads needs a value}; shift 2 ;;
    --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
    *) echo "usage: bench/perf/run.sh [--threads N] [--runs K]" >&2; exit 2 ;;
  esac
done

# The project's packages plus the peers' (Node.js, npm, OpenBLAS for torch).
bash "$ROOT/scripts/setup.sh" --bench
for tool in node npm cc; do
  command -v $tool >/dev/null 2>&1 ||
    { echo "error: $tool not found (scripts/setup.sh --bench installs it)" >&2; exit 2; }
done
OPENBLAS=/usr/lib/x86_64-linux-gnu/libopenblas.so.0
[ -f "$OPENBLAS" ] ||
  { echo "error: $OPENBLAS not found (apt-get install libopenblas0-pthread)" >&2; exit 2; }

# moai in Release: configured (or switched to Release) here, tools rebuilt when stale.
if [ ! -f "$BUILD/build.ninja" ] ||
   ! grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$BUILD/CMakeCache.txt"; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
ninja -C "$BUILD" moaicc moai-run >/dev/null

# onnxruntime-node, pinned in bench/inference/package.json. --ignore-scripts:
# its install script would download; the CPU binaries are in the package.
INF=$ROOT/bench/inference
if ! node -e "process.exit(require('$INF/node_modules/onnxruntime-node/package.json').version === require('$INF/package.json').dependencies['onnxruntime-node'] ? 0 : 1)" 2>/dev/null; then
  (cd "$INF" && npm install --ignore-scripts --no-audit --no-fund)
fi

OUT=$BUILD/bench/perf
mkdir -p "$OUT"
# The peak probes: register-only FMA loop, OpenBLAS sgemm.
cc -O2 -march=native -o "$OUT/fma_peak" "$HERE/fma_peak.c" -lpthread
cc -O2 -o "$OUT/gemm_peak" "$HERE/gemm_peak.c" "$OPENBLAS"

# The model (inference and training exports) and data, again when a source changed.
stale=0
for f in mistral_bench.onnx mistral_bench_train.onnx mistral_bench.pt train_data.npz model.json; do
  [ -f "$OUT/$f" ] || stale=1
done
for src in "$HERE/make_perf_models.py" "$INF/bench_models.py" "$ROOT/examples/make_models.py" \
           "$ROOT/bench/training/bench.py"; do
  [ $stale -eq 1 ] || [ ! "$src" -nt "$OUT/model.json" ] || stale=1
done
[ $stale -eq 0 ] || $PY "$HERE/make_perf_models.py" --out "$OUT" --steps $TRAIN_STEPS

# Plans, compiled every time (about a second each). --lr as the PyTorch loop's;
# AdamW's other settings are moaicc's defaults, which are torch.optim's.
"$BUILD/bin/moaicc" "$OUT/mistral_bench_train.onnx" --train --lr 1e-4 \
  -o "$OUT/mistral_bench_train.plan"
"$BUILD/bin/moaicc" "$OUT/mistral_bench.onnx" -o "$OUT/mistral_bench.plan"

exec $PY "$HERE/perf.py" --build "$BUILD" --threads "$THREADS" --runs "$RUNS" --lr 1e-4
