#!/usr/bin/env python3
"""moai-run's training mode end to end, one case per ctest, on a real training
plan: a tiny token classifier (Embedding -> Linear -> cross-entropy with
ignore_index, mean) exported from PyTorch and compiled by `moaicc --train`.
Expected losses, gradients and weights come from PyTorch training the same
model on the same batches (the batch order re-derived here from the
documented PRNG, docs/training.md), never from moai.

Registered only with -DMOAI_TRAIN_CLI_TESTS=ON: it needs moaicc --train and
the loader's training API.

usage: train_cli_test.py --moai-run BIN --moaicc BIN --workdir DIR --case CASE
       [--moaicc-args "..."] [--lr 0.1] [--micro-batches 2]
Exit 0: passed; 1: failed; 77: skipped."""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys

try:
    import numpy as np
    import torch
except ImportError:
    print("skipped: NumPy and PyTorch are needed")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_py  # noqa: E402

V, D, B, T, IGNORE = 11, 8, 2, 4, -100
M = (1 << 64) - 1


# ---- the documented shuffle (docs/training.md, "Shuffling") -------------
def _mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)


def epoch_order(n, shuffle, seed, epoch):
    order = list(range(n))
    if not shuffle:
        return order
    sm, s = seed ^ _mix((epoch + 1) & M), []
    for _ in range(4):
        sm = (sm + 0x9E3779B97F4A7C15) & M
        s.append(_mix(sm))

    def nxt():
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M  # noqa: E731
        r = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t  # noqa: E702
        s[3] = rotl(s[3], 45)
        return r

    for i in range(n - 1, 0, -1):
        bound, threshold = i + 1, ((1 << 64) - (i + 1)) % (i + 1)
        while True:
            x = nxt()
            if x >= threshold:
                break
        j = x % bound
        order[i], order[j] = order[j], order[i]
    return order


def steps(n, step_size, shuffle, seed, drop_last, count):
    """The example indices of the first `count` steps (real rows only)."""
    out, epoch = [], 0
    while len(out) < count:
        order = epoch_order(n, shuffle, seed, epoch)
        end = n - n % step_size if drop_last else n
        for p in range(0, end, step_size):
            out.append(order[p:p + step_size])
        epoch += 1
    return out[:count]


# ---- the model ----------------------------------------------------------
class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(V, D)
        self.out = torch.nn.Linear(D, V)

    def forward(self, input_ids, labels):
        logits = self.out(self.emb(input_ids))
        return torch.nn.functional.cross_entropy(logits.reshape(-1, V), labels.reshape(-1),
                                                 ignore_index=IGNORE)


class Env:
    def __init__(self, args):
        self.args, self.work = args, args.workdir
        self.plan = os.path.join(self.work, "plan")
        self.lr, self.k = args.lr, args.micro_batches
        model = Model()
        onnx_path = os.path.join(self.work, "model.onnx")
        ids = torch.zeros(B, T, dtype=torch.int64)
        torch.onnx.export(model, (ids, ids), onnx_path, input_names=["input_ids", "labels"],
                          output_names=["loss"], opset_version=13, do_constant_folding=False,
                          training=torch.onnx.TrainingMode.TRAINING)
        r = subprocess.run([args.moaicc, onnx_path, *shlex.split(args.moaicc_args), "-o",
                            self.plan], capture_output=True, text=True)
        assert r.returncode == 0, f"moaicc --train failed: {r.stderr}"
        manifest = json.load(open(os.path.join(self.plan, "manifest.json")))
        self.k = int((manifest.get("training") or {}).get("micro_batches", self.k))
        self.init = {k: v.detach().clone() for k, v in model.state_dict().items()}
        rng = np.random.default_rng(1)
        self.n = 13
        self.ids = rng.integers(0, V, size=(self.n, T)).astype(np.int64)
        self.labels = rng.integers(0, V, size=(self.n, T)).astype(np.int64)
        self.labels[rng.random((self.n, T)) < 0.3] = IGNORE  # uneven tokens per row
        self.data = os.path.join(self.work, "data.safetensors")
        st_py.write(self.data, {"input_ids": ("I64", self.ids), "labels": ("I64", self.labels)})

    def run(self, *argv, env=None):
        e = dict(os.environ, **(env or {}))
        return subprocess.run([self.args.moai_run, self.plan, *argv], capture_output=True,
                              text=True, timeout=120, env=e)

    def reference(self, batches):
        """PyTorch SGD on the batches; returns (losses, first grads, weights)."""
        model = Model()
        model.load_state_dict(self.init)
        opt = torch.optim.SGD(model.parameters(), lr=self.lr)
        losses, grads = [], None
        for rows in batches:
            opt.zero_grad()
            # The mean over the whole step's labels = the accumulated micro-batches.
            loss = model(torch.from_numpy(self.ids[rows]), torch.from_numpy(self.labels[rows]))
            loss.backward()
            if grads is None:
                grads = {k: p.grad.detach().clone() for k, p in model.named_parameters()}
            losses.append(loss.item())
            opt.step()
        return losses, grads, {k: v.detach() for k, v in model.state_dict().items()}


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr}"
    return r


def jsonl(path):
    return [json.loads(line) for line in open(path)]


def checkpoint(path):
    header, start, raw = st_py.read(os.path.join(path, "checkpoint.safetensors"))
    return header, {k: st_py.tensor(raw, start, v) for k, v in header.items()
                    if k != "__metadata__"}


def error_line(r, *needles):
    assert r.returncode == 1, f"exit {r.returncode}: {r.stderr}"
    lines = r.stderr.strip().split("\n")
    assert len(lines) == 1 and lines[0].startswith("moai-run: error: "), r.stderr
    for n in needles:
        assert n in lines[0], f"'{n}' not in {lines[0]}"


def compare(env, log, want_losses, ckpt=None, want_weights=None):
    got = [rec["loss"] for rec in jsonl(log)]
    np.testing.assert_allclose(got, want_losses, rtol=1e-4, atol=1e-5)
    if ckpt:
        _, tensors = checkpoint(ckpt)
        for k, v in want_weights.items():
            np.testing.assert_allclose(tensors[k], v.numpy(), rtol=1e-4, atol=1e-5, err_msg=k)


def case_train_matches_torch(env):
    log, ckpt = os.path.join(env.work, "log.jsonl"), os.path.join(env.work, "ckpt")
    ok(env.run("--data", env.data, "--epochs", "2", "--log", log, "--save", ckpt, "--quiet"))
    size = B * env.k
    batches = steps(env.n, size, False, 0, True, 2 * (env.n // size))
    losses, _, weights = env.reference(batches)
    compare(env, log, losses, ckpt, weights)
    recs = jsonl(log)
    assert [r["step"] for r in recs] == list(range(1, len(batches) + 1))
    assert all(r["examples"] == size for r in recs)
    tokens = [int((env.labels[b] != IGNORE).sum()) for b in batches]
    assert [r["tokens"] for r in recs] == tokens, recs
    assert all(abs(r["lr"] - env.lr) < 1e-12 for r in recs)
    header, _ = checkpoint(ckpt)
    meta = header["__metadata__"]
    assert meta["format"] == "moai-checkpoint" and meta["step"] == str(len(batches)), meta


def case_shuffle_matches_torch(env):
    log = os.path.join(env.work, "log.jsonl")
    ok(env.run("--data", env.data, "--steps", "7", "--shuffle", "--seed", "5", "--log", log,
               "--quiet"))
    losses, _, _ = env.reference(steps(env.n, B * env.k, True, 5, True, 7))
    compare(env, log, losses)


def case_no_drop_last(env):
    log = os.path.join(env.work, "log.jsonl")
    ok(env.run("--data", env.data, "--epochs", "1", "--no-drop-last", "--log", log, "--quiet"))
    batches = steps(env.n, B * env.k, False, 0, False, -(-env.n // (B * env.k)))
    losses, _, _ = env.reference(batches)
    compare(env, log, losses)
    assert jsonl(log)[-1]["examples"] == len(batches[-1])


def case_dump_gradients(env):
    path = os.path.join(env.work, "grads.safetensors")
    ok(env.run("--data", env.data, "--steps", "1", "--dump-gradients", path, "--quiet"))
    _, grads, _ = env.reference(steps(env.n, B * env.k, False, 0, True, 1))
    header, start, raw = st_py.read(path)
    for k, g in grads.items():
        np.testing.assert_allclose(st_py.tensor(raw, start, header[k]), g.numpy(), rtol=1e-4,
                                   atol=1e-6, err_msg=k)


def case_resume_bit_identical(env):
    full, part = os.path.join(env.work, "full"), os.path.join(env.work, "part")
    flog, plog = os.path.join(env.work, "full.jsonl"), os.path.join(env.work, "part.jsonl")
    common = ["--data", env.data, "--shuffle", "--seed", "3", "--quiet"]
    ok(env.run(*common, "--steps", "9", "--save", full, "--log", flog))
    ok(env.run(*common, "--steps", "4", "--save", part, "--log", plog))
    ok(env.run(*common, "--steps", "9", "--resume", part, "--save", part, "--log", plog))
    assert [r["loss"] for r in jsonl(flog)] == [r["loss"] for r in jsonl(plog)]
    _, a = checkpoint(full)
    _, b = checkpoint(part)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), f"{k} differs after resume"


def case_crash_during_save(env):
    ckpt = os.path.join(env.work, "ckpt")
    common = ["--data", env.data, "--quiet"]
    ok(env.run(*common, "--steps", "2", "--save", ckpt))
    before = open(os.path.join(ckpt, "checkpoint.safetensors"), "rb").read()
    r = env.run(*common, "--steps", "4", "--resume", ckpt, "--save", ckpt,
                env={"MOAI_TEST_CRASH_DURING_SAVE": "1"})
    assert r.returncode == 3, f"exit {r.returncode}: {r.stderr}"
    assert open(os.path.join(ckpt, "checkpoint.safetensors"), "rb").read() == before
    ok(env.run(*common, "--steps", "4", "--resume", ckpt, "--save", ckpt))


def case_errors(env):
    error_line(env.run(), "is a training plan", "--data")
    bad = os.path.join(env.work, "bad.safetensors")
    st_py.write(bad, {"input_ids": ("I32", env.ids.astype(np.int32)),
                      "labels": ("I64", env.labels)})
    error_line(env.run("--data", bad), "bad.safetensors: array 'input_ids' is int32",
               "the plan's input 'input_ids' is int64")
    ckpt = os.path.join(env.work, "ckpt")
    ok(env.run("--data", env.data, "--steps", "1", "--save", ckpt, "--quiet"))
    path = os.path.join(ckpt, "checkpoint.safetensors")
    data = bytearray(open(path, "rb").read())
    data[-3] ^= 0x10
    open(path, "wb").write(bytes(data))
    error_line(env.run("--data", env.data, "--resume", ckpt, "--save", ckpt),
               "checkpoint.safetensors", "data_sha256")
    assert open(path, "rb").read() == bytes(data), "a refused checkpoint was overwritten"
    error_line(env.run("--data", env.data, "--input", env.data), "--input is for inference")


def main():
    p = argparse.ArgumentParser()
    for a in ["--moai-run", "--moaicc", "--workdir", "--case"]:
        p.add_argument(a, required=True)
    p.add_argument("--moaicc-args", default="--train --optimizer sgd --lr 0.1 --micro-batches 2")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--micro-batches", type=int, default=2)
    args = p.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    fn = globals().get("case_" + args.case)
    if not fn:
        print(f"unknown case {args.case}")
        return 1
    fn(Env(args))
    print(f"{args.case}: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
