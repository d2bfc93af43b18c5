#!/usr/bin/env python3
"""Cross-checks moai's safetensors and .npy code (through the io_interop
tool) against NumPy's own .npy reader/writer and the independent Python
safetensors implementation in st_py.py, in both directions.

usage: io_interop.py --tool IO_INTEROP --workdir DIR --case CASE
Exit 0: passed; 1: failed; 77: skipped (NumPy missing)."""
import argparse
import json
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

# io_interop write-st: (name, safetensors dtype, shape), in entry order k.
WRITTEN = [
    ("bool", "BOOL", [5]), ("float32", "F32", [2, 3]), ("uint8", "U8", []),
    ("float64", "F64", [3]), ("float16", "F16", [1, 3, 1]), ("bfloat16", "BF16", [3]),
    ("int8", "I8", [2, 2, 2]), ("int16", "I16", [1]), ("int32", "I32", [1, 1]),
    ("int64", "I64", [2]), ("uint16", "U16", [3]), ("uint32", "U32", [1]),
    ("uint64", "U64", [1]), ("empty_f32", "F32", [0, 4]),
]
NPY = {  # manifest dtype name -> NumPy dtype
    "float64": "<f8", "float32": "<f4", "float16": "<f2", "int64": "<i8", "int32": "<i4",
    "int16": "<i2", "int8": "|i1", "uint64": "<u8", "uint32": "<u4", "uint16": "<u2",
    "uint8": "|u1", "bool": "|b1",
}


def pattern(k, n, is_bool):
    b = (np.arange(n, dtype=np.int64) * 7 + k * 31) & 255
    return (b & 1 if is_bool else b).astype(np.uint8).tobytes()


def tool(args, *argv, ok=True):
    r = subprocess.run([args.tool, *argv], capture_output=True, text=True)
    if ok and r.returncode != 0:
        raise AssertionError(f"io_interop {' '.join(argv)} failed: {r.stderr}")
    return r


def case_safetensors_from_moai(args):
    path = os.path.join(args.workdir, "moai.safetensors")
    tool(args, "write-st", path)
    header, data_start, raw = st_py.read(path)
    assert data_start % 64 == 0, f"data section at {data_start}, not a multiple of 64"
    assert raw[8:data_start].decode().rstrip(" ").endswith("}"), "header padding is not spaces"
    assert header["__metadata__"] == {"source": "io_interop", "moai": "1"}, header["__metadata__"]
    for k, (name, dtype, shape) in enumerate(WRITTEN):
        info = header[name]
        assert info["dtype"] == dtype and info["shape"] == shape, (name, info)
        b, e = info["data_offsets"]
        assert b % st_py.DTYPES[dtype][1] == 0, f"{name} misaligned at {b}"
        assert raw[data_start + b:data_start + e] == pattern(k, e - b, dtype == "BOOL"), name
        st_py.tensor(raw, data_start, info)  # NumPy can view it
    # 8-byte dtypes first, then 4, 2, 1 (moai_safetensors_layout).
    sizes = [st_py.DTYPES[header[n]["dtype"]][1]
             for n in sorted((n for n in header if n != "__metadata__"),
                             key=lambda n: header[n]["data_offsets"])]
    assert sizes == sorted(sizes, reverse=True), sizes


def check_dump(args, path, tensors):
    out = json.loads(tool(args, "dump-st", path).stdout)
    got = {t["name"]: t for t in out["tensors"]}
    assert set(got) == set(tensors), (sorted(got), sorted(tensors))
    for name, (dtype, arr) in tensors.items():
        t = got[name]
        assert t["dtype"] == dtype and t["shape"] == list(arr.shape), (name, t)
        want = np.ascontiguousarray(arr).astype(st_py.DTYPES[dtype][0]).tobytes().hex()
        assert t["hex"] == want, f"{name}: bytes differ"
    return out


def case_safetensors_to_moai(args):
    rng = np.random.default_rng(0)
    tensors = {
        "embed.weight": ("F32", rng.standard_normal((4, 3)).astype(np.float32)),
        "bias": ("F64", rng.standard_normal(5)),
        "half": ("F16", rng.standard_normal((2, 2)).astype(np.float16)),
        "bf16": ("BF16", np.array([0x3f80, 0xc000, 0x0000], dtype=np.uint16)),
        "ids": ("I64", np.arange(6, dtype=np.int64).reshape(2, 3) - 3),
        "i32": ("I32", np.array([-1, 2**31 - 1], dtype=np.int32)),
        "i16": ("I16", np.array([-300], dtype=np.int16)),
        "i8": ("I8", np.array([-128, 127], dtype=np.int8)),
        "u8": ("U8", np.array(255, dtype=np.uint8)),
        "u16": ("U16", np.array([65535], dtype=np.uint16)),
        "u32": ("U32", np.array([4000000000], dtype=np.uint32)),
        "u64": ("U64", np.array([2**63 + 5], dtype=np.uint64)),
        "mask": ("BOOL", np.array([[True, False, True]])),
        "nothing": ("F32", np.zeros((0, 3), dtype=np.float32)),
    }
    for pad in (8, 1):  # HuggingFace's padding, and none at all
        path = os.path.join(args.workdir, f"hf-pad{pad}.safetensors")
        st_py.write(path, tensors, metadata={"format": "pt"}, pad_to=pad)
        out = check_dump(args, path, tensors)
        assert out["source"] == "", out["source"]
    # A corrupt one: the last tensor's bytes cut off.
    path = os.path.join(args.workdir, "cut.safetensors")
    st_py.write(path, {"x": ("F32", np.ones(4, dtype=np.float32))})
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 4)
    r = tool(args, "dump-st", path, ok=False)
    assert r.returncode == 1 and "cut.safetensors" in r.stderr and "truncated" in r.stderr, r.stderr


def numpy_arrays():
    rng = np.random.default_rng(1)
    out = {}
    for name, descr in NPY.items():
        for shape in [(2, 3), (5,), (), (0, 4), (1, 2, 3, 1)]:
            n = int(np.prod(shape, dtype=np.int64))
            if descr == "|b1":
                arr = rng.integers(0, 2, n).astype(bool)
            elif descr[1] in "iu":
                info = np.iinfo(np.dtype(descr))
                arr = rng.integers(info.min, info.max, n, dtype=np.dtype(descr), endpoint=True)
            else:
                arr = rng.standard_normal(n).astype(np.dtype(descr))
            out[(name, shape)] = arr.reshape(shape)
    return out


def case_npy_from_numpy(args):
    for (name, shape), arr in numpy_arrays().items():
        for version in [None, (2, 0), (3, 0)]:
            path = os.path.join(args.workdir, f"{name}.npy")
            if version is None:
                np.save(path, arr)
            else:
                with open(path, "wb") as f:
                    np.lib.format.write_array(f, arr, version=version)
            out = json.loads(tool(args, "dump-npy", path).stdout)
            assert out["dtype"] == name and out["shape"] == list(shape), (name, shape, out)
            assert out["hex"] == arr.tobytes().hex(), (name, shape, version)


def case_npy_to_numpy(args):
    for name, descr in NPY.items():
        for shape in ["2x3", "5", "scalar", "0x4", "1x2x3x1"]:
            path = os.path.join(args.workdir, f"{name}-{shape}.npy")
            tool(args, "write-npy", path, name, shape)
            with open(path, "rb") as f:
                assert np.lib.format.read_magic(f) == (1, 0)
                np.lib.format.read_array_header_1_0(f)
                assert f.tell() % 64 == 0, f"{path}: data at {f.tell()}"
            arr = np.load(path)
            dims = [] if shape == "scalar" else [int(d) for d in shape.split("x")]
            assert arr.dtype == np.dtype(descr) and list(arr.shape) == dims, (path, arr.dtype)
            assert arr.tobytes() == pattern(0, arr.nbytes, name == "bool"), path
    # bfloat16 is written as <u2 bits.
    path = os.path.join(args.workdir, "bf16.npy")
    tool(args, "write-npy", path, "bfloat16", "3")
    assert np.load(path).dtype == np.dtype("<u2")


def case_npy_rejects(args):
    cases = {
        "fortran": (np.asfortranarray(np.ones((2, 3), np.float32)), "Fortran-ordered"),
        "big_endian": (np.ones(3, dtype=">f4"), "big-endian"),
        "complex": (np.ones(3, dtype=np.complex64), "'<c8' is not supported"),
        "structured": (np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]), "structured arrays"),
        "strings": (np.array(["ab", "c"]), "is not supported"),
    }
    for name, (arr, needle) in cases.items():
        path = os.path.join(args.workdir, f"{name}.npy")
        np.save(path, arr)
        r = tool(args, "dump-npy", path, ok=False)
        assert r.returncode == 1 and needle in r.stderr and path in r.stderr, (name, r.stderr)
    path = os.path.join(args.workdir, "object.npy")
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    r = tool(args, "dump-npy", path, ok=False)
    assert r.returncode == 1 and "'|O' is not supported" in r.stderr, r.stderr
    path = os.path.join(args.workdir, "cut.npy")
    np.save(path, np.ones(10, np.float32))
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 1)
    r = tool(args, "dump-npy", path, ok=False)
    assert r.returncode == 1 and "truncated" in r.stderr, r.stderr


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tool", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--case", required=True)
    args = p.parse_args()
    fn = globals().get("case_" + args.case)
    if not fn:
        print(f"unknown case {args.case}")
        return 1
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    fn(args)
    print(f"io_interop.{args.case}: 1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
