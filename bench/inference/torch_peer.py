#!/usr/bin/python3
"""PyTorch eager peer of the inference benchmark: times one model's forward.

    /usr/bin/python3 bench/inference/torch_peer.py MODEL --input NAME=FILE.npy ...
        --threads N [--warmup W] [--repeat S] [--weights FILE.pt] [--output-dir DIR]
    /usr/bin/python3 bench/inference/torch_peer.py --info

MODEL is `mistral_bench`, `mistral_small` (bench_models.mistral, weights from
--weights, the state_dict the export wrote) or `cnn` (bench_models.cnn). Runs
W untimed and S timed steps under torch.inference_mode() in eval mode and
prints one JSON line: {"peer": "pytorch", "threads": ..., "ms": [...]}; the
outputs of the last step go to DIR/<output>.npy. --info prints what torch
computes with: its version, its build's BLAS setting and the BLAS library
actually loaded, and thread counts.
"""
import argparse
import json
import os
import re
import time

import numpy as np
import torch

import bench_models


def loaded_libraries(words):
    """Shared libraries mapped into this process whose path has one of `words`."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "/" in line}
    return sorted(p for p in paths if any(w in os.path.basename(p) for w in words))


def info():
    config = torch.__config__.show()
    blas = re.findall(r"\b(?:BLAS_INFO|LAPACK_INFO)=[^,\s]*", config)
    # Touch a GEMM so that lazily loaded BLAS backends are mapped.
    torch.ones(64, 64) @ torch.ones(64, 64)
    libs = loaded_libraries(("blas", "lapack", "mkl", "gomp", "iomp"))
    print(f"torch {torch.__version__}; build: {', '.join(blas) or 'BLAS_INFO not shown'}")
    for lib in libs:
        real = os.path.realpath(lib)
        print(f"  loaded: {lib}" + (f" -> {real}" if real != lib else ""))
    if any("/blas/libblas.so" in os.path.realpath(lib) for lib in libs):
        print("  WARNING: libblas.so.3 is the reference BLAS (install libopenblas0-pthread)")
    try:
        import threadpoolctl
        for pool in threadpoolctl.threadpool_info():
            print(f"  threadpoolctl: {pool.get('internal_api')} {pool.get('version')} "
                  f"{pool.get('num_threads')} threads ({pool.get('filepath')})")
    except ImportError:
        print("  threadpoolctl: not installed")
    print(f"  torch threads: {torch.get_num_threads()} intra-op, "
          f"{torch.get_num_interop_threads()} inter-op; OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')}, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}")


def build(model, weights):
    if model == "cnn":
        return bench_models.cnn(), ["logits"]
    config = model.split("_", 1)[1]
    module = bench_models.mistral(config)
    if weights:
        module.load_state_dict(torch.load(weights))
    return module, ["logits"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", choices=["cnn", "mistral_bench", "mistral_small"])
    parser.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    parser.add_argument("--weights")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--output-dir")
    parser.add_argument("--info", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.info:
        info()
        return
    if not args.model:
        parser.error("a MODEL is required")
    module, out_names = build(args.model, args.weights)
    module.eval()
    # Positional inputs in the order given, which is the graph's order.
    feeds = [torch.from_numpy(np.load(spec.split("=", 1)[1])) for spec in args.input]
    ms = []
    with torch.inference_mode():
        for i in range(args.warmup + args.repeat):
            t0 = time.perf_counter()
            out = module(*feeds)
            t1 = time.perf_counter()
            if i >= args.warmup:
                ms.append((t1 - t0) * 1e3)
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
        np.save(os.path.join(args.output_dir, out_names[0] + ".npy"), out.numpy())
    print(json.dumps({"peer": "pytorch", "threads": torch.get_num_threads(), "ms": ms}))


if __name__ == "__main__":
    main()
