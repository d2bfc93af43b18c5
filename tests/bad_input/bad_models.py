#!/usr/bin/python3
"""Bad models through moaicc: each case builds a broken model with onnx's
Python API (python3-onnx), runs `moaicc MODEL --emit=mlir` on it and checks
that it fails cleanly: a non-zero exit, the expected phrase and the model's
file name on stderr, and no sanitizer report.

Usage: bad_models.py --moaicc PATH --workdir DIR --case NAME
       bad_models.py --list
Exit 0: passed, 1: failed, 77: skipped (no onnx module, or a moaicc that
cannot import a valid model yet).
"""
import argparse
import os
import shutil
import subprocess
import sys

SKIP = 77

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"skipped: {e} (install python3-onnx)")
    sys.exit(SKIP)

OPSET = 17


def mlp(value_info_shape=None, extra_nodes=(), opset=OPSET):
    """y = relu(x @ W + b), W and b in raw_data."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal((3,)).astype(np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "b"], ["a"], name="add"),
        helper.make_node("Relu", ["a"], ["y"], name="relu"),
    ] + list(extra_nodes)
    value_info = []
    if value_info_shape is not None:
        value_info.append(helper.make_tensor_value_info("h", TensorProto.FLOAT, value_info_shape))
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        initializer=[w, b], value_info=value_info)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             producer_name="bad_models.py")


def write(path, model_or_bytes):
    data = model_or_bytes if isinstance(model_or_bytes, bytes) else model_or_bytes.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)


def case_truncated(d):
    data = mlp().SerializeToString()
    write(os.path.join(d, "model.onnx"), data[: len(data) // 2])
    return "not a valid ONNX model"


def case_bit_flipped(d):
    data = bytearray(mlp().SerializeToString())
    # The first byte is the tag of ir_version (field 1, varint: 0x08);
    # flipping bit 2 makes its wire type 4 (end group) where none began.
    assert data[0] == 0x08
    data[0] ^= 0x04
    write(os.path.join(d, "model.onnx"), bytes(data))
    return "not a valid ONNX model"


def case_empty_file(d):
    write(os.path.join(d, "model.onnx"), b"")
    return "empty"


def case_missing_external_data(d):
    model = mlp()
    path = os.path.join(d, "model.onnx")
    onnx.save_model(model, path, save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin",
                    size_threshold=0)
    os.remove(os.path.join(d, "weights.bin"))
    return "external data file 'weights.bin' for initializer"


def case_external_escapes_dir(d):
    model = mlp()
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    entry = w.external_data.add()
    entry.key, entry.value = "location", "../secret.bin"
    write(os.path.join(d, "model.onnx"), model)
    return "escapes the model's directory"


def case_dangling_value(d):
    model = mlp(extra_nodes=[helper.make_node("Add", ["y", "ghost"], ["z"], name="bad_add")])
    model.graph.output[0].name = "z"
    write(os.path.join(d, "model.onnx"), model)
    return "node 'bad_add' (Add): input 'ghost' is not defined by any earlier node"


def case_cycle(d):
    nodes = [
        helper.make_node("Add", ["x", "q"], ["p"], name="first"),
        helper.make_node("Relu", ["p"], ["q"], name="second"),
    ]
    graph = helper.make_graph(
        nodes, "cycle",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("q", TensorProto.FLOAT, [4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    write(os.path.join(d, "model.onnx"), model)
    return "input 'q' is not defined by any earlier node"


def case_value_info_mismatch(d):
    write(os.path.join(d, "model.onnx"), mlp(value_info_shape=[2, 5]))
    return "shape 2x5 from value_info disagrees with inferred 2x3"


def case_unsupported_op(d):
    model = mlp(extra_nodes=[helper.make_node("Foo", ["y"], ["z"], name="n3")])
    model.graph.output[0].name = "z"
    write(os.path.join(d, "model.onnx"), model)
    return "node 'n3' (Foo): unsupported op Foo (opset 17)"


def case_unknown_attribute(d):
    model = mlp(extra_nodes=[helper.make_node("Softmax", ["y"], ["z"], name="sm", foo=3)])
    model.graph.output[0].name = "z"
    write(os.path.join(d, "model.onnx"), model)
    return "node 'sm' (Softmax): unknown attribute 'foo' for Softmax (opset 17)"


def case_old_opset(d):
    write(os.path.join(d, "model.onnx"), mlp(opset=6))
    return "ai.onnx opset 6 is not supported"


CASES = {name[len("case_"):]: fn for name, fn in globals().items() if name.startswith("case_")}
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")


def run_moaicc(moaicc, model):
    return subprocess.run([moaicc, model, "--emit=mlir"], capture_output=True, text=True,
                          errors="replace", timeout=120)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--moaicc")
    p.add_argument("--workdir")
    p.add_argument("--case", choices=sorted(CASES))
    p.add_argument("--list", action="store_true")
    a = p.parse_args()
    if a.list:
        print("\n".join(sorted(CASES)))
        return 0
    if not (a.moaicc and a.workdir and a.case):
        p.error("--moaicc, --workdir and --case are required")
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)

    # A moaicc that cannot import a good model tests nothing here.
    good = os.path.join(a.workdir, "good.onnx")
    write(good, mlp())
    r = run_moaicc(a.moaicc, good)
    if r.returncode != 0 or "func.func" not in r.stdout:
        print(f"skipped: moaicc does not import a valid model yet (exit {r.returncode}): "
              f"{r.stderr.strip()[:500]}")
        return SKIP

    phrase = CASES[a.case](a.workdir)
    model = os.path.join(a.workdir, "model.onnx")
    r = run_moaicc(a.moaicc, model)
    failures = []
    if r.returncode == 0:
        failures.append("moaicc exited 0 on a bad model")
    if r.returncode < 0:
        failures.append(f"moaicc died of signal {-r.returncode}")
    if phrase not in r.stderr:
        failures.append(f"stderr lacks the phrase {phrase!r}")
    if "model.onnx" not in r.stderr:
        failures.append("stderr does not name the model file")
    for mark in SANITIZER_MARKS:
        if mark in r.stderr:
            failures.append(f"sanitizer report ({mark})")
    if failures:
        print(f"FAIL {a.case}: " + "; ".join(failures))
        print(f"--- exit {r.returncode}, stderr:\n{r.stderr}")
        return 1
    print(f"ok {a.case}: exit {r.returncode}: {r.stderr.strip().splitlines()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
