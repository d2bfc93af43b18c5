#!/usr/bin/python3
"""Exports the inference benchmark's Mistral-style decoder.

    /usr/bin/python3 bench/inference/make_bench_model.py --out DIR [--config bench|small]

Writes into DIR:
  mistral_<config>.onnx         logits of the decoder, exported as the examples are
                                (opset 17, TrainingMode.TRAINING, no constant folding)
  mistral_<config>.pt           its state_dict, which torch_peer.py loads
  mistral_<config>/<input>.npy  input_ids, attention_mask, position_ids
`--config bench` (the default) is BenchConfig in bench_models.py (12.8 M
parameters, about 51 MB); `--config small` is the 2-layer decoder of
examples/mistral/, for trying the benchmark quickly.
"""
import argparse
import os
import warnings

import numpy as np
import torch

import bench_models
from bench_models import make_models


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--config", choices=sorted(bench_models.CONFIGS), default="bench")
    args = parser.parse_args()
    torch.set_num_threads(1)
    name = f"mistral_{args.config}"
    model = bench_models.mistral(args.config)
    inputs = bench_models.mistral_inputs(args.config)
    os.makedirs(os.path.join(args.out, name), exist_ok=True)
    for n, t in inputs.items():
        np.save(os.path.join(args.out, name, n + ".npy"), t.numpy())
    path = os.path.join(args.out, name + ".onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # make_models.export: training-mode export without constant folding,
        # every parameter an initializer under its own name (checked), the
        # moai.trainable_parameters metadata, onnx.checker.
        proto = make_models.export(model, tuple(inputs.values()), bench_models.INPUT_NAMES,
                                   ["logits"], path, training=True)
    torch.save(model.state_dict(), os.path.join(args.out, name + ".pt"))
    make_models.report(path, proto, make_models.supported_op_types())
    params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {params / 1e6:.1f} M parameters, inputs "
          f"{'x'.join(map(str, inputs['input_ids'].shape))}")


if __name__ == "__main__":
    main()
