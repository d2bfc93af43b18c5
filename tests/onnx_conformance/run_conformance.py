#!/usr/bin/python3
"""ONNX conformance: compile and run ONNX's own node tests with moai.

    /usr/bin/python3 tests/onnx_conformance/run_conformance.py --build build [--jobs 2]
        [--data /usr/share/libonnx-testdata/data/node] [--filter REGEX] [--keep DIR]

For every node test of Debian's libonnx-testdata whose op types are all
supported by moai (`moai-opt --list-ops`) and whose opset is one moai reads,
the model is compiled with `moaicc MODEL -o PLAN`, run with
`moai-run PLAN --input NAME=FILE.npy ... --output-dir OUT` on
test_data_set_0, and every output is compared with ONNX's stored output at
ONNX's own tolerance (rtol 1e-3, atol 1e-7; NaN must match NaN). The stored
outputs are computed by ONNX's reference implementation, never by moai.

Prints one line per failure and the summary `N passed, M failed`; exits 1
if anything failed. Cases moai rejects on purpose at compile time are listed
in expected_failures.txt (test name, then text the error must contain) and
counted separately; any other failure is a failure.
"""
import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
RTOL, ATOL = 1e-3, 1e-7
MIN_OPSET, MAX_OPSET = 7, 21


def supported_ops(build):
    out = subprocess.run([os.path.join(build, "bin", "moai-opt"), "--list-ops"],
                         check=True, capture_output=True, text=True).stdout
    return {m.group(1) for m in re.finditer(r"^\| `moai\.\w+` \| (\w+) \|", out, re.M)
            if m.group(1) != "-"}


def load_expected():
    path = os.path.join(HERE, "expected_failures.txt")
    expected = {}
    if os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                expected[name] = reason.strip()
    return expected


def classify(case_dir, ops):
    """Returns None if the case should run, else why it is skipped."""
    try:
        model = onnx.load(os.path.join(case_dir, "model.onnx"))
    except Exception as e:  # a model ONNX itself cannot read is not ours to run
        return "unreadable: %s" % e
    opset = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not opset or not (MIN_OPSET <= opset[0] <= MAX_OPSET):
        return "opset %s outside %d..%d" % (opset, MIN_OPSET, MAX_OPSET)
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in ops:
            return "op %s" % node.op_type
    if not os.path.isdir(os.path.join(case_dir, "test_data_set_0")):
        return "no test data"
    return None


def read_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t.name, numpy_helper.to_array(t)


def compare(name, got, want):
    if got.shape != want.shape:
        return "output '%s': shape %s, expected %s" % (name, got.shape, want.shape)
    if want.dtype.kind in "fc":
        g, w = got.astype(np.float64), want.astype(np.float64)
        nan_ok = np.isnan(g) == np.isnan(w)
        close = np.isclose(g, w, rtol=RTOL, atol=ATOL, equal_nan=True)
        if not (nan_ok.all() and close.all()):
            bad = np.argwhere(~close)[0]
            return "output '%s': at %s got %r, expected %r (max abs err %.3g)" % (
                name, tuple(bad), g[tuple(bad)], w[tuple(bad)],
                np.nanmax(np.abs(g - w)))
        return None
    if got.dtype != want.dtype and not (got.dtype == np.bool_ and want.dtype == np.bool_):
        return "output '%s': dtype %s, expected %s" % (name, got.dtype, want.dtype)
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)[0]
        return "output '%s': at %s got %r, expected %r" % (name, tuple(bad), got[tuple(bad)],
                                                           want[tuple(bad)])
    return None


def run_case(build, case_dir, work):
    name = os.path.basename(case_dir)
    tmp = tempfile.mkdtemp(prefix=name + ".", dir=work)
    try:
        plan = os.path.join(tmp, "plan")
        r = subprocess.run([os.path.join(build, "bin", "moaicc"),
                            os.path.join(case_dir, "model.onnx"), "-o", plan],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            return name, "compile", r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "moaicc failed"
        model = onnx.load(os.path.join(case_dir, "model.onnx"), load_external_data=False)
        inits = {i.name for i in model.graph.initializer}
        graph_inputs = [i.name for i in model.graph.input if i.name not in inits]
        data = os.path.join(case_dir, "test_data_set_0")
        args = []
        for k, input_name in enumerate(graph_inputs):
            pb = os.path.join(data, "input_%d.pb" % k)
            if not os.path.exists(pb):
                continue  # an optional input left out
            _, arr = read_pb(pb)
            npy = os.path.join(tmp, "in_%d.npy" % k)
            np.save(npy, arr)
            args += ["--input", "%s=%s" % (input_name, npy)]
        out_dir = os.path.join(tmp, "out")
        r = subprocess.run([os.path.join(build, "bin", "moai-run"), plan, "--threads", "1",
                            "--output-dir", out_dir] + args,
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            return name, "run", r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "moai-run failed"
        for k, out in enumerate(model.graph.output):
            pb = os.path.join(data, "output_%d.pb" % k)
            if not os.path.exists(pb):
                continue
            _, want = read_pb(pb)
            got_path = os.path.join(out_dir, out.name + ".npy")
            if not os.path.exists(got_path):
                return name, "run", "output '%s' was not written" % out.name
            why = compare(out.name, np.load(got_path), want)
            if why:
                return name, "compare", why
        return name, None, None
    except subprocess.TimeoutExpired:
        return name, "timeout", "took longer than 120 s"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build")
    p.add_argument("--data", default="/usr/share/libonnx-testdata/data/node")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--filter", default="")
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args()
    if not os.path.isdir(a.data):
        print("conformance: %s not found (package libonnx-testdata)" % a.data, file=sys.stderr)
        return 2
    ops = supported_ops(a.build)
    expected = load_expected()
    cases, skipped = [], 0
    for name in sorted(os.listdir(a.data)):
        if a.filter and not re.search(a.filter, name):
            continue
        why = classify(os.path.join(a.data, name), ops)
        if why:
            skipped += 1
            if a.verbose:
                print("skip %s: %s" % (name, why))
        else:
            cases.append(os.path.join(a.data, name))
    work = tempfile.mkdtemp(prefix="moai-conformance.")
    passed, failed, rejected = 0, [], []
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as pool:
            for name, stage, why in pool.map(lambda c: run_case(a.build, c, work), cases):
                if stage is None:
                    passed += 1
                    if name in expected:
                        print("note %s: passes now; its line in expected_failures.txt can go" % name)
                elif name in expected and expected[name] in why:
                    rejected.append(name)
                    print("rejected on purpose %s: %s" % (name, why))
                else:
                    failed.append(name)
                    print("FAIL %s (%s): %s" % (name, stage, why))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d cases with supported ops; %d node tests skipped (unsupported op or opset); "
          "%d rejected on purpose (expected_failures.txt)" % (len(cases), skipped, len(rejected)))
    if failed:
        print("failures: " + " ".join(failed))
    print("%d passed, %d failed" % (passed, len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
