#!/usr/bin/python3
"""Loads a moai checkpoint into the PyTorch Mistral-style example and
evaluates it: the token-weighted mean loss over a data set, with the trained
weights and with the initial ones (those of examples/mistral/mistral_train.onnx).

Shows that trained weights go back into PyTorch under their own names, with
nothing but NumPy to read the safetensors file (docs/training.md).

Usage: /usr/bin/python3 examples/eval_checkpoint.py CKPT_DIR DATA.safetensors [--examples N]
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_models as mm  # noqa: E402

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}
NAMES = ["input_ids", "attention_mask", "position_ids", "labels"]


def load_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        a = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=DTYPES[t["dtype"]])
        out[name] = torch.from_numpy(a.reshape(t["shape"]).copy())
    return out, meta


def mean_loss(model, data, examples, batch=8):
    total, tokens = 0.0, 0
    with torch.no_grad():
        for i in range(0, examples, batch):
            rows = [data[n][i:i + batch] for n in NAMES]
            count = int((rows[3][:, 1:] != mm.IGNORE_INDEX).sum())
            total += float(model(*rows)) * count
            tokens += count
    return total / tokens


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="a moai-run --save directory")
    p.add_argument("data", help="a .safetensors data set with the model's inputs")
    p.add_argument("--examples", type=int, default=64)
    args = p.parse_args()
    torch.manual_seed(0)
    model = mm.MistralForCausalLM(mm.MistralConfig()).eval()
    data, _ = load_safetensors(args.data)
    n = min(args.examples, data["input_ids"].shape[0])
    before = mean_loss(model, data, n)
    state, meta = load_safetensors(os.path.join(args.checkpoint, "checkpoint.safetensors"))
    weights = {k: v for k, v in state.items() if not k.startswith("optimizer.")}
    model.load_state_dict(weights, strict=True)
    after = mean_loss(model, data, n)
    print(f"PyTorch, {n} examples: mean loss {before:.4f} with the initial weights, "
          f"{after:.4f} with the {len(weights)} weights moai trained "
          f"(checkpoint at step {meta.get('step')})")
    if not after < before:
        sys.exit("eval_checkpoint: the trained weights do not lower the loss")


if __name__ == "__main__":
    main()
