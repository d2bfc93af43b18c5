#!/usr/bin/python3
"""Exports the performance benchmark's model twice, and its training data.

    /usr/bin/python3 bench/perf/make_perf_models.py --out DIR --steps N

The model is bench_models.BenchConfig (bench/inference/bench_models.py): a
Mistral-style decoder, vocab 1024, hidden 512, 4 layers, 8 query and 4
key/value heads of 64, MLP 1408, batch 4 x sequence 256, float32, seed 0.
Writes into DIR:
  mistral_bench.onnx         logits (the forward pass), as the examples are
                             exported (opset 17, TrainingMode.TRAINING, no
                             constant folding, parameter names checked)
  mistral_bench_train.onnx   the same with `labels` -> the scalar loss
  mistral_bench.pt           the state_dict that the PyTorch peers load
  mistral_bench/<input>.npy  the forward pass's inputs
  train_data.safetensors     N batches for moai-run --data
  train_data.npz             the same arrays, for the PyTorch training loop
  model.json                 parameter counts and the configuration
"""
import argparse
import importlib.util
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "inference"))
sys.path.insert(0, os.path.join(ROOT, "examples"))
import bench_models  # noqa: E402
import make_models  # noqa: E402
import make_train_data  # noqa: E402

# The brief's model; checked against BenchConfig so that the two cannot drift.
EXPECTED = dict(vocab_size=1024, hidden_size=512, num_hidden_layers=4, num_attention_heads=8,
                num_key_value_heads=4, head_dim=64, intermediate_size=1408, seq=256, batch=4)


def training_module():
    """bench/training/bench.py, whose data() draws the training batches."""
    spec = importlib.util.spec_from_file_location(
        "training_bench", os.path.join(ROOT, "bench", "training", "bench.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, required=True, help="training batches to write")
    args = parser.parse_args()
    cfg = bench_models.CONFIGS["bench"]()
    wrong = {k: (getattr(cfg, k), v) for k, v in EXPECTED.items() if getattr(cfg, k) != v}
    if wrong:
        sys.exit(f"bench_models.BenchConfig differs from the benchmark's model: {wrong} "
                 "(field: (is, should be))")
    torch.set_num_threads(1)
    os.makedirs(os.path.join(args.out, "mistral_bench"), exist_ok=True)
    model = bench_models.mistral("bench")
    inputs = bench_models.mistral_inputs("bench")
    for n, t in inputs.items():
        np.save(os.path.join(args.out, "mistral_bench", n + ".npy"), t.numpy())
    names = bench_models.INPUT_NAMES
    make_models.export(model, tuple(inputs.values()), names, ["logits"],
                       os.path.join(args.out, "mistral_bench.onnx"), training=True)
    arrays = training_module().data(cfg, args.steps)
    b = cfg.batch
    first = tuple(torch.from_numpy(arrays[n][:b]) for n in names + ["labels"])
    make_models.export(model, first, names + ["labels"], ["loss"],
                       os.path.join(args.out, "mistral_bench_train.onnx"), training=True)
    torch.save(model.state_dict(), os.path.join(args.out, "mistral_bench.pt"))
    make_train_data.write_safetensors(os.path.join(args.out, "train_data.safetensors"), arrays)
    np.savez(os.path.join(args.out, "train_data.npz"), **arrays)
    params = {n: p.numel() for n, p in model.named_parameters()}
    info = dict(config={k: getattr(cfg, k) for k in EXPECTED}, steps=args.steps,
                parameters=sum(params.values()),
                embedding=sum(v for n, v in params.items() if "embed_tokens" in n))
    with open(os.path.join(args.out, "model.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(f"mistral_bench: {info['parameters'] / 1e6:.2f} M parameters "
          f"({info['embedding'] / 1e6:.2f} M in the embedding table), {args.steps} training "
          f"batches of {b} x {cfg.seq}")


if __name__ == "__main__":
    main()
