#!/usr/bin/env bash
# Set up, build and run every test: the normal build, the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer, and a bounded fuzzing run of
# the ONNX importer. Usage: bash scripts/test.sh  (MOAI_FUZZ_SECONDS=60)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)

echo "== build and test (build/)"
bash scripts/build.sh build
(cd build && ctest --output-on-failure -j "$jobs")

echo "== build and test under ASan + UBSan (build-asan/)"
bash scripts/build.sh --sanitize build-asan
# LeakSanitizer is on: every test must free what it allocates.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j "$jobs")
unset ASAN_OPTIONS UBSAN_OPTIONS

if [ -x scripts/fuzz.sh ] || [ -f scripts/fuzz.sh ]; then
  echo "== fuzz the ONNX importer for ${MOAI_FUZZ_SECONDS:-60} s"
  bash scripts/fuzz.sh "${MOAI_FUZZ_SECONDS:-60}"
fi
echo "== all tests passed"
