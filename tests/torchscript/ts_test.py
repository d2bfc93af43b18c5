#!/usr/bin/python3
"""End-to-end tests of the TorchScript frontend: archives traced (or
scripted) at test time with fixed seeds, compiled by moaicc, run by
moai-run, and compared with PyTorch.

  mistral_logits   traced Mistral-style model without labels: logits within
                   1e-4; the plan's weights carry named_parameters() names
  mistral_grads    traced with labels, --gradients: loss within 2e-5 and
                   every parameter's gradient within 1e-5 of autograd
  mistral_train    --train, 20 AdamW steps (lr 1e-3, wd 0.01): per-step loss
                   within 2e-5, first-step gradients 1e-5, final weights 1e-4;
                   the checkpoint's names are named_parameters()'s
  cnn              the example CNN traced (eval) forward within 1e-4, and with
                   its loss trained 5 AdamW steps (train mode) like PyTorch
  script_mlp       a torch.jit.script module (a constant-bounded loop, an `if`
                   on a module attribute, a ModuleList, a free function,
                   tuple results) forward within 1e-5
  errors           unsupported operator (names it and code/...py:LINE),
                   missing --input-shape, truncated archive, a data.pkl with
                   a forbidden global: non-zero exit, a clear message and no
                   plan directory left

Usage: ts_test.py --moaicc BIN --moai-run BIN --workdir DIR CASE
"""
import os
import shutil
import sys
import zipfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "examples"))
sys.path.insert(0, os.path.join(ROOT, "tests", "training"))
import make_models as mm  # noqa: E402
import make_train_data as mtd  # noqa: E402
import train_test as tt  # noqa: E402
from grad_check import run_plan  # noqa: E402

NAMES = tt.NAMES


def workdir(args, case):
    w = os.path.join(args.workdir, case)
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    return w


def shape_flags(inputs):
    flags = []
    for name, t in inputs.items():
        dt = {torch.int64: "int64", torch.float32: "float32", torch.int32: "int32",
              torch.bool: "bool", torch.float64: "float64"}[t.dtype]
        flags += ["--input-shape", f"{name}={'x'.join(str(d) for d in t.shape)}:{dt}"]
    return flags


def trace(model, inputs, path):
    torch.jit.save(torch.jit.trace(model, tuple(inputs.values()), check_trace=False), path)


def plan_weight_names(plan):
    names = set()
    for root, _, files in os.walk(plan):
        for f in files:
            if f.startswith("weights") and f.endswith(".safetensors"):
                t, _ = tt.read_safetensors(os.path.join(root, f))
                names |= set(t)
    return names


def compare(label, got, want, tol):
    err = float(np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64)).max())
    if not np.all(np.isfinite(got)) or err > tol:
        sys.exit(f"{label}: differs from PyTorch by {err:.3g} (> {tol})")
    return err


def mistral(train):
    torch.manual_seed(0)
    cfg = mm.MistralConfig()
    model = mm.MistralForCausalLM(cfg).train(train)
    inputs = mm.mistral_inputs(cfg, torch.Generator().manual_seed(0), [("right", 3), ("left", 2)])
    if not train:
        del inputs["labels"]
    return model, inputs


def case_mistral_logits(args):
    w = workdir(args, "mistral_logits")
    model, inputs = mistral(False)
    pt = os.path.join(w, "m.pt")
    trace(model, inputs, pt)
    plan = os.path.join(w, "plan")
    tt.run([args.moaicc, pt, "-o", plan] + shape_flags(inputs))
    out = run_plan(args.moai_run, plan, {k: v.numpy() for k, v in inputs.items()},
                   os.path.join(w, "out"))
    with torch.no_grad():
        want = model(*inputs.values()).numpy()
    err = compare("logits", out["output"], want, 1e-4)
    names = plan_weight_names(plan)
    want_names = {n for n, _ in model.named_parameters()}
    if not want_names <= names:
        sys.exit(f"plan weights {sorted(names)} lack {sorted(want_names - names)}")
    summary = tt.run([args.moaicc, pt, "--emit=summary"] + shape_flags(inputs)).stdout
    if "(pytorch torchscript)" not in summary.splitlines()[1]:
        sys.exit(f"--emit=summary does not name the archive's producer:\n{summary}")
    # the default pipeline fuses the traced model as it does the ONNX export
    ir = tt.run([args.moaicc, pt, "--emit=mlir"] + shape_flags(inputs)).stdout
    for op, n in (("gemm", 15), ("attention", 2), ("rms_norm", 5), ("swiglu", 2), ("rotary", 4)):
        got = ir.count('"moai.' + op + '"')
        if got != n:
            sys.exit(f"the traced model's module has {got} moai.{op}, expected {n}")
    print(f"mistral_logits: {want.shape} logits, worst |moai - torch| {err:.3g} (bound 1e-4); "
          f"{len(want_names)} weights named as named_parameters(); fused like the ONNX export")


def case_mistral_grads(args):
    w = workdir(args, "mistral_grads")
    model, inputs = mistral(True)
    pt = os.path.join(w, "m.pt")
    trace(model, inputs, pt)
    plan = os.path.join(w, "plan")
    tt.run([args.moaicc, pt, "--gradients", "-o", plan] + shape_flags(inputs))
    out = run_plan(args.moai_run, plan, {k: v.numpy() for k, v in inputs.items()},
                   os.path.join(w, "out"))
    model.zero_grad()
    loss = model(*inputs.values())
    loss.backward()
    compare("loss", out["output"], loss.item(), 2e-5)
    # Summed over counted labels, like the ONNX path (grad_check.py).
    weight = float(out["loss_weight"]) if "loss_weight" in out else 1.0
    worst, count = 0.0, 0
    for name, p in model.named_parameters():
        key = f"grad.{name}"
        if key not in out:
            sys.exit(f"no gradient output for {name}; outputs: {sorted(out)}")
        worst = max(worst, compare(f"gradient of {name}", out[key] / weight,
                                   p.grad.numpy(), 1e-5))
        count += 1
    print(f"mistral_grads: {count} gradients, worst |moai - torch| {worst:.3g} (bound 1e-5)")


def case_mistral_train(args):
    env = tt.Env(args, "ts_mistral_train")
    torch.manual_seed(0)
    model = mm.MistralForCausalLM(mm.MistralConfig()).train()
    arrays = tt.make_data(env.path("data.safetensors"), False)
    first = {n: torch.from_numpy(arrays[n][:tt.BATCH]) for n in NAMES}
    pt = env.path("m.pt")
    trace(model, first, pt)  # saved before training: the initial weights
    plan = env.path("plan")
    tt.run([args.moaicc, pt, "--train", "--lr", str(tt.LR), "--weight-decay", str(tt.WD),
            "-o", plan] + shape_flags(first))
    losses, grads, weights, _ = tt.torch_run(model, arrays)
    tt.check_run(env, plan, env.path("data.safetensors"), losses, grads, weights, "mistral_train")
    ckpt, _ = tt.read_safetensors(env.path("mistral_train.ckpt/checkpoint.safetensors"))
    names = {n for n, _ in model.named_parameters()}
    if not names <= set(ckpt):
        sys.exit(f"checkpoint lacks {sorted(names - set(ckpt))}")


def case_cnn(args):
    w = workdir(args, "cnn")
    torch.manual_seed(2)
    model = mm.CNN()
    gen = torch.Generator().manual_seed(3)
    image = torch.randn(2, 3, 16, 16, generator=gen)
    target = torch.randint(0, 10, (2,), generator=gen)
    # Forward in eval mode (running statistics).
    model.eval()
    pt = os.path.join(w, "cnn.pt")
    trace(model, {"image": image}, pt)
    plan = os.path.join(w, "plan")
    tt.run([args.moaicc, pt, "-o", plan] + shape_flags({"image": image}))
    out = run_plan(args.moai_run, plan, {"image": image.numpy()}, os.path.join(w, "out"))
    with torch.no_grad():
        want = model(image).numpy()
    err = compare("cnn logits", out["output"], want, 1e-4)
    # With its loss, in train mode: 5 AdamW steps on a fixed batch.
    model.train()
    steps, batch = 5, 2
    data_gen = torch.Generator().manual_seed(4)
    images = torch.randn(steps * batch, 3, 16, 16, generator=data_gen)
    targets = torch.randint(0, 10, (steps * batch,), generator=data_gen)
    data = os.path.join(w, "data.safetensors")
    mtd.write_safetensors(data, {"image": images.numpy(), "target": targets.numpy()})
    pt_train = os.path.join(w, "cnn_train.pt")
    ins = {"image": images[:batch], "target": targets[:batch]}
    trace(model, ins, pt_train)
    tplan = os.path.join(w, "train.plan")
    tt.run([args.moaicc, pt_train, "--train", "--lr", str(tt.LR), "--weight-decay", str(tt.WD),
            "-o", tplan] + shape_flags(ins))
    log = os.path.join(w, "train.jsonl")
    tt.run([args.moai_run, tplan, "--data", data, "--threads", "2", "--quiet",
            "--steps", str(steps), "--log", log])
    opt = torch.optim.AdamW(model.parameters(), lr=tt.LR, betas=tt.BETAS, eps=tt.EPS,
                            weight_decay=tt.WD)
    want_losses = []
    for s in range(steps):
        opt.zero_grad()
        loss = model(images[s * batch:(s + 1) * batch], targets[s * batch:(s + 1) * batch])
        loss.backward()
        opt.step()
        want_losses.append(loss.item())
    got = [r["loss"] for r in tt.jsonl(log)]
    lerr = compare("cnn training losses", got, want_losses, 2e-5)
    print(f"cnn: logits worst {err:.3g} (1e-4); {steps} AdamW steps, losses "
          f"{got[0]:.4f} -> {got[-1]:.4f}, worst |moai - torch| {lerr:.3g} (2e-5)")


class ScriptMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])
        self.n = 2
        self.use_relu = True

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        for i in range(self.n):
            x = x * 2.0 + 1
        for layer in self.layers:
            x = layer(x)
        if self.use_relu:
            x = F.relu(x)
        else:
            x = torch.tanh(x)
        h = x.shape[0] // 2
        return x[:h] + y, x.sum(-1)


def case_script_mlp(args):
    w = workdir(args, "script_mlp")
    torch.manual_seed(5)
    model = ScriptMLP()
    pt = os.path.join(w, "mlp.pt")
    torch.jit.save(torch.jit.script(model), pt)
    gen = torch.Generator().manual_seed(6)
    ins = {"x": torch.randn(4, 8, generator=gen), "y": torch.randn(2, 8, generator=gen)}
    plan = os.path.join(w, "plan")
    tt.run([args.moaicc, pt, "-o", plan] + shape_flags(ins))
    out = run_plan(args.moai_run, plan, {k: v.numpy() for k, v in ins.items()},
                   os.path.join(w, "out"))
    with torch.no_grad():
        a, b = model(*ins.values())
    e0 = compare("output_0", out["output_0"], a.numpy(), 1e-5)
    e1 = compare("output_1", out["output_1"], b.numpy(), 1e-5)
    print(f"script_mlp: two results, worst {max(e0, e1):.3g} (bound 1e-5)")


class Unsupported(nn.Module):
    def forward(self, x):
        return torch.nonzero(x + 1.0)


def must_fail(args, label, pt, flags, want, plan):
    r = tt.run([args.moaicc, pt, "-o", plan] + flags, expect_ok=False)
    if r.returncode == 0:
        sys.exit(f"{label}: moaicc succeeded")
    for text in want:
        if text not in r.stderr:
            sys.exit(f"{label}: message lacks {text!r}: {r.stderr}")
    if os.path.exists(plan):
        sys.exit(f"{label}: {plan} was left behind")
    if "Traceback" in r.stderr or r.returncode < 0:
        sys.exit(f"{label}: crashed ({r.returncode}): {r.stderr}")
    print(f"{label}: {r.stderr.strip().splitlines()[-1]}")


def case_errors(args):
    w = workdir(args, "errors")
    x = torch.randn(4, 3)
    pt = os.path.join(w, "nz.pt")
    trace(Unsupported(), {"x": x}, pt)
    with zipfile.ZipFile(pt) as z:
        code = [n for n in z.namelist() if n.endswith(".py") and "/code/" in n]
        text = z.read(code[0]).decode()
    line = next(i + 1 for i, l in enumerate(text.splitlines()) if "nonzero" in l)
    must_fail(args, "unsupported operator", pt, shape_flags({"x": x}),
              ["nonzero", f"code/__torch__.py:{line}"], os.path.join(w, "p1"))
    must_fail(args, "missing input shape", pt, [],
              ["--input-shape x=", "nz.pt"], os.path.join(w, "p2"))
    must_fail(args, "unknown input name", pt, shape_flags({"x": x}) + ["--input-shape", "z=2"],
              ["'z=2'", "no argument"], os.path.join(w, "p2b"))
    must_fail(args, "unknown dtype", pt, ["--input-shape", "x=4x3:half"],
              ["unknown dtype 'half'"], os.path.join(w, "p2c"))
    # ONNX inputs take the :DTYPE suffix too; it must be the declared one.
    onnx_model = os.path.join(ROOT, "examples", "mistral", "mistral_train.onnx")
    must_fail(args, "onnx dtype mismatch", onnx_model,
              ["--input-shape", "input_ids=2x16:float32"],
              ["declares graph input 'input_ids' int64"], os.path.join(w, "p2d"))
    tt.run([args.moaicc, onnx_model, "--emit=summary", "--input-shape", "input_ids=2x16:int64"])
    # A truncated archive.
    model, inputs = mistral(False)
    good = os.path.join(w, "m.pt")
    trace(model, inputs, good)
    blob = open(good, "rb").read()
    cut = os.path.join(w, "cut.pt")
    open(cut, "wb").write(blob[: len(blob) // 2])
    must_fail(args, "truncated archive", cut, shape_flags(inputs), ["cut.pt"],
              os.path.join(w, "p3"))
    # data.pkl rewritten to construct an arbitrary class (os.system).
    evil = os.path.join(w, "evil.pt")
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(evil, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("/data.pkl"):
                data = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85q\x01Rq\x02."
            zout.writestr(item, data)
    must_fail(args, "forbidden global", evil, shape_flags(inputs), ["evil.pt", "os.system"],
              os.path.join(w, "p4"))


CASES = {
    "mistral_logits": case_mistral_logits,
    "mistral_grads": case_mistral_grads,
    "mistral_train": case_mistral_train,
    "cnn": case_cnn,
    "script_mlp": case_script_mlp,
    "errors": case_errors,
}

if __name__ == "__main__":
    tt.run_cases(CASES)
