#!/usr/bin/env python3
"""References for moai's training backend, computed by PyTorch 1.13
(torch.optim.AdamW / SGD, single-tensor path, float32). Run from this folder
with /usr/bin/python3; writes data/*.bin (little-endian, no headers; shapes
below and in the C tests that read them).

optimizer kernels (tests/unit/runtime/test_kernels_train.c), N = 37 elements,
STEPS = 4: data/kernel_<case>.bin = param0[N], then per step grad_sum[N] and
loss_weight[1] (float32), then per step param[N] after the update.

linear model (tests/training/test_train_plan.c): y = x @ W + B, loss =
mean((y - t)^2), W [4,3] trained, B [3] frozen, 5 rows per micro-batch.
data/linear_weights.bin = W, B (raw float32, what the .mlir modules read);
data/linear_<case>.bin = per step, per micro-batch x[5,4], t[5,3]; then per
step, per micro-batch the loss; then per step W after the update."""
import math
import os

import numpy as np
import torch

torch.manual_seed(0)
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
os.makedirs(DATA, exist_ok=True)


def cosine(warmup, total):
    # transformers.get_cosine_schedule_with_warmup (num_cycles = 0.5)
    def f(step):
        if step < warmup:
            return float(step) / float(max(1, warmup))
        progress = float(step - warmup) / float(max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))
    return f


def write(name, arrays):
    with open(os.path.join(DATA, name), "wb") as f:
        for a in arrays:
            f.write(np.ascontiguousarray(a, dtype=a.dtype).tobytes())


def make_opt(kind, params, cfg):
    if kind == "adamw":
        opt = torch.optim.AdamW(params, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]),
                                eps=cfg["eps"], weight_decay=cfg["wd"])
    else:
        opt = torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg.get("momentum", 0.0),
                              dampening=cfg.get("dampening", 0.0), weight_decay=cfg["wd"],
                              nesterov=bool(cfg.get("nesterov", 0)))
    sched = None
    if cfg.get("schedule") == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine(cfg["warmup"], cfg["total"]))
    return opt, sched


def kernel_case(name, kind, cfg, n=37, steps=4):
    p = torch.nn.Parameter(torch.randn(n, dtype=torch.float32))
    opt, sched = make_opt(kind, [p], cfg)
    out = [p.detach().numpy().copy()]
    after = []
    for s in range(steps):
        lw = np.float32([3.0, 1.5, 7.0, 2.0][s % 4])
        g = torch.randn(n, dtype=torch.float32) * float(lw)
        out += [g.numpy().copy(), np.array([lw], dtype=np.float32)]
        p.grad = g / torch.tensor(lw)
        opt.step()
        if sched:
            sched.step()
        after.append(p.detach().numpy().copy())
    write("kernel_%s.bin" % name, out + after)


ADAMW = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8)
kernel_case("adamw_cosine", "adamw", dict(ADAMW, wd=0.05, schedule="cosine", warmup=2, total=8))
kernel_case("adamw_constant", "adamw", dict(ADAMW, lr=0.003, beta1=0.8, beta2=0.95, wd=0.0))
kernel_case("sgd_momentum", "sgd", dict(lr=0.05, momentum=0.9, dampening=0.2, wd=0.01))
kernel_case("sgd_nesterov", "sgd", dict(lr=0.02, momentum=0.8, nesterov=1, wd=0.0))
kernel_case("sgd_plain", "sgd", dict(lr=0.1, wd=0.001))

# ---- the linear model -------------------------------------------------------
W0 = torch.randn(4, 3, dtype=torch.float32) * 0.5
B0 = torch.randn(3, dtype=torch.float32) * 0.1
write("linear_weights.bin", [W0.numpy(), B0.numpy()])


def linear_case(name, kind, cfg, steps=5, micro=1, rows=5):
    W = torch.nn.Parameter(W0.clone())
    B = B0.clone()
    opt, sched = make_opt(kind, [W], cfg)
    data, losses, after = [], [], []
    for s in range(steps):
        opt.zero_grad()
        for k in range(micro):
            x = torch.randn(rows, 4, dtype=torch.float32)
            t = torch.randn(rows, 3, dtype=torch.float32)
            data += [x.numpy().copy(), t.numpy().copy()]
            loss = ((x @ W + B - t) ** 2).mean()
            loss.backward()
            losses.append(np.array([loss.item()], dtype=np.float32))
        W.grad /= torch.tensor(np.float32(micro))  # the summed loss weight (1 each)
        opt.step()
        if sched:
            sched.step()
        after.append(W.detach().numpy().copy())
    write("linear_%s.bin" % name, data + losses + after)


linear_case("adamw", "adamw", dict(ADAMW, wd=0.1, schedule="cosine", warmup=2, total=6), micro=2)
linear_case("sgd", "sgd", dict(lr=0.05, momentum=0.9, nesterov=1, wd=0.01))
