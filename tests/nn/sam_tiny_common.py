"""The tiny random SAM family the SAM fixture scripts share
(make_sam_fixture.py, make_robust_sam_fixture.py, make_hq_sam_fixture.py):
one builder over whichever package's modules (segment_anything,
robust_segment_anything, segment_anything_hq) and one randomisation."""
from functools import partial

import torch


def build_tiny(m, tiny, decoder_cls, **decoder_kw):
    """A Sam of the `tiny` sizes from module namespace `m` (ImageEncoderViT,
    PromptEncoder, TwoWayTransformer, Sam) with `decoder_cls` as its mask
    decoder (extra keyword arguments: RobustSAM's opt, vit_dim)."""
    t = tiny
    g = t["image_size"] // t["patch_size"]
    return m.Sam(
        image_encoder=m.ImageEncoderViT(img_size=t["image_size"], patch_size=t["patch_size"],
                                        embed_dim=t["embed_dim"], depth=t["depth"], num_heads=t["num_heads"],
                                        mlp_ratio=t["mlp_ratio"], out_chans=t["prompt_embed_dim"], qkv_bias=True,
                                        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
                                        window_size=t["window_size"], global_attn_indexes=t["global_attn_indexes"]),
        prompt_encoder=m.PromptEncoder(embed_dim=t["prompt_embed_dim"], image_embedding_size=(g, g),
                                       input_image_size=(t["image_size"], t["image_size"]),
                                       mask_in_chans=t["mask_in_chans"]),
        mask_decoder=decoder_cls(num_multimask_outputs=3,
                                 transformer=m.TwoWayTransformer(depth=t["decoder_depth"],
                                                                 embedding_dim=t["prompt_embed_dim"],
                                                                 mlp_dim=t["decoder_mlp_dim"],
                                                                 num_heads=t["decoder_heads"]),
                                 transformer_dim=t["prompt_embed_dim"], iou_head_depth=t["iou_head_depth"],
                                 iou_head_hidden_dim=t["iou_head_hidden_dim"], **decoder_kw),
    )


def randomise(model, seed, hyper_mlps, half=False):
    """Every parameter random (SAM zero-initialises rel_pos and pos_embed, and
    LayerNorm weights are ones): each must matter to the outputs; BatchNorm
    statistics too, where there are any. The positional-encoding buffer keeps
    its own N(0, 1) draw. The last layers of `hyper_mlps` are scaled so logits
    pass the stability score's offset and the IoU head's so predictions
    spread, as a trained model's do. `half`: the state dict's values rounded
    to fp16 (stored as fp16, half the fixture's size; run in float32)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_((1 if name.endswith("weight") else 0) + 0.1 * torch.randn(p.shape, generator=g))
            elif "embed" in name or "token" in name or "rel_pos" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                fan_in = 1
                for d in p.shape[1:]:
                    fan_in *= d
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.2 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))
        for m in hyper_mlps:
            m.layers[-1].weight.mul_(20)
            m.layers[-1].bias.mul_(20)
        # SAM's mask_decoder, SAM 2's sam_mask_decoder.
        decoder = model.mask_decoder if hasattr(model, "mask_decoder") else model.sam_mask_decoder
        decoder.iou_prediction_head.layers[-1].weight.mul_(5)
        if half:  # the state dict's tensors only: pixel_mean and pixel_std are no part of it
            for t in model.state_dict().values():
                if t.is_floating_point():
                    t.copy_(t.half().float())
    return model
