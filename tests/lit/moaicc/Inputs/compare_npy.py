#!/usr/bin/python3
"""Compares a moai-run output (.npy) with a reference computed by PyTorch.

usage: compare_npy.py GOT.npy WANT.npy [--atol A] [--rtol R]

Passes when shapes and dtypes agree and |got - want| <= atol + rtol * |want|
everywhere; prints the largest absolute and relative errors either way.
"""
import argparse
import sys

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("got")
    p.add_argument("want")
    p.add_argument("--atol", type=float, default=1e-4)
    p.add_argument("--rtol", type=float, default=0.0)
    a = p.parse_args()
    got, want = np.load(a.got), np.load(a.want)
    if got.shape != want.shape or got.dtype != want.dtype:
        print(f"FAIL: got {got.dtype}{list(got.shape)}, want {want.dtype}{list(want.shape)}")
        return 1
    if not np.all(np.isfinite(got)):
        print("FAIL: output has NaN or Inf")
        return 1
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    bound = a.atol + a.rtol * np.abs(want.astype(np.float64))
    worst = float(err.max()) if err.size else 0.0
    rel = float((err / np.maximum(np.abs(want), 1e-30)).max()) if err.size else 0.0
    ok = bool(np.all(err <= bound))
    print(f"{'OK' if ok else 'FAIL'}: max abs error {worst:.3g}, max rel error {rel:.3g} "
          f"(atol {a.atol:g}, rtol {a.rtol:g}, {err.size} values)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
