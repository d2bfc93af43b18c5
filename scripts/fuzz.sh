#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-22 (libFuzzer, ASan, UBSan) in
# build-fuzz/ and runs each for a bounded time, the time split between them:
# the ONNX importer on a seed corpus of ONNX's own test models (package
# libonnx-testdata), the TorchScript archive reader and unpickler on the
# fixtures of tests/models/torchscript/.
# Usage: scripts/fuzz.sh [SECONDS] [libFuzzer flags...]   (default 60 s)
# Crashing inputs are written to build-fuzz/fuzz-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=60
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then seconds=$1; shift; fi
case "${1:-}" in -h|--help) sed -n '2,6p' "$0"; exit 0 ;; esac
dir=${MOAI_FUZZ_BUILD_DIR:-build-fuzz}
testdata=/usr/share/libonnx-testdata/data/node

generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
# clang-22 has no omp.h of its own here: give it gcc's (libgomp's) header,
# alone in a folder so none of gcc's other headers shadow clang's.
omp_include="$PWD/$dir/omp-include"
mkdir -p "$omp_include"
ln -sf "$(gcc -print-file-name=include)/omp.h" "$omp_include/omp.h"
if [ ! -f "$dir/CMakeCache.txt" ]; then
  # Everything is built with coverage instrumentation so the fuzzer sees the
  # importer's branches inside libmoai. clang has no libomp here: OpenMP
  # goes through gcc's libgomp, as in the gcc build.
  CC=clang-22 CXX=clang++-22 cmake -S . -B "$dir" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOAI_SANITIZE=ON -DMOAI_BUILD_FUZZERS=ON \
    -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link \
    -DOpenMP_C_FLAGS="-fopenmp=libgomp -isystem $omp_include" -DOpenMP_C_LIB_NAMES=gomp \
    -DOpenMP_gomp_LIBRARY="$(gcc -print-file-name=libgomp.so)"
fi
cmake --build "$dir" --target fuzz_onnx_import fuzz_torchscript -j "$(nproc)"

# Seeds: a few dozen node test models of ops moai supports (two per op
# family, so most import and the fuzzer starts deep in the importer).
corpus=$(mktemp -d /tmp/moai-fuzz-corpus.XXXXXX)
ts_corpus=$(mktemp -d /tmp/moai-fuzz-ts-corpus.XXXXXX)
trap 'rm -rf "$corpus" "$ts_corpus"' EXIT
cp tests/models/torchscript/*.pt tests/models/torchscript/*.pkl "$ts_corpus"/
families="add matmul_2d gemm softmax_axis reduce_mean reduce_sum reduce_max
  layer_normalization concat split slice gather_0 unsqueeze squeeze reshape
  transpose where cast_FLOAT conv_with batchnorm dropout clip constantofshape
  expand range cumsum tril sce_mean gelu erf pow shape flatten identity min max
  constant equal less sigmoid tanh leakyrelu averagepool globalaveragepool"
i=0
if [ -d "$testdata" ]; then
  for family in $families; do
    for model in $(ls -d "$testdata"/test_"$family"*/ 2>/dev/null | head -n 2); do
      [ -f "$model/model.onnx" ] || continue
      cp "$model/model.onnx" "$corpus/seed_$i.onnx"
      i=$((i + 1))
    done
  done
fi
echo "fuzz.sh: $i seed models from $testdata"

mkdir -p "$dir/fuzz-artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# libFuzzer prints a line per new input; keep them in a log and show the end
# (all of it when the fuzzer finds a crash).
run_fuzzer() { # TARGET SECONDS CORPUS [flags...]
  local target=$1 secs=$2 dir_corpus=$3
  shift 3
  local log="$dir/$target.log"
  echo "fuzz.sh: $target for $secs s (log: $log)"
  if "$dir/bin/$target" -max_total_time="$secs" -print_final_stats=1 \
    -rss_limit_mb=4096 -artifact_prefix="$dir/fuzz-artifacts/" "$@" "$dir_corpus" \
    > "$log" 2>&1; then
    grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "$log" || tail -n 5 "$log"
  else
    local rc=$?
    cat "$log"
    echo "fuzz.sh: $target failed (exit $rc); crashing inputs are in $dir/fuzz-artifacts/" >&2
    exit "$rc"
  fi
}
onnx_seconds=$(( (seconds + 1) / 2 ))
ts_seconds=$(( seconds - onnx_seconds > 0 ? seconds - onnx_seconds : 1 ))
run_fuzzer fuzz_onnx_import "$onnx_seconds" "$corpus" "$@"
run_fuzzer fuzz_torchscript "$ts_seconds" "$ts_corpus" "$@"
