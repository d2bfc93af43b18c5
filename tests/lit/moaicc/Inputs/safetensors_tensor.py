#!/usr/bin/python3
"""Prints whether tensor NAME of a safetensors file equals an .npy array.

usage: safetensors_tensor.py FILE.safetensors NAME WANT.npy
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16,
          "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
          "U8": np.uint8, "BOOL": np.bool_}


def main():
    path, name, want_path = sys.argv[1:4]
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    t = header[name]
    begin, end = t["data_offsets"]
    got = np.frombuffer(data[begin:end], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
    want = np.load(want_path)
    same = got.shape == want.shape and np.array_equal(got, want)
    print(f"{name}: {t['dtype']} {t['shape']} {'equal' if same else 'DIFFERENT'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
