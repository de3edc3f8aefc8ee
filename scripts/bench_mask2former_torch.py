#!/usr/bin/env python3
"""The PyTorch-eager side of scripts/bench-mask2former-head.sh: Mask2Former's
own head modules (tests/nn/mask2former_reference.py; MASK2FORMER_SRC names the
checkout) in RASS's released configuration, random weights (the fixture
script's randomisation), random res2..res5 features of a 512x512 crop (128x128
... 16x16, 512 channels, batch 1). Writes the weights and the
features/outputs for the LibTorch side, prints seconds per forward (median of
the runs after one warm-up).

    bench_mask2former_torch.py OUT_DIR [threads] [runs]
"""
import os
import statistics
import sys
import time

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "nn"))
import make_mask2former_fixture as fx  # noqa: E402
import mask2former_reference as m2f  # noqa: E402
import st_write  # noqa: E402


def main():
    out_dir = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    head = m2f.build_head({})
    fx.randomize(head, gen)
    feats = {f"res{i + 2}": torch.randn(1, 512, 128 >> i, 128 >> i, generator=gen) for i in range(4)}
    times = []
    with torch.inference_mode():
        for r in range(runs + 1):
            t0 = time.perf_counter()
            out = head(feats)
            if r:
                times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        mask_features, _, ms = head.pixel_decoder.forward_features(feats)
        t1 = time.perf_counter()
        head.predictor(ms, mask_features)
        t2 = time.perf_counter()
    st_write.save(os.path.join(out_dir, "m2f_weights.safetensors"),
                  {k: v.numpy().astype(np.float32) for k, v in head.state_dict().items()})
    io = {"feat." + k: v.numpy() for k, v in feats.items()}
    io["pred_logits"] = out["pred_logits"].numpy()
    io["pred_masks"] = out["pred_masks"].numpy()
    st_write.save(os.path.join(out_dir, "m2f_io.safetensors"), io)
    print(f"torch  {statistics.median(times):.3f} s per forward (median of {runs}, {threads} threads; "
          f"torch {torch.__version__}, Mask2Former's modules)")
    print(f"torch  pixel decoder {t1 - t0:.3f} s, transformer decoder {t2 - t1:.3f} s")


if __name__ == "__main__":
    main()
