#!/usr/bin/env python3
"""Golden fixtures for the CLIPTextModel port: tiny text encoders built by the
reference (transformers' modeling_clip.py, source tree of transformers
4.39.0.dev0 given in TRANSFORMERS_SRC, kept outside this repository; see
reference_env.py) with a fixed seed.

    TRANSFORMERS_SRC=/path/to/transformers/src /usr/bin/python3 tests/nn/make_clip_fixture.py tests/fixtures/nn

clip_tiny_gelu: gelu (OpenCLIP / SD 2.x), legacy eos_token_id 2 (pooled at the
highest id, as SD 2.x configs have it). clip_tiny_quick: quick_gelu (OpenAI
CLIP / SD 1.x), eos_token_id 99. Outputs: last_hidden_state, pooled, and the
clip_skip=1 embedding diffusers computes (final_layer_norm(hidden_states[-2])).
"""
import json
import os
import sys

import reference_env

reference_env.setup("TRANSFORMERS_SRC")
import torch  # noqa: E402
from transformers.models.clip.configuration_clip import CLIPTextConfig  # noqa: E402
from transformers.models.clip.modeling_clip import CLIPTextModel  # noqa: E402

import st_write  # noqa: E402

out = sys.argv[1]
for name, act, eos in (("clip_tiny_gelu", "gelu", 2), ("clip_tiny_quick", "quick_gelu", 99)):
    torch.manual_seed(2)
    cfg = CLIPTextConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                         num_attention_heads=4, max_position_embeddings=16, hidden_act=act,
                         bos_token_id=98, eos_token_id=eos, pad_token_id=0)
    model = CLIPTextModel(cfg).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "layer_norm" in pname:
                p.copy_(torch.randn_like(p) * 0.2 + (1.0 if pname.endswith("weight") else 0.0))
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    conf = cfg.to_dict()
    conf["architectures"] = ["CLIPTextModel"]
    json.dump(conf, open(os.path.join(d, "config.json"), "w"), indent=1)
    st_write.save(os.path.join(d, "model.safetensors"), {k: v.numpy() for k, v in model.state_dict().items()},
                  {"format": "pt"})
    # Rows like tokenizer output: bos, ids, eos, padding (0); the second row is longer.
    ids = torch.zeros(2, 16, dtype=torch.long)
    ids[0, :6] = torch.tensor([98, 5, 17, 42, 7, 99 if eos == 99 else 97])
    ids[1, :11] = torch.tensor([98, 3, 9, 27, 81, 64, 12, 33, 50, 6, 99 if eos == 99 else 97])
    with torch.no_grad():
        o = model(ids, output_hidden_states=True)
        skip1 = model.text_model.final_layer_norm(o.hidden_states[-2])
    st_write.save(os.path.join(out, name + "_io.safetensors"),
                  {"input_ids": ids.numpy(), "last_hidden_state": o.last_hidden_state.numpy(),
                   "pooled": o.pooler_output.numpy(), "clip_skip1": skip1.numpy()},
                  {"transformers": "4.39.0.dev0", "torch": torch.__version__})
    print(name, sorted(model.state_dict().keys())[:3])
