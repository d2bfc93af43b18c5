#!/usr/bin/python3
"""Writes the bundled tokenised training set for the Mistral-style example.

examples/mistral/data/train.safetensors (384 examples) and valid.safetensors
(64, a different seed: held out) hold one int64 array per input of
mistral_train.onnx (input_ids, attention_mask, position_ids, labels), first
dimension = examples, each row 16 tokens. The "text" is a toy language the
small model can learn in a few dozen steps: every sequence is an arithmetic
progression of token ids (start 1..255, stride 1, 2, 3, 5 or 7, wrapping
within 1..255), 8 to 16 tokens long, right-padded as Hugging Face tokenizers
pad by default: pad positions have attention_mask 0, token id 0, and label
-100 (ignored by the loss), and position_ids count real tokens only.

Deterministic (NumPy seed); rerunning it rewrites the same bytes.
Usage: /usr/bin/python3 examples/make_train_data.py [--out FILE --examples N --seed S] [--left-pad]
"""
import argparse
import json
import os
import struct

import numpy as np

SEQ = 16
VOCAB = 256
IGNORE_INDEX = -100
EXAMPLES = 384


def make(n, seed, left_pad=False):
    rng = np.random.default_rng(seed)
    ids = np.zeros((n, SEQ), np.int64)
    mask = np.zeros((n, SEQ), np.int64)
    for r in range(n):
        length = int(rng.integers(8, SEQ + 1))
        start = int(rng.integers(1, VOCAB))
        stride = int(rng.choice([1, 2, 3, 5, 7]))
        toks = [1 + (start - 1 + i * stride) % (VOCAB - 1) for i in range(length)]
        cols = slice(SEQ - length, SEQ) if left_pad else slice(0, length)
        ids[r, cols] = toks
        mask[r, cols] = 1
    position_ids = np.clip(np.cumsum(mask, axis=1) - 1, 0, None).astype(np.int64)
    labels = np.where(mask == 1, ids, IGNORE_INDEX).astype(np.int64)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": position_ids,
            "labels": labels}


def write_safetensors(path, arrays, metadata=None):
    """A plain safetensors writer: 8-byte header length, JSON header, data."""
    header, offset, blobs = {}, 0, []
    dtypes = {np.dtype(np.int64): "I64", np.dtype(np.int32): "I32",
              np.dtype(np.float32): "F32", np.dtype(np.float64): "F64"}
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        b = a.tobytes()
        header[name] = {"dtype": dtypes[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", help="write one set here (default: the bundled train and "
                   "validation sets under examples/mistral/data/)")
    p.add_argument("--examples", type=int, default=EXAMPLES)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--left-pad", action="store_true", help="pad on the left instead")
    args = p.parse_args()
    desc = {"description": "toy arithmetic-progression language, 16 tokens per row"}
    if args.out:
        sets = [(args.out, args.examples, args.seed)]
    else:
        d = os.path.join(here, "mistral", "data")
        sets = [(os.path.join(d, "train.safetensors"), EXAMPLES, 7),
                (os.path.join(d, "valid.safetensors"), 64, 8)]
    for path, n, seed in sets:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_safetensors(path, make(n, seed, args.left_pad), desc)
        print(f"wrote {path}: {n} examples")


if __name__ == "__main__":
    main()
