#!/usr/bin/python3
"""The planner's predictions against measurements on this machine.

For the bundled Mistral-style training example: each device count with the
plan moaicc --train --devices N chooses, then every mesh (dp, tp, pp) with
degrees in {1, 2} forced with --strategy at a global batch of 8 sequences
(4 micro-batches when pp > 1); moai-run trains each plan (thread ranks) and
logs each step's wall time. Reported per configuration: predicted and
measured step time (median after warm-up), and predicted memory per device
against the plan's own static sizes of its largest device (arena +
persistent region + weights, from the manifests), with their ratios.

Usage: bench/parallel/run.sh [--steps S] [--threads T]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--steps", type=int, default=24)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--micro-batches", type=int, default=2)
    args = p.parse_args()
    ex = os.path.join(ROOT, "examples", "mistral")
    out = os.path.join(args.build, "bench", "parallel")
    os.makedirs(out, exist_ok=True)
    rows = []
    configs = [(f"auto{d}", d, None, args.micro_batches, None) for d in (1, 2, 4)]
    for dp, tp, pp in ((2, 1, 1), (1, 2, 1), (1, 1, 2), (2, 2, 1), (1, 2, 2), (2, 1, 2), (2, 2, 2)):
        k = 4 if pp > 1 else 1
        configs.append((f"mesh{dp}{tp}{pp}", dp * tp * pp, f"dp={dp},tp={tp},pp={pp},mb={k}", k,
                        8 // (dp * k)))
    for name, devices, strategy, k, batch in configs:
        plan = os.path.join(out, f"{name}.plan")
        cmd = [os.path.join(args.build, "bin", "moaicc"), os.path.join(ex, "mistral_train.onnx"),
               "--train", "--micro-batches", str(k), "--devices", str(devices), "-o", plan]
        if strategy:
            cmd += ["--strategy", strategy, "--dim", f"batch={batch}"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        m = json.load(open(os.path.join(plan, "manifest.json")))
        pred = m.get("prediction") or {}
        static = 0
        for dev in m["devices"]:
            if "plan" in dev:  # format 3: one sub-plan per device
                sub = json.load(open(os.path.join(plan, dev["plan"], "manifest.json")))
                d0 = sub["devices"][0]
                size = d0["arena_bytes"] + d0["weights_bytes"] + sub["training"]["persist_bytes"]
            else:
                size = dev["arena_bytes"] + dev["weights_bytes"] + m["training"]["persist_bytes"]
            static = max(static, size)
        log = os.path.join(out, f"{name}.jsonl")
        if os.path.exists(log):
            os.remove(log)
        subprocess.run([os.path.join(args.build, "bin", "moai-run"), plan, "--data",
                        os.path.join(ex, "data", "train.safetensors"), "--steps", str(args.steps),
                        "--threads", str(args.threads), "--quiet", "--log", log], check=True)
        times = [json.loads(l)["seconds"] for l in open(log) if l.strip()]
        measured = statistics.median(times[4:])
        rows.append((devices, m["mesh"], pred.get("step_seconds"), measured,
                     pred.get("memory_bytes"), static))
    print(f"Mistral-style example: searched plans with {args.micro_batches} micro-batches of 2 per "
          f"rank, then forced meshes at 8 sequences per step; {args.threads} threads in all, "
          f"median step after 4 warm-up steps of {args.steps}")
    print(f"{'devices':>7} {'mesh':>9} {'pred ms':>9} {'meas ms':>9} {'meas/pred':>9} "
          f"{'pred MiB':>9} {'plan MiB':>9} {'plan/pred':>9}")
    for d, mesh, pt, mt, pm, sm in rows:
        meshs = f"{mesh['dp']}x{mesh['tp']}x{mesh['pp']}"
        print(f"{d:>7} {meshs:>9} {pt * 1e3:>9.2f} {mt * 1e3:>9.2f} {mt / pt:>9.2f} "
              f"{pm / 2**20:>9.2f} {sm / 2**20:>9.2f} {sm / pm:>9.2f}")


if __name__ == "__main__":
    sys.exit(main())
