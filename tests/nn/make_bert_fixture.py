#!/usr/bin/env python3
"""Golden fixtures for the Sentence-BERT similarity backend of rass-caption-map:
a tiny random BertModel and a small WordPiece vocabulary in the
sentence-transformers folder layout, with the reference's tokens, ids and
embeddings.

    /tmp/loravenv/bin/python tests/nn/make_bert_fixture.py tests/fixtures/nn

Reference: transformers 4.36.2 (BertTokenizer, the slow tokenizer, with
do_lower_case=True; BertModel), torch 2.1.2 on the CPU. sentence-transformers
itself is not needed: its pipeline for this folder (Transformer -> Pooling
mean -> Normalize) is computed here as it does it:
  features = tokenizer(texts, padding=True, truncation="longest_first",
                       max_length=max_seq_length)
  token_embeddings = BertModel(**features).last_hidden_state
  mean = sum(token_embeddings * mask) / clamp(sum(mask), min=1e-9)
  embedding = torch.nn.functional.normalize(mean, p=2, dim=1)

Writes:
  sbert_tiny/                  modules.json, config.json, model.safetensors,
                               vocab.txt, tokenizer_config.json,
                               sentence_bert_config.json (max_seq_length 24),
                               1_Pooling/config.json (mean), 2_Normalize/
  sbert_tiny_golden.json       per string: tokenize(), input_ids (truncated)
  sbert_tiny_io.safetensors    embeddings [N, 32] (each string alone), and a
                               padded batch: batch_ids, batch_mask, batch_hidden
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel, BertTokenizer

out = sys.argv[1]
d = os.path.join(out, "sbert_tiny")
os.makedirs(os.path.join(d, "1_Pooling"), exist_ok=True)
os.makedirs(os.path.join(d, "2_Normalize"), exist_ok=True)

specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
words = ["lake", "blank", "##et", "wo", "##man", "woman", "door", "##way", "traffic", "light", "pond", "harbor",
         "stair", "##s", "caf", "##e", "naive", "building", "sky", "tree", "un", "##want", "##ed", "run", "##ning",
         "home", "house", "entrance", "sit", "seat", "person", "the", "a", "of", "and", "dog", "cat"]
punct = list(",.!?'-()[]/:;\"&")
digits = [str(i) for i in range(10)]
cjk = ["水", "山", "日"]
vocab = specials + letters + ["##" + c for c in letters] + words + punct + digits + ["##" + x for x in digits] + cjk
seen = set()
vocab = [v for v in vocab if not (v in seen or seen.add(v))]
with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(vocab) + "\n")

tok = BertTokenizer(os.path.join(d, "vocab.txt"), do_lower_case=True)
tok.save_pretrained(d)  # tokenizer_config.json, special_tokens_map.json (vocab.txt rewritten identically)

torch.manual_seed(7)
cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=64, max_position_embeddings=40, type_vocab_size=2)
model = BertModel(cfg).eval()
with torch.no_grad():
    for name, p in model.named_parameters():
        if "LayerNorm" in name:  # not the identity, so a missed norm shows
            p.copy_(torch.randn_like(p) * 0.2 + (1.0 if name.endswith("weight") else 0.0))
        elif name.endswith("bias"):
            p.copy_(torch.randn_like(p) * 0.1)
conf = cfg.to_dict()
conf["architectures"] = ["BertModel"]
json.dump(conf, open(os.path.join(d, "config.json"), "w"), indent=1)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(d, "model.safetensors"),
          {"format": "pt"})
json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
           {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
           {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
          open(os.path.join(d, "modules.json"), "w"), indent=1)
MAX_LEN = 24
json.dump({"max_seq_length": MAX_LEN, "do_lower_case": False}, open(os.path.join(d, "sentence_bert_config.json"), "w"))
json.dump({"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
           "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False},
          open(os.path.join(d, "1_Pooling", "config.json"), "w"), indent=1)

strings = [
    "lake", "Blanket", "woman", "sit", "stair", "stairs", "home", "entrance", "doorway", "harbor", "pond",
    "traffic light", "Traffic  Light", "  leading and trailing  ", "", "   ", "café", "CAFÉ", "naïve", "Ångström",
    "hello,world!", "don't", "(building)", "a-b/c", "dog's house.", "水山", "日本の山", "lake水pond",
    "tab\tnew\nline", "zero\u200bwidth", "nul\x00char", "ctrl\x07bell", "\ufffdreplacement",
    "unwanted running", "unwantedness", "x" * 120, "q" * 100, "42 dogs", "1984", "emoji 🙂 here",
    "[MASK] lake", "lake [SEP] pond", "[mask] lowercase special", "ﬁsh ligature", "ＦＵＬＬ width",
    "the building of the house and the tree of the sky and a dog and a cat of the lake and the pond of the home",
    "İstanbul", "ΣΊΣΥΦΟΣ", "straße", "über-cool", "façade, entrance",
]
golden = {"reference": "transformers 4.36.2 BertTokenizer(do_lower_case=True)", "max_seq_length": MAX_LEN,
          "strings": strings, "tokens": [], "ids": []}
embeddings = []
with torch.no_grad():
    for s in strings:
        golden["tokens"].append(tok.tokenize(s))
        enc = tok(s, truncation=True, max_length=MAX_LEN, return_tensors="pt")
        golden["ids"].append(enc["input_ids"][0].tolist())
        h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                  token_type_ids=enc["token_type_ids"]).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        mean = (h * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)
        embeddings.append(torch.nn.functional.normalize(mean, p=2, dim=1)[0])
    batch = tok(["lake", "traffic light and the house", "水"], padding=True, return_tensors="pt")
    batch_hidden = model(**batch).last_hidden_state
json.dump(golden, open(os.path.join(out, "sbert_tiny_golden.json"), "w", encoding="utf-8"), ensure_ascii=False, indent=0)
save_file({"embeddings": torch.stack(embeddings).contiguous(), "batch_ids": batch["input_ids"].contiguous(),
           "batch_mask": batch["attention_mask"].contiguous(), "batch_hidden": batch_hidden.contiguous()},
          os.path.join(out, "sbert_tiny_io.safetensors"), {"transformers": "4.36.2", "torch": torch.__version__})
print("wrote", d, len(vocab), "tokens,", len(strings), "strings")
