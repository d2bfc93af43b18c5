#!/usr/bin/python3
"""Reference gradients for the gather/slice/softmax gradient kernels.

Computes, with PyTorch autograd in float64, the gradients that moai's
gather_grad, slice_grad, softmax_grad, log_softmax_grad and
softmax_cross_entropy_loss_grad kernels must produce, and writes them next to
this script as small .npy files read by tests/unit/runtime/test_kernels_grad_index.c:

  <case>.<k>.npy   operand k of the kernel (absent optional operands: no file)
  <case>.attrs.npy int64 attributes, per kernel:
                     gather_grad, softmax_grad, log_softmax_grad: [axis]
                     slice_grad: start[rank] then step[rank] (as Python's
                       slicing resolves them: an independent normalisation)
                     softmax_cross_entropy_loss_grad: [reduction (0 none,
                       1 sum, 2 mean), has_ignore_index, ignore_index]
  <case>.want.npy  the expected output (float64)

Run with /usr/bin/python3 (torch 1.13, numpy) from any directory; the output
is deterministic (fixed seed)."""
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20240401)


def save(case, operands, attrs, want):
    for k, a in enumerate(operands):
        if a is not None:
            np.save(os.path.join(OUT, f"{case}.{k}.npy"), np.require(a, requirements="C"))
    np.save(os.path.join(OUT, f"{case}.attrs.npy"), np.asarray(attrs, dtype=np.int64))
    np.save(os.path.join(OUT, f"{case}.want.npy"), np.require(want, dtype=np.float64, requirements="C"))


def randn(*shape):
    return rng.standard_normal(shape)


def gather(case, shape, idx, axis):
    """Gather(data, idx, axis) as index_select on the wrapped indices."""
    x = torch.tensor(randn(*shape), requires_grad=True)
    flat = torch.tensor(np.asarray(idx, dtype=np.int64).reshape(-1) % shape[axis])
    y = x.index_select(axis, flat).reshape(shape[:axis] + np.shape(idx) + shape[axis + 1:])
    g = randn(*y.shape)
    y.backward(torch.tensor(g))
    save(case, [g, idx], [axis], x.grad.numpy())


def slice_(case, shape, starts, ends, axes, steps):
    x = torch.tensor(randn(*shape), requires_grad=True)
    start, step = [0] * len(shape), [1] * len(shape)
    y = x
    for s, e, a, st in zip(starts, ends, axes, steps):
        picked = list(range(shape[a]))[slice(s, e, st)]
        start[a], step[a] = (picked[0] if picked else 0), st
        y = y.index_select(a, torch.tensor(picked, dtype=torch.int64))
    g = randn(*y.shape)
    y.backward(torch.tensor(g))
    save(case, [g], start + step, x.grad.numpy())


def softmax(case, shape, axis, log):
    x = torch.tensor(randn(*shape) * 2.0, requires_grad=True)
    y = (F.log_softmax if log else F.softmax)(x, dim=axis)
    g = randn(*shape)
    y.backward(torch.tensor(g))
    save(case, [y.detach().numpy(), g], [axis % len(shape)], x.grad.numpy())


def sce(case, shape, labels, reduction, ignore_index=None, weights=False, label_dtype=np.int64):
    x = torch.tensor(randn(*shape) * 2.0, requires_grad=True)
    labels = np.asarray(labels, dtype=label_dtype)
    w = rng.uniform(0.2, 2.0, size=shape[1]) if weights else None
    loss = F.cross_entropy(x, torch.tensor(labels.astype(np.int64)),
                           weight=None if w is None else torch.tensor(w),
                           ignore_index=-100 if ignore_index is None else ignore_index,
                           reduction=reduction)
    g = randn(*loss.shape) if reduction == "none" else np.asarray(rng.uniform(0.5, 1.5))
    loss.backward(torch.tensor(g))
    red = {"none": 0, "sum": 1, "mean": 2}[reduction]
    attrs = [red, ignore_index is not None, ignore_index or 0]
    save(case, [x.detach().numpy(), labels, w, g], attrs, x.grad.numpy())


def main():
    # gather_grad: repeated and negative indices, axis 1, a scalar index,
    # an embedding table with many repeats
    gather("gather_axis0", (7, 5), np.array([[1, -1, 3], [1, 6, 0]], dtype=np.int64), 0)
    gather("gather_axis1_i32", (3, 6, 4), np.array([2, 2, -6, 5, 0], dtype=np.int32), 1)
    gather("gather_scalar", (4, 3), np.array(-1, dtype=np.int64), 1)
    gather("gather_embedding", (50, 8), rng.integers(-50, 50, size=(4, 9)).astype(np.int64), 0)
    # slice_grad: negative steps, unordered axes, a contiguous run, nothing
    slice_("slice_neg_steps", (6, 7, 5), [1, -1], [5, -8], [0, 1], [2, -2])
    slice_("slice_axes_swapped", (4, 9), [1, 3], [100, 0], [1, 0], [3, -1])
    slice_("slice_contiguous", (3, 4, 10), [2], [-3], [2], [1])
    slice_("slice_empty", (4, 5), [3], [1], [0], [1])
    # softmax_grad, log_softmax_grad: last axis (rows), middle and first axes
    for log in (False, True):
        name = "log_softmax" if log else "softmax"
        softmax(f"{name}_last", (4, 7), -1, log)
        softmax(f"{name}_mid", (3, 5, 70), 1, log)
        softmax(f"{name}_first", (5, 2, 3), 0, log)
    # softmax_cross_entropy_loss_grad
    sce("sce_mean_ignore", (6, 5), [0, 2, 4, 2, 1, 3], "mean", ignore_index=2)
    sce("sce_sum_weights", (6, 5), [0, -100, 4, 2, 1, 1], "sum", ignore_index=-100, weights=True)
    sce("sce_none_3d_i32", (3, 4, 5), rng.integers(-1, 4, size=(3, 5)), "none",
        ignore_index=-1, weights=True, label_dtype=np.int32)
    sce("sce_mean_4d_weights", (2, 4, 3, 2), rng.integers(0, 4, size=(2, 3, 2)), "mean",
        ignore_index=0, weights=True)
    sce("sce_mean_all_ignored", (3, 4), [-100, -100, -100], "mean", ignore_index=-100)
    sce("sce_mean_plain", (4, 3), [2, 0, 1, 1], "mean")


if __name__ == "__main__":
    main()
