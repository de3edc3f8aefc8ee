#!/usr/bin/env python3
"""Writes the T5 tokenizer fixtures: a tiny SentencePiece unigram model and the
token ids the reference tokenizers give for a set of texts, plus the captions
PixArt's text preprocessing (T5Embedder.clean_caption, applied twice) makes.

    PIXART_SRC=/path/to/PixArt-alpha python3 tests/text/make_t5_tokenizer_fixture.py

Needs sentencepiece, transformers (and tokenizers), ftfy and beautifulsoup4.
PIXART_SRC is a checkout of PixArt-alpha (diffusion/model/t5.py is read, not
installed). Outputs, under tests/fixtures/text/:
  t5_tiny_spiece.model   a unigram model trained here on a generated corpus
                         with T5's settings (nmt_nfkc normalization, <pad>=0,
                         </s>=1, <unk>=2, no <s>); its normalizer is the same
                         precompiled NFKC map as T5's spiece.model
  t5_tokenizer_golden.json
      "spm": [{text, ids, pieces}]  sentencepiece's own encode (the reference
             for the tokenizer: transformers' slow T5Tokenizer called it)
      "hf":  [{text, ids, mask}]    transformers' T5Tokenizer (fast), padded
             and truncated to 120 tokens as PixArt's T5Embedder asks, for the
             cleaned captions (single spaces, stripped), where both agree
      "clean": [{text, cleaned}]    clean_caption(clean_caption(text))
"""
import importlib.util
import json
import os
import random
import shutil
import sys
import tempfile

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "text")

NOUNS = ["cat", "dog", "tree", "house", "car", "street", "person", "flower", "mountain", "river", "building",
         "sky", "cloud", "table", "chair", "window", "road", "bird", "boat", "field", "forest", "bridge",
         "lamp", "book", "sheep", "sign", "wall", "door", "grass", "water"]
ADJS = ["small", "large", "red", "blue", "green", "old", "wooden", "bright", "dark", "blurry", "sharp",
        "colorful", "white", "black", "tall", "quiet", "busy", "realistic", "detailed", "soft"]
VERBS = ["sitting on", "standing near", "next to", "in front of", "behind", "under", "above", "beside"]
STYLES = ["photograph", "painting", "illustration", "digital art", "sketch", "rendering"]


def corpus():
    rng = random.Random(20261206)
    lines = []
    for _ in range(600):
        a, b = rng.choice(ADJS), rng.choice(ADJS)
        n, m = rng.choice(NOUNS), rng.choice(NOUNS)
        lines.append(f"The image shows a {a} {n} {rng.choice(VERBS)} a {b} {m}. "
                     f"The style is a {rng.choice(STYLES)}, with {rng.randint(2, 19)} {m}s.")
    lines += ["Café crème, naïve façade, résumé.", "Ａｂｃ fullwidth ＡＢＣ", "ﬁne ﬂowers", "über straße",
              "Ελληνικά λέξεις", "Русский текст", "数字 12345", "tab\there", "mixed UPPER lower Case"]
    return lines


def train(path):
    spm.set_random_generator_seed(20261206)  # the trainer samples; fixed, the model is the same on every run
    # A fixed folder: the model records its input's path, which would vary.
    d = os.path.join(tempfile.gettempdir(), "rass-t5-tokenizer-fixture")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    if True:
        text = os.path.join(d, "corpus.txt")
        with open(text, "w", encoding="utf-8") as f:
            f.write("\n".join(corpus()) + "\n")
        spm.SentencePieceTrainer.train(
            input=text, model_prefix=os.path.join(d, "m"), vocab_size=300, model_type="unigram",
            normalization_rule_name="nmt_nfkc", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
            character_coverage=0.995, num_threads=1, seed_sentencepiece_size=10000, shuffle_input_sentence=False,
            minloglevel=2, hard_vocab_limit=False)
        with open(os.path.join(d, "m.model"), "rb") as f:
            data = f.read()
        shutil.rmtree(d)
    with open(path, "wb") as f:
        f.write(data)


# Raw texts for the tokenizer: spacing, case, NFKC, unknown characters,
# control characters, invalid-looking sequences, long inputs.
TEXTS = [
    "The image shows a small cat sitting on a wooden table.",
    "the image shows a small cat sitting on a wooden table. the style is a photograph, with 3 cats.",
    "  leading and trailing spaces  ",
    "many     spaces\tand\ttabs\nand\nnewlines\r\n",
    "",
    " ",
    "UPPER case Words",
    "Café crème naïve",
    "Cafe\u0301 cre\u0300me",  # decomposed: NFKC composes
    "Ａｂｃ ＡＢＣ １２３",  # fullwidth
    "ﬁne ﬂowers",  # ligatures
    "① ② ㈱ ™ ½",  # compatibility characters
    "数字 12345 漢字",
    "emoji 🐱 and ❤️ here",
    "zero\u200bwidth\u00a0nbsp\u3000ideographic",
    "ctrl\x01\x07chars\x7f",
    "tabs\t\tonly",
    "a" * 300,
    " ".join(["word"] * 200),
    "▁already▁escaped",
    "</s> <pad> <unk> literal",
    "Ελληνικά Русский עברית",
    "x" + "\u0301" * 5,
]

CAPTIONS = [
    "The image features a small, fluffy cat sitting on a wooden table. The style is realistic and detailed.",
    "A blurry photograph of a busy street at night, with cars, people and bright lights.  ",
    "  \"A painting of a red boat on a quiet river.\"  ",
    "Visit https://example.com/page?id=1 or www.example.org for more; @user posted #12 pictures.",
    "An illustration (digital art) of mountains -- with clouds & sky * bright * colors [4k].",
    "this-is-my-cute-cat_with_a_hat in a photo.jpg file, 1920x1080 resolution, page 3",
    "The image shows a dog...running...fast . very fast : really!",
    "Ｆｕｌｌｗｉｄｔｈ text and ﬁne ligatures, “curly” quotes and ‘single’ ones — dashes – too.",
    "Caf%C3%A9+on+the+corner, with a+b signs",
    "<b>bold</b> text with &amp; entities &quot;quoted&quot; and &lt;tags&gt;",
    "ABC123 jc6640 jc6640vc 6640vc231 a1b2c3d4 free shipping click for details",
    "数字 and 漢字 mixed with English words.",
    "a\\nb literal backslash-n, tab\there, numbers 192.168.0.1 and 123456789 and 3:45 ",
    "'quoted start and end'",
    "-leading dash, trailing plus+",
    "",
    " ".join(["word"] * 150),
    # ftfy's fixes: C1 controls read as Windows-1252, ligatures, widths, quotes, line breaks, controls
    "\x93quoted\x94 \x85 ellipsis \ufb03ce \uff71\uff72 \uffe5 \u02bcn\u201ex\u201f",
    "line one\r\nline two\rthree\u2028four \x1b[31mred\x1b[0m \x07bell\ufeff",
    "e\u0301t\u00e9 cafe\u0301 \u212b",
    # references: numeric, named with and without ";", unknown, C1 numbers
    "&eacute;t&eacute; &#233;&#xE9; &copy 2024 &hellip; &nbsp;x &#150; &#0; &#x110000; &notit; &zzz; &amp;lt;",
    "caf&eacute; &lt;b&gt; &AMP; &#65&#66 & plain ampersand",
    # tags and lone angle brackets
    "<p class='x'>para</p> a < b > c <!-- comment --> <br/>end",
    # percent escapes: valid, invalid UTF-8, incomplete, beside non-ASCII
    "100%25 sure %E2%9C%93 %FF%FE bad %4 end %zz é%41",
    # dashes, quotes, CJK blocks, strokes
    "a\u2014b\u2013c\u2212d \u00abq\u00bb \u00b4x\u00a8 \u3042\u30a2 \u31c0\u3200\u3300 kanji\u4e00\u9fff end",
    # numbers and codes
    "photo 12x34 1.5\u00d72.5 10\u04455 #1234 #123 #12345 v2 a1b2 page 12 3d model 4k",
    "\u0661\u0662\u0663\u0664\u0665\u0666 arabic-indic and \uff11\uff12\uff13\uff14\uff15\uff16 fullwidth digits",
    "www.site.com/path, http:/x, mail@x.com, @name_1 hi",
    "_-_-_- under_score-dash_mix-here",
    "  . leading dot",
    ".hidden",
    "\"'\"",
]


def load_clean_caption():
    src = os.environ.get("PIXART_SRC")
    if not src:
        sys.exit("set PIXART_SRC to a PixArt-alpha checkout")
    spec = importlib.util.spec_from_file_location("pixart_t5", os.path.join(src, "diffusion", "model", "t5.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    embedder = mod.T5Embedder.__new__(mod.T5Embedder)  # no weights: only the text methods
    embedder.use_text_preprocessing = True
    return embedder.text_preprocessing


def main():
    os.makedirs(OUT, exist_ok=True)
    model = os.path.join(OUT, "t5_tiny_spiece.model")
    train(model)
    sp = spm.SentencePieceProcessor(model_file=model)
    golden = {"spm": [], "hf": [], "clean": []}
    for t in TEXTS:
        golden["spm"].append({"text": t, "ids": sp.encode(t), "pieces": sp.encode(t, out_type=str)})

    clean = load_clean_caption()
    from transformers import T5Tokenizer
    # from a folder holding spiece.model, as T5Embedder loads it: transformers
    # builds its fast tokenizer from the model's pieces and charsmap
    tokdir = tempfile.mkdtemp()
    shutil.copy(model, os.path.join(tokdir, "spiece.model"))
    tok = T5Tokenizer.from_pretrained(tokdir)
    for c in CAPTIONS:
        cleaned = clean(c)
        golden["clean"].append({"text": c, "cleaned": cleaned})
        enc = tok([cleaned], max_length=120, padding="max_length", truncation=True, return_attention_mask=True,
                  add_special_tokens=True)
        ids, mask = enc["input_ids"][0], enc["attention_mask"][0]
        # the slow path: sentencepiece, </s>, truncation to 119 + </s>, padding
        ref = sp.encode(cleaned)[:119] + [1]
        ref_ids = ref + [0] * (120 - len(ref))
        if ids != ref_ids:
            print("warning: transformers and sentencepiece differ on", repr(cleaned), file=sys.stderr)
        golden["hf"].append({"text": cleaned, "ids": ids, "mask": mask})
        golden["spm"].append({"text": cleaned, "ids": sp.encode(cleaned), "pieces": sp.encode(cleaned, out_type=str)})
    import ftfy, bs4, transformers
    golden["versions"] = {"sentencepiece": spm.__version__, "transformers": transformers.__version__,
                          "ftfy": ftfy.__version__, "beautifulsoup4": bs4.__version__}
    with open(os.path.join(OUT, "t5_tokenizer_golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
