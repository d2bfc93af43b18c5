#!/usr/bin/env python3
"""moai-run's command line, one case per ctest, on the hand-built test plan
(make_test_plan + moai_test_device.so: y = a + b + w, float32 [2,3]).
Expected outputs are computed here with NumPy from the weights as read by
the independent safetensors reader (st_py.py), never by moai.

Every error case checks: exit code, one line on stderr naming the file or
input at fault, no sanitizer report, no output files left behind.

usage: cli_test.py --moai-run BIN --make-plan BIN --device SO --workdir DIR --case CASE
Exit 0: passed; 1: failed; 77: skipped."""
import argparse
import os
import shutil
import subprocess
import sys

try:
    import numpy as np
except ImportError:
    print("skipped: NumPy (python3-numpy) is not installed")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_py  # noqa: E402

OPTIONS = ["--input", "--output-dir", "--threads", "--repeat", "--warmup", "--quiet",
           "--verbose", "--help", "--version", "--data", "--epochs", "--steps", "--shuffle",
           "--seed", "--drop-last", "--no-drop-last", "--log", "--log-every", "--save",
           "--save-every", "--resume", "--dump-gradients"]


class Env:
    def __init__(self, args):
        self.args = args
        self.work = args.workdir
        self.plan = os.path.join(self.work, "plan")
        self.out = os.path.join(self.work, "out")
        r = subprocess.run([args.make_plan, args.device, self.plan], capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError(f"make_test_plan failed: {r.stderr}")
        self.a = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
        self.b = np.full((2, 3), -1.5, dtype=np.float32)
        header, start, raw = st_py.read(os.path.join(self.plan, "weights-0.safetensors"))
        self.w = st_py.tensor(raw, start, header["w"])
        self.expected = self.a + self.b + self.w

    def npy(self, name, arr):
        path = os.path.join(self.work, name)
        np.save(path, arr)
        return path

    def inputs(self):
        return ["--input", "a=" + self.npy("a.npy", self.a), "--input", "b=" + self.npy("b.npy", self.b)]

    def run(self, *argv):
        return subprocess.run([self.args.moai_run, *argv], capture_output=True, text=True,
                              timeout=50)


def no_kernel_skip(r):
    if "no kernel for op kind add" in r.stderr:
        print("skipped: the elementwise ADD kernel is not in this build")
        sys.exit(77)


def expect_ok(r):
    no_kernel_skip(r)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr}"
    assert "runtime error" not in r.stderr and "Sanitizer" not in r.stderr, r.stderr


def expect_error(env, r, *needles, code=1):
    assert r.returncode == code, f"exit {r.returncode} (wanted {code}): {r.stdout}{r.stderr}"
    lines = r.stderr.strip().split("\n")
    assert len(lines) == 1, f"wanted one line on stderr, got: {r.stderr}"
    assert lines[0].startswith("moai-run: "), lines[0]
    for n in needles:
        assert n in lines[0], f"'{n}' not in: {lines[0]}"
    if os.path.isdir(env.out):
        assert not os.listdir(env.out), f"files left: {os.listdir(env.out)}"


def case_help(env):
    r = env.run("--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: moai-run PLAN_DIR"), r.stdout
    for opt in OPTIONS:
        assert opt in r.stdout, f"--help does not list {opt}"


def case_version(env):
    r = env.run("--version")
    assert r.returncode == 0 and r.stdout.startswith("moai-run 0.1.0"), r.stdout
    assert "plan format 3" in r.stdout and "device ABI 3" in r.stdout, r.stdout


def case_no_args(env):
    expect_error(env, env.run(), "no plan directory given", code=2)


def case_unknown_option(env):
    expect_error(env, env.run(env.plan, "--fast"), "unknown option '--fast'", code=2)
    expect_error(env, env.run(env.plan, "--threads", "0"), "--threads takes a positive integer",
                 code=2)
    expect_error(env, env.run(env.plan, "--repeat"), "--repeat needs a value", code=2)


def case_training_options(env):
    """Training options: usage errors, and refused on an inference plan."""
    expect_error(env, env.run(env.plan, "--data", "d.safetensors", "--epochs", "1", "--steps", "2"),
                 "give --epochs or --steps, not both", code=2)
    expect_error(env, env.run(env.plan, "--data", "d", "--save-every", "2"),
                 "--save-every needs --save DIR", code=2)
    expect_error(env, env.run(env.plan, "--seed", "-1"), "--seed takes an integer", code=2)
    expect_error(env, env.run(env.plan, "--epochs", "0"), "--epochs takes a positive integer",
                 code=2)
    expect_error(env, env.run(env.plan, "--save"), "--save needs a value", code=2)
    expect_error(env, env.run(env.plan, *env.inputs(), "--data", "d.safetensors"),
                 "--data is for training plans", "is an inference plan")
    expect_error(env, env.run(env.plan, *env.inputs(), "--shuffle"),
                 "--shuffle is for training plans")


def case_missing_plan_dir(env):
    missing = os.path.join(env.work, "no-such-plan")
    expect_error(env, env.run(missing, *env.inputs()), missing, "no such plan directory")


def case_not_a_plan(env):
    expect_error(env, env.run(env.work, *env.inputs()), env.work, "not a moai plan directory")


def case_bad_npy(env):
    bad = os.path.join(env.work, "bad.npy")
    with open(bad, "wb") as f:
        f.write(b"this is not numpy")
    expect_error(env, env.run(env.plan, "--input", "a=" + bad, "--input",
                              "b=" + env.npy("b.npy", env.b), "--output-dir", env.out),
                 bad, "not a .npy file")


def case_wrong_input_name(env):
    expect_error(env, env.run(env.plan, "--input", "c=" + env.npy("a.npy", env.a),
                              "--output-dir", env.out),
                 "--input c=", "the plan has no input 'c' (its inputs: a, b)")


def case_missing_input(env):
    expect_error(env, env.run(env.plan, "--input", "a=" + env.npy("a.npy", env.a),
                              "--output-dir", env.out),
                 "input 'b' (float32 2x3) is not given", "--input b=FILE.npy")


def case_input_twice(env):
    st = os.path.join(env.work, "in.safetensors")
    st_py.write(st, {"a": ("F32", env.a), "b": ("F32", env.b)})
    expect_error(env, env.run(env.plan, "--input", st, "--input",
                              "a=" + env.npy("a.npy", env.a)),
                 "input 'a' is given twice", "in.safetensors")


def case_wrong_shape(env):
    a = env.npy("a.npy", np.zeros((2, 4), np.float32))
    expect_error(env, env.run(env.plan, "--input", "a=" + a, "--input",
                              "b=" + env.npy("b.npy", env.b), "--output-dir", env.out),
                 a + ": input 'a': shape 2x4 does not match the plan's 2x3")


def case_wrong_dtype(env):
    b = env.npy("b.npy", np.zeros((2, 3), np.float64))
    expect_error(env, env.run(env.plan, "--input", "a=" + env.npy("a.npy", env.a), "--input",
                              "b=" + b, "--output-dir", env.out),
                 b + ": input 'b': dtype float64 does not match the plan's float32")


def case_fortran_order(env):
    a = env.npy("a.npy", np.asfortranarray(env.a))
    expect_error(env, env.run(env.plan, "--input", "a=" + a, "--input",
                              "b=" + env.npy("b.npy", env.b)), a, "Fortran-ordered")


def check_out(env, r):
    expect_ok(r)
    files = sorted(os.listdir(env.out))
    assert files == ["y.npy"], files  # no temporaries left
    y = np.load(os.path.join(env.out, "y.npy"))
    assert y.dtype == np.float32 and y.shape == (2, 3), (y.dtype, y.shape)
    np.testing.assert_allclose(y, env.expected, rtol=0, atol=1e-6)


def case_run_npy(env):
    env.out = os.path.join(env.work, "nested", "out")  # created if missing
    r = env.run(env.plan, *env.inputs(), "--output-dir", env.out)
    check_out(env, r)
    assert "wrote " + os.path.join(env.out, "y.npy") in r.stdout, r.stdout


def case_run_safetensors(env):
    st = os.path.join(env.work, "in.safetensors")
    st_py.write(st, {"a": ("F32", env.a), "b": ("F32", env.b)}, metadata={"k": "v"})
    r = env.run(env.plan, "--input", st, "--output-dir", env.out, "--quiet")
    check_out(env, r)
    assert r.stdout == "", r.stdout


def case_run_print(env):
    r = env.run(env.plan, *env.inputs())
    expect_ok(r)
    want = "y: float32 2x3 = " + " ".join(f"{v:.6g}" for v in env.expected.flatten())
    assert r.stdout.strip() == want, (r.stdout, want)


def case_repeat(env):
    r = env.run(env.plan, *env.inputs(), "--repeat", "7", "--threads", "2", "--output-dir", env.out)
    check_out(env, r)
    line = [ln for ln in r.stdout.split("\n") if "steps on" in ln]
    assert line, r.stdout
    for word in ["7 steps on 2 threads", "median", "min", "max", "steps/s", "samples/s (batch 2"]:
        assert word in line[0], (word, line[0])


def case_threads(env):
    for n in ["1", "3", "16"]:
        r = env.run(env.plan, *env.inputs(), "--threads", n, "--repeat", "2", "--warmup", "0",
                    "--output-dir", env.out)
        check_out(env, r)
        assert f"on {n} threads" in r.stdout, r.stdout


def case_tampered_binary(env):
    so = os.path.join(env.plan, "device-0.so")
    data = bytearray(open(so, "rb").read())
    data[len(data) // 2] ^= 0x10
    open(so, "wb").write(bytes(data))
    expect_error(env, env.run(env.plan, *env.inputs(), "--output-dir", env.out),
                 so + ": SHA-256 mismatch: the plan was modified after it was written; "
                 "recompile it")


def case_tampered_weights(env):
    path = os.path.join(env.plan, "weights-0.safetensors")
    data = bytearray(open(path, "rb").read())
    data[-1] ^= 0x01
    open(path, "wb").write(bytes(data))
    expect_error(env, env.run(env.plan, *env.inputs(), "--output-dir", env.out),
                 path + ": SHA-256 mismatch")


def edit_manifest(env, old, new):
    path = os.path.join(env.plan, "manifest.json")
    text = open(path).read()
    assert old in text, old
    open(path, "w").write(text.replace(old, new, 1))


def case_newer_format(env):
    edit_manifest(env, '"format_version": 1', '"format_version": 4')
    expect_error(env, env.run(env.plan, *env.inputs()),
                 "manifest.json: plan format 4 is newer than this runtime (3)")


def case_missing_feature(env):
    edit_manifest(env, '"features": [', '"features": ["avx9000",')
    expect_error(env, env.run(env.plan, *env.inputs()),
                 "target.features lists 'avx9000'")


def case_output_dir_is_file(env):
    blocker = os.path.join(env.work, "blocker")
    open(blocker, "w").write("x")
    r = env.run(env.plan, *env.inputs(), "--output-dir", os.path.join(blocker, "out"))
    no_kernel_skip(r)
    expect_error(env, r, "--output-dir")


def main():
    p = argparse.ArgumentParser()
    for a in ["--moai-run", "--make-plan", "--device", "--workdir", "--case"]:
        p.add_argument(a, required=True)
    args = p.parse_args()
    fn = globals().get("case_" + args.case)
    if not fn:
        print(f"unknown case {args.case}")
        return 1
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    fn(Env(args))
    print(f"moai_run.cli.{args.case}: 1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
