#!/usr/bin/python3
"""Reference gradients of conv, max/average pool, batch and layer
normalisation from PyTorch autograd (1.13, float64), for
tests/unit/runtime/test_kernels_grad_nn.c.

Run from anywhere: /usr/bin/python3 tests/unit/runtime/grad_refs_nn/generate.py
It rewrites the .npy files next to it. Per case NAME:
  NAME.attrs.npy  int64: window cases [r, group, ceil_mode, count_include_pad,
                  k0..k2, s0..s2, d0..d2, pads (ONNX layout, 6 slots)];
                  layer norm [axis]
  NAME.<t>.npy    float64 tensors: inputs rounded to float32 (so the f32
                  tests get exact inputs) and the float64 gradients.
Inputs and output gradients are random with a fixed seed; max-pool cases
marked `ties` draw integers so that windows hold equal maxima."""
import os

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
EPS = 1e-5
rng = np.random.default_rng(1234)


def rand(shape, ties=False):
    if ties:
        return rng.integers(0, 3, size=shape).astype(np.float64)
    return rng.uniform(-1, 1, size=shape).astype(np.float32).astype(np.float64)


def save(name, **tensors):
    for key, v in tensors.items():
        v = v.detach().numpy() if isinstance(v, torch.Tensor) else v
        np.save(os.path.join(HERE, f"{name}.{key}.npy"), v)


def window_attrs(r, k, s, d, pads, group=1, ceil=0, cip=0):
    a = np.zeros(22, dtype=np.int64)
    a[0:4] = [r, group, ceil, cip]
    a[4:4 + r] = k
    a[7:7 + r] = s
    a[10:10 + r] = d
    a[13:13 + 2 * r] = pads
    return a[:19]


def torch_pad(pads, r):
    """ONNX pads (begins, then ends) as F.pad's list (last axis first)."""
    out = []
    for a in reversed(range(r)):
        out += [pads[a], pads[r + a]]
    return out


CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
MAXP = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVGP = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def conv_case(name, n, c, m, ins, k, s, d, pads, group=1):
    r = len(ins)
    x = torch.tensor(rand([n, c] + ins), requires_grad=True)
    w = torch.tensor(rand([m, c // group] + k), requires_grad=True)
    y = CONV[r](F.pad(x, torch_pad(pads, r)), w, stride=s, dilation=d, groups=group)
    dy = torch.tensor(rand(list(y.shape)))
    y.backward(dy)
    save(name, attrs=window_attrs(r, k, s, d, pads, group), x=x, w=w, dy=dy, dx=x.grad, dw=w.grad)


def max_pool_case(name, n, c, ins, k, s, d, p, ceil=0, ties=False):
    r = len(ins)
    d = [1] * r if d is None else d
    x = torch.tensor(rand([n, c] + ins, ties), requires_grad=True)
    y = MAXP[r](x, k, stride=s, padding=p, dilation=d, ceil_mode=bool(ceil))
    dy = torch.tensor(rand(list(y.shape)))
    y.backward(dy)
    save(name, attrs=window_attrs(r, k, s, d, p + p, ceil=ceil),
         x=x, dy=dy, dx=x.grad)


def avg_pool_case(name, n, c, ins, k, s, p, ceil, cip):
    r = len(ins)
    x = torch.tensor(rand([n, c] + ins), requires_grad=True)
    y = AVGP[r](x, k, stride=s, padding=p, ceil_mode=bool(ceil), count_include_pad=bool(cip))
    dy = torch.tensor(rand(list(y.shape)))
    y.backward(dy)
    save(name, attrs=window_attrs(r, k, s, [1] * r, p + p, ceil=ceil, cip=cip), dy=dy, dx=x.grad)


def batch_norm_case(name, shape):
    c = shape[1]
    x = torch.tensor(rand(shape), requires_grad=True)
    scale = torch.tensor(rand([c]), requires_grad=True)
    b = torch.tensor(rand([c]), requires_grad=True)
    y = F.batch_norm(x, None, None, scale, b, training=True, eps=EPS)
    dy = torch.tensor(rand(shape))
    y.backward(dy)
    save(name, x=x, scale=scale, dy=dy, dx=x.grad, dscale=scale.grad, dbias=b.grad)


def layer_norm_case(name, shape, axis, scale_shape):
    x = torch.tensor(rand(shape), requires_grad=True)
    scale = torch.tensor(rand(scale_shape), requires_grad=True)
    b = torch.tensor(rand(scale_shape), requires_grad=True)
    norm = shape[axis:]
    if list(scale_shape) == list(norm):
        y = F.layer_norm(x, norm, scale, b, eps=EPS)
    else:
        # a scale that broadcasts inside the normalised axes: F.layer_norm
        # cannot take it; the same formula, differentiated by autograd
        dims = tuple(range(axis, len(shape)))
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, unbiased=False, keepdim=True)
        y = (x - mean) / torch.sqrt(var + EPS) * scale + b
    dy = torch.tensor(rand(shape))
    y.backward(dy)
    save(name, attrs=np.array([axis], dtype=np.int64), x=x, scale=scale, dy=dy, dx=x.grad,
         dscale=scale.grad, dbias=b.grad)


def main():
    torch.set_default_dtype(torch.float64)
    for f in os.listdir(HERE):
        if f.endswith(".npy"):
            os.remove(os.path.join(HERE, f))
    conv_case("conv1d_s2_asym", 2, 3, 4, [11], [3], [2], [1], [2, 1])
    conv_case("conv1d_dil3", 1, 2, 3, [13], [3], [1], [3], [3, 3])
    conv_case("conv2d_basic", 2, 4, 6, [7, 8], [3, 3], [1, 1], [1, 1], [1, 1, 1, 1])
    conv_case("conv2d_group2", 2, 4, 6, [9, 7], [3, 2], [2, 1], [1, 2], [1, 0, 2, 1], group=2)
    conv_case("conv2d_depthwise", 1, 4, 4, [6, 7], [3, 3], [2, 2], [1, 1], [1, 1, 1, 1], group=4)
    conv_case("conv2d_stride_gt_k", 2, 3, 2, [7, 8], [1, 2], [2, 3], [1, 1], [0, 0, 0, 0])
    conv_case("conv3d", 1, 2, 3, [4, 5, 6], [2, 3, 2], [1, 2, 1], [1, 1, 2], [1, 0, 1, 0, 1, 1])
    max_pool_case("maxpool2d", 2, 3, [7, 8], [3, 3], [2, 2], None, [1, 1])
    max_pool_case("maxpool2d_ties", 2, 2, [6, 7], [3, 3], [1, 1], None, [1, 1], ties=True)
    max_pool_case("maxpool2d_ceil_dil", 1, 3, [9, 10], [2, 3], [2, 2], [2, 1], [0, 1], ceil=1)
    max_pool_case("maxpool1d_ceil_ties", 2, 2, [15], [4], [3], [1], [2], ceil=1, ties=True)
    max_pool_case("maxpool3d_ties", 1, 2, [5, 6, 5], [2, 2, 3], [2, 1, 2], [1, 1, 1], [1, 0, 1],
                  ties=True)
    for cip in (0, 1):
        avg_pool_case(f"avgpool2d_cip{cip}", 2, 3, [7, 8], [3, 3], [2, 2], [1, 1], 0, cip)
        avg_pool_case(f"avgpool2d_ceil_cip{cip}", 1, 2, [8, 8], [3, 3], [2, 2], [1, 1], 1, cip)
        avg_pool_case(f"avgpool1d_ceil_cip{cip}", 2, 2, [13], [4], [3], [2], 1, cip)
        avg_pool_case(f"avgpool3d_cip{cip}", 1, 2, [5, 6, 5], [2, 3, 2], [2, 2, 1], [1, 1, 0], 0, cip)
    batch_norm_case("batchnorm2d", [4, 3, 5, 6])
    batch_norm_case("batchnorm_rank2", [8, 5])
    batch_norm_case("batchnorm1d", [2, 3, 7])
    layer_norm_case("layernorm_last", [3, 4, 10], 2, [10])
    layer_norm_case("layernorm_axis1", [3, 4, 5], 1, [4, 5])
    layer_norm_case("layernorm_bcast", [3, 4, 5], 1, [5])


if __name__ == "__main__":
    main()
