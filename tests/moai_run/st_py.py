"""An independent safetensors reader and writer in plain Python (json +
struct + NumPy), following the format's description (an 8-byte little-endian
header length, a JSON header, a data section the tensors tile exactly) and
HuggingFace's writer (header padded with spaces to a multiple of 8, tensors
ordered by alignment then name). Used to cross-check moai's C implementation
both ways; it shares no code with it."""
import json
import struct

import numpy as np

# safetensors dtype -> (NumPy dtype, itemsize). BF16 travels as raw uint16.
DTYPES = {
    "F64": (np.float64, 8), "F32": (np.float32, 4), "F16": (np.float16, 2),
    "BF16": (np.uint16, 2), "I64": (np.int64, 8), "I32": (np.int32, 4),
    "I16": (np.int16, 2), "I8": (np.int8, 1), "U8": (np.uint8, 1),
    "BOOL": (np.bool_, 1), "U16": (np.uint16, 2), "U32": (np.uint32, 4),
    "U64": (np.uint64, 8),
}


def read(path):
    """Returns (header dict, data_start, raw bytes); checks the tiling."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k)
                   for k, v in header.items() if k != "__metadata__")
    end = 0
    for b, e, k in spans:
        assert b == end, f"{path}: tensor {k} starts at {b}, expected {end}"
        info = header[k]
        count = int(np.prod(info["shape"], dtype=np.int64))
        assert e - b == count * DTYPES[info["dtype"]][1], f"{path}: {k} size"
        end = e
    assert end == len(data), f"{path}: data holds {len(data)} bytes, tensors {end}"
    return header, 8 + n, raw


def tensor(raw, data_start, info):
    """The tensor's NumPy array (BF16 as uint16 bits)."""
    b, e = info["data_offsets"]
    dt = DTYPES[info["dtype"]][0]
    return np.frombuffer(raw[data_start + b:data_start + e], dtype=dt).reshape(info["shape"])


def write(path, tensors, metadata=None, pad_to=8):
    """tensors: {name: (safetensors dtype, ndarray)}. HuggingFace's order:
    larger alignment first, then by name; header padded to `pad_to`."""
    order = sorted(tensors, key=lambda k: (-DTYPES[tensors[k][0]][1], k))
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in order:
        dtype, arr = tensors[name]
        blob = np.ascontiguousarray(arr).astype(DTYPES[dtype][0]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    if pad_to > 1:
        text += b" " * ((pad_to - len(text) % pad_to) % pad_to)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
