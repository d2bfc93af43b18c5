#!/usr/bin/python3
"""Inference latency of moai against onnxruntime-node and PyTorch eager.

    /usr/bin/python3 bench/inference/bench.py --build BUILD --threads N --runs K

Called by run.sh, which builds the tools, installs onnxruntime-node, exports
the Mistral-style model and compiles the plans first. For each model, K rounds;
in each round every peer runs once, in an order that rotates from round to
round, as its own process: W untimed steps, then S timed steps, of which the
round keeps the median. A peer's figure is the median of its K round values, so
that the three share the machine's noise. Then the outputs of the last round
are compared: moai against PyTorch must agree within 1e-3 (max abs), or the
run fails. Prints the table and writes it, with the machine, to
BUILD/bench/inference/results.md.
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"
TOLERANCE = 1e-3
PEERS = ("moai", "onnxruntime", "pytorch")


def models(out):
    """name -> what each peer needs. warmup/steps are per round and process."""
    mistral = os.path.join(out, "mistral_bench")
    cnn = os.path.join(REPO, "examples", "cnn")
    return {
        "mistral_bench": dict(
            onnx=mistral + ".onnx", plan=mistral + ".plan", weights=mistral + ".pt",
            inputs={n: os.path.join(mistral, n + ".npy")
                    for n in ("input_ids", "attention_mask", "position_ids")},
            output="logits", warmup=2, steps=3, ref=None, omp_passive=True,
            what="Mistral-style decoder, 4 layers, hidden 512, batch 4 x 256 tokens"),
        "cnn": dict(
            onnx=os.path.join(cnn, "cnn.onnx"), plan=os.path.join(out, "cnn.plan"), weights=None,
            inputs={"image": os.path.join(cnn, "ref", "image.npy")},
            output="logits", warmup=200, steps=500, ref=os.path.join(cnn, "ref", "logits.npy"),
            omp_passive=False,
            what="examples/cnn/cnn.onnx, batch 2 x 3x16x16"),
    }


def peer_command(peer, name, m, args, out_dir):
    """argv and environment of one peer's process."""
    env = dict(os.environ)
    ins = [f"{k}={v}" for k, v in m["inputs"].items()]
    steps = ["--warmup", str(m["warmup"]), "--repeat", str(m["steps"])]
    if peer == "moai":
        argv = [os.path.join(args.build, "bin", "moai-run"), m["plan"], "--threads",
                str(args.threads), *steps, "--output-dir", out_dir]
        for spec in ins:
            argv += ["--input", spec]
    elif peer == "onnxruntime":
        argv = ["node", os.path.join(HERE, "ort_peer.js"), m["onnx"], "--threads",
                str(args.threads), *steps, "--output-dir", out_dir]
        for spec in ins:
            argv += ["--input", spec]
    else:
        argv = [PY, os.path.join(HERE, "torch_peer.py"), name, "--threads", str(args.threads),
                *steps, "--output-dir", out_dir]
        if m["weights"]:
            argv += ["--weights", m["weights"]]
        for spec in ins:
            argv += ["--input", spec]
        env = torch_env(args.threads, m["omp_passive"])
    return argv, env


def torch_env(threads, omp_passive):
    """The environment may pin OpenBLAS to Haswell kernels and a small L2,
    which halves its speed on AVX-512: unset for this peer only. Debian's torch
    has two thread pools, libgomp's for its own kernels and OpenBLAS's pthreads
    for GEMM; both get the thread count (torch.set_num_threads does not reach
    OpenBLAS's). With `omp_passive`, libgomp's idle threads sleep instead of
    spinning: on the Mistral model, spinning takes the cores from OpenBLAS and
    a 2-thread step takes 2-4 times as long (measured here), while on the
    small CNN (no OpenBLAS to speak of) sleeping costs about 25%. Each model
    gets torch's faster setting."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(threads)
    if omp_passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


MOAI_TIMING = re.compile(r"(\d+) steps on (\d+) threads: median ([0-9.]+) ms")


def run_peer(peer, name, m, args, out_dir):
    """One process of one peer: (median ms of its timed steps, threads used)."""
    argv, env = peer_command(peer, name, m, args, out_dir)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{peer} on {name} failed ({proc.returncode}):\n  {' '.join(argv)}\n"
                 f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    if peer == "moai":
        match = MOAI_TIMING.search(proc.stdout)
        if not match:
            sys.exit(f"moai-run printed no timing summary:\n{proc.stdout[-2000:]}")
        return float(match.group(3)), int(match.group(2))
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    result = json.loads(line)
    return statistics.median(result["ms"]), result["threads"]


def bench_model(name, m, args):
    rounds = {p: [] for p in PEERS}
    threads = {p: set() for p in PEERS}
    out = os.path.join(args.out, "outputs", name)
    for r in range(args.runs):
        order = PEERS[r % 3:] + PEERS[:r % 3]
        for peer in order:
            ms, used = run_peer(peer, name, m, args, os.path.join(out, peer))
            rounds[peer].append(ms)
            threads[peer].add(used)
        print(f"  {name} round {r + 1}/{args.runs}: " +
              ", ".join(f"{p} {rounds[p][-1]:.3f} ms" for p in PEERS), flush=True)
    for peer, used in threads.items():
        if used != {args.threads}:
            sys.exit(f"{peer} ran {name} on {sorted(used)} threads, not {args.threads}")
    medians = {p: statistics.median(v) for p, v in rounds.items()}
    outputs = {p: np.load(os.path.join(out, p, m["output"] + ".npy")) for p in PEERS}
    return dict(medians=medians, rounds=rounds, outputs=outputs)


def max_abs(a, b):
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def check_outputs(name, m, outputs):
    """Max abs differences; the failures (moai vs PyTorch beyond TOLERANCE,
    or PyTorch not reproducing a committed reference)."""
    diffs = {"moai-pytorch": max_abs(outputs["moai"], outputs["pytorch"]),
             "onnxruntime-pytorch": max_abs(outputs["onnxruntime"], outputs["pytorch"]),
             "moai-onnxruntime": max_abs(outputs["moai"], outputs["onnxruntime"])}
    failures = []
    if not diffs["moai-pytorch"] < TOLERANCE:
        failures.append(f"{name}: moai and PyTorch differ by {diffs['moai-pytorch']:.3g} "
                        f"(tolerance {TOLERANCE})")
    if m["ref"]:
        ref = max_abs(outputs["pytorch"], np.load(m["ref"]))
        diffs["pytorch-reference"] = ref
        if not ref < 1e-5:
            failures.append(f"{name}: PyTorch's module differs from "
                            f"{os.path.relpath(m['ref'], REPO)} by {ref:.3g}: not the weights "
                            f"of {os.path.relpath(m['onnx'], REPO)}")
    return diffs, failures


def machine():
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    field = lambda key: next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines()
                              if ln.startswith(key + ":")), "?")
    flags = field("Flags").split()
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    mem_kb = int(next(ln.split()[1] for ln in open("/proc/meminfo") if ln.startswith("MemTotal")))
    return (f"{field('Model name')} (family {field('CPU family')}, model {field('Model')}; "
            f"{', '.join(isa)}), {os.cpu_count()} CPUs, {mem_kb / 2**20:.0f} GiB, "
            f"{platform.system()} {platform.release()}")


def versions(args):
    run = lambda argv, env=None: subprocess.run(argv, capture_output=True, text=True,
                                                env=env).stdout.strip()
    moai = run([os.path.join(args.build, "bin", "moai-run"), "--version"])
    ort = run(["node", os.path.join(HERE, "ort_peer.js"), "--version"])
    torch = run([PY, os.path.join(HERE, "torch_peer.py"), "--info", "--threads",
                 str(args.threads)], torch_env(args.threads, False))
    build_type = "?"
    cache = os.path.join(args.build, "CMakeCache.txt")
    if os.path.exists(cache):
        build_type = next((ln.split("=", 1)[1].strip() for ln in open(cache)
                           if ln.startswith("CMAKE_BUILD_TYPE:")), "?")
    return f"{moai}, {build_type} build", ort, torch


def table(results):
    """Markdown: per model, each peer's median of the round medians (with the
    fastest round's in parentheses: on a shared machine, the least disturbed),
    the speed-ups from the medians, and the output agreement."""
    rows = ["| model | moai ms | onnxruntime ms | PyTorch ms | speed-up vs onnxruntime "
            "| speed-up vs PyTorch | max abs diff moai-PyTorch / ORT-PyTorch |",
            "|---|---:|---:|---:|---:|---:|---|"]
    cell = lambda r, p: f"{r['medians'][p]:.3f} ({min(r['rounds'][p]):.3f})"
    for name, r in results.items():
        md, d = r["medians"], r["diffs"]
        rows.append(f"| {name} | {cell(r, 'moai')} | {cell(r, 'onnxruntime')} | "
                    f"{cell(r, 'pytorch')} | {md['onnxruntime'] / md['moai']:.2f}x | "
                    f"{md['pytorch'] / md['moai']:.2f}x | "
                    f"{d['moai-pytorch']:.1e} / {d['onnxruntime-pytorch']:.1e} |")
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", required=True, help="build folder (bin/moai-run)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--runs", type=int, default=7, help="rounds (default 7)")
    parser.add_argument("--models", default="mistral_bench,cnn")
    args = parser.parse_args()
    args.build = os.path.abspath(args.build)
    args.out = os.path.join(args.build, "bench", "inference")
    all_models = models(args.out)
    moai_v, ort_v, torch_v = versions(args)
    header = [f"machine: {machine()}", f"moai: {moai_v}", f"onnxruntime: {ort_v}",
              f"pytorch: {torch_v}"]
    print("\n".join(header), flush=True)
    if "WARNING" in torch_v:
        print("warning: PyTorch runs on the reference BLAS; its figures are not meaningful")
    results, failures = {}, []
    for name in args.models.split(","):
        m = all_models[name]
        print(f"{name}: {m['what']}; {args.runs} rounds of {m['warmup']} warm-up + "
              f"{m['steps']} timed steps per peer, {args.threads} threads"
              f"{'; PyTorch with OMP_WAIT_POLICY=PASSIVE' if m['omp_passive'] else ''}", flush=True)
        r = bench_model(name, m, args)
        r["diffs"], fails = check_outputs(name, m, r["outputs"])
        failures += fails
        results[name] = r
        print(f"  max abs diff: " + ", ".join(f"{k} {v:.2e}" for k, v in r["diffs"].items()))
    text = table(results)
    print(f"\nms per step: median of {args.runs} rounds (fastest round); speed-up = peer median / "
          f"moai median, above 1 = moai faster\n" + text)
    date = datetime.date.today().isoformat()
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(f"date: {date}\n" + "\n".join(header) +
                f"\ncommand: bash bench/inference/run.sh --threads {args.threads} "
                f"--runs {args.runs}\n\n{text}\n")
    print(f"wrote {os.path.join(args.out, 'results.md')}")
    for line in failures:
        print("FAIL: " + line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
