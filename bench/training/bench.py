#!/usr/bin/python3
"""Training step time: moai (moaicc --train, moai-run --data) against a
PyTorch eager loop on the same Mistral-style model, batches, optimizer
(AdamW) and thread count.

Per round each peer trains STEPS steps; a run's figure is the median step
time after WARMUP steps, and the reported figure the median over rounds.
moai's step times come from its --log records (wall time of each step:
every micro-batch's forward + backward and the update); PyTorch's from
time.perf_counter around zero_grad, forward, backward and step.

Usage: bench/training/run.sh [--threads N] [--runs K] [--config bench|small]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "inference"))
sys.path.insert(0, os.path.join(ROOT, "examples"))
import bench_models  # noqa: E402
import make_models  # noqa: E402
import make_train_data  # noqa: E402

NAMES = ["input_ids", "attention_mask", "position_ids", "labels"]
STEPS, WARMUP = 10, 2


def data(cfg, steps, seed=3):
    """`steps` batches of random tokens, rows padded like the inference bench."""
    gen = torch.Generator().manual_seed(seed)
    arrays = {n: [] for n in NAMES}
    pads = bench_models.PADS["bench" if cfg.batch == 4 and cfg.seq == 256 else "small"]
    for _ in range(steps):
        ins = make_models.mistral_inputs(cfg, gen, pads)
        for n in NAMES:
            arrays[n].append(ins[n].numpy())
    return {n: np.concatenate(v) for n, v in arrays.items()}


def export(model, cfg, path):
    gen = torch.Generator().manual_seed(1)
    ins = make_models.mistral_inputs(cfg, gen, bench_models.PADS["small"] if cfg.batch == 2
                                     else [("right", 0)] * cfg.batch)
    model.train()
    torch.onnx.export(model, tuple(ins[n] for n in NAMES), path, opset_version=17,
                      do_constant_folding=False, training=torch.onnx.TrainingMode.TRAINING,
                      input_names=NAMES, output_names=["loss"])


def torch_run(config, arrays, threads, steps):
    torch.set_num_threads(threads)
    model = bench_models.mistral(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    b = bench_models.CONFIGS[config].batch
    times = []
    for s in range(steps):
        batch = [torch.from_numpy(arrays[n][s * b:(s + 1) * b]) for n in NAMES]
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = model(*batch)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[WARMUP:])


def moai_run(build, plan, data_path, threads, steps, log):
    if os.path.exists(log):
        os.remove(log)
    subprocess.run([os.path.join(build, "bin", "moai-run"), plan, "--data", data_path,
                    "--steps", str(steps), "--threads", str(threads), "--quiet", "--log", log],
                   check=True)
    with open(log) as f:
        times = [json.loads(line)["seconds"] for line in f if line.strip()]
    return statistics.median(times[WARMUP:])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--config", choices=sorted(bench_models.CONFIGS), default="bench")
    args = p.parse_args()
    cfg = bench_models.CONFIGS[args.config]()
    out = os.path.join(args.build, "bench", "training", args.config)
    os.makedirs(out, exist_ok=True)
    onnx_path = os.path.join(out, "train.onnx")
    if not os.path.exists(onnx_path):
        export(bench_models.mistral(args.config), cfg, onnx_path)
    plan = os.path.join(out, "plan")
    subprocess.run([os.path.join(args.build, "bin", "moaicc"), onnx_path, "--train",
                    "--lr", "1e-4", "-o", plan], check=True)
    arrays = data(cfg, STEPS)
    data_path = os.path.join(out, "data.safetensors")
    make_train_data.write_safetensors(data_path, arrays)
    params = sum(p.numel() for p in bench_models.mistral(args.config).parameters())
    tokens = cfg.batch * cfg.seq
    moai, ref = [], []
    for r in range(args.runs):
        moai.append(moai_run(args.build, plan, data_path, args.threads, STEPS,
                             os.path.join(out, f"moai{r}.jsonl")))
        ref.append(torch_run(args.config, arrays, args.threads, STEPS))
        print(f"round {r + 1}/{args.runs}: moai {moai[-1] * 1e3:.1f} ms/step, "
              f"PyTorch {ref[-1] * 1e3:.1f} ms/step", flush=True)
    m, t = statistics.median(moai), statistics.median(ref)
    print(f"\nconfig {args.config}: {params / 1e6:.1f} M parameters, batch {cfg.batch} x "
          f"{cfg.seq} tokens, AdamW, {args.threads} threads, median of {args.runs} runs "
          f"(each the median of {STEPS - WARMUP} steps after {WARMUP} warm-up)")
    print(f"  moai     {m * 1e3:9.1f} ms/step  {tokens / m:9.0f} tokens/s")
    print(f"  PyTorch  {t * 1e3:9.1f} ms/step  {tokens / t:9.0f} tokens/s")
    print(f"  moai / PyTorch step time: {m / t:.2f}x")


if __name__ == "__main__":
    main()
