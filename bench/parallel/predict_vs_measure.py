#!/usr/bin/python3
"""The planner's predictions against measurements on this machine.

For the bundled Mistral-style training example and each device count, moaicc
--train --devices N chooses and records a plan (today: N data-parallel
ranks); moai-run trains it and logs each step's wall time. Reported per
configuration: predicted and measured step time (median after warm-up), and
predicted memory per device against the plan's own static sizes per rank
(arena + persistent region + weights, from the manifest), with their ratios.

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
    for devices in (1, 2, 4):
        plan = os.path.join(out, f"dp{devices}.plan")
        cmd = [os.path.join(args.build, "bin", "moaicc"), os.path.join(ex, "mistral_train.onnx"),
               "--train", "--micro-batches", str(args.micro_batches), "-o", plan]
        if devices > 1:
            cmd += ["--devices", str(devices)]
        else:
            cmd += ["--devices", "1"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        m = json.load(open(os.path.join(plan, "manifest.json")))
        pred = m.get("prediction") or {}
        dev = m["devices"][0]
        static = dev["arena_bytes"] + dev["weights_bytes"] + m["training"]["persist_bytes"]
        log = os.path.join(out, f"dp{devices}.jsonl")
        if os.path.exists(log):
            os.remove(log)
        subprocess.run([os.path.join(args.build, "bin", "moai-run"), plan, "--data",
                        os.path.join(ex, "data", "train.safetensors"), "--steps", str(args.steps),
                        "--threads", str(args.threads), "--quiet", "--log", log], check=True)
        times = [json.loads(l)["seconds"] for l in open(log) if l.strip()]
        measured = statistics.median(times[4:])
        rows.append((devices, m["mesh"], pred.get("step_seconds"), measured,
                     pred.get("memory_bytes"), static))
    print(f"Mistral-style example, {args.micro_batches} micro-batches of 2 per rank, "
          f"{args.threads} threads in all, median step after 4 warm-up steps of {args.steps}")
    print(f"{'devices':>7} {'mesh':>9} {'pred ms':>9} {'meas ms':>9} {'meas/pred':>9} "
          f"{'pred MiB':>9} {'plan MiB':>9} {'plan/pred':>9}")
    for d, mesh, pt, mt, pm, sm in rows:
        meshs = f"{mesh['dp']}x{mesh['tp']}x{mesh['pp']}"
        print(f"{d:>7} {meshs:>9} {pt * 1e3:>9.2f} {mt * 1e3:>9.2f} {mt / pt:>9.2f} "
              f"{pm / 2**20:>9.2f} {sm / 2**20:>9.2f} {sm / pm:>9.2f}")


if __name__ == "__main__":
    sys.exit(main())
