#!/usr/bin/env python3
"""A diffusers component folder's weights split in two shards with their
index, as diffusers' save_pretrained(max_shard_size=...) writes them; the
damaged forms a test needs. Standard library only (the CLI tests run without
numpy).

    shard_weights.py DIR [--dup NAME] [--misplace NAME]

DIR/diffusion_pytorch_model.safetensors becomes
diffusion_pytorch_model-0000{1,2}-of-00002.safetensors and
diffusion_pytorch_model.safetensors.index.json. --dup NAME: NAME (of the
first shard) also in the second, zeros; --misplace NAME: the index names the
other shard for NAME.
"""
import json
import os
import struct
import sys

from st_read import entries


def write(path, tensors):
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def main():
    folder, args = sys.argv[1], sys.argv[2:]
    opts = dict(zip(args[::2], args[1::2]))
    whole = os.path.join(folder, "diffusion_pytorch_model.safetensors")
    tensors = entries(whole)
    names = list(tensors)
    half = len(names) // 2
    shards = [{n: tensors[n] for n in names[:half]}, {n: tensors[n] for n in names[half:]}]
    files = ["diffusion_pytorch_model-0000%d-of-00002.safetensors" % (i + 1) for i in range(2)]
    if "--dup" in opts:
        dtype, shape, raw = tensors[opts["--dup"]]
        shards[1][opts["--dup"]] = (dtype, shape, bytes(len(raw)))
    weight_map = {n: files[i] for i in range(2) for n in shards[i] if not (i == 1 and n == opts.get("--dup"))}
    if "--misplace" in opts:
        n = opts["--misplace"]
        weight_map[n] = files[1] if weight_map[n] == files[0] else files[0]
    for f, s in zip(files, shards):
        write(os.path.join(folder, f), s)
    with open(whole + ".index.json", "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)
    os.remove(whole)


if __name__ == "__main__":
    main()
