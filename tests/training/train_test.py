#!/usr/bin/python3
"""Whole training runs of the Mistral-style example against PyTorch.

Every case builds the example model exactly as examples/make_models.py does
(its weights are checked against examples/mistral/mistral_train.onnx),
exports it with a dynamic batch axis, trains it with torch.optim.AdamW (lr
1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.01) on a fixed sequence of
padded batches of 4 rows, and compares moai's run (moaicc --train, moai-run
--data) step by step:

  adamw_right, adamw_left   full batch (4 rows): the first step's gradients
                            within 1e-5, every step's loss within 2e-5, the
                            final weights within 1e-4 (right / left padding)
  accum2_*, accum4_*        the same with 2 and 4 micro-batches of gradient
                            accumulation (the plan's batch is 2 or 1), against
                            the same full-batch PyTorch run
  resume                    10 steps, save, resume to 20: the checkpoint is
                            bit-identical to an uninterrupted 20-step run's
  crash_during_save         a process killed while saving leaves the previous
                            checkpoint intact and resumable
  sgd_nesterov_cosine       SGD with momentum and Nesterov, cosine schedule
                            with warm-up (LambdaLR with Hugging Face's formula)
  arena                     the training plan's arena is within 10% of its
                            live-set lower bound
  errors                    bad input: non-scalar loss, unknown trainable
                            name, mismatched dataset, corrupt checkpoint

Usage: train_test.py --moaicc BIN --moai-run BIN --workdir DIR CASE
"""
import argparse
import collections
import json
import math
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "examples"))
import make_models as mm  # noqa: E402
import make_train_data as mtd  # noqa: E402

NAMES = ["input_ids", "attention_mask", "position_ids", "labels"]
STEPS = 20
BATCH = 4
LR, BETAS, EPS, WD = 1e-3, (0.9, 0.999), 1e-8, 0.01


def run(cmd, env=None, expect_ok=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=env)
    if expect_ok and r.returncode != 0:
        sys.exit(f"FAILED ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    kinds = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[b:end], kinds[e["dtype"]]).reshape(e["shape"])
    return out, header.get("__metadata__", {})


def build_model():
    torch.manual_seed(0)
    cfg = mm.MistralConfig()
    model = mm.MistralForCausalLM(cfg)
    # The weights the bundled export holds: the same initialisation.
    proto = onnx.load(os.path.join(ROOT, "examples", "mistral", "mistral_train.onnx"))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    for name, p in model.named_parameters():
        if not np.array_equal(inits[name], p.detach().numpy()):
            sys.exit(f"{name}: the model differs from examples/mistral/mistral_train.onnx")
    return model


def export_dynamic(model, path):
    gen = torch.Generator().manual_seed(1)
    ins = mm.mistral_inputs(mm.MistralConfig(), gen, [("right", 5), ("left", 3)])
    model.train()
    torch.onnx.export(model, tuple(ins[n] for n in NAMES), path, opset_version=17,
                      do_constant_folding=False, training=torch.onnx.TrainingMode.TRAINING,
                      input_names=NAMES, output_names=["loss"],
                      dynamic_axes={n: {0: "batch"} for n in NAMES})
    proto = onnx.load(path)
    entry = proto.metadata_props.add()
    entry.key = "moai.trainable_parameters"
    entry.value = json.dumps([n for n, _ in model.named_parameters()])
    onnx.save(proto, path)


def make_data(path, left_pad, examples=STEPS * BATCH):
    arrays = mtd.make(examples, seed=11, left_pad=left_pad)
    mtd.write_safetensors(path, arrays)
    return arrays


def torch_run(model, arrays, optimizer="adamw", schedule=None, steps=STEPS):
    """Full-batch steps; returns losses, the first step's gradients, the
    final weights and the learning rates."""
    torch.set_num_threads(1)
    model.train()
    params = [p for _, p in model.named_parameters()]
    if optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    else:
        opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.001)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule) if schedule else None
    losses, grads, lrs = [], None, []
    for s in range(steps):
        rows = slice(s * BATCH, (s + 1) * BATCH)
        batch = [torch.from_numpy(arrays[n][rows]) for n in NAMES]
        opt.zero_grad()
        loss = model(*batch)
        loss.backward()
        if grads is None:
            grads = {n: p.grad.detach().numpy().copy() for n, p in model.named_parameters()}
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if sched:
            sched.step()
        losses.append(float(loss))
    weights = {n: p.detach().numpy().copy() for n, p in model.named_parameters()}
    return losses, grads, weights, lrs


class Env:
    def __init__(self, args, case):
        self.args = args
        self.work = os.path.join(args.workdir, case)
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)
        self.onnx = os.path.join(self.work, "model.onnx")

    def path(self, name):
        return os.path.join(self.work, name)

    def compile(self, plan, batch, micro=1, extra=()):
        cmd = [self.args.moaicc, self.onnx, "--train", "--dim", f"batch={batch}",
               "--micro-batches", str(micro), "--lr", str(LR), "--weight-decay", str(WD),
               "-o", self.path(plan)] + list(extra)
        run(cmd)
        return self.path(plan)

    def train(self, plan, data, extra=(), env=None, expect_ok=True):
        cmd = [self.args.moai_run, plan, "--data", data, "--threads", "2", "--quiet"] + list(extra)
        return run(cmd, env=env, expect_ok=expect_ok)


def jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def check_run(env, plan, data, want_losses, want_grads, want_weights, label):
    log, ckpt, grads = env.path(f"{label}.jsonl"), env.path(f"{label}.ckpt"), env.path(f"{label}.grads.safetensors")
    env.train(plan, data, ["--steps", str(STEPS), "--log", log, "--save", ckpt,
                           "--dump-gradients", grads])
    records = jsonl(log)
    if len(records) != STEPS:
        sys.exit(f"{label}: {len(records)} log records, expected {STEPS}")
    worst_loss = max(abs(r["loss"] - w) for r, w in zip(records, want_losses))
    if worst_loss > 2e-5:
        bad = [(r["step"], r["loss"], w) for r, w in zip(records, want_losses) if abs(r["loss"] - w) > 2e-5]
        sys.exit(f"{label}: step losses differ from PyTorch by up to {worst_loss:.3g} (> 2e-5): {bad[:3]}")
    g, _ = read_safetensors(grads)
    worst_grad = 0.0
    for name, ref in want_grads.items():
        err = float(np.abs(g[name] - ref).max())
        worst_grad = max(worst_grad, err)
        if err > 1e-5:
            sys.exit(f"{label}: gradient of {name} differs by {err:.3g} (> 1e-5)")
    w, meta = read_safetensors(os.path.join(ckpt, "checkpoint.safetensors"))
    worst_w = 0.0
    for name, ref in want_weights.items():
        err = float(np.abs(w[name] - ref).max())
        worst_w = max(worst_w, err)
        if err > 1e-4:
            sys.exit(f"{label}: final weight {name} differs by {err:.3g} (> 1e-4)")
    print(f"{label}: {STEPS} steps; loss {records[0]['loss']:.4f} -> {records[-1]['loss']:.4f}; "
          f"worst |loss - torch| {worst_loss:.3g} (bound 2e-5), |grad - torch| {worst_grad:.3g} "
          f"(1e-5), |weight - torch| {worst_w:.3g} (1e-4)")


def case_adamw(args, case, left, micro):
    env = Env(args, case)
    model = build_model()
    export_dynamic(model, env.onnx)
    data = env.path("data.safetensors")
    arrays = make_data(data, left)
    losses, grads, weights, _ = torch_run(model, arrays)
    plan = env.compile("plan", BATCH // micro, micro)
    check_run(env, plan, data, losses, grads, weights, case)


def case_resume(args):
    env = Env(args, "resume")
    export_dynamic(build_model(), env.onnx)
    data = env.path("data.safetensors")
    make_data(data, False)
    plan = env.compile("plan", BATCH)
    full, part = env.path("full"), env.path("part")
    env.train(plan, data, ["--steps", str(STEPS), "--save", full, "--log", env.path("full.jsonl")])
    env.train(plan, data, ["--steps", "10", "--save", part])
    env.train(plan, data, ["--steps", str(STEPS), "--resume", part, "--save", part,
                           "--log", env.path("resumed.jsonl")])
    a = open(os.path.join(full, "checkpoint.safetensors"), "rb").read()
    b = open(os.path.join(part, "checkpoint.safetensors"), "rb").read()
    ta, ma = read_safetensors(os.path.join(full, "checkpoint.safetensors"))
    tb, mb = read_safetensors(os.path.join(part, "checkpoint.safetensors"))
    if set(ta) != set(tb):
        sys.exit("resume: the checkpoints hold different tensors")
    for name in ta:
        if ta[name].tobytes() != tb[name].tobytes():
            sys.exit(f"resume: {name} differs from the uninterrupted run's")
    la = [r["loss"] for r in jsonl(env.path("full.jsonl"))][10:]
    lb = [r["loss"] for r in jsonl(env.path("resumed.jsonl"))]
    if la != lb:
        sys.exit(f"resume: steps 11-20 losses differ: {la} vs {lb}")
    print(f"resume: steps 11-{STEPS} and all {len(ta)} checkpoint tensors bit-identical "
          f"(files {'identical' if a == b else 'differ only in metadata'})")


def case_crash(args):
    env = Env(args, "crash_during_save")
    export_dynamic(build_model(), env.onnx)
    data = env.path("data.safetensors")
    make_data(data, False)
    plan = env.compile("plan", BATCH)
    ck = env.path("ck")
    env.train(plan, data, ["--steps", "3", "--save", ck])
    before = open(os.path.join(ck, "checkpoint.safetensors"), "rb").read()
    crash_env = dict(os.environ, MOAI_TEST_CRASH_DURING_SAVE="1")
    r = env.train(plan, data, ["--steps", "5", "--resume", ck, "--save", ck, "--save-every", "1"],
                  env=crash_env, expect_ok=False)
    if r.returncode == 0:
        sys.exit("crash_during_save: the crash hook did not fire")
    after = open(os.path.join(ck, "checkpoint.safetensors"), "rb").read()
    if before != after:
        sys.exit("crash_during_save: the previous checkpoint changed")
    env.train(plan, data, ["--steps", "5", "--resume", ck, "--save", ck])
    _, meta = read_safetensors(os.path.join(ck, "checkpoint.safetensors"))
    if str(meta.get("step")) != "5":
        sys.exit(f"crash_during_save: resumed checkpoint is at step {meta.get('step')}, expected 5")
    print("crash_during_save: the checkpoint survived a crash mid-save and resumed to step 5")


def case_sgd(args):
    env = Env(args, "sgd_nesterov_cosine")
    model = build_model()
    export_dynamic(model, env.onnx)
    data = env.path("data.safetensors")
    arrays = make_data(data, False)
    warmup, total = 3, STEPS

    def hf_cosine(step):
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))

    losses, grads, weights, lrs = torch_run(model, arrays, "sgd", hf_cosine)
    plan = env.path("plan")
    run([args.moaicc, env.onnx, "--train", "--dim", f"batch={BATCH}", "--optimizer", "sgd",
         "--lr", "0.05", "--momentum", "0.9", "--nesterov", "--weight-decay", "0.001",
         "--lr-schedule", "cosine", "--warmup-steps", str(warmup), "--total-steps", str(total),
         "-o", plan])
    check_run(env, plan, data, losses, grads, weights, "sgd_nesterov_cosine")
    got = [r["lr"] for r in jsonl(env.path("sgd_nesterov_cosine.jsonl"))]
    if any(abs(a - b) > 1e-12 for a, b in zip(got, lrs)):
        sys.exit(f"sgd_nesterov_cosine: logged learning rates {got} vs torch {lrs}")


def case_arena(args):
    env = Env(args, "arena")
    export_dynamic(build_model(), env.onnx)
    for batch, micro in ((4, 1), (1, 4)):
        r = run([args.moaicc, env.onnx, "--train", "--dim", f"batch={batch}", "--micro-batches",
                 str(micro), "--emit=summary"])
        line = [l for l in r.stdout.splitlines() if l.startswith("memory: arena")]
        if not line:
            sys.exit("arena: no memory line in the summary")
        words = line[0].replace("(", " ").replace(",", " ").split()
        arena, lower = int(words[2]), int(words[7])
        ratio = arena / lower
        if ratio > 1.10:
            sys.exit(f"arena: batch {batch}: arena {arena} is {ratio:.3f}x the live-set lower bound {lower}")
        print(f"arena: batch {batch}: {arena} bytes, {100 * (ratio - 1):.1f}% above the lower bound {lower}")


def case_errors(args):
    env = Env(args, "errors")
    model = build_model()
    export_dynamic(model, env.onnx)

    def must_fail(r, *needles):
        text = r.stderr + r.stdout
        if r.returncode == 0 or not all(n in text for n in needles):
            sys.exit(f"errors: expected a failure mentioning {needles}, got rc {r.returncode}:\n{text}")
        if "Segmentation" in text or "Traceback" in text:
            sys.exit(f"errors: crashed:\n{text}")

    # A loss that is not a scalar.
    per_token = env.path("per_token.onnx")
    proto = onnx.load(env.onnx)
    for n in proto.graph.node:
        if n.op_type == "SoftmaxCrossEntropyLoss":
            for a in n.attribute:
                if a.name == "reduction":
                    a.s = b"none"
    proto.graph.output[0].type.tensor_type.ClearField("shape")
    onnx.save(proto, per_token)
    must_fail(run([args.moaicc, per_token, "--train", "--dim", "batch=2", "-o", env.path("p0")],
                  expect_ok=False), "not a float scalar")
    if os.path.exists(env.path("p0")):
        sys.exit("errors: a plan was written for a non-scalar loss")
    # A trainable name that does not exist.
    must_fail(run([args.moaicc, env.onnx, "--train", "--dim", "batch=2", "--trainable",
                   "model.nope.weight", "-o", env.path("p1")], expect_ok=False), "model.nope.weight")
    plan = env.compile("plan", 2)
    good = make_data(env.path("good.safetensors"), False, examples=8)
    # Dataset: wrong dtype, wrong shape, missing array, too few examples.
    bad = dict(good, labels=good["labels"].astype(np.int32))
    mtd.write_safetensors(env.path("dtype.safetensors"), bad)
    must_fail(env.train(plan, env.path("dtype.safetensors"), ["--steps", "1"], expect_ok=False), "labels")
    bad = dict(good, input_ids=good["input_ids"][:, :8])
    mtd.write_safetensors(env.path("shape.safetensors"), bad)
    must_fail(env.train(plan, env.path("shape.safetensors"), ["--steps", "1"], expect_ok=False), "input_ids")
    bad = {k: v for k, v in good.items() if k != "position_ids"}
    mtd.write_safetensors(env.path("missing.safetensors"), bad)
    must_fail(env.train(plan, env.path("missing.safetensors"), ["--steps", "1"], expect_ok=False), "position_ids")
    few = {k: v[:1] for k, v in good.items()}
    mtd.write_safetensors(env.path("few.safetensors"), few)
    must_fail(env.train(plan, env.path("few.safetensors"), ["--steps", "1"], expect_ok=False), "example")
    # A corrupt checkpoint: nothing is overwritten.
    ck = env.path("ck")
    env.train(plan, env.path("good.safetensors"), ["--steps", "2", "--save", ck])
    path = os.path.join(ck, "checkpoint.safetensors")
    data = bytearray(open(path, "rb").read())
    data[-100] ^= 0xFF
    open(path, "wb").write(bytes(data))
    must_fail(env.train(plan, env.path("good.safetensors"), ["--steps", "3", "--resume", ck, "--save", ck],
                        expect_ok=False), "checkpoint")
    if open(path, "rb").read() != bytes(data):
        sys.exit("errors: the corrupt checkpoint was overwritten")
    open(path, "wb").write(bytes(data[: len(data) // 2]))
    must_fail(env.train(plan, env.path("good.safetensors"), ["--steps", "3", "--resume", ck],
                        expect_ok=False), "checkpoint")
    print("errors: non-scalar loss, unknown trainable, 4 dataset mismatches, corrupt and "
          "truncated checkpoints: one clear error each")


CASES = {
    "adamw_right": lambda a: case_adamw(a, "adamw_right", False, 1),
    "adamw_left": lambda a: case_adamw(a, "adamw_left", True, 1),
    "accum2_right": lambda a: case_adamw(a, "accum2_right", False, 2),
    "accum4_right": lambda a: case_adamw(a, "accum4_right", False, 4),
    "accum2_left": lambda a: case_adamw(a, "accum2_left", True, 2),
    "accum4_left": lambda a: case_adamw(a, "accum4_left", True, 4),
    "resume": case_resume,
    "crash_during_save": case_crash,
    "sgd_nesterov_cosine": case_sgd,
    "arena": case_arena,
    "errors": case_errors,
}


def run_cases(cases):
    """The command line shared by the training test scripts: --moaicc BIN
    --moai-run BIN --workdir DIR CASE (or --list), then runs cases[CASE]."""
    p = argparse.ArgumentParser()
    p.add_argument("--moaicc", required=True)
    p.add_argument("--moai-run", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--list", action="store_true")
    p.add_argument("case", nargs="?")
    args = p.parse_args()
    args.moaicc, args.moai_run = os.path.abspath(args.moaicc), os.path.abspath(args.moai_run)
    if args.list:
        print(" ".join(cases))
        return
    if args.case not in cases:
        sys.exit(f"unknown case {args.case!r}")
    torch.use_deterministic_algorithms(True)
    cases[args.case](args)


if __name__ == "__main__":
    run_cases(CASES)
