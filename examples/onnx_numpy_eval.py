"""A small NumPy evaluator for the ONNX ops the bundled models use.

make_models.py runs each exported graph through it and compares with the
torch module, so that the committed reference data is known to describe the
ONNX graph (no ONNX runtime is installed on the build machines). It follows
the ONNX operator specification (opset 17), only as far as these models need:
an op or attribute value it does not handle raises NotImplementedError.
"""
import math

import numpy as np
from onnx import helper, mapping, numpy_helper


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


def _axis(axis, rank):
    return axis + rank if axis < 0 else axis


def _softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _windows(x, kernel, strides, pads, fill):
    """[N, C, H, W] -> [N, C, OH, OW, kh, kw] windows (pads: t, l, b, r)."""
    n, c, h, w = x.shape
    kh, kw = kernel
    xp = np.full((n, c, h + pads[0] + pads[2], w + pads[1] + pads[3]), fill, dtype=x.dtype)
    xp[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + w] = x
    oh = (xp.shape[2] - kh) // strides[0] + 1
    ow = (xp.shape[3] - kw) // strides[1] + 1
    out = np.empty((n, c, oh, ow, kh, kw), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = xp[:, :, i * strides[0]:i * strides[0] + kh,
                                 j * strides[1]:j * strides[1] + kw]
    return out


def _pool_args(a):
    if a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1, 1])):
        raise NotImplementedError("pooling with ceil_mode or dilations")
    k = a["kernel_shape"]
    return k, a.get("strides", [1] * len(k)), a.get("pads", [0] * 2 * len(k))


def _conv(x, w, b, a):
    if a.get("group", 1) != 1 or any(d != 1 for d in a.get("dilations", [1, 1])):
        raise NotImplementedError("Conv with groups or dilations")
    k = a.get("kernel_shape", list(w.shape[2:]))
    win = _windows(x, k, a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0]), 0.0)
    y = np.einsum("ncijkl,ockl->noij", win, w)
    return y + b.reshape(1, -1, 1, 1) if b is not None else y


def _sce_loss(scores, labels, a):
    if _s(a.get("reduction", "mean")) != "mean":
        raise NotImplementedError("SoftmaxCrossEntropyLoss reduction")
    ignore = a.get("ignore_index")
    logp = np.log(_softmax(scores.astype(np.float64), 1))
    keep = np.ones(labels.shape, bool) if ignore is None else labels != ignore
    safe = np.where(keep, labels, 0)
    picked = np.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
    return np.array(-(picked * keep).sum() / keep.sum(), dtype=scores.dtype)


def _batch_norm(x, scale, bias, mean, var, a):
    """Inference mode: normalises with `mean` and `var`. training_mode=1:
    with the batch's mean and (biased) variance, and also returns the
    running statistics input * momentum + batch * (1 - momentum)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    eps, momentum = a.get("epsilon", 1e-5), a.get("momentum", 0.9)
    out_mean, out_var = mean, var
    if a.get("training_mode", 0):
        axes = (0,) + tuple(range(2, x.ndim))
        mean, var = x.mean(axis=axes), x.var(axis=axes)
        out_mean = out_mean * momentum + mean * (1 - momentum)
        out_var = out_var * momentum + var * (1 - momentum)
    y = ((x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
         * scale.reshape(shape) + bias.reshape(shape))
    return [y.astype(x.dtype), out_mean.astype(x.dtype), out_var.astype(x.dtype)]


def _slice(x, starts, ends, axes=None, steps=None):
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        index[_axis(int(ax), x.ndim)] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


def _reshape(x, shape):
    shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return x.reshape(shape)


_erf = np.vectorize(math.erf, otypes=[np.float64])

_UNARY = {
    "Neg": np.negative, "Sqrt": np.sqrt, "Cos": np.cos, "Sin": np.sin, "Exp": np.exp,
    "Log": np.log, "Not": np.logical_not, "Relu": lambda x: np.maximum(x, 0),
    "Sigmoid": lambda x: 1 / (1 + np.exp(-x)), "Tanh": np.tanh, "Abs": np.abs,
    "Identity": lambda x: x, "Erf": lambda x: _erf(x).astype(x.dtype),
}
_BINARY = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Pow": np.power,
    "Div": lambda a, b: (a // b) if a.dtype.kind == "i" else a / b,
    "MatMul": np.matmul, "And": np.logical_and, "Or": np.logical_or,
}
_COMPARE = {
    "Equal": np.equal, "Less": np.less, "LessOrEqual": np.less_equal,
    "Greater": np.greater, "GreaterOrEqual": np.greater_equal,
}


def _eval(node, x, a):
    op = node.op_type
    if op in _UNARY:
        return [_UNARY[op](x[0])]
    if op in _BINARY:  # ONNX keeps the operands' type (NumPy would promote)
        return [_BINARY[op](x[0], x[1]).astype(x[0].dtype)]
    if op in _COMPARE:
        return [_COMPARE[op](x[0], x[1])]
    if op == "Constant":
        return [numpy_helper.to_array(a["value"])]
    if op == "ConstantOfShape":
        v = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
        return [np.full(tuple(x[0]), v[0], dtype=v.dtype)]
    if op == "Cast":
        return [x[0].astype(mapping.TENSOR_TYPE_TO_NP_TYPE[a["to"]])]
    if op == "Gather":
        return [np.take(x[0], x[1], axis=a.get("axis", 0))]
    if op == "Unsqueeze":
        y = x[0]
        for ax in sorted(_axis(int(i), y.ndim + len(x[1])) for i in x[1]):
            y = np.expand_dims(y, ax)
        return [y]
    if op == "Concat":
        return [np.concatenate(x, axis=a["axis"])]
    if op == "Where":
        return [np.where(x[0], x[1], x[2])]
    if op == "ReduceMean":
        return [np.mean(x[0], axis=tuple(a["axes"]), keepdims=bool(a.get("keepdims", 1)))]
    if op == "Reshape":
        return [_reshape(x[0], list(x[1]))]
    if op == "Transpose":
        return [np.transpose(x[0], a.get("perm"))]
    if op == "Slice":
        return [_slice(*x)]
    if op == "Expand":
        return [np.broadcast_to(x[0], np.broadcast_shapes(x[0].shape, tuple(x[1]))).copy()]
    if op == "Softmax":
        return [_softmax(x[0], a.get("axis", -1))]
    if op == "SoftmaxCrossEntropyLoss":
        return [_sce_loss(x[0], x[1], a)]
    if op == "Conv":
        return [_conv(x[0], x[1], x[2] if len(x) > 2 else None, a)]
    if op == "BatchNormalization":
        return _batch_norm(*x, a)
    if op == "Dropout":
        ratio = float(x[1]) if len(x) > 1 and x[1] is not None else a.get("ratio", 0.5)
        training = bool(x[2]) if len(x) > 2 and x[2] is not None else False
        if training and ratio != 0.0:
            raise NotImplementedError("Dropout in training mode with a non-zero ratio")
        return [x[0], np.ones(x[0].shape, dtype=bool)]  # output, mask
    if op == "Shape":
        start, end = a.get("start", 0), a.get("end", x[0].ndim)
        return [np.array(x[0].shape[start:end], dtype=np.int64)]
    if op == "MaxPool":
        k, st, p = _pool_args(a)
        return [_windows(x[0], k, st, p, -np.inf).max(axis=(4, 5))]
    if op == "AveragePool":
        k, st, p = _pool_args(a)
        if any(p) and not a.get("count_include_pad", 0):
            raise NotImplementedError("AveragePool with pads excluded from the count")
        return [_windows(x[0], k, st, p, 0.0).mean(axis=(4, 5))]
    if op == "GlobalAveragePool":
        return [x[0].mean(axis=tuple(range(2, x[0].ndim)), keepdims=True)]
    if op == "LeakyRelu":
        return [np.where(x[0] >= 0, x[0], x[0] * a.get("alpha", 0.01))]
    if op == "Clip":
        lo = x[1] if len(x) > 1 and x[1] is not None else -np.inf
        hi = x[2] if len(x) > 2 and x[2] is not None else np.inf
        return [np.clip(x[0], lo, hi)]
    if op == "Flatten":
        ax = _axis(a.get("axis", 1), x[0].ndim)
        return [x[0].reshape(int(np.prod(x[0].shape[:ax])), -1)]
    if op == "Gemm":
        A = x[0].T if a.get("transA", 0) else x[0]
        B = x[1].T if a.get("transB", 0) else x[1]
        y = a.get("alpha", 1.0) * (A @ B)
        return [y + a.get("beta", 1.0) * x[2] if len(x) > 2 else y]
    raise NotImplementedError(f"op {op}")


def run(model, feeds):
    """Evaluates `model` (a ModelProto) on `feeds` (name -> array); returns
    every graph output by name."""
    env = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    env.update(feeds)
    for node in model.graph.node:
        inputs = [env[n] if n else None for n in node.input]
        outputs = _eval(node, inputs, _attrs(node))
        for name, value in zip(node.output, outputs):
            env[name] = np.asarray(value)
    return {o.name: env[o.name] for o in model.graph.output}
