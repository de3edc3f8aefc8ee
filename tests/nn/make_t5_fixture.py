#!/usr/bin/env python3
"""Golden fixtures for T5 caption features (what PixArt's T5Embedder and
DreamClear's tools/extract_t5_features.py make): a tiny random-weight
transformers T5EncoderModel (T5 v1.1's layout: gated-gelu, no biases,
relative position buckets) and, for a few captions, the arrays
extract_t5_features.py saves, computed by the reference path:
T5Embedder.text_preprocessing (PixArt's clean_caption, read from a PixArt-alpha
checkout and run, never copied), transformers' T5 tokenizer (120 tokens, </s>,
padding) and the encoder's last_hidden_state in float32.

    # a venv with torch 2.11 (PyPI), transformers 5.25, sentencepiece, ftfy, beautifulsoup4
    PIXART_SRC=/path/to/PixArt-alpha python3 tests/nn/make_t5_fixture.py

Writes, under tests/fixtures/nn/:
  t5_tiny/config.json, t5_tiny/model.safetensors    the encoder (save_pretrained)
  t5_captions/<key>.caption                         DreamClear's caption files (one line)
  t5_golden/<key>.npz                               caption_feature [1, 120, 32] float32,
                                                    attention_mask [1, 120] int64
The tokenizer is tests/fixtures/text/t5_tiny_spiece.model
(tests/text/make_t5_tokenizer_fixture.py).
"""
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
from transformers import T5Config, T5EncoderModel, T5Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "fixtures")
SPM = os.path.join(FIX, "text", "t5_tiny_spiece.model")

CAPTIONS = {
    "cat": "The image features a small, fluffy cat sitting on a wooden table. The style is realistic and detailed.",
    "street": "A blurry photograph of a busy street at night, with cars, people and bright lights -- 1920x1080.",
    "long": " ".join(["a red boat on a quiet river, a green tree beside a white house."] * 12),
    "empty": "",
}


def clean_fn():
    # PixArt's T5Embedder.text_preprocessing, loaded as the tokenizer fixture script loads it.
    sys.path.insert(0, os.path.join(HERE, "..", "text"))
    from make_t5_tokenizer_fixture import load_clean_caption
    return load_clean_caption()


def main():
    torch.manual_seed(20261206)
    cfg = T5Config(vocab_size=256, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
                   relative_attention_num_buckets=32, relative_attention_max_distance=128,
                   feed_forward_proj="gated-gelu", dropout_rate=0.0, layer_norm_epsilon=1e-6,
                   is_encoder_decoder=False, use_cache=False)
    model = T5EncoderModel(cfg).eval()
    with torch.no_grad():  # visible norms and biases: random, not ones
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif "relative_attention_bias" in name:
                p.copy_(torch.randn_like(p))
    out = os.path.join(FIX, "nn", "t5_tiny")
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out, safe_serialization=True)

    tokdir = tempfile.mkdtemp()
    shutil.copy(SPM, os.path.join(tokdir, "spiece.model"))
    tok = T5Tokenizer.from_pretrained(tokdir)
    clean = clean_fn()
    capdir, golddir = os.path.join(FIX, "nn", "t5_captions"), os.path.join(FIX, "nn", "t5_golden")
    for d in (capdir, golddir):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    for key, caption in CAPTIONS.items():
        with open(os.path.join(capdir, key + ".caption"), "w", encoding="utf-8") as f:
            f.write(caption + "\n")
        text = clean(caption)  # T5Embedder.get_text_embeddings
        t = tok([text], max_length=120, padding="max_length", truncation=True, return_attention_mask=True,
                add_special_tokens=True, return_tensors="pt")
        with torch.no_grad():
            h = model(input_ids=t["input_ids"], attention_mask=t["attention_mask"])["last_hidden_state"]
        np.savez_compressed(os.path.join(golddir, key), caption_feature=h.float().numpy(),
                            attention_mask=t["attention_mask"].numpy())
        print(key, int(t["attention_mask"].sum()), "tokens", float(h.abs().max()))
    shutil.rmtree(tokdir)


if __name__ == "__main__":
    main()
