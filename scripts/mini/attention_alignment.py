#!/usr/bin/env python3
"""How well SCR's cross-attention maps cover the objects their tags name.

For every scene and every tag of it that is one prompt token and a scene
class, the map A of that token (rass-restore --attn-out: attn2 probabilities
averaged over heads and layers at latent size), min-max normalised as SCL's
eq. 3 does, against the class's mask M at latent size (the share of each
8x8 cell the class covers, then >= 0.5, as rass-train's resize_mask):
    inside = sum(A * M) / sum(A)      (SCL's region loss is 1 - inside)
    chance = mean(M)                  (inside for a map spread evenly)
Prints mean inside and chance per run and writes a picture: per scene, the
HQ scene, then for its first classes the mask and each run's map (8x up).

Standard library only (the tools write plain 8-bit PNGs and float32 .npy):
  attention_alignment.py SCENES_DIR OUT_PNG NAME=ATTN_DIR:RECORDS.jsonl ... [--rows N] [--classes N]
"""
import json
import struct
import sys
import zlib

# rass-scenes' classes and their ADE20K label values (man rass-scenes).
CLASSES = {"wall": 0, "building": 1, "sky": 2, "floor": 3, "tree": 4, "ceiling": 5, "road": 6,
           "windowpane": 8, "grass": 9, "sidewalk": 11, "person": 12, "door": 14, "table": 15,
           "mountain": 16, "chair": 19, "car": 20, "water": 21, "painting": 22, "rug": 28,
           "fence": 32, "rock": 34, "stairs": 53, "flower": 66, "pole": 93}


def read_png(path):
    """8-bit, non-interlaced grey/RGB/RGBA PNG -> (width, height, channels, bytes)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or interlace or ctype not in (0, 2, 6):
                sys.exit(f"{path}: only 8-bit non-interlaced grey/RGB/RGBA PNGs are read here")
            ch = {0: 1, 2: 3, 6: 4}[ctype]
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = w * ch
    out = bytearray(h * stride)
    prev = bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - ch] if x >= ch else 0
            b = prev[x]
            c = prev[x - ch] if x >= ch else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return w, h, ch, bytes(out)


def write_png(path, w, h, rgb):
    raw = b"".join(b"\x00" + rgb[y * w * 3:(y + 1) * w * 3] for y in range(h))
    chunk = lambda k, d: struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
    with open(path + ".tmp", "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    import os
    os.replace(path + ".tmp", path)


def read_npy(path):
    """float32 little-endian C-order .npy -> (shape, list of floats)."""
    data = open(path, "rb").read()
    if data[:6] != b"\x93NUMPY":
        sys.exit(f"{path}: not a .npy file")
    hl = struct.unpack("<H", data[8:10])[0] if data[6] == 1 else struct.unpack("<I", data[8:12])[0]
    off = 10 if data[6] == 1 else 12
    header = eval(data[off:off + hl].decode("latin1"))  # a Python dict literal by the format's definition
    if header["descr"] != "<f4" or header["fortran_order"]:
        sys.exit(f"{path}: expected little-endian float32 in C order")
    shape = header["shape"]
    n = 1
    for s in shape:
        n *= s
    return shape, struct.unpack(f"<{n}f", data[off + hl:off + hl + 4 * n])


def main(argv):
    rows, max_classes, args = 4, 3, []
    i = 0
    while i < len(argv):
        if argv[i] in ("--rows", "--classes"):
            v = int(argv[i + 1])
            rows, max_classes = (v, max_classes) if argv[i] == "--rows" else (rows, v)
            i += 2
        else:
            args.append(argv[i])
            i += 1
    if len(args) < 3:
        sys.exit(__doc__)
    scenes, out_png, runs = args[0], args[1], []
    for spec in args[2:]:
        name, rest = spec.split("=", 1)
        attn_dir, records = rest.split(":", 1)
        recs = {}
        for line in open(records):
            r = json.loads(line)
            recs[r["key"]] = r
        runs.append((name, attn_dir, recs))
    keys = sorted(runs[0][2])
    stats = {name: [0.0, 0.0, 0] for name, _, _ in runs}  # sum inside, sum chance, maps
    tiles = []  # per picture row: list of (w, h, rgb)
    for key in keys:
        lw, lh, _, label = read_png(f"{scenes}/labels/{key}.png")
        row = []
        if len(tiles) < rows:
            iw, ih, ich, img = read_png(f"{scenes}/images/{key}.png")
            row.append(bytes(b for p in range(iw * ih) for b in img[p * ich:p * ich + 3]))
        shown = 0
        tokens = [t.strip().replace("</w>", "") for t in runs[0][2][key]["tokens"]]
        for pos, tok in enumerate(tokens):
            if tok not in CLASSES or tokens.index(tok) != pos:
                continue
            cls = CLASSES[tok]
            maps = []
            for name, attn_dir, recs in runs:
                shape, a = read_npy(f"{attn_dir}/{key}.npy")
                _, h, w = shape
                m = a[pos * h * w:(pos + 1) * h * w]
                lo, hi = min(m), max(m)
                maps.append((name, h, w, [(v - lo) / (hi - lo + 1e-8) for v in m]))
            _, h, w, _ = maps[0]
            sy, sx = lh // h, lw // w
            mask = []
            for cy in range(h):
                for cx in range(w):
                    hit = sum(label[(cy * sy + y) * lw + cx * sx + x] == cls for y in range(sy) for x in range(sx))
                    mask.append(1.0 if hit * 2 >= sy * sx else 0.0)
            if sum(mask) == 0:
                continue  # the class covers no whole cell at latent size
            chance = sum(mask) / len(mask)
            for name, _, _, A in maps:
                st = stats[name]
                st[0] += sum(x * y for x, y in zip(A, mask)) / (sum(A) + 1e-8)
                st[1] += chance
                st[2] += 1
            if len(tiles) < rows and shown < max_classes:
                shown += 1
                up = lambda v, col: bytes(c for y in range(lh) for x in range(lw)
                                          for c in [int(255 * v[(y // sy) * w + x // sx] * k) for k in col])
                row.append(up(mask, (1, 1, 1)))
                for _, _, _, A in maps:
                    row.append(up(A, (1.0, 0.55, 0.1)))
        if len(tiles) < rows:
            tiles.append(row)
    for name, _, _ in runs:
        s, c, n = stats[name]
        if n == 0:
            sys.exit("no tag token matched a scene class: nothing to measure")
        print(f"{name}\tattention inside the mask {s / n:.4f}\tchance (mask area) {c / n:.4f}\tmaps {n}")
    # The picture: rows of tiles (scene, then mask + one map per run per class), 2 px gaps.
    tw, th, gap = lw, lh, 2
    cols = max(len(r) for r in tiles)
    W, H = cols * (tw + gap) - gap, len(tiles) * (th + gap) - gap
    canvas = bytearray([40] * (W * H * 3))
    for ry, row in enumerate(tiles):
        for cx, t in enumerate(row):
            for y in range(th):
                o = ((ry * (th + gap) + y) * W + cx * (tw + gap)) * 3
                canvas[o:o + tw * 3] = t[y * tw * 3:(y + 1) * tw * 3]
    write_png(out_png, W, H, bytes(canvas))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        sys.exit(f"attention_alignment.py: {e}")
