#!/usr/bin/python3
"""Training the Mistral-style example on dp x tp x pp meshes (docs/training.md,
"Meshes") against PyTorch.

Global batch 8, 20 AdamW steps (train_test.py's model, data and optimizer
settings; the reference is the single-device PyTorch run of batch 8). Each
mesh (D, T, P) is compiled with

  moaicc --train --dim batch=B --micro-batches K --devices D*T*P
         --strategy dp=D,tp=T,pp=P,mb=K      (K = 4 when P > 1, else 1;
                                               B = 8 / (D * K))

and trained without shuffling:

  threads_DxTxP  every rank a thread of one moai-run
  mpi_DxTxP      every rank a process of mpirun -np D*T*P

Each checks every step's loss within 2e-5 of PyTorch's, the first step's
dumped (gathered) gradients within 1e-5, and the final weights of the
gathered --save checkpoint within 1e-4.

  zero_threads_DxTxP, zero_mpi_DxTxP
                 (2,1,1) and (2,2,2) with ZeRO-1 (zero=1): the same bounds, each
                 weight owned by one dp rank, fewer persistent bytes per device
  cross_resume   2x2x2 saves at step 10 and the single-device plan (batch 8)
                 resumes to 20; the single-device plan saves at 10 and 1x2x2
                 resumes to 20; 2x2x2 with ZeRO-1 to 2x2x2 without and back:
                 all within the bounds of PyTorch's run
  recompute      recompute=selective and full on one device and 2x2x2: bit-
                 identical to none, within PyTorch's bounds, smaller arena on one device
  no_drop_last   a trailing partial step with filler rows: 2x2x2 and the
                 single-device plan log the same losses and token counts
  errors         a wrong mpirun process count; --input given to a mesh plan;
                 a tampered device manifest
  overlap_threads, overlap_mpi
                 the dp gradient sum overlapped with the backward changes no
                 bit: 2x1x1 (K = 1 and 2) and 2x2x2 log the same losses and
                 save the same checkpoint with and without --no-overlap, and
                 the overlapped runs' logs say the backward handed buckets
                 over in every step (overlapped_buckets), the same number
                 whatever K (only the last micro-batch hands them over)

Usage: mesh_test.py --moaicc BIN --moai-run BIN --workdir DIR CASE
"""
import json
import os
import shutil
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dp_test  # noqa: E402
import train_test as tt  # noqa: E402

STEPS = tt.STEPS
GLOBAL_BATCH = 8
MESHES = [(2, 1, 1), (1, 2, 1), (1, 1, 2), (2, 2, 1), (1, 2, 2), (2, 1, 2), (2, 2, 2)]
MPI_ENV = dp_test.MPI_ENV


def mesh_label(mesh):
    return "x".join(str(n) for n in mesh)


def setup(args, case):
    env = tt.Env(args, case)
    model = tt.build_model()
    tt.export_dynamic(model, env.onnx)
    data = env.path("data.safetensors")
    arrays = tt.make_data(data, False, examples=STEPS * GLOBAL_BATCH)
    # train_test's reference reads its batch size from the module.
    tt.BATCH = GLOBAL_BATCH
    return env, model, data, arrays


def compile_mesh(env, mesh, zero=0):
    d, t, p = mesh
    k = 4 if p > 1 else 1
    b = GLOBAL_BATCH // (d * k)
    strategy = f"dp={d},tp={t},pp={p},mb={k},zero={zero}"
    return env.compile(f"plan_{mesh_label(mesh)}{'_zero' if zero else ''}", b, k,
                       ["--optimizer", "adamw", "--devices", str(d * t * p), "--strategy",
                        strategy])


def persist_bytes(plan):
    """Each device's persistent region (weights, gradients, optimizer state)."""
    top = json.load(open(os.path.join(plan, "manifest.json")))
    if top["format_version"] < 3:  # one device for every rank
        return [top["training"]["persist_bytes"]], top
    return [json.load(open(os.path.join(plan, dev["plan"], "manifest.json")))["training"]
            ["persist_bytes"] for dev in top["devices"]], top


def compile_single(env):
    return env.compile("plan_single", GLOBAL_BATCH, 1, ["--optimizer", "adamw"])


def moai_run(env, plan, data, extra, launcher=None, ranks=1, expect_ok=True):
    cmd = [env.args.moai_run, plan, "--data", data, "--quiet"] + list(extra)
    if launcher == "mpi":
        cmd = dp_test.mpirun(ranks, cmd + ["--threads", "1"])
    else:
        cmd += ["--threads", "2"]
    return tt.run(cmd, env=MPI_ENV, expect_ok=expect_ok)


def check(label, losses, weights, ref_losses, ref_weights):
    if len(losses) != len(ref_losses):
        sys.exit(f"{label}: {len(losses)} steps logged, PyTorch ran {len(ref_losses)}")
    missing = sorted(set(ref_weights) - set(weights))
    if missing:
        sys.exit(f"{label}: the checkpoint lacks {missing[:3]} (not gathered?)")
    for n, ref in ref_weights.items():
        if weights[n].shape != ref.shape:
            sys.exit(f"{label}: '{n}' is {weights[n].shape} in the checkpoint, {ref.shape} in "
                     "PyTorch (not a full tensor)")
    dl = max(abs(a - b) for a, b in zip(losses, ref_losses))
    dw = max(float(np.abs(weights[n] - ref_weights[n]).max()) for n in ref_weights)
    if dl > 2e-5 or dw > 1e-4:
        sys.exit(f"{label}: vs PyTorch the loss differs by {dl:.3g} (bound 2e-5), the weights "
                 f"by {dw:.3g} (bound 1e-4)")
    return dl, dw


def run_mesh_case(args, mesh, launcher):
    label = f"{launcher}_{mesh_label(mesh)}"
    if launcher == "mpi" and not dp_test.have_mpi():
        # scripts/setup.sh installs OpenMPI: a missing mpirun is a failure.
        sys.exit(f"{label}: no mpirun: run scripts/setup.sh (libopenmpi-dev openmpi-bin)")
    env, model, data, arrays = setup(args, label)
    t_losses, t_grads, t_weights, _ = tt.torch_run(model, arrays)
    plan = compile_mesh(env, mesh)
    log, ckpt, grads = env.path("run.jsonl"), env.path("run.ckpt"), env.path("grads.safetensors")
    moai_run(env, plan, data, ["--steps", str(STEPS), "--log", log, "--save", ckpt,
                               "--dump-gradients", grads],
             launcher=launcher, ranks=mesh[0] * mesh[1] * mesh[2])
    losses = [r["loss"] for r in tt.jsonl(log)]
    weights, _ = tt.read_safetensors(os.path.join(ckpt, "checkpoint.safetensors"))
    dl, dw = check(label, losses, weights, t_losses, t_weights)
    g, _ = tt.read_safetensors(grads)
    dg = dp_test.check_grads(label, g, t_grads)
    print(f"{label}: {STEPS} steps, global batch {GLOBAL_BATCH}; vs PyTorch: loss {dl:.3g}, "
          f"weights {dw:.3g}, first-step gradients {dg:.3g}")


def run_zero_case(args, mesh, launcher):
    """ZeRO-1 (moaicc --strategy ...,zero=1): every dp rank its own device
    keeping the AdamW moments of only the weights it owns. The same bounds
    against PyTorch; each weight owned by exactly one dp rank; each device's
    persistent region smaller than without ZeRO by the moments it does not
    own (weights + gradients + 2 moments = 4 x the weights' bytes)."""
    label = f"zero_{launcher}_{mesh_label(mesh)}"
    if launcher == "mpi" and not dp_test.have_mpi():
        sys.exit(f"{label}: no mpirun: run scripts/setup.sh (libopenmpi-dev openmpi-bin)")
    env, model, data, arrays = setup(args, label)
    t_losses, _, t_weights, _ = tt.torch_run(model, arrays)
    plan = compile_mesh(env, mesh, zero=1)
    plain = compile_mesh(env, mesh)
    zero_bytes, top = persist_bytes(plan)
    plain_bytes, plain_top = persist_bytes(plain)
    d, t, p = mesh
    if len(top["devices"]) != d * t * p or any(dev["dp"] is None for dev in top["devices"]):
        sys.exit(f"{label}: expected one ZeRO-1 device per rank, got {top['devices']}")
    saved = 0
    for k, dev in enumerate(top["devices"]):
        group = [g for g in top["devices"] if g["tp"] == dev["tp"] and g["pp"] == dev["pp"]]
        owned = [n for g in group for n in g["zero_owned"]]
        sub = json.load(open(os.path.join(plan, dev["plan"], "manifest.json")))
        trained = sub["training"]["trainable"]
        if sorted(owned) != sorted(trained) or len(set(owned)) != len(owned):
            sys.exit(f"{label}: device {k}'s dp group does not own each weight exactly once")
        base = plain_bytes[(dev["pp"] * t + dev["tp"]) % len(plain_bytes)]
        if zero_bytes[k] >= base:
            sys.exit(f"{label}: device {k} keeps {zero_bytes[k]} persistent bytes, not fewer "
                     f"than {base} without ZeRO")
        saved += base - zero_bytes[k]
    log, ckpt = env.path("run.jsonl"), env.path("run.ckpt")
    moai_run(env, plan, data, ["--steps", str(STEPS), "--log", log, "--save", ckpt],
             launcher=launcher, ranks=d * t * p)
    losses = [r["loss"] for r in tt.jsonl(log)]
    weights, _ = tt.read_safetensors(os.path.join(ckpt, "checkpoint.safetensors"))
    dl, dw = check(label, losses, weights, t_losses, t_weights)
    print(f"{label}: {STEPS} steps; vs PyTorch: loss {dl:.3g}, weights {dw:.3g}; persistent "
          f"bytes per device {zero_bytes} with ZeRO-1, {plain_bytes} without ({saved} fewer "
          "in all)")


def arena_bytes(plan):
    """The largest device arena of a plan (format 2 or 3)."""
    top = json.load(open(os.path.join(plan, "manifest.json")))
    if top["format_version"] < 3:
        return top["devices"][0]["arena_bytes"]
    return max(json.load(open(os.path.join(plan, dev["plan"], "manifest.json")))["devices"][0]
               ["arena_bytes"] for dev in top["devices"])


def case_recompute(args):
    """Activation recomputation (--strategy ...,recompute=selective|full,
    moai-recompute): on one device and on 2x2x2, every step's loss and the
    final weights are bit-identical to the plan without recomputation (the
    same arithmetic, recomputed) and within the bounds of PyTorch; on one
    device the arena is smaller."""
    env, model, data, arrays = setup(args, "recompute")
    t_losses, _, t_weights, _ = tt.torch_run(model, arrays)
    for mesh in ((1, 1, 1), (2, 2, 2)):
        runs = {}
        for mode in ("none", "selective", "full"):
            d, t, p = mesh
            k = 4 if p > 1 else 1
            plan = env.compile(f"plan_{mesh_label(mesh)}_{mode}", GLOBAL_BATCH // (d * k), k,
                               ["--optimizer", "adamw", "--devices", str(d * t * p),
                                "--strategy", f"dp={d},tp={t},pp={p},mb={k},recompute={mode}"])
            log, ckpt = env.path(f"{mesh_label(mesh)}_{mode}.jsonl"), env.path(f"{mode}.ckpt")
            moai_run(env, plan, data, ["--steps", str(STEPS), "--log", log, "--save", ckpt])
            losses = [r["loss"] for r in tt.jsonl(log)]
            weights, _ = tt.read_safetensors(os.path.join(ckpt, "checkpoint.safetensors"))
            check(f"recompute {mesh_label(mesh)} {mode}", losses, weights, t_losses, t_weights)
            runs[mode] = (losses, weights, arena_bytes(plan))
        base_l, base_w, base_a = runs["none"]
        for mode in ("selective", "full"):
            l, w, a = runs[mode]
            if l != base_l or any(not np.array_equal(w[n], base_w[n]) for n in base_w):
                sys.exit(f"recompute {mesh_label(mesh)} {mode}: not bit-identical to recompute=none")
            # One device holds both layers' activations: recomputation must
            # shrink its arena. A 2x2x2 stage holds one layer of one
            # micro-batch, where a recomputed segment's transient copies
            # weigh as much as what it frees (reported, not asserted).
            if mesh == (1, 1, 1) and a >= base_a:
                sys.exit(f"recompute {mesh_label(mesh)} {mode}: arena {a} bytes, not below "
                         f"{base_a} without recomputation")
        print(f"recompute {mesh_label(mesh)}: bit-identical to none; largest arena none "
              f"{base_a}, selective {runs['selective'][2]}, full {runs['full'][2]} bytes")


def case_cross_resume(args):
    env, model, data, arrays = setup(args, "cross_resume")
    t_losses, _, t_weights, _ = tt.torch_run(model, arrays)
    plans = {"single": compile_single(env), "2x2x2": compile_mesh(env, (2, 2, 2)),
             "1x2x2": compile_mesh(env, (1, 2, 2)),
             "2x2x2-zero": compile_mesh(env, (2, 2, 2), zero=1)}
    for first, second in (("2x2x2", "single"), ("single", "1x2x2"), ("2x2x2-zero", "2x2x2"),
                          ("2x2x2", "2x2x2-zero")):
        part = env.path(f"{first}_to_{second}")
        log1, log2 = env.path(f"{first}_part.jsonl"), env.path(f"{first}_to_{second}.jsonl")
        moai_run(env, plans[first], data, ["--steps", "10", "--save", part, "--log", log1])
        moai_run(env, plans[second], data, ["--steps", str(STEPS), "--resume", part, "--save",
                                            part, "--log", log2])
        losses = [r["loss"] for r in tt.jsonl(log1)] + [r["loss"] for r in tt.jsonl(log2)]
        w, _ = tt.read_safetensors(os.path.join(part, "checkpoint.safetensors"))
        dl, dw = check(f"{first} -> {second}", losses, w, t_losses, t_weights)
        print(f"cross_resume: {first} to step 10, {second} to {STEPS}: vs PyTorch: loss "
              f"{dl:.3g}, weights {dw:.3g}")


def case_no_drop_last(args):
    """13 examples, --no-drop-last: the second step's 5 real rows and 3
    filler rows; stages without the labels feed copies. 2x2x2 against the
    single-device plan (the filler path has its PyTorch check in
    train_test.py)."""
    env, model, data, arrays = setup(args, "no_drop_last")
    small = env.path("small.safetensors")
    tt.mtd.write_safetensors(small, {k: v[:13].copy() for k, v in arrays.items()})
    runs = {}
    for label, plan in (("single", compile_single(env)), ("2x2x2", compile_mesh(env, (2, 2, 2)))):
        log = env.path(f"{label}.jsonl")
        moai_run(env, plan, small, ["--no-drop-last", "--epochs", "1", "--log", log])
        runs[label] = tt.jsonl(log)
    a, b = runs["single"], runs["2x2x2"]
    if [r["tokens"] for r in a] != [r["tokens"] for r in b] or len(a) != 2:
        sys.exit(f"no_drop_last: steps or token counts differ: {a} vs {b}")
    dl = max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b))
    if dl > 2e-5:
        sys.exit(f"no_drop_last: 2x2x2 loss differs from the single-device run by {dl:.3g}")
    print(f"no_drop_last: 2 steps (8 + 5 real rows), 2x2x2 vs single device: loss {dl:.3g}, "
          "same token counts")


def case_errors(args):
    env, model, data, arrays = setup(args, "errors")
    plan = compile_mesh(env, (1, 2, 2))
    if dp_test.have_mpi():
        dp_test.must_fail(moai_run(env, plan, data, ["--steps", "1"], launcher="mpi", ranks=3,
                                   expect_ok=False),
                          "mpirun started 3 processes", "dp=1 tp=2 pp=2", "mpirun -np 4")
    # Inference options on a multi-device training plan.
    r = tt.run([args.moai_run, plan, "--input", data], expect_ok=False)
    dp_test.must_fail(r, "--input is for inference plans", "is a training plan")
    # A device's manifest edited after compiling: its rank names itself.
    bad = env.path("tampered")
    shutil.copytree(plan, bad)
    sub = os.path.join(bad, "device-3", "manifest.json")
    m = json.load(open(sub))
    m["moai_version"] = m["moai_version"] + "-edited"
    json.dump(m, open(sub, "w"), indent=2)
    dp_test.must_fail(moai_run(env, bad, data, ["--steps", "1"], expect_ok=False),
                      "device-3", "rank 3 (dp 0, tp 1, pp 1) of 4")
    print("errors: a wrong process count and a tampered device manifest are refused with their "
          "messages")


def case_overlap(args, launcher):
    label = f"overlap_{launcher}"
    if launcher == "mpi" and not dp_test.have_mpi():
        sys.exit(f"{label}: no mpirun: run scripts/setup.sh (libopenmpi-dev openmpi-bin)")
    env, model, data, arrays = setup(args, label)
    plans = [("2x1x1", compile_mesh(env, (2, 1, 1)), 2),
             ("2x1x1 K=2", env.compile("plan_2x1x1_k2", GLOBAL_BATCH // 4, 2,
                                       ["--optimizer", "adamw", "--devices", "2", "--strategy",
                                        "dp=2,tp=1,pp=1,mb=2"]), 2),
             ("2x2x2", compile_mesh(env, (2, 2, 2)), 8)]
    hooked = {}
    for name, plan, ranks in plans:
        runs = {}
        for mode, extra in (("overlap", []), ("no_overlap", ["--no-overlap"])):
            tag = f"{name}_{mode}".replace(" ", "_").replace("=", "")
            log, ckpt = env.path(f"{tag}.jsonl"), env.path(f"{tag}.ckpt")
            moai_run(env, plan, data, ["--steps", str(STEPS), "--log", log, "--save", ckpt] + extra,
                     launcher=launcher, ranks=ranks)
            w, _ = tt.read_safetensors(os.path.join(ckpt, "checkpoint.safetensors"))
            runs[mode] = (tt.jsonl(log), w)
        (on_log, on_w), (off_log, off_w) = runs["overlap"], runs["no_overlap"]
        if len(on_log) != STEPS or len(off_log) != STEPS:
            sys.exit(f"{label} {name}: {len(on_log)} and {len(off_log)} steps logged, not {STEPS}")
        counts = {r.get("overlapped_buckets") for r in on_log}
        if len(counts) != 1 or not all(isinstance(c, int) and c > 0 for c in counts):
            sys.exit(f"{label} {name}: the overlapped run's steps report overlapped_buckets "
                     f"{sorted(counts, key=str)}: the backward never handed a bucket over")
        if any("overlapped_buckets" in r for r in off_log):
            sys.exit(f"{label} {name}: --no-overlap still handed buckets over")
        hooked[name] = counts.pop()
        for a, b in zip(on_log, off_log):
            if a["loss"] != b["loss"] or a["tokens"] != b["tokens"]:
                sys.exit(f"{label} {name}: step {a['step']} logs loss {a['loss']!r} with overlap, "
                         f"{b['loss']!r} without (must be the same bits)")
        if sorted(on_w) != sorted(off_w):
            sys.exit(f"{label} {name}: the checkpoints hold different tensors")
        for n in on_w:
            if on_w[n].tobytes() != off_w[n].tobytes():
                d = float(np.abs(on_w[n].astype(np.float64) - off_w[n]).max())
                sys.exit(f"{label} {name}: checkpoint tensor '{n}' differs with and without "
                         f"overlap (by up to {d:.3g}; must be the same bits)")
    if hooked["2x1x1"] != hooked["2x1x1 K=2"]:
        sys.exit(f"{label}: K=1 hands over {hooked['2x1x1']} buckets, K=2 {hooked['2x1x1 K=2']}: "
                 "only the last micro-batch may")
    print(f"{label}: {', '.join(n for n, _, _ in plans)}: {STEPS} steps with and without "
          f"--no-overlap give the same losses and checkpoints, bit for bit; buckets handed over "
          f"by the backward per step: {hooked}")


CASES = {}
for _mesh in MESHES:
    for _launcher in ("threads", "mpi"):
        CASES[f"{_launcher}_{mesh_label(_mesh)}"] = (
            lambda args, m=_mesh, l=_launcher: run_mesh_case(args, m, l))
for _mesh in ((2, 1, 1), (2, 2, 2)):
    for _launcher in ("threads", "mpi"):
        CASES[f"zero_{_launcher}_{mesh_label(_mesh)}"] = (
            lambda args, m=_mesh, l=_launcher: run_zero_case(args, m, l))
CASES["recompute"] = case_recompute
CASES["cross_resume"] = case_cross_resume
CASES["no_drop_last"] = case_no_drop_last
CASES["errors"] = case_errors
CASES["overlap_threads"] = lambda args: case_overlap(args, "threads")
CASES["overlap_mpi"] = lambda args: case_overlap(args, "mpi")


if __name__ == "__main__":
    tt.run_cases(CASES)
