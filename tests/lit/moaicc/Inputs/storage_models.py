#!/usr/bin/python3
"""Models whose weights are stored each way the ONNX importer records
(moai.weight's `storage`), for the plan writer's weight reading:

  external.onnx + external.bin   W in an external data file (at an offset)
  field.onnx                     W in float_data, b in raw_data
  absent.onnx                    W declared with dims but no data

Each computes y = x @ W + b (x: 2x20, W: 20x3). Writes DIR/x.npy and
DIR/y.npy (numpy's result) and DIR/W.npy next to the models.

usage: storage_models.py DIR
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def graph(w_tensor, b_tensor, name):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
             helper.make_node("Add", ["h", "b"], ["y"], name="add")]
    g = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 20])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        initializer=[w_tensor, b_tensor])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 20)).astype(np.float32)
    w = rng.standard_normal((20, 3)).astype(np.float32)
    b = rng.standard_normal((3,)).astype(np.float32)
    np.save(os.path.join(out, "x.npy"), x)
    np.save(os.path.join(out, "W.npy"), w)
    np.save(os.path.join(out, "y.npy"), x @ w + b)
    b_raw = numpy_helper.from_array(b, "b")

    # External: W's bytes at offset 128 of external.bin.
    with open(os.path.join(out, "external.bin"), "wb") as f:
        f.write(b"\x55" * 128)
        f.write(w.tobytes())
    w_ext = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=w.shape)
    w_ext.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "external.bin"), ("offset", "128"),
                 ("length", str(w.nbytes))):
        e = w_ext.external_data.add()
        e.key, e.value = k, v
    onnx.save(graph(w_ext, b_raw, "external"), os.path.join(out, "external.onnx"))

    # Typed field: W in float_data.
    w_field = helper.make_tensor("W", TensorProto.FLOAT, w.shape,
                                 vals=w.flatten().tolist(), raw=False)
    onnx.save(graph(w_field, b_raw, "field"), os.path.join(out, "field.onnx"))

    # Absent: dims but no data at all.
    w_absent = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=w.shape)
    onnx.save(graph(w_absent, b_raw, "absent"), os.path.join(out, "absent.onnx"))


if __name__ == "__main__":
    main()
