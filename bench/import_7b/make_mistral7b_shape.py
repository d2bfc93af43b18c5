#!/usr/bin/python3
"""Writes a Mistral-7B-shaped ONNX graph whose weights are declared but absent.

    /usr/bin/python3 bench/import_7b/make_mistral7b_shape.py OUT.onnx [--train]
        [--layers N] [--seq S] [--size 7b|1t]
    /usr/bin/python3 bench/import_7b/make_mistral7b_shape.py --check

The graph has the op structure that torch.onnx.export (torch 1.13, opset 17,
training=TrainingMode.TRAINING, do_constant_folding=False: see
docs/exporting.md) gives examples/make_models.py's Mistral decoder, node names
included, at the Mistral-7B configuration: hidden 4096, 32 layers,
32 query heads and 8 key/value heads of 128, MLP 14336, vocab 32000, sliding
window 4096; batch 1, sequence 2048. Every parameter is an initializer with
data_location EXTERNAL in "mistral7b.weights" (float32, packed in order,
offsets and lengths consistent: 7.24e9 parameters, 27 GiB), and that file is
never written: the model proves that importing and planning need no weights.

As in the torch export: projection weights are nn.Linear's [out, in] and each
is used as Transpose(weight, perm [1, 0]) -> MatMul; without constant folding
the shapes of Reshape and Expand stay as torch traced them, scalar Constants
Unsqueeze'd and Concat'ed (Expand's target also through Reshape/Shape/
ConstantOfShape/Mul/Equal/Where), for moai's simplification to fold.

Deliberate differences from the torch export: torch computes the sliding-window
test (i - j < window) while tracing and emits an [S, S] bool constant (4 MiB at
S = 2048); here it stays as Sub/Less over the [1, S] and [S, 1] index
constants. torch also pools equal-valued scalar Constants across scopes (which
ones coincide depends on the configuration); here each attention block has
its own.

--check builds the graph at the small configuration of examples/mistral with
that model's weights inline, checks that its non-Constant nodes are those of
the torch exports (name and op type; plus the Sub/Less above), evaluates it
with examples/onnx_numpy_eval.py and compares with the PyTorch reference
logits and loss in examples/mistral/ref/.
"""
import argparse
import json
import os
import sys

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # Debian's python3-onnx; ctest treats 77 as a skip
    print("SKIP: python3-onnx is not installed (use /usr/bin/python3)")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
WEIGHTS_FILE = "mistral7b.weights"
INT64_MAX = np.iinfo(np.int64).max


class Config:
    def __init__(self, **kw):
        self.vocab = 32000
        self.hidden = 4096
        self.layers = 32
        self.heads = 32
        self.kv_heads = 8
        self.head_dim = 128
        self.intermediate = 14336
        self.window = 4096
        self.eps = 1e-6
        self.theta = 10000.0
        self.batch = 1
        self.seq = 2048
        self.__dict__.update(kw)


SMALL = dict(vocab=256, hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16,
             intermediate=176, window=8, batch=2, seq=16)


class Graph:
    """Records nodes the way torch names them: /scope/Op_k, outputs
    /scope/Op_k_output_0, Constants per use."""

    def __init__(self):
        self.nodes = []
        self.counts = {}
        self.anon_count = 0

    def _name(self, scope, op):
        key = (scope, op)
        k = self.counts.get(key, 0)
        self.counts[key] = k + 1
        return f"{scope}/{op}" + (f"_{k}" if k else "")

    def op(self, scope, op, inputs, **attrs):
        name = self._name(scope, op)
        out = name + "_output_0"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def const(self, scope, value):
        value = np.asarray(value)
        name = self._name(scope, "Constant")
        out = name + "_output_0"
        self.nodes.append(helper.make_node("Constant", [], [out], name=name,
                                           value=numpy_helper.from_array(value)))
        return out

    def anon(self, op, value):
        """A Constant named like torch's unscoped values: onnx::<Op>_<n>."""
        self.anon_count += 1
        out = f"onnx::{op}_{self.anon_count}"
        self.nodes.append(helper.make_node("Constant", [], [out], name=out,
                                           value=numpy_helper.from_array(np.asarray(value))))
        return out

    def i64(self, scope, values):
        return self.const(scope, np.array(values, dtype=np.int64))

    def f32(self, scope, value):
        return self.const(scope, np.array(value, dtype=np.float32))


def rms_norm(g, scope, x, weight, eps):
    sq = g.op(scope, "Pow", [x, g.f32(scope, 2.0)])
    mean = g.op(scope, "ReduceMean", [sq], axes=[-1], keepdims=1)
    std = g.op(scope, "Sqrt", [g.op(scope, "Add", [mean, g.f32(scope, eps)])])
    return g.op(scope, "Mul", [weight, g.op(scope, "Div", [x, std])])


def rotate(g, scope, x, cos, sin, half):
    """x * cos + rotate_half(x) * sin, with rotate_half = cat(-x2, x1)."""
    a = g.op(scope, "Mul", [x, cos])
    ax, st, en, sp = g.i64(scope, [3]), g.i64(scope, [half]), g.i64(scope, [INT64_MAX]), g.i64(scope, [1])
    x2 = g.op(scope, "Neg", [g.op(scope, "Slice", [x, st, en, ax, sp])])
    ax, st, en, sp = g.i64(scope, [3]), g.i64(scope, [0]), g.i64(scope, [half]), g.i64(scope, [1])
    x1 = g.op(scope, "Slice", [x, st, en, ax, sp])
    rot = g.op(scope, "Concat", [x2, x1], axis=-1)
    return g.op(scope, "Add", [a, g.op(scope, "Mul", [rot, sin])])


def linear(g, scope, x, weight):
    """nn.Linear(bias=False): x @ weight.T, the [out, in] weight transposed."""
    wt = g.op(scope, "Transpose", [weight], perm=[1, 0])
    return g.op(scope, "MatMul", [x, wt])


def shape_of(g, scope, scalars, anon_axes):
    """A shape traced from Python ints: each 0-d int64 Constant Unsqueeze'd to
    [1], then Concat. torch takes the axes from onnx::Unsqueeze_<n> Constants
    for Reshape shapes and from scoped ones for Expand's."""
    parts = []
    for v in scalars:
        axes = g.anon("Unsqueeze", np.array([0], np.int64)) if anon_axes else g.i64(scope, [0])
        parts.append(g.op(scope, "Unsqueeze", [v, axes]))
    return g.op(scope, "Concat", parts, axis=0)


def repeat_kv(g, scope, x, shape5, shape4):
    """x[:, :, None].expand(shape5).reshape(shape4), as torch exports expand
    (shape5 and shape4: lists of 0-d int64 Constants)."""
    u = g.op(scope, "Unsqueeze", [x, g.i64(scope, [2])])
    target = g.op(scope, "Reshape", [shape_of(g, scope, shape5, False), g.i64(scope, [-1])],
                  allowzero=0)
    ones = g.op(scope, "ConstantOfShape", [g.op(scope, "Shape", [target])],
                value=numpy_helper.from_array(np.array([1], dtype=np.int64)))
    neg = g.op(scope, "Mul", [ones, g.const(scope, np.array(-1, dtype=np.int64))])
    shape = g.op(scope, "Where", [g.op(scope, "Equal", [target, neg]), ones, target])
    return g.op(scope, "Reshape", [g.op(scope, "Expand", [u, shape]), shape_of(g, scope, shape4, True)],
                allowzero=0)


def attention(g, c, i, x, cos, sin, mask, rope):
    s = f"/model/layers.{i}/self_attn"
    nh, kvh, d = c.heads, c.kv_heads, c.head_dim
    def scalar(v):
        return g.const(s, np.array(v, dtype=np.int64))
    b, t = scalar(c.batch), scalar(c.seq)
    def proj(name, v):
        return linear(g, f"{s}/{name}", v, f"model.layers.{i}.self_attn.{name}.weight")

    q_in = proj("q_proj", x)
    nh_c, d_c, kvh_c = scalar(nh), scalar(d), scalar(kvh)
    q = g.op(s, "Transpose", [g.op(s, "Reshape", [q_in, shape_of(g, s, [b, t, nh_c, d_c], True)],
                                   allowzero=0)], perm=[0, 2, 1, 3])
    k_in = proj("k_proj", x)
    k_shape = shape_of(g, s, [b, t, kvh_c, d_c], True)
    v_shape = shape_of(g, s, [b, t, kvh_c, d_c], True)
    k = g.op(s, "Transpose", [g.op(s, "Reshape", [k_in, k_shape], allowzero=0)], perm=[0, 2, 1, 3])
    v = g.op(s, "Transpose", [g.op(s, "Reshape", [proj("v_proj", x), v_shape], allowzero=0)],
             perm=[0, 2, 1, 3])
    if "cos" not in rope:  # torch's CSE shares layer 0's with the other layers
        rope["cos"] = g.op(s, "Unsqueeze", [cos, g.i64(s, [1])])
        rope["sin"] = g.op(s, "Unsqueeze", [sin, g.i64(s, [1])])
    cos, sin = rope["cos"], rope["sin"]
    q = rotate(g, s, q, cos, sin, d // 2)
    k = rotate(g, s, k, cos, sin, d // 2)
    rep_c = scalar(nh // kvh)
    k = repeat_kv(g, s, k, [b, kvh_c, rep_c, t, d_c], [b, nh_c, t, d_c])
    v = repeat_kv(g, s, v, [b, kvh_c, rep_c, t, d_c], [b, nh_c, t, d_c])
    scores = g.op(s, "MatMul", [q, g.op(s, "Transpose", [k], perm=[0, 1, 3, 2])])
    scores = g.op(s, "Add", [g.op(s, "Div", [scores, g.f32(s, np.sqrt(d))]), mask])
    out = g.op(s, "MatMul", [g.op(s, "Softmax", [scores], axis=-1), v])
    out = g.op(s, "Reshape", [g.op(s, "Transpose", [out], perm=[0, 2, 1, 3]),
                              shape_of(g, s, [b, t, scalar(nh * d)], True)], allowzero=0)
    return proj("o_proj", out)


def mlp(g, i, x):
    s = f"/model/layers.{i}/mlp"
    gate = linear(g, f"{s}/gate_proj", x, f"model.layers.{i}.mlp.gate_proj.weight")
    silu = g.op(s, "Mul", [gate, g.op(s, "Sigmoid", [gate])])
    up = linear(g, f"{s}/up_proj", x, f"model.layers.{i}.mlp.up_proj.weight")
    return linear(g, f"{s}/down_proj", g.op(s, "Mul", [silu, up]),
                  f"model.layers.{i}.mlp.down_proj.weight")


def attention_bias(g, c, attention_mask):
    s = "/model"
    idx = np.arange(c.seq, dtype=np.int64)
    j, i = g.const(s, idx[None, :]), g.const(s, idx[:, None])
    causal = g.op(s, "LessOrEqual", [j, i])
    in_window = g.op(s, "Less", [g.op(s, "Sub", [i, j]), g.const(s, np.array(c.window, np.int64))])
    allowed = g.op(s, "And", [causal, in_window])
    allowed = g.op(s, "Unsqueeze", [g.op(s, "Unsqueeze", [allowed, g.i64(s, [0])]), g.i64(s, [1])])
    m = g.op(s, "Unsqueeze", [g.op(s, "Unsqueeze", [attention_mask, g.i64(s, [1])]), g.i64(s, [2])])
    keep = g.op(s, "Not", [g.op(s, "Equal", [m, g.const(s, np.array(0, np.int64))])])
    allowed = g.op(s, "And", [allowed, keep])
    zero, neg = "onnx::Where_0", "onnx::Where_1"
    g.nodes.append(helper.make_node("Constant", [], [zero], name=zero,
                                    value=numpy_helper.from_array(np.array(0, np.float32))))
    g.nodes.append(helper.make_node("Constant", [], [neg], name=neg,
                                    value=numpy_helper.from_array(np.array(np.finfo(np.float32).min,
                                                                           np.float32))))
    return g.op(s, "Where", [allowed, zero, neg])


def parameters(c):
    """(name, shape) of every parameter in model.named_parameters() order;
    projections are nn.Linear's [out, in], as Mistral checkpoints store them."""
    h, kv = c.hidden, c.kv_heads * c.head_dim
    out = [("model.embed_tokens.weight", [c.vocab, h])]
    for i in range(c.layers):
        p = f"model.layers.{i}."
        out += [(p + "self_attn.q_proj.weight", [c.heads * c.head_dim, h]),
                (p + "self_attn.k_proj.weight", [kv, h]),
                (p + "self_attn.v_proj.weight", [kv, h]),
                (p + "self_attn.o_proj.weight", [h, c.heads * c.head_dim]),
                (p + "mlp.gate_proj.weight", [c.intermediate, h]),
                (p + "mlp.up_proj.weight", [c.intermediate, h]),
                (p + "mlp.down_proj.weight", [h, c.intermediate]),
                (p + "input_layernorm.weight", [h]),
                (p + "post_attention_layernorm.weight", [h])]
    return out + [("model.norm.weight", [h]), ("lm_head.weight", [c.vocab, h])]


def external_initializers(c):
    """Float32 initializers whose bytes lie, packed in order, in WEIGHTS_FILE."""
    tensors, offset = [], 0
    for name, shape in parameters(c):
        length = int(np.prod(shape)) * 4
        t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape,
                        data_location=TensorProto.EXTERNAL)
        for key, value in (("location", WEIGHTS_FILE), ("offset", str(offset)), ("length", str(length))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        tensors.append(t)
        offset += length
    return tensors, offset


def build(c, train, initializers):
    g = Graph()
    i64 = TensorProto.INT64
    inputs = [helper.make_tensor_value_info(n, i64, [c.batch, c.seq])
              for n in ("input_ids", "attention_mask", "position_ids") + (("labels",) if train else ())]
    if train:  # torch pools the loss's -1 into a Constant of this scope
        minus_one = g.const("/model/embed_tokens", np.array(-1, dtype=np.int64))
    x = g.op("/model/embed_tokens", "Gather", ["model.embed_tokens.weight", "input_ids"])
    r = "/model/rotary_emb"
    pos = g.op(r, "Cast", [g.op(r, "Unsqueeze", ["position_ids", g.i64(r, [-1])])], to=TensorProto.FLOAT)
    inv_freq = 1.0 / (c.theta ** (np.arange(0, c.head_dim, 2, dtype=np.float32) / c.head_dim))
    freqs = g.op(r, "Mul", [pos, g.const(r, inv_freq.astype(np.float32))])
    emb = g.op(r, "Concat", [freqs, freqs], axis=-1)
    cos, sin = g.op(r, "Cos", [emb]), g.op(r, "Sin", [emb])
    mask = attention_bias(g, c, "attention_mask")
    rope = {}  # [B, 1, S, d] cos and sin
    for i in range(c.layers):
        p = f"model.layers.{i}."
        h = rms_norm(g, f"/model/layers.{i}/input_layernorm", x, p + "input_layernorm.weight", c.eps)
        x = g.op(f"/model/layers.{i}", "Add", [x, attention(g, c, i, h, cos, sin, mask, rope)])
        h = rms_norm(g, f"/model/layers.{i}/post_attention_layernorm", x,
                     p + "post_attention_layernorm.weight", c.eps)
        x = g.op(f"/model/layers.{i}", "Add", [x, mlp(g, i, h)])
    x = rms_norm(g, "/model/norm", x, "model.norm.weight", c.eps)
    logits = linear(g, "/lm_head", x, "lm_head.weight")
    if train:
        vocab = g.const("", np.array(c.vocab, dtype=np.int64))
        sl = g.op("", "Slice", [logits, g.i64("", [0]), g.i64("", [-1]), g.i64("", [1]), g.i64("", [1])])
        sl = g.op("", "Reshape", [sl, shape_of(g, "", [minus_one, vocab], True)], allowzero=0)
        lab = g.op("", "Slice", ["labels", g.i64("", [1]), g.i64("", [INT64_MAX]), g.i64("", [1]),
                                 g.i64("", [1])])
        lab = g.op("", "Reshape", [lab, g.i64("", [-1])], allowzero=0)
        g.op("", "SoftmaxCrossEntropyLoss", [sl, lab], ignore_index=-100, reduction="mean")
        g.nodes[-1].output[0] = "loss"  # torch names the producing node's output
        outputs = [helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])]
    else:
        g.nodes[-1].output[0] = "logits"
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [c.batch, c.seq, c.vocab])]
    graph = helper.make_graph(g.nodes, "main_graph", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="moai-bench", producer_version="1")
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key = "moai.trainable_parameters"
    entry.value = json.dumps([n for n, _ in parameters(c)])
    return model


def check():
    """Small configuration with the torch export's weights vs. PyTorch's outputs."""
    sys.path.insert(0, os.path.join(REPO, "examples"))
    import onnx_numpy_eval
    d = os.path.join(REPO, "examples", "mistral")
    src = onnx.load(os.path.join(d, "mistral_infer.onnx"))
    weights = {t.name: t for t in src.graph.initializer}
    c = Config(**SMALL)
    ref = {n: np.load(os.path.join(d, "ref", n + ".npy"))
           for n in ("input_ids", "attention_mask", "position_ids", "labels", "logits", "loss")}
    for train, out in ((False, "logits"), (True, "loss")):
        model = build(c, train, [weights[n] for n, _ in parameters(c)])
        onnx.checker.check_model(model)
        # The same non-Constant nodes as torch's export, by name and op type,
        # plus the sliding-window Sub/Less that torch traces into a constant.
        torch_graph = onnx.load(os.path.join(d, "mistral_train.onnx" if train else "mistral_infer.onnx"))
        def ops(m):
            return {n.name: n.op_type for n in m.graph.node if n.op_type != "Constant"}
        ours, theirs = ops(model), ops(torch_graph)
        extra = {"/model/Sub": "Sub", "/model/Less": "Less"}
        if ours != {**theirs, **extra}:
            diff = sorted(set(ours.items()) ^ set({**theirs, **extra}.items()))
            raise SystemExit(f"--check: nodes differ from the torch export ({out}): {diff[:10]}")
        names = [i.name for i in model.graph.input]
        got = onnx_numpy_eval.run(model, {n: ref[n] for n in names})[out]
        if not np.allclose(got, ref[out], rtol=1e-4, atol=1e-5):
            raise SystemExit(f"--check: {out} differs from PyTorch by {np.max(np.abs(got - ref[out]))}")
        ops = sorted({n.op_type for n in model.graph.node})
        print(f"check ok ({out}): {len(model.graph.node)} nodes; ops: {' '.join(ops)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", nargs="?", help="the .onnx file to write")
    ap.add_argument("--train", action="store_true", help="add `labels` and output the scalar loss")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--check", action="store_true", help="verify the structure against PyTorch")
    ap.add_argument("--size", choices=["7b", "1t"], default="7b",
                    help="1t: the size of the largest row of Megatron SC'21 Table 1 (hidden "
                         "25600, 128 layers, 160 heads, vocab 51200, SwiGLU width 68264 so "
                         "that a layer has 12 h^2 parameters like GPT's 4h MLP: 1.0e12)")
    a = ap.parse_args()
    if a.check:
        return check()
    if not a.out:
        ap.error("give OUT.onnx or --check")
    if a.size == "1t":
        c = Config(vocab=51200, hidden=25600, layers=128 if a.layers == 32 else a.layers,
                   heads=160, kv_heads=160, head_dim=160, intermediate=68264, window=2048,
                   seq=a.seq)
    else:
        c = Config(layers=a.layers, seq=a.seq)
    initializers, total = external_initializers(c)
    model = build(c, a.train, initializers)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    # Written directly: onnx.save would look for external data to write.
    data = model.SerializeToString()
    with open(a.out, "wb") as f:
        f.write(data)
    print(f"{a.out}: {len(data)} bytes, {len(model.graph.node)} nodes, "
          f"{len(initializers)} external weights ({total / 2**30:.1f} GiB in absent {WEIGHTS_FILE})")


if __name__ == "__main__":
    main()
