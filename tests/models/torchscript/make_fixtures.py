#!/usr/bin/python3
"""Makes the fixtures of the TorchScript archive and unpickler unit tests
(tests/unit/frontends/test_ts_archive.c, test_ts_pickle.c). Run with the
Python that has torch (/usr/bin/python3); the outputs are committed.

  tiny.pt          a traced module: parameters in a submodule, a float
                   buffer, an int64 buffer, a transposed (non-contiguous)
                   buffer, a buffer that is a view at a storage offset, and a
                   tensor constant (constants.pkl)
  tiny.expect      what the tests must read from tiny.pt, one line each:
                     version N
                     class PATH QUALIFIED_CLASS
                     tensor PATH DTYPE REQUIRES_GRAD OFFSET RANK SIZES.. STRIDES.. NUMEL VALUES..
                   (PATH "" is the root; CONSTANTS.c<i> for constants;
                   VALUES row-major, as torch reads them)
  bad_*.pt         damaged archives (one fault each, see BAD below)
  bad_*.pkl        hand-built pickles (one fault each, see PICKLES below)
  values_p2.pkl, values_p4.pkl
                   VALUES (below) pickled by Python at protocols 2 and 4
"""
import collections
import io
import os
import pickle
import struct
import sys
import zipfile

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))


class Sub(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.sub = Sub()
        self.register_buffer("scale", torch.arange(4, dtype=torch.float32) * 0.5)
        self.register_buffer("index", torch.tensor([3, -1, 2], dtype=torch.int64))
        # Transposed: sizes [3, 2], strides [1, 3].
        self.register_buffer("wt", (torch.arange(6, dtype=torch.float32) - 2.5).reshape(2, 3).t())
        # A view at storage offset 4 of a 10-element storage.
        self.register_buffer("tail", (torch.arange(10, dtype=torch.float32) * 0.25)[4:])

    def forward(self, x):
        y = self.sub.lin(x) * self.scale[:2]
        return y + torch.tensor([1.5, -2.0]) + self.wt.sum() + self.tail.sum()


def make_tiny():
    torch.manual_seed(0)
    m = Tiny().eval()
    with torch.no_grad():
        m.sub.lin.weight.copy_(torch.tensor([[0.5, -1.0, 2.0], [0.25, 3.0, -0.75]]))
        m.sub.lin.bias.copy_(torch.tensor([0.125, -4.0]))
    traced = torch.jit.trace(m, (torch.ones(1, 3),))
    path = os.path.join(HERE, "tiny.pt")
    torch.jit.save(traced, path)
    loaded = torch.jit.load(path)
    lines = []

    def walk(mod, prefix):
        lines.append("class %s %s" % (prefix or '""', mod._c._type().qualified_name()))
        for name, t in list(mod.named_parameters(recurse=False)) + list(mod.named_buffers(recurse=False)):
            lines.append(tensor_line(prefix + ("." if prefix else "") + name, t))
        for name, child in mod.named_children():
            walk(child, prefix + ("." if prefix else "") + name)

    walk(loaded, "")
    consts = loaded._c._get_method("forward").graph  # noqa: F841 (keeps torch honest)
    # constants.pkl, read back by torch's own unpickler.
    with zipfile.ZipFile(path) as z:
        prefix = z.namelist()[0].split("/")[0]
        blob = z.read(prefix + "/constants.pkl")
        storages = {n.split("/")[-1]: z.read(n) for n in z.namelist() if "/constants/" in n}

    class U(pickle.Unpickler):
        def persistent_load(self, pid):
            _, cls, key, _, numel = pid
            dtype = cls(0).dtype if not isinstance(cls, torch.dtype) else cls
            return torch.frombuffer(bytearray(storages[key]), dtype=dtype).clone()

        def find_class(self, module, name):
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return lambda s, off, size, stride, rg, hooks, *meta: s.as_strided(size, stride, off)
            return super().find_class(module, name)

    for i, t in enumerate(U(io.BytesIO(blob)).load()):
        lines.append(tensor_line("CONSTANTS.c%d" % i, t, requires_grad=False))
    with zipfile.ZipFile(path) as z:
        lines.insert(0, "version %d" % int(z.read(prefix + "/version")))
    with open(os.path.join(HERE, "tiny.expect"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


DTYPE = {torch.float32: 6, torch.float64: 7, torch.int64: 4, torch.int32: 3, torch.bool: 11}


def tensor_line(path, t, requires_grad=None):
    rg = t.requires_grad if requires_grad is None else requires_grad
    vals = t.detach().contiguous().reshape(-1).tolist()
    fmt = (lambda v: repr(float(v))) if t.is_floating_point() else (lambda v: str(int(v)))
    return " ".join(
        ["tensor", path, str(DTYPE[t.dtype]), str(int(rg)), str(t.storage_offset()), str(t.dim())]
        + [str(s) for s in t.shape] + [str(s) for s in t.stride()]
        + [str(t.numel())] + [fmt(v) for v in vals])


def rewrite(src, dst, drop=(), replace=None, rename=None):
    """Copies zip `src` to `dst`, dropping entries whose name ends with one of
    `drop`, replacing the bytes of entry suffixes in `replace`, renaming by
    `rename` (a function of the name)."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zo:
        for info in zi.infolist():
            if any(info.filename.endswith(d) for d in drop):
                continue
            data = zi.read(info.filename)
            for suffix, new in replace.items():
                if info.filename.endswith(suffix):
                    data = new
            name = rename(info.filename) if rename else info.filename
            zo.writestr(name, data)


P2 = b"\x80\x02"


def binunicode(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


PICKLES = {
    # a GLOBAL that would run a shell command
    "bad_os_system.pkl": P2 + b"cos\nsystem\n" + binunicode("echo pwned") + b"\x85R.",
    # STACK_GLOBAL of builtins.eval
    "bad_eval.pkl": b"\x80\x04" + binunicode("builtins") + binunicode("eval") + b"\x93"
                    + binunicode("1+1") + b"\x85R.",
    "bad_getattr.pkl": P2 + b"c__builtin__\ngetattr\n)R.",
    # a tuple nested 10000 deep (TUPLE1 over and over)
    "bad_deep.pkl": P2 + b")" + b"\x85" * 1000 + b".",
    # 2000 MARKs
    "bad_marks.pkl": P2 + b"(" * 2000 + b"N.",
    # LONG1 of 9 bytes
    "bad_long1.pkl": P2 + b"\x8a\x09" + b"\x01" * 9 + b".",
    # an opcode torch never writes (0xff)
    "bad_opcode.pkl": P2 + b"N\xff.",
    # a BINUNICODE whose length runs past the end
    "bad_truncated.pkl": P2 + b"X\x00\x01\x00\x00abc",
    # a persistent id that is a plain string
    "bad_persid.pkl": P2 + binunicode("not a storage") + b"Q.",
    # a list appended to itself
    "bad_cycle.pkl": P2 + b"]q\x00h\x00a.",
    # a storage left unapplied in the result
    "bad_bare_storage.pkl": P2 + b"(" + binunicode("storage") + b"ctorch\nFloatStorage\n"
                            + binunicode("0") + binunicode("cpu") + b"K\x04tQ.",
}


VALUES = collections.OrderedDict([
    ("ints", [0, 1, -1, 255, 256, 65535, 65536, -129, 2**31 - 1, -2**31, 2**40, -2**63, 2**63 - 1]),
    ("floats", (1.5, -0.0, 1e300)),
    ("text", "h\u00e9llo"),
    ("flags", [True, False, None]),
    ("nested", {"t": (1, (2, (3,))), "empty": {}}),
])


def main():
    tiny = make_tiny()
    with zipfile.ZipFile(tiny) as z:
        prefix = z.namelist()[0].split("/")[0]
        names = z.namelist()
    # The storage of sub.lin.bias: find it in data.pkl's order (weight, bias).
    evil_pkl = PICKLES["bad_os_system.pkl"]
    rewrite(tiny, os.path.join(HERE, "bad_missing_storage.pt"), drop=("/data/1",))
    rewrite(tiny, os.path.join(HERE, "bad_short_storage.pt"),
            replace={"/data/0": b"\0" * 4})
    rewrite(tiny, os.path.join(HERE, "bad_version.pt"), replace={"/version": b"99\n"})
    rewrite(tiny, os.path.join(HERE, "bad_no_data_pkl.pt"), drop=("/data.pkl",))
    rewrite(tiny, os.path.join(HERE, "bad_evil_data_pkl.pt"), replace={"/data.pkl": evil_pkl})
    rewrite(tiny, os.path.join(HERE, "bad_outside_prefix.pt"),
            rename=lambda n: "elsewhere/version" if n.endswith("/version") else n)
    with open(os.path.join(HERE, "bad_not_zip.pt"), "wb") as f:
        f.write(b"this is not a zip archive\n")
    for proto in (2, 4):
        with open(os.path.join(HERE, "values_p%d.pkl" % proto), "wb") as f:
            pickle.dump(VALUES, f, protocol=proto)
    for name, data in PICKLES.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    assert any(n.endswith("/data/1") for n in names), names
    print("fixtures written to", HERE, "(archive prefix %s)" % prefix)


if __name__ == "__main__":
    sys.exit(main())
