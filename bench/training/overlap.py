#!/usr/bin/python3
"""Data-parallel step time with and without the gradient sum overlapped
with the backward (docs/training.md, "Data parallelism"): the same dp=2
plan (moaicc --train --data-parallel 2, the training bench's Mistral-style
model and AdamW) run by moai-run on the threads backend, and by mpirun when
--mpi is given, with and without --no-overlap.

Per round each mode trains STEPS steps (the modes alternate, so drift of
the machine hits both); a run's figure is the median step time after
WARMUP steps (from --log), the reported figure the median over rounds. The
overlapped runs' logs must report overlapped_buckets, and both modes must
log the same losses (the overlap changes no bit).

Usage: bench/training/overlap.sh [--threads N] [--runs K] [--config bench|small]
       [--micro-batches K] [--mpi]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

STEPS, WARMUP = 10, 2
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")


def run(build, plan, data_path, threads, log, extra, mpi):
    if os.path.exists(log):
        os.remove(log)
    cmd = [os.path.join(build, "bin", "moai-run"), plan, "--data", data_path, "--steps",
           str(STEPS), "--quiet", "--log", log] + extra
    if mpi:
        cmd = [shutil.which("mpirun"), "--allow-run-as-root", "--oversubscribe", "-np", "2"] + \
            cmd + ["--threads", str(max(1, threads // 2))]
    else:
        cmd += ["--threads", str(threads)]
    subprocess.run(cmd, check=True, env=MPI_ENV)
    with open(log) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return records


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--config", choices=sorted(bench.bench_models.CONFIGS), default="small")
    p.add_argument("--micro-batches", type=int, default=1)
    p.add_argument("--mpi", action="store_true")
    args = p.parse_args()
    cfg = bench.bench_models.CONFIGS[args.config]()
    out = os.path.join(args.build, "bench", "overlap", args.config)
    os.makedirs(out, exist_ok=True)
    onnx_path = os.path.join(out, "train.onnx")
    if not os.path.exists(onnx_path):
        bench.export(bench.bench_models.mistral(args.config), cfg, onnx_path)
    k = args.micro_batches
    plan = os.path.join(out, f"plan_dp2_k{k}")
    subprocess.run([os.path.join(args.build, "bin", "moaicc"), onnx_path, "--train",
                    "--lr", "1e-4", "--data-parallel", "2", "--micro-batches", str(k),
                    "-o", plan], check=True)
    arrays = bench.data(cfg, STEPS * 2 * k)
    data_path = os.path.join(out, "data.safetensors")
    bench.make_train_data.write_safetensors(data_path, arrays)
    times = {"overlap": [], "no-overlap": []}
    buckets = None
    for r in range(args.runs):
        logs = {}
        for mode, extra in (("overlap", []), ("no-overlap", ["--no-overlap"])):
            recs = run(args.build, plan, data_path, args.threads,
                       os.path.join(out, f"{mode}{r}.jsonl"), extra, args.mpi)
            logs[mode] = recs
            times[mode].append(statistics.median(x["seconds"] for x in recs[WARMUP:]))
        got = {x.get("overlapped_buckets") for x in logs["overlap"]}
        if len(got) != 1 or not all(got):
            sys.exit(f"the overlapped run reports overlapped_buckets {got}")
        buckets = got.pop()
        if [x["loss"] for x in logs["overlap"]] != [x["loss"] for x in logs["no-overlap"]]:
            sys.exit("the losses differ with and without overlap")
        print(f"round {r + 1}/{args.runs}: overlap {times['overlap'][-1] * 1e3:.2f} ms/step, "
              f"--no-overlap {times['no-overlap'][-1] * 1e3:.2f} ms/step", flush=True)
    on, off = statistics.median(times["overlap"]), statistics.median(times["no-overlap"])
    params = sum(p.numel() for p in bench.bench_models.mistral(args.config).parameters())
    print(f"\nconfig {args.config}: {params / 1e6:.1f} M parameters, dp=2 x {k} micro-batches of "
          f"{cfg.batch} x {cfg.seq} tokens, AdamW, {'MPI' if args.mpi else 'threads'}, "
          f"{args.threads} threads in all, {buckets} gradient buckets; median of {args.runs} "
          f"runs (each the median of {STEPS - WARMUP} steps after {WARMUP} warm-up)")
    print(f"  overlap       {on * 1e3:9.2f} ms/step")
    print(f"  --no-overlap  {off * 1e3:9.2f} ms/step")
    print(f"  overlap / --no-overlap: {on / off:.3f}")


if __name__ == "__main__":
    main()
