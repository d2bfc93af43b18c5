#!/usr/bin/env bash
# The main job: set up, build, and compile the bundled Mistral-style training
# export into a plan, printing its summary. Usage: bash scripts/run-example.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
model=examples/mistral/mistral_train.onnx
mkdir -p build/out
echo "== moaicc $model -o build/out/mistral_train.plan"
build/bin/moaicc "$model" -o build/out/mistral_train.plan -v
cat build/out/mistral_train.plan/plan.txt
echo "== the verified moai-dialect MLIR (static shapes on every value) is in build/out/mistral_train.plan/model.mlir:"
head -n 20 build/out/mistral_train.plan/model.mlir
echo "   ... ($(wc -l < build/out/mistral_train.plan/model.mlir) lines)"
