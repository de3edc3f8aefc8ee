"""safetensors files as the CLI tests' Python helpers read them (no
safetensors package needed): same_tensors.py and the checkpoint builders of
the converter tests (run with PYTHONPATH=tests/cli)."""
import json
import struct


def entries(path):
    """{name: (dtype, shape, raw bytes)}, the metadata left out."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        data = f.read()
    h.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in h.items()}


def torch_tensors(path):
    """{name: torch tensor} in the file's dtypes."""
    import torch
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
              "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8}
    return {k: torch.frombuffer(bytearray(raw), dtype=dtypes[dt]).reshape(shape).clone() if raw else
            torch.zeros(shape, dtype=dtypes[dt]) for k, (dt, shape, raw) in entries(path).items()}
