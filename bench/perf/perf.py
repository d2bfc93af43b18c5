#!/usr/bin/python3
"""moai against PyTorch and onnxruntime: training step, forward pass, peak
memory and model-FLOPs utilisation, in one interleaved run.

    /usr/bin/python3 bench/perf/perf.py --build BUILD --threads N --runs K

Called by bench/perf/run.sh, which builds moai, the peak probes and
onnxruntime-node, exports the model and compiles the plans first (all into
BUILD/bench/perf/). Each of the K rounds runs, each as its own process and in
this order: moai's training plan, the PyTorch training loop, moai's inference
plan, PyTorch's forward, onnxruntime-node's forward. A process runs warm-up
steps, then timed ones, and gives the median of its timed steps; a figure is
the median over the K rounds. Writes BUILD/bench/perf/results.json (every raw
number) and results.md (the table).
"""
import argparse
import datetime
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"
TRAIN_WARMUP, TRAIN_TIMED = 1, 3
FWD_WARMUP, FWD_TIMED = 2, 3
LOSS_TOLERANCE = 2e-3  # max abs difference of the training losses, moai vs PyTorch


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# bench/inference/bench.py: its peers (run_peer), their environment
# (torch_env), output checks and machine description are reused as they are.
INFER = load("inference_bench", os.path.join(ROOT, "bench", "inference", "bench.py"))


def run_child(argv, env=None):
    """Runs argv to completion: (stdout, peak RSS in bytes). The peak comes
    from wait4's rusage of this child alone (ru_maxrss, KiB on Linux), the
    same figure as /usr/bin/time -v's "Maximum resident set size"."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(argv)}\n{stdout[-2000:]}{stderr[-2000:]}")
    return stdout, usage.ru_maxrss * 1024


def moai_train(args, d, r):
    log = os.path.join(d, f"moai_train{r}.jsonl")
    if os.path.exists(log):
        os.remove(log)
    _, rss = run_child([os.path.join(args.build, "bin", "moai-run"),
                        os.path.join(d, "mistral_bench_train.plan"),
                        "--data", os.path.join(d, "train_data.safetensors"),
                        "--steps", str(TRAIN_WARMUP + TRAIN_TIMED), "--threads",
                        str(args.threads), "--quiet", "--log", log])
    with open(log) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return dict(seconds=[x["seconds"] for x in records], loss=[x["loss"] for x in records],
                rss=rss, threads=args.threads)


def torch_train(args, d):
    stdout, rss = run_child([PY, os.path.join(HERE, "torch_train_peer.py"),
                             "--weights", os.path.join(d, "mistral_bench.pt"),
                             "--data", os.path.join(d, "train_data.npz"),
                             "--threads", str(args.threads),
                             "--steps", str(TRAIN_WARMUP + TRAIN_TIMED),
                             "--lr", str(args.lr), "--weight-decay", "0.01"],
                            INFER.torch_env(args.threads, True))
    result = json.loads([ln for ln in stdout.splitlines() if ln.startswith("{")][-1])
    return dict(seconds=result["seconds"], loss=result["loss"], rss=rss,
                threads=result["threads"])


def peaks(args, d):
    """FMA peak (register-only loop) and OpenBLAS sgemm 4096^3, args.threads
    threads each; OpenBLAS without OPENBLAS_CORETYPE/L2_SIZE, as the peers."""
    fma = json.loads(subprocess.run([os.path.join(d, "fma_peak"), str(args.threads), "1"],
                                    check=True, capture_output=True, text=True).stdout)
    gemm = json.loads(subprocess.run([os.path.join(d, "gemm_peak"), str(args.threads), "4096",
                                      "3"], check=True, capture_output=True, text=True,
                                     env=INFER.torch_env(args.threads, False)).stdout)
    return dict(fma_gflops=fma["gflops"], fma_width=fma["width"], gemm_gflops=gemm["best"],
                gemm_runs=gemm["gflops"], gemm_threads=gemm["threads"],
                openblas=f"{gemm['config']} (core {gemm['core']})")


def flops(info):
    """Model FLOPs per step (PaLM, Chowdhery et al. 2022, appendix B): per token
    6 N + 12 L H D S for training, 2 N + 4 L H D S for the forward pass, N the
    parameters of the matmuls (all but the token-embedding table, whose lookup
    is a gather), L layers, H query heads of D, S the sequence; the attention
    term is Q K^T and P V over the whole S x S (the causal half is counted, as
    in PaLM). Tokens: batch x sequence, padding included (every peer computes
    it)."""
    c = info["config"]
    n = info["parameters"] - info["embedding"]
    attn = c["num_hidden_layers"] * c["num_attention_heads"] * c["head_dim"] * c["seq"]
    tokens = c["batch"] * c["seq"]
    return dict(tokens=tokens, matmul_parameters=n, train=tokens * (6 * n + 12 * attn),
                forward=tokens * (2 * n + 4 * attn))


def median_timed(seconds, warmup):
    return statistics.median(seconds[warmup:])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-4)
    args = p.parse_args()
    if args.runs < 5:
        sys.exit("--runs: at least 5 (the figures are medians of runs)")
    args.build = os.path.abspath(args.build)
    d = os.path.join(args.build, "bench", "perf")
    with open(os.path.join(d, "model.json")) as f:
        info = json.load(f)
    if info["steps"] < TRAIN_WARMUP + TRAIN_TIMED:
        sys.exit(f"{d}/model.json: {info['steps']} training batches, fewer than the "
                 f"{TRAIN_WARMUP + TRAIN_TIMED} steps a run takes (run.sh's TRAIN_STEPS)")
    fl = flops(info)
    moai_v, ort_v, torch_v = INFER.versions(args)
    machine = INFER.machine()
    print(f"machine: {machine}\nmoai: {moai_v}\nonnxruntime: {ort_v}\npytorch: {torch_v}",
          flush=True)
    load_before = os.getloadavg()
    pk = peaks(args, d)
    print(f"peaks on {args.threads} threads: FMA {pk['fma_gflops']:.1f} GFLOP/s "
          f"({pk['fma_width']} lanes), OpenBLAS sgemm 4096^3 {pk['gemm_gflops']:.1f} GFLOP/s "
          f"(runs {pk['gemm_runs']}, {pk['openblas']})", flush=True)
    fwd = dict(onnx=os.path.join(d, "mistral_bench.onnx"),
               plan=os.path.join(d, "mistral_bench.plan"),
               weights=os.path.join(d, "mistral_bench.pt"),
               inputs={n: os.path.join(d, "mistral_bench", n + ".npy")
                       for n in ("input_ids", "attention_mask", "position_ids")},
               output="logits", warmup=FWD_WARMUP, steps=FWD_TIMED, ref=None, omp_passive=True)
    train = {"moai": [], "pytorch": []}
    forward = {p: [] for p in INFER.PEERS}
    threads = {}
    for r in range(args.runs):
        for peer in ("moai", "pytorch"):
            res = moai_train(args, d, r) if peer == "moai" else torch_train(args, d)
            res["median"] = median_timed(res["seconds"], TRAIN_WARMUP)
            train[peer].append(res)
            threads.setdefault(f"train {peer}", set()).add(res["threads"])
        for peer in ("moai", "pytorch", "onnxruntime"):
            ms, used = INFER.run_peer(peer, "mistral_bench", fwd, args,
                                      os.path.join(d, "outputs", peer))
            forward[peer].append(ms / 1e3)
            threads.setdefault(f"forward {peer}", set()).add(used)
        print(f"round {r + 1}/{args.runs}: training step moai {train['moai'][-1]['median']:.2f} s "
              f"PyTorch {train['pytorch'][-1]['median']:.2f} s; forward moai "
              f"{forward['moai'][-1] * 1e3:.0f} ms PyTorch {forward['pytorch'][-1] * 1e3:.0f} ms "
              f"onnxruntime {forward['onnxruntime'][-1] * 1e3:.0f} ms", flush=True)
    load_after = os.getloadavg()
    failures = [f"{what} ran on {sorted(used)} threads, not {args.threads}"
                for what, used in threads.items() if used != {args.threads}]

    # Agreement: the same training (losses step by step) and the same logits.
    loss_diff = max(abs(a - b) for res_m, res_t in zip(train["moai"], train["pytorch"])
                    for a, b in zip(res_m["loss"], res_t["loss"]))
    if not loss_diff < LOSS_TOLERANCE:
        failures.append(f"training losses of moai and PyTorch differ by {loss_diff:.3g} "
                        f"(tolerance {LOSS_TOLERANCE})")
    outputs = {peer: np.load(os.path.join(d, "outputs", peer, "logits.npy"))
               for peer in INFER.PEERS}
    diffs, fails = INFER.check_outputs("mistral_bench", fwd, outputs)
    failures += fails

    step = {peer: statistics.median(x["median"] for x in v) for peer, v in train.items()}
    rss = {peer: max(x["rss"] for x in v) for peer, v in train.items()}
    fwd_s = {peer: statistics.median(v) for peer, v in forward.items()}

    def rates(flop, seconds):
        """Throughput and model-FLOPs utilisation of a step of `flop` FLOPs."""
        gflops = flop / seconds / 1e9
        return dict(step_s=seconds, tokens_per_s=fl["tokens"] / seconds, gflops=gflops,
                    mfu_gemm=gflops / pk["gemm_gflops"], mfu_fma=gflops / pk["fma_gflops"])

    result = dict(
        date=datetime.date.today().isoformat(), machine=machine, threads=args.threads,
        runs=args.runs, versions=dict(moai=moai_v, onnxruntime=ort_v, pytorch=torch_v),
        loadavg_before=load_before, loadavg_after=load_after, model=info, flops=fl, peaks=pk,
        steps=dict(train_warmup=TRAIN_WARMUP, train_timed=TRAIN_TIMED, forward_warmup=FWD_WARMUP,
                   forward_timed=FWD_TIMED),
        train={peer: dict(rates(fl["train"], step[peer]), peak_rss_bytes=rss[peer], runs=v)
               for peer, v in train.items()},
        forward={peer: dict(rates(fl["forward"], fwd_s[peer]), runs_s=forward[peer])
                 for peer in INFER.PEERS},
        agreement=dict(train_loss_max_abs=loss_diff, logits_max_abs=diffs), failures=failures)

    t, f = result["train"], result["forward"]
    pct = lambda x: f"{100 * x:.1f}%"
    rows = [
        "| measure | moai | PyTorch | onnxruntime | moai / PyTorch | moai / onnxruntime |",
        "|---|---:|---:|---:|---:|---:|",
        f"| training step, tokens/s | {t['moai']['tokens_per_s']:.0f} | "
        f"{t['pytorch']['tokens_per_s']:.0f} | – | "
        f"{t['moai']['tokens_per_s'] / t['pytorch']['tokens_per_s']:.2f}x | – |",
        f"| training step, ms | {step['moai'] * 1e3:.0f} | {step['pytorch'] * 1e3:.0f} | – | "
        f"{step['moai'] / step['pytorch']:.2f}x | – |",
        f"| forward, tokens/s | {f['moai']['tokens_per_s']:.0f} | "
        f"{f['pytorch']['tokens_per_s']:.0f} | {f['onnxruntime']['tokens_per_s']:.0f} | "
        f"{f['moai']['tokens_per_s'] / f['pytorch']['tokens_per_s']:.2f}x | "
        f"{f['moai']['tokens_per_s'] / f['onnxruntime']['tokens_per_s']:.2f}x |",
        f"| forward, ms | {fwd_s['moai'] * 1e3:.0f} | {fwd_s['pytorch'] * 1e3:.0f} | "
        f"{fwd_s['onnxruntime'] * 1e3:.0f} | {fwd_s['moai'] / fwd_s['pytorch']:.2f}x | "
        f"{fwd_s['moai'] / fwd_s['onnxruntime']:.2f}x |",
        f"| training peak RSS, MiB | {rss['moai'] / 2**20:.0f} | {rss['pytorch'] / 2**20:.0f} | "
        f"– | {rss['moai'] / rss['pytorch']:.2f}x | – |",
        f"| training GFLOP/s | {t['moai']['gflops']:.1f} | {t['pytorch']['gflops']:.1f} | – | "
        f"| |",
        f"| training MFU vs GEMM peak / FMA peak | {pct(t['moai']['mfu_gemm'])} / "
        f"{pct(t['moai']['mfu_fma'])} | {pct(t['pytorch']['mfu_gemm'])} / "
        f"{pct(t['pytorch']['mfu_fma'])} | – | | |",
        f"| forward GFLOP/s | {f['moai']['gflops']:.1f} | {f['pytorch']['gflops']:.1f} | "
        f"{f['onnxruntime']['gflops']:.1f} | | |",
        f"| forward MFU vs GEMM peak / FMA peak | {pct(f['moai']['mfu_gemm'])} / "
        f"{pct(f['moai']['mfu_fma'])} | {pct(f['pytorch']['mfu_gemm'])} / "
        f"{pct(f['pytorch']['mfu_fma'])} | {pct(f['onnxruntime']['mfu_gemm'])} / "
        f"{pct(f['onnxruntime']['mfu_fma'])} | | |",
    ]
    notes = (f"{args.threads} threads, median of {args.runs} interleaved runs (training: "
             f"{TRAIN_TIMED} timed steps after {TRAIN_WARMUP} warm-up per run; forward: "
             f"{FWD_TIMED} after {FWD_WARMUP}); {fl['tokens']} tokens a step; model FLOPs a "
             f"step: training {fl['train'] / 1e9:.1f} G, forward {fl['forward'] / 1e9:.1f} G; "
             f"peaks: OpenBLAS sgemm 4096^3 {pk['gemm_gflops']:.1f} GFLOP/s, FMA "
             f"{pk['fma_gflops']:.1f} GFLOP/s; load average before/after "
             f"{load_before[0]:.1f}/{load_after[0]:.1f}\n"
             f"agreement: training losses max abs diff {loss_diff:.1e}; logits max abs diff "
             f"moai-PyTorch {diffs['moai-pytorch']:.1e}, onnxruntime-PyTorch "
             f"{diffs['onnxruntime-pytorch']:.1e}")
    text = "\n".join(rows)
    print("\n" + text + "\n" + notes)
    with open(os.path.join(d, "results.json"), "w") as fp:
        json.dump(result, fp, indent=1)
    with open(os.path.join(d, "results.md"), "w") as fp:
        fp.write(f"date: {result['date']}\nmachine: {machine}\nmoai: {moai_v}\n"
                 f"onnxruntime: {ort_v}\npytorch: {torch_v}\n"
                 f"command: bash bench/perf/run.sh --threads {args.threads} --runs {args.runs}"
                 f"\n\n{text}\n\n{notes}\n")
    print(f"wrote {os.path.join(d, 'results.json')} and results.md")
    for line in failures:
        print("FAIL: " + line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
