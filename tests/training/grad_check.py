#!/usr/bin/python3
"""Gradient tests of moai-autodiff, run through moaicc --gradients and moai-run.

  fd.<case>       finite-difference check of one op's vector-Jacobian rule: a
                  one-op ONNX model y = op(x, ...) with loss = sum(y * R)
                  (R a fixed random tensor), in float64 where the kernels
                  support it; the analytic gradient <g, v> along random
                  directions v must equal (loss(x + h v) - loss(x - h v)) / 2h.
                  The fused cases also check that moai-fuse made their fused
                  ops and compare loss and gradients with PyTorch's autograd
                  of the torch function the chain exports from.
  cnn_grads       the same for the CNN training export (examples/cnn/ref/grad)
  mistral_grads   the Mistral-style training export's gradients (divided by
                  the loss weight) against PyTorch's (examples/mistral/ref/grad),
                  within 1e-5 absolute.

Usage: grad_check.py --moaicc BIN --moai-run BIN --workdir DIR CASE
"""
import argparse
import os
import shutil
import subprocess
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
F64 = TensorProto.DOUBLE
F32 = TensorProto.FLOAT
I64 = TensorProto.INT64


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r


class Case:
    """A one-op model: float inputs (differentiated), int inputs, op node."""

    def __init__(self, op, floats, ints=(), attrs=None, opset=17, out_shape=None,
                 n_outputs=1, extra_nodes=(), extra_inits=(), loss_is_output=False,
                 dtype=np.float64, rtol=1e-6, op_inputs=None, fused_ops=(), torch_fn=None):
        self.op, self.floats, self.ints = op, floats, list(ints)
        # op_inputs: the op's inputs when extra_nodes compute them (a chain
        # that moai-fuse turns into one fused op); default: the float inputs.
        self.op_inputs = op_inputs
        self.attrs, self.opset, self.out_shape = attrs or {}, opset, out_shape
        self.n_outputs, self.extra_nodes, self.extra_inits = n_outputs, extra_nodes, extra_inits
        self.loss_is_output, self.dtype, self.rtol = loss_is_output, dtype, rtol
        # fused_ops: ops the gradient module must contain (moai-fuse made
        # them); torch_fn(*float inputs) -> y: PyTorch's version of the chain.
        self.fused_ops, self.torch_fn = fused_ops, torch_fn


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def build(name, c, workdir, rng):
    elem = F64 if c.dtype == np.float64 else F32
    inputs, feeds, names = [], {}, []
    for i, (shape, lo, hi) in enumerate(c.floats):
        n = f"x{i}"
        names.append(n)
        feeds[n] = rng.uniform(lo, hi, size=shape).astype(c.dtype)
        inputs.append(helper.make_tensor_value_info(n, elem, list(shape)))
    node_inputs = list(c.op_inputs) if c.op_inputs else list(names)
    inits = list(c.extra_inits)
    r = None
    for j, (value, position) in enumerate(c.ints):
        n = f"i{j}"
        arr = np.asarray(value)
        if arr.dtype.kind == "f":
            arr = arr.astype(c.dtype)
        inits.append(numpy_helper.from_array(arr, n))
        node_inputs.insert(position if position >= 0 else len(node_inputs), n)
    outs = [f"y{k}" for k in range(c.n_outputs)]
    nodes = list(c.extra_nodes) + [helper.make_node(c.op, node_inputs, outs, **c.attrs)]
    if c.loss_is_output:
        nodes.append(helper.make_node("Identity", [outs[0]], ["loss"]))
    elif c.out_shape is not None:
        r = rng.uniform(-1.0, 1.0, size=c.out_shape).astype(c.dtype)
        inits.append(numpy_helper.from_array(r, "R"))
        nodes += [helper.make_node("Mul", [outs[0], "R"], ["yr"]),
                  helper.make_node("ReduceSum", ["yr"], ["loss"], keepdims=0)]
    else:
        # Shapes come from ONNX's own shape inference of the op.
        probe = helper.make_graph(nodes, "probe", inputs,
                                  [helper.make_tensor_value_info(outs[0], elem, None)], inits)
        pm = helper.make_model(probe, opset_imports=[helper.make_opsetid("", c.opset)])
        inferred = onnx.shape_inference.infer_shapes(pm, strict_mode=True)
        shape = None
        for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
            if vi.name == outs[0] and vi.type.tensor_type.HasField("shape"):
                shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        if shape is None:
            sys.exit(f"{name}: could not infer the output shape")
        r = rng.uniform(-1.0, 1.0, size=shape).astype(c.dtype)
        inits.append(numpy_helper.from_array(r, "R"))
        nodes += [helper.make_node("Mul", [outs[0], "R"], ["yr"]),
                  helper.make_node("ReduceSum", ["yr"], ["loss"], keepdims=0)]
    graph = helper.make_graph(nodes, name, inputs,
                              [helper.make_tensor_value_info("loss", elem, [])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", c.opset)])
    # Only the graph inputs are differentiated: no initializer is trainable.
    entry = model.metadata_props.add()
    entry.key, entry.value = "moai.trainable_parameters", "[]"
    path = os.path.join(workdir, "model.onnx")
    onnx.save(model, path)
    return path, feeds, names, r


def run_plan(moai_run, plan, feeds, out_dir):
    d = out_dir + ".in"
    os.makedirs(d, exist_ok=True)
    args = [moai_run, plan, "--quiet", "--threads", "2", "--output-dir", out_dir]
    for n, v in feeds.items():
        p = os.path.join(d, n + ".npy")
        np.save(p, v)
        args += ["--input", f"{n}={p}"]
    run(args)
    return {f[:-4]: np.load(os.path.join(out_dir, f)) for f in os.listdir(out_dir)}


def fd_check(name, c, args):
    work = os.path.join(args.workdir, name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    rng = rng_for(name)
    path, feeds, names, r = build(name, c, work, rng)
    plan = os.path.join(work, "plan")
    run([args.moaicc, path, "--gradients", "-o", plan])
    if c.fused_ops:
        ir = run([args.moaicc, path, "--gradients", "--emit=mlir"]).stdout
        for op in c.fused_ops:
            if f'"moai.{op}"' not in ir:
                sys.exit(f"{name}: moai-fuse made no moai.{op}")
    out = run_plan(args.moai_run, plan, feeds, os.path.join(work, "out"))
    w = float(out["loss_weight"])
    grads = {n: out[f"grad.{n}"].astype(np.float64) / w for n in names}
    if c.torch_fn is not None:
        torch_check(name, c, feeds, names, r, float(out["loss"]), grads)
    h = 1e-6 if c.dtype == np.float64 else 1e-2
    worst = 0.0
    for k in range(3):
        v = {n: rng.standard_normal(feeds[n].shape) for n in names}
        analytic = sum(float((grads[n] * v[n]).sum()) for n in names)
        plus = {n: (feeds[n] + h * v[n]).astype(c.dtype) for n in names}
        minus = {n: (feeds[n] - h * v[n]).astype(c.dtype) for n in names}
        lp = float(run_plan(args.moai_run, plan, plus, os.path.join(work, f"p{k}"))["loss"])
        lm = float(run_plan(args.moai_run, plan, minus, os.path.join(work, f"m{k}"))["loss"])
        numeric = (lp - lm) / (2 * h)
        err = abs(analytic - numeric) / max(1.0, abs(numeric))
        worst = max(worst, err)
        if err > c.rtol:
            sys.exit(f"{name}: direction {k}: analytic {analytic!r} vs finite difference "
                     f"{numeric!r} (relative error {err:.3g} > {c.rtol})")
    print(f"{name}: ok, worst relative error {worst:.3g} ({np.dtype(c.dtype).name})")


def torch_check(name, c, feeds, names, r, loss, grads):
    """loss and gradients against PyTorch's autograd of c.torch_fn (float64)."""
    import torch
    xs = [torch.tensor(feeds[n], requires_grad=True) for n in names]
    ref = (c.torch_fn(*xs) * torch.tensor(r)).sum()
    ref.backward()
    worst = abs(loss - ref.item()) / max(1.0, abs(ref.item()))
    for n, x in zip(names, xs):
        # an input that only feeds a comparison (a padding threshold) has no
        # gradient in torch: moai's must then be zero
        g = x.grad.numpy() if x.grad is not None else np.zeros_like(feeds[n])
        worst = max(worst, float((np.abs(grads[n] - g) / (1.0 + np.abs(g))).max()))
    if worst > 1e-10:
        sys.exit(f"{name}: loss or gradients differ from PyTorch's (relative {worst:.3g} > 1e-10)")
    print(f"{name}: PyTorch agrees, worst relative difference {worst:.3g}")


def torch_attention(q, k, v, mask):
    """softmax(q k^T / sqrt(3) + mask) v with each of the 2 kv heads serving
    2 query heads (torch's repeat_interleave, as Mistral's repeat_kv)."""
    import torch
    k, v = k.repeat_interleave(2, dim=1), v.repeat_interleave(2, dim=1)
    # moai.attention carries its scale as an f32 attribute (docs/dialect.md):
    # the fused op multiplies by float32(1 / sqrt(3)), 1.4e-8 relative from
    # the export's division by sqrt(3) in float64, which the float64 check
    # here would see (7e-9); float32 models cannot.
    scale = float(np.float32(1.0 / 1.7320508075688772))
    s = q @ k.transpose(-1, -2) * scale + torch.tensor(mask)
    return torch.softmax(s, dim=-1) @ v


def torch_attention_index_masks(q, k, v, x3, cw, thr):
    """The same with the causal + window mask cw and key padding x3 > thr
    as a float-min additive mask, as the export computes it."""
    import torch
    keep = torch.tensor(cw)[None, None] & (x3 > torch.tensor(thr))[:, None, None, :]
    mask = torch.where(keep, torch.tensor(0.0, dtype=torch.float64),
                       torch.tensor(-3.4028234663852886e38, dtype=torch.float64))
    return torch_attention(q, k, v, mask)


def torch_rms_norm(x, w):
    """The Mistral RMSNorm: w * (x / sqrt(mean(x^2) + eps))."""
    import torch
    return w * (x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))


def torch_swiglu(g, u):
    """The Llama/Mistral MLP's gate: silu(g) * u."""
    import torch
    return torch.nn.functional.silu(g) * u


def torch_rotary(x, cos, sin):
    """Llama's apply_rotary_pos_emb for one tensor (rotate_half)."""
    import torch
    h = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., h:], x[..., :h]), dim=-1) * sin


def cases():
    def t(shape, lo=-2.0, hi=2.0):
        return (shape, lo, hi)

    def positive(shape):
        return (shape, 0.5, 2.0)

    rng = np.random.default_rng(5)
    labels = np.array([[1, 4, -100], [0, 2, 3]], np.int64)
    cs = {
        "add_broadcast": Case("Add", [t([2, 3, 4]), t([3, 1])]),
        "sub_broadcast": Case("Sub", [t([4]), t([2, 3, 4])]),
        "mul_broadcast": Case("Mul", [t([2, 1, 4]), t([3, 1])]),
        "div": Case("Div", [t([2, 3]), positive([2, 3])]),
        "pow_square": Case("Pow", [t([2, 3])], ints=[(np.array(2.0), 1)]),
        "pow_cube": Case("Pow", [positive([2, 3])], ints=[(np.array(3.0), 1)]),
        "pow_tensor": Case("Pow", [positive([2, 3]), t([3], -1.0, 1.0)]),
        "sqrt": Case("Sqrt", [positive([2, 5])]),
        "neg": Case("Neg", [t([3, 2])]),
        "exp": Case("Exp", [t([3, 2], -1.0, 1.0)]),
        "log": Case("Log", [positive([3, 2])]),
        "sin": Case("Sin", [t([3, 2])]),
        "cos": Case("Cos", [t([3, 2])]),
        "sigmoid": Case("Sigmoid", [t([3, 4])]),
        "tanh": Case("Tanh", [t([3, 4])]),
        "erf": Case("Erf", [t([3, 4])]),
        "relu": Case("Relu", [t([3, 4])]),
        "leaky_relu": Case("LeakyRelu", [t([3, 4])], attrs={"alpha": 0.2}),
        "abs": Case("Abs", [t([3, 4])]),
        "clip": Case("Clip", [t([3, 4])], ints=[(np.array(-0.5), 1), (np.array(0.7), 2)]),
        "max": Case("Max", [t([3, 4]), t([4])]),
        "min": Case("Min", [t([3, 4]), t([3, 1])]),
        "where": Case("Where", [t([2, 3]), t([3])],
                      ints=[(np.array([[True, False, True], [False, False, True]]), 0)]),
        "matmul_3d_2d": Case("MatMul", [t([2, 3, 4]), t([4, 5])]),
        "matmul_batch_broadcast": Case("MatMul", [t([2, 1, 3, 4]), t([3, 4, 2])]),
        "matmul_vector": Case("MatMul", [t([4]), t([2, 4, 3])]),
        "matmul_matrix_vector": Case("MatMul", [t([3, 4]), t([4])]),
        "gemm": Case("Gemm", [t([3, 4]), t([5, 4]), t([5])],
                     attrs={"transB": 1, "alpha": 0.7, "beta": 1.3}),
        "gemm_trans_a": Case("Gemm", [t([4, 3]), t([4, 5]), t([3, 1])], attrs={"transA": 1}),
        "reduce_mean": Case("ReduceMean", [t([2, 3, 4])], ints=[(np.array([1, -1]), 1)],
                            opset=18),
        "reduce_sum_keep": Case("ReduceSum", [t([2, 3, 4])], ints=[(np.array([0]), 1)],
                                attrs={"keepdims": 1}),
        "reduce_max": Case("ReduceMax", [t([2, 3, 4])], attrs={"axes": [2], "keepdims": 0}),
        "softmax": Case("Softmax", [t([2, 3, 5])], attrs={"axis": 1}),
        "log_softmax": Case("LogSoftmax", [t([2, 5])]),
        "sce_ignore_index": Case("SoftmaxCrossEntropyLoss", [t([2, 5, 3])],
                                 ints=[(labels, 1)], attrs={"ignore_index": -100},
                                 loss_is_output=True),
        "sce_weights": Case("SoftmaxCrossEntropyLoss", [t([3, 4])],
                            ints=[(np.array([1, 3, 0]), 1),
                                  (np.array([0.5, 1.0, 2.0, 1.5]), 2)],
                            loss_is_output=True),
        "gather_embedding": Case("Gather", [t([6, 3])],
                                 ints=[(np.array([[1, 4, 1], [5, 0, 1]]), 1)]),
        "gather_axis1": Case("Gather", [t([2, 5])], ints=[(np.array([3, -1, 3]), 1)],
                             attrs={"axis": 1}),
        "expand": Case("Expand", [t([3, 1])], ints=[(np.array([2, 3, 4]), 1)]),
        "reshape": Case("Reshape", [t([2, 3, 4])], ints=[(np.array([4, -1]), 1)]),
        "transpose": Case("Transpose", [t([2, 3, 4])], attrs={"perm": [2, 0, 1]}),
        "slice_negative_step": Case("Slice", [t([4, 6])],
                                    ints=[(np.array([3, 5]), 1), (np.array([0, 0]), 2),
                                          (np.array([0, 1]), 3), (np.array([-1, -2]), 4)]),
        "concat": Case("Concat", [t([2, 3]), t([2, 1]), t([2, 2])], attrs={"axis": 1}),
        "split": Case("Split", [t([2, 6])], ints=[(np.array([2, 4]), 1)], attrs={"axis": 1},
                      n_outputs=2),
        "unsqueeze": Case("Unsqueeze", [t([2, 3])], ints=[(np.array([0, 3]), 1)]),
        "squeeze": Case("Squeeze", [t([2, 1, 3])], ints=[(np.array([1]), 1)]),
        "flatten": Case("Flatten", [t([2, 3, 4])], attrs={"axis": 2}),
        "cumsum_reverse": Case("CumSum", [t([3, 4])], ints=[(np.array(1), 1)],
                               attrs={"reverse": 1}),
        "trilu": Case("Trilu", [t([4, 4])], ints=[(np.array(1), 1)], attrs={"upper": 0}),
        "conv": Case("Conv", [t([2, 3, 6, 6]), t([4, 3, 3, 3]), t([4])],
                     attrs={"pads": [1, 1, 1, 1], "strides": [2, 1]}),
        "conv_groups_dilation": Case("Conv", [t([1, 4, 7, 7]), t([4, 2, 2, 2])],
                                     attrs={"group": 2, "dilations": [2, 2]}),
        "max_pool": Case("MaxPool", [t([2, 2, 6, 6])],
                         attrs={"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        "average_pool": Case("AveragePool", [t([2, 2, 5, 5])],
                             attrs={"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}),
        "global_average_pool": Case("GlobalAveragePool", [t([2, 3, 4, 4])]),
        "batch_norm_training": Case(
            "BatchNormalization", [t([4, 3, 2, 2]), t([3], 0.5, 1.5), t([3])],
            ints=[(rng.uniform(-1, 1, 3), 3), (rng.uniform(0.5, 1, 3), 4)],
            attrs={"training_mode": 1}, opset=15, n_outputs=3, out_shape=[4, 3, 2, 2]),
        "layer_norm": Case("LayerNormalization", [t([2, 3, 5]), t([5], 0.5, 1.5), t([5])],
                           attrs={"axis": -1}),
        "gelu_exact": Case("Gelu", [t([3, 4])], opset=20, out_shape=[3, 4]),
        "gelu_tanh": Case("Gelu", [t([3, 4])], opset=20, out_shape=[3, 4],
                          attrs={"approximate": "tanh"}),
    }
    cs.update(fused_cases(t))
    return cs


def fused_cases(t):
    """The chains moai-fuse rewrites (moai.attention, rms_norm, swiglu,
    rotary), so their gradient kernels are checked by differences in float64
    and, forward and backward, against PyTorch's autograd of the torch code
    the chain exports from."""
    mk = helper.make_node
    f64 = lambda name, a: numpy_helper.from_array(np.asarray(a, np.float64), name)
    i64 = lambda name, a: numpy_helper.from_array(np.asarray(a, np.int64), name)
    # grouped-query attention, 4 heads over 2 kv heads, float-min causal mask
    mask = np.triu(np.full((5, 5), -3.4028234663852886e38), 1).reshape(1, 1, 5, 5)
    repeat = []
    for src in ("x1", "x2"):
        repeat += [mk("Unsqueeze", [src, "ax2"], [src + "u"]),
                   mk("Expand", [src + "u", "shape5"], [src + "e"]),
                   mk("Reshape", [src + "e", "shape4"], [src + "r"])]
    attn = repeat + [mk("Transpose", ["x1r"], ["kt"], perm=[0, 1, 3, 2]),
                     mk("MatMul", ["x0", "kt"], ["s"]),
                     mk("Div", ["s", "c"], ["sc"]),
                     mk("Add", ["sc", "mask"], ["sm"]),
                     mk("Softmax", ["sm"], ["p"], axis=-1)]
    attn_inits = [i64("ax2", [2]), i64("shape5", [1, 2, 2, 5, 3]), i64("shape4", [1, 4, 5, 3]),
                  f64("c", 1.7320508075688772), f64("mask", mask)]
    # the same attention with the exporters' causal + sliding-window (3) +
    # key-padding mask chain, which moai-fuse turns into masks computed from
    # indices (key_padding = x3 > thr: batch 0 pads key 2, batch 1 keys 1
    # and 4; every row keeps a key)
    s6 = np.arange(6)
    cw = (s6[None, :] <= s6[:, None]) & (s6[:, None] - s6[None, :] < 3)
    thr = np.full((2, 6), -10.0)
    thr[0, 2] = thr[1, 1] = thr[1, 4] = 10.0
    bool_init = lambda name, a: numpy_helper.from_array(np.asarray(a, np.bool_), name)
    idx_attn = repeat + [mk("Greater", ["x3", "thr"], ["kp"]),
                         mk("Unsqueeze", ["kp", "ax12"], ["kp4"]),
                         mk("And", ["cw", "kp4"], ["ok"]),
                         mk("Where", ["ok", "zero", "neg"], ["mask"]),
                         mk("Transpose", ["x1r"], ["kt"], perm=[0, 1, 3, 2]),
                         mk("MatMul", ["x0", "kt"], ["s"]),
                         mk("Div", ["s", "c"], ["sc"]),
                         mk("Add", ["sc", "mask"], ["sm"]),
                         mk("Softmax", ["sm"], ["p"], axis=-1)]
    idx_inits = [i64("ax2", [2]), i64("shape5", [2, 2, 2, 6, 3]), i64("shape4", [2, 4, 6, 3]),
                 f64("c", 1.7320508075688772), f64("thr", thr), i64("ax12", [1, 2]),
                 bool_init("cw", cw), f64("zero", 0.0), f64("neg", -3.4028234663852886e38)]
    rms = [mk("Pow", ["x0", "two"], ["sq"]),
           mk("ReduceMean", ["sq"], ["ms"], axes=[-1], keepdims=1),
           mk("Add", ["ms", "eps"], ["mse"]),
           mk("Sqrt", ["mse"], ["den"]),
           mk("Div", ["x0", "den"], ["n"])]
    swiglu = [mk("Sigmoid", ["x0"], ["sg"]), mk("Mul", ["x0", "sg"], ["silu"])]
    # x [1,3,5,6]; cos and sin [1,1,5,6] are graph inputs, so they need
    # gradients too (the rule's unfused path for them)
    rotary = [mk("Mul", ["x0", "x1"], ["xc"]),
              mk("Slice", ["x0", "half", "big", "ax3", "one"], ["hi"]),
              mk("Neg", ["hi"], ["nhi"]),
              mk("Slice", ["x0", "zero", "half", "ax3", "one"], ["lo"]),
              mk("Concat", ["nhi", "lo"], ["rh"], axis=-1),
              mk("Mul", ["rh", "x2"], ["rs"])]
    rotary_inits = [i64("half", [3]), i64("big", [2**63 - 1]), i64("ax3", [3]), i64("one", [1]),
                    i64("zero", [0])]
    return {
        "fused_swiglu": Case("Mul", [t([3, 7], -4.0, 4.0), t([3, 7])], extra_nodes=swiglu,
                             op_inputs=["silu", "x1"], out_shape=[3, 7],
                             fused_ops=["swiglu", "swiglu_grad"],
                             torch_fn=torch_swiglu),
        "fused_rotary": Case("Add", [t([1, 3, 5, 6]), t([1, 1, 5, 6], -1.0, 1.0),
                                     t([1, 1, 5, 6], -1.0, 1.0)],
                             extra_nodes=rotary, extra_inits=rotary_inits,
                             op_inputs=["xc", "rs"], out_shape=[1, 3, 5, 6],
                             fused_ops=["rotary", "rotary_grad"], torch_fn=torch_rotary),
        "fused_attention": Case("MatMul", [t([1, 4, 5, 3]), t([1, 2, 5, 3]), t([1, 2, 5, 3])],
                                extra_nodes=attn, extra_inits=attn_inits, op_inputs=["p", "x2r"],
                                out_shape=[1, 4, 5, 3],
                                fused_ops=["attention", "attention_grad"],
                                torch_fn=lambda q, k, v: torch_attention(q, k, v, mask)),
        "fused_attention_index_masks": Case(
            "MatMul", [t([2, 4, 6, 3]), t([2, 2, 6, 3]), t([2, 2, 6, 3]), t([2, 6])],
            extra_nodes=idx_attn, extra_inits=idx_inits, op_inputs=["p", "x2r"],
            out_shape=[2, 4, 6, 3], fused_ops=["attention", "attention_grad"],
            torch_fn=lambda q, k, v, x3: torch_attention_index_masks(q, k, v, x3, cw, thr)),
        "fused_rms_norm": Case("Mul", [t([3, 7]), t([7], 0.5, 1.5)], extra_nodes=rms,
                               extra_inits=[f64("two", 2.0), f64("eps", 1e-6)],
                               op_inputs=["x1", "n"], out_shape=[3, 7],
                               fused_ops=["rms_norm", "rms_norm_grad"], torch_fn=torch_rms_norm),
    }


def mistral_grads(args):
    work = os.path.join(args.workdir, "mistral_grads")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    ex = os.path.join(ROOT, "examples", "mistral")
    plan = os.path.join(work, "plan")
    run([args.moaicc, os.path.join(ex, "mistral_train.onnx"), "--gradients", "-o", plan])
    feeds = {n: np.load(os.path.join(ex, "ref", n + ".npy"))
             for n in ["input_ids", "attention_mask", "position_ids", "labels"]}
    out = run_plan(args.moai_run, plan, feeds, os.path.join(work, "out"))
    w = float(out["loss_weight"])
    expected_w = float((feeds["labels"][:, 1:] != -100).sum())
    if w != expected_w:
        sys.exit(f"loss weight {w}, expected {expected_w} counted labels")
    loss_ref = float(np.load(os.path.join(ex, "ref", "loss.npy")))
    if abs(float(out["loss"]) - loss_ref) > 2e-5:
        sys.exit(f"loss {float(out['loss'])} vs PyTorch {loss_ref}")
    worst, count = 0.0, 0
    for f in sorted(os.listdir(os.path.join(ex, "ref", "grad"))):
        name = f[:-4]
        ref = np.load(os.path.join(ex, "ref", "grad", f))
        got = out[f"grad.{name}"] / w
        err = float(np.abs(ref - got).max())
        worst = max(worst, err)
        count += 1
        if err > 1e-5:
            sys.exit(f"gradient of {name}: max abs error {err:.3g} > 1e-5")
    if count != 21:
        sys.exit(f"expected 21 parameter gradients in the reference, found {count}")
    print(f"mistral_grads: {count} gradients, worst max abs error {worst:.3g} (bound 1e-5)")


def cnn_grads(args):
    """The CNN training export (Conv, training-mode BatchNormalization, ReLU,
    MaxPool, LeakyReLU, AveragePool, Clip, GlobalAveragePool, Dropout(p=0),
    Gemm, GELU as Erf, cross-entropy): gradients against PyTorch's."""
    work = os.path.join(args.workdir, "cnn_grads")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    ex = os.path.join(ROOT, "examples", "cnn")
    plan = os.path.join(work, "plan")
    run([args.moaicc, os.path.join(ex, "cnn_train.onnx"), "--gradients", "-o", plan])
    feeds = {n: np.load(os.path.join(ex, "ref", n + ".npy")) for n in ["image", "target"]}
    out = run_plan(args.moai_run, plan, feeds, os.path.join(work, "out"))
    w = float(out["loss_weight"])
    if w != feeds["target"].size:
        sys.exit(f"loss weight {w}, expected {feeds['target'].size}")
    worst, count = 0.0, 0
    for f in sorted(os.listdir(os.path.join(ex, "ref", "grad"))):
        name = f[:-4]
        ref = np.load(os.path.join(ex, "ref", "grad", f))
        err = float(np.abs(ref - out[f"grad.{name}"] / w).max())
        worst, count = max(worst, err), count + 1
        if err > 1e-5:
            sys.exit(f"gradient of {name}: max abs error {err:.3g} > 1e-5")
    if count != 10:
        sys.exit(f"expected 10 parameter gradients in the reference, found {count}")
    print(f"cnn_grads: {count} gradients, worst max abs error {worst:.3g} (bound 1e-5)")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--moaicc", required=True)
    p.add_argument("--moai-run", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--list", action="store_true", help="print the case names")
    p.add_argument("case", nargs="?")
    args = p.parse_args()
    cs = cases()
    if args.list:
        print(" ".join(["mistral_grads", "cnn_grads"] + [f"fd.{n}" for n in cs]))
        return
    if args.case == "mistral_grads":
        mistral_grads(args)
    elif args.case == "cnn_grads":
        cnn_grads(args)
    elif args.case and args.case.startswith("fd.") and args.case[3:] in cs:
        fd_check(args.case[3:], cs[args.case[3:]], args)
    else:
        sys.exit(f"unknown case {args.case!r}")


if __name__ == "__main__":
    main()
