#!/usr/bin/env bash
# The main job: set up, build, compile the bundled Mistral-style decoder into
# a plan and run it, comparing its logits with PyTorch's; then compile the
# training export (forward + scalar loss) and run its forward pass.
# Usage: bash scripts/run-example.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
ex=examples/mistral
out=build/out
mkdir -p "$out"
inputs=(--input "input_ids=$ex/ref/input_ids.npy" --input "attention_mask=$ex/ref/attention_mask.npy"
        --input "position_ids=$ex/ref/position_ids.npy")

echo "== moaicc $ex/mistral_infer.onnx -o $out/mistral_infer.plan"
build/bin/moaicc "$ex/mistral_infer.onnx" -o "$out/mistral_infer.plan"
cat "$out/mistral_infer.plan/plan.txt"
echo "== moai-run (a right-padded and a left-padded row), 20 steps"
build/bin/moai-run "$out/mistral_infer.plan" "${inputs[@]}" --output-dir "$out/mistral_infer.out" --repeat 20
/usr/bin/python3 tests/lit/moaicc/Inputs/compare_npy.py "$out/mistral_infer.out/logits.npy" "$ex/ref/logits.npy" --atol 1e-4
echo "   logits match PyTorch's (examples/mistral/ref/logits.npy) within 1e-4"

echo "== moaicc $ex/mistral_train.onnx -o $out/mistral_train.plan (forward + loss)"
build/bin/moaicc "$ex/mistral_train.onnx" -o "$out/mistral_train.plan"
build/bin/moai-run "$out/mistral_train.plan" "${inputs[@]}" --input "labels=$ex/ref/labels.npy" \
  --output-dir "$out/mistral_train.out"
/usr/bin/python3 - "$out/mistral_train.out/loss.npy" "$ex/ref/loss.npy" <<'PY'
import sys, numpy as np
got, want = float(np.load(sys.argv[1])), float(np.load(sys.argv[2]))
print("   loss %.6f (PyTorch %.6f)" % (got, want))
PY
