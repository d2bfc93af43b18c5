#!/bin/sh
# Import benchmark: moaicc on a Mistral-7B-shaped ONNX graph whose 27 GiB of
# weights are declared external but absent. Passes when the median wall time
# is under 2 s and the peak RSS under 1 GiB, and (with strace) when the
# weights file is never opened. See bench/README.md.
#
#   bench/import_7b/run.sh [--train]       (BUILD_DIR defaults to build)
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
PY=/usr/bin/python3
RUNS=5
LIMIT_S=2
LIMIT_KB=$((1024 * 1024))
TRAIN=""
[ "${1:-}" = "--train" ] && TRAIN="--train"

# Configure if needed; ninja rebuilds moaicc only when something changed.
[ -f "$BUILD/build.ninja" ] || cmake -S "$ROOT" -B "$BUILD" -G Ninja >/dev/null
ninja -C "$BUILD" moaicc >/dev/null

OUT=$BUILD/bench
MODEL=$OUT/mistral7b_shape${TRAIN:+_train}.onnx
mkdir -p "$OUT"
$PY "$ROOT/bench/import_7b/make_mistral7b_shape.py" "$MODEL" $TRAIN
if [ -e "$OUT/mistral7b.weights" ]; then
  echo "error: $OUT/mistral7b.weights exists; the benchmark needs it absent" >&2
  exit 2
fi

CMD="$BUILD/bin/moaicc $MODEL --emit=mlir --no-check-external-data -o /dev/null"
echo "command: $CMD"
TIMES=$OUT/import_7b.times
: >"$TIMES"
status=0
i=1
while [ $i -le $RUNS ]; do
  # time -f "%e %M": wall seconds and peak RSS in KiB, on the last line.
  if ! /usr/bin/time -f "%e %M" -o "$OUT/run.time" $CMD >"$OUT/run.log" 2>&1; then
    echo "run $i: moaicc failed:" >&2
    tail -n 20 "$OUT/run.log" >&2
    exit 1
  fi
  tail -n 1 "$OUT/run.time" >>"$TIMES"
  echo "run $i: $(tail -n 1 "$OUT/run.time" | awk '{printf "%.2f s, %.0f MiB", $1, $2 / 1024}')"
  i=$((i + 1))
done

median_s=$(sort -n -k1,1 "$TIMES" | awk -v n=$RUNS 'NR == int((n + 1) / 2) {print $1}')
max_kb=$(sort -n -k2,2 "$TIMES" | tail -n 1 | awk '{print $2}')
echo "median wall time: $median_s s (limit $LIMIT_S s)"
echo "max RSS: $((max_kb / 1024)) MiB (limit $((LIMIT_KB / 1024)) MiB)"
if awk -v t="$median_s" -v l=$LIMIT_S 'BEGIN {exit !(t < l)}'; then
  echo "time: PASS"
else
  echo "time: FAIL"; status=1
fi
if [ "$max_kb" -lt $LIMIT_KB ]; then
  echo "memory: PASS"
else
  echo "memory: FAIL"; status=1
fi

# One more run, untimed, that keeps the module: it must hold the 291
# weights (a moaicc that does nothing must not pass), and under strace the
# weights file must never be opened.
MLIR=$OUT/mistral7b_shape.mlir
CHECK="$BUILD/bin/moaicc $MODEL --emit=mlir --no-check-external-data -o $MLIR"
if command -v strace >/dev/null 2>&1; then
  strace -f -qq -e trace=open,openat,openat2 -o "$OUT/strace.log" $CHECK >"$OUT/run.log" 2>&1 ||
    { echo "moaicc failed under strace:" >&2; tail -n 20 "$OUT/run.log" >&2; exit 1; }
  if grep -q 'mistral7b\.weights' "$OUT/strace.log"; then
    echo "weights never opened: FAIL"
    grep 'mistral7b\.weights' "$OUT/strace.log" | head -n 5
    status=1
  else
    echo "weights never opened: PASS ($(wc -l <"$OUT/strace.log") opens traced)"
  fi
else
  $CHECK >"$OUT/run.log" 2>&1 || { tail -n 20 "$OUT/run.log" >&2; exit 1; }
  echo "weights never opened: SKIPPED (strace not installed)"
fi
weights=$(grep -c 'moai\.weight' "$MLIR" 2>/dev/null || true)
if [ "${weights:-0}" -eq 291 ]; then
  echo "module holds the 291 weights: PASS"
else
  echo "module holds the 291 weights: FAIL (found ${weights:-0} lines with moai.weight in $MLIR)"
  status=1
fi

[ $status -eq 0 ] && echo "import_7b: PASS" || echo "import_7b: FAIL"
exit $status
