#!/usr/bin/env python3
"""Golden fixtures for RobustSAM in rass-sam: a tiny random RobustSAM built
from the reference's own modules (robustsam/RobustSAM, MIT; a checkout given
in ROBUSTSAM_SRC, run and never copied) and run by its eval path
(Sam.predict, mask decoder clear=False: the robust output tokens, the token
block and the anti-degradation feature blocks), and by its predictor's path
(clear=True: SAM's tokens).

    git --git-dir=<mirror of robustsam/RobustSAM> archive HEAD robust_segment_anything | tar -x -C /tmp/ref_RobustSAM
    ROBUSTSAM_SRC=/tmp/ref_RobustSAM /tmp/samvenv/bin/python tests/nn/make_robust_sam_fixture.py

(the SAM venv of make_sam_fixture.py: Debian's python3-torch 1.13 plus
segment-anything 1.0, whose ResizeLongestSide.apply_image (Pillow) prepares
the pixels as SamPredictor and rass-sam do; RobustSAM's own copy of it reads
the wrong axes of a numpy image.)

Writes under tests/fixtures/nn/:
  robust_sam_tiny/          scripts/convert_sam.py's folder ("robust": true)
  robust_sam_io.safetensors the input pixels, the image embedding, the early
                            features, the robust features, and per case the
                            low-resolution logits, IoU predictions and masks
  robust_sam_cases.json     the prompt cases
"""
import json
import os
import subprocess
import sys
import tempfile
import types

import numpy as np
import torch
from PIL import Image

sys.modules.setdefault("matplotlib", types.ModuleType("matplotlib"))  # transformer.py imports pyplot, unused
sys.modules.setdefault("matplotlib.pyplot", types.ModuleType("matplotlib.pyplot"))
sys.path.insert(0, os.environ["ROBUSTSAM_SRC"])
from robust_segment_anything.modeling import MaskDecoder  # noqa: E402
from segment_anything.utils.transforms import ResizeLongestSide  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st_write  # noqa: E402
from sam_tiny_common import build_tiny, randomise  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
FIX = os.path.join(ROOT, "tests", "fixtures", "nn")

# prompt_embed_dim 64: RobustSAM's channel attention over 2 * 64 / 8 channels
# keeps a hidden width of 1 (its reduction is 16).
TINY = dict(image_size=64, patch_size=8, embed_dim=32, depth=3, num_heads=2, mlp_ratio=2.0, window_size=3,
            global_attn_indexes=[1], use_rel_pos=True, prompt_embed_dim=64, mask_in_chans=8, decoder_depth=2,
            decoder_heads=2, decoder_mlp_dim=48, attention_downsample_rate=2, num_multimask_outputs=3,
            iou_head_depth=3, iou_head_hidden_dim=24)


def build():
    import robust_segment_anything.modeling as m
    # No .eval(): RobustSAM's build_sam.py leaves the model in training mode, and eval.py runs it so (BatchNorm).
    return build_tiny(m, TINY, MaskDecoder, opt=None, vit_dim=TINY["embed_dim"])


def main():
    torch.manual_seed(0)
    sam = build()
    randomise(sam, 11, list(sam.mask_decoder.output_hypernetworks_mlps) + [sam.mask_decoder.robust_mlp], half=True)
    img = np.array(Image.open(os.path.join(FIX, "sam_b.png")).convert("RGB"))  # 150x97: downscaled into 64
    cases = [
        {"name": "box", "boxes": [[20, 10, 110, 80]], "multimask": False},
        {"name": "points", "points": [[40, 30], [120, 70]], "labels": [1, 0], "multimask": False},
        {"name": "box_point", "boxes": [[60, 20, 140, 90]], "points": [[100, 50]], "labels": [1], "multimask": False},
        {"name": "point_multi", "points": [[70, 40]], "labels": [1], "multimask": True},
    ]
    tmp = tempfile.mkdtemp()
    pth = os.path.join(tmp, "robust_sam_tiny.pth")
    # As trained and released: DataParallel's "module." prefix and BatchNorm's counters.
    torch.save({"module." + k: v.half() if v.is_floating_point() else v for k, v in sam.state_dict().items()}, pth)
    target = os.path.join(FIX, "robust_sam_tiny")
    subprocess.run(["rm", "-rf", target], check=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "convert_sam.py"), pth, "-o", target,
                    "--config", json.dumps(TINY)], check=True)
    out = {}
    tf = ResizeLongestSide(TINY["image_size"])
    x = tf.apply_image(img)  # Pillow, as SamPredictor.set_image
    xt = torch.as_tensor(x).permute(2, 0, 1).contiguous()[None].float()
    h, w = img.shape[:2]
    with torch.no_grad():
        pixels = sam.preprocess(xt)
        emb, feats = sam.image_encoder(pixels)
        early = feats[0]
        dec = sam.mask_decoder
        robust = (dec.fourier_first_layer_features(early.permute(0, 3, 1, 2), clear=False) +
                  dec.fourier_last_layer_features(emb, clear=False))
        out.update(pixels=pixels.numpy(), embedding=emb.numpy(), early=early.numpy(), robust_features=robust.numpy())
        for c in cases:
            d = {"image": xt, "original_size": (h, w)}
            if "points" in c:
                d["point_coords"] = torch.as_tensor(tf.apply_coords(np.array(c["points"], dtype=np.float64), (h, w)),
                                                    dtype=torch.float)[None]
                d["point_labels"] = torch.tensor([c["labels"]], dtype=torch.float)
            if "boxes" in c:
                d["boxes"] = torch.as_tensor(tf.apply_boxes(np.array(c["boxes"], dtype=np.float64), (h, w)),
                                             dtype=torch.float)
            r = sam.predict(None, [d], multimask_output=c["multimask"])[0]
            low, iou, masks = r["low_res_logits"], r["iou_predictions"], r["masks"]
            # Multimask: the eval path gives 15 maps for one prompt (its token
            # block's four rows times the four tokens, less the first); the
            # first three are tokens 1..3 of row 0, which go with the IoUs.
            k = iou.shape[1]
            out[c["name"] + "_low_res"] = low[:, :k].numpy()
            out[c["name"] + "_iou"] = iou.numpy()
            out[c["name"] + "_masks"] = masks[:, :k].float().numpy()
            c["maps"] = int(low.shape[1])
            # The predictor's path (clear=True): SAM's own tokens, as --robust off decodes.
            sparse, dense = sam.prompt_encoder(points=(d["point_coords"], d["point_labels"]) if "points" in c else None,
                                               boxes=d.get("boxes"), masks=None)
            low_c, iou_c, _, _ = dec(image_embeddings=emb, image_pe=sam.prompt_encoder.get_dense_pe(),
                                     sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                     multimask_output=c["multimask"], encoder_features=early[None], clear=True)
            out[c["name"] + "_clear_low_res"] = low_c.numpy()
            out[c["name"] + "_clear_iou"] = iou_c.numpy()
    st_write.save(os.path.join(FIX, "robust_sam_io.safetensors"),
                  {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()})
    json.dump(cases, open(os.path.join(FIX, "robust_sam_cases.json"), "w"), indent=1)
    print({c["name"]: c["maps"] for c in cases})


if __name__ == "__main__":
    main()
