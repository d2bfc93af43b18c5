#!/usr/bin/env bash
# The main job: set up, build, then
#  1. let moai plan the bundled Mistral-style training export (forward +
#     scalar loss) for 4 devices of this machine (--devices 4 --explain: the
#     candidate table, then the plan it compiles: 4 data-parallel ranks of 2
#     sequences, run as thread groups), and train it for 96 AdamW steps (2
#     epochs) on the bundled tokenised data set, showing the loss fall, with
#     a checkpoint at the end;
#  2. load the trained weights into the PyTorch model and evaluate them on
#     the held-out set;
#  3. compile the inference export and check its logits against PyTorch's.
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

echo "== moaicc $ex/mistral_train.onnx --train --devices 4 --explain ... -o $out/mistral_train.plan"
build/bin/moaicc "$ex/mistral_train.onnx" --train --optimizer adamw --lr 2e-2 --weight-decay 0.01 \
  --lr-schedule cosine --warmup-steps 4 --total-steps 96 --devices 4 --explain -o "$out/mistral_train.plan"
grep -E "^(parameters|memory)" "$out/mistral_train.plan/plan.txt" || true
echo "== moai-run $out/mistral_train.plan --data $ex/data/train.safetensors --epochs 2 --shuffle"
rm -rf "$out/mistral_train.ckpt" "$out/mistral_train.jsonl"
build/bin/moai-run "$out/mistral_train.plan" --data "$ex/data/train.safetensors" --epochs 2 \
  --shuffle --seed 1 --log-every 8 --log "$out/mistral_train.jsonl" --save "$out/mistral_train.ckpt"
echo "== the trained weights in PyTorch (held-out set)"
/usr/bin/python3 examples/eval_checkpoint.py "$out/mistral_train.ckpt" "$ex/data/valid.safetensors"

echo "== moaicc $ex/mistral_infer.onnx -o $out/mistral_infer.plan"
build/bin/moaicc "$ex/mistral_infer.onnx" -o "$out/mistral_infer.plan"
cat "$out/mistral_infer.plan/plan.txt"
echo "== moai-run (a right-padded and a left-padded row), 20 steps"
build/bin/moai-run "$out/mistral_infer.plan" "${inputs[@]}" --output-dir "$out/mistral_infer.out" --repeat 20
/usr/bin/python3 tests/lit/moaicc/Inputs/compare_npy.py "$out/mistral_infer.out/logits.npy" "$ex/ref/logits.npy" --atol 1e-4
echo "   logits match PyTorch's (examples/mistral/ref/logits.npy) within 1e-4"
