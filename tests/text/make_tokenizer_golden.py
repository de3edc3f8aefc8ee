#!/usr/bin/env python3
"""Golden fixtures for tests/text/test_clip_tokenizer.cpp: a synthetic CLIP vocabulary
and the reference tokenizer's output on it.

1. Trains a small byte-level BPE, the way CLIP's vocabulary is built, on text written
   for this script (CORPUS below): the vocabulary is the 256 byte symbols of
   bytes_to_unicode, the same with "</w>", one entry per merge, then <|startoftext|>
   and <|endoftext|>; so every string encodes. Writes tests/fixtures/text/:
     tiny-clip/vocab.json, merges.txt         the vocabulary
     tiny-clip/special_tokens_map.json,
     tiny-clip/tokenizer_config.json          as Stable Diffusion 2.x ships them (pad "!")
     added/tokenizer_config.json              the newer format: added_tokens_decoder,
                                              with one extra, non-special added token
     quirks/merges.txt                        CRLF, a duplicate merge (the later rank
                                              wins), a blank and a three-field line
2. Runs the REFERENCE, transformers' slow CLIPTokenizer, on a few hundred strings and
   writes tokenizer_golden.json:
     sd2     CLIPTokenizer.from_pretrained("tiny-clip") (pad "!", as SD 2.x)
     sd1     CLIPTokenizer(vocab.json, merges.txt) (pad <|endoftext|>, as SD 1.x)
     added   from_pretrained of a folder with added/tokenizer_config.json
     quirks  CLIPTokenizer(vocab.json, quirks/merges.txt)
   For each: input_ids without special tokens ("ids") and input_ids of
   tokenizer(text, padding="max_length", max_length=77, truncation=True)
   ("padded", stored without its trailing run of pad ids; for sd1, added and
   quirks each only where it differs from sd2's); for sd2 also decode()
   of those (clean_up_tokenization_spaces=False, with and without
   skip_special_tokens) and, for the handwritten strings, tokenize(). Without ftfy (transformers' BasicTokenizer path, the one
   the C++ code implements); if --ftfy-src is given, also records per string
   whether the ftfy path gives the same padded ids ("ftfy_same").
3. Writes unicode_golden.json: NFC and str.lower() of random strings, for the
   Unicode helpers.

Reference used for the committed fixtures: transformers at commit
b499a14b17062257a41accc12e833f48f0a69409 (main, 2025-05-13, 4.52.0.dev0), with
ftfy 6.3.1 for the comparison, Debian 12's python3 3.11.2, python3-regex
2022.10.31, python3-numpy, python3-packaging, python3-wcwidth (for ftfy).

Only three files of transformers are used, loaded from --transformers-src (a
checkout: the folder holding src/transformers, or src/transformers itself):
tokenization_utils_base.py, tokenization_utils.py, models/clip/tokenization_clip.py.
What they import from the rest of transformers (hub download, logging, enums,
docstring helpers) and from the `tokenizers` package (AddedToken: the Rust class,
hashable by content; the fallback dataclass of tokenization_utils_base is
unhashable and makes CLIPTokenizer's constructor raise) is replaced by minimal
stand-ins written to a temporary folder; none of them takes part in tokenizing.

    /usr/bin/python3 tests/text/make_tokenizer_golden.py \\
        --transformers-src /path/to/transformers --transformers-commit SHA \\
        [--ftfy-src /path/to/python-ftfy]
"""
import argparse
import json
import random
import shutil
import sys
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path

import regex

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "text"

# ---------------------------------------------------------------------------
# 1. The synthetic vocabulary
# ---------------------------------------------------------------------------

CORPUS = """
A photo of a cat sitting on a wooden chair next to the window. The dog is sleeping
on the green grass in the garden, and the sky above the mountains is blue.
Two people are walking along the road; a car, a bus and a bicycle pass by the building.
The kitchen has a table, four chairs, a refrigerator, a sink and an oven.
In the bedroom there is a bed with a pillow and a blanket, a lamp and a painting on the wall.
A river flows under the bridge near the tower; boats float on the water.
Street lights, traffic signs and trees line the sidewalk of the city.
The beach is covered with sand, and waves roll in from the sea under a cloudy sky.
A low-quality image: blurry, noisy, JPEG-compressed, downsampled 4x, out of focus.
High quality, sharp details, 8k resolution, realistic textures, natural colors.
It's a sunny day; they're playing in the park, we've seen them, I'm sure they'll stay.
Don't worry, it'd be fine. She's got 3 apples, 12 oranges and 1,000 grapes!
The model segments every pixel into one of 150 classes: wall, floor, ceiling, door.
Segmentation of degraded images needs restoration-aware features (RASS).
cat, dog, green grass, blue sky, person, tree, car, road, building, sidewalk, mountain
wall, floor, ceiling, bed, window, cabinet, person, door, table, curtain, chair, painting
sofa, shelf, house, sea, mirror, rug, field, armchair, seat, fence, desk, rock, wardrobe
lamp, bathtub, railing, cushion, base, box, column, signboard, chest of drawers, counter
sand, sink, skyscraper, fireplace, refrigerator, grandstand, path, stairs, runway, case
pool table, pillow, screen door, stairway, river, bridge, bookcase, blind, coffee table
toilet, flower, book, hill, bench, countertop, stove, palm, kitchen island, computer
swivel chair, boat, bar, arcade machine, hovel, bus, towel, light, truck, tower
chandelier, awning, streetlight, booth, television receiver, airplane, dirt track
apparel, pole, land, bannister, escalator, ottoman, bottle, buffet, poster, stage, van
ship, fountain, conveyer belt, canopy, washer, plaything, swimming pool, stool, barrel
basket, waterfall, tent, bag, minibike, cradle, oven, ball, food, step, tank, trade name
microwave, pot, animal, bicycle, lake, dishwasher, screen, blanket, sculpture, hood
sconce, vase, traffic light, tray, ashcan, fan, pier, crt screen, plate, monitor
bulletin board, shower, radiator, glass, clock, flag
Le chat est assis sur la chaise près de la fenêtre; l'été, les élèves mangent des crêpes.
Der Hund schläft auf der grünen Wiese; die Straße ist groß und schön. Über Bäume.
El niño pequeño come una manzana en la montaña; ¿dónde está el señor? ¡Qué día!
Η γάτα κάθεται στην καρέκλα. ΟΔΟΣ ΣΟΦΟΣ. Ο ήλιος λάμπει στον ουρανό.
Кошка сидит на стуле у окна. Собака спит на зелёной траве.
猫が窓の近くの椅子に座っています。犬は緑の草の上で寝ています。
一只猫坐在窗边的椅子上。一只狗睡在绿色的草地上。天空是蓝色的。
고양이가 창문 옆 의자에 앉아 있습니다. 개는 푸른 잔디 위에서 자고 있습니다.
قطة تجلس على كرسي بجانب النافذة. ١٢٣ ٤٥٦
बिल्ली खिड़की के पास कुर्सी पर बैठी है।
Emoji: 🐱 🐶 🌿 ☀️ 👍🏽 👩‍👩‍👧 🇫🇷 — “quotes” ‘single’ … café naïve résumé Ångström
Numbers 0123456789 3.14 2.5e-3 50% $100 #1 @user x4 f/2.8 1080p 16:9 RGB-D 3D
"""


def bytes_to_unicode():
    # The byte <-> symbol table of CLIP's byte-level BPE (printable bytes map to
    # themselves, the others to U+0100 and up).
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


PAT = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                    regex.IGNORECASE)


def train_bpe(text, max_merges):
    """Plain BPE: repeatedly merge the most frequent adjacent pair (ties: smallest pair)."""
    be = bytes_to_unicode()
    freq = Counter()
    for line in text.lower().split("\n"):
        for tok in PAT.findall(line):
            sym = [be[b] for b in tok.encode("utf-8")]
            sym[-1] += "</w>"
            freq[tuple(sym)] += 1
    words = list(freq.items())
    merges = []
    while len(merges) < max_merges:
        pairs = Counter()
        for w, f in words:
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += f
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < 1:
            break
        merges.append(best)
        new_words = []
        for w, f in words:
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words.append((tuple(out), f))
        words = new_words
    return merges


def token_entry(content, normalized=True, with_type=False):
    d = {"content": content, "lstrip": False, "normalized": normalized, "rstrip": False, "single_word": False}
    if with_type:
        d = {"__type": "AddedToken", **d}
    return d


def write_fixture_files():
    be = bytes_to_unicode()
    merges = train_bpe(CORPUS, 1500)
    vocab = list(be.values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    encoder = dict(zip(vocab, range(len(vocab))))

    clip = OUT / "tiny-clip"
    clip.mkdir(parents=True, exist_ok=True)
    with open(clip / "vocab.json", "w", encoding="utf-8") as f:
        json.dump(encoder, f, ensure_ascii=False)
    with open(clip / "merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    specials = {
        "bos_token": token_entry("<|startoftext|>"),
        "eos_token": token_entry("<|endoftext|>"),
        "pad_token": "!",
        "unk_token": token_entry("<|endoftext|>"),
    }
    with open(clip / "special_tokens_map.json", "w", encoding="utf-8") as f:
        json.dump(specials, f, indent=2)
    config = {
        "add_prefix_space": False,
        "bos_token": token_entry("<|startoftext|>", with_type=True),
        "do_lower_case": True,
        "eos_token": token_entry("<|endoftext|>", with_type=True),
        "errors": "replace",
        "model_max_length": 77,
        "name_or_path": "tiny-clip",
        "pad_token": "!",
        "special_tokens_map_file": "./special_tokens_map.json",
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": token_entry("<|endoftext|>", with_type=True),
    }
    with open(clip / "tokenizer_config.json", "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)

    # The newer config format (transformers >= 4.34 writes it): added_tokens_decoder,
    # no special_tokens_map.json needed. One extra non-special token that strips
    # the whitespace on its left.
    added = OUT / "added"
    added.mkdir(parents=True, exist_ok=True)
    n = len(encoder)
    dec = {
        "0": {**token_entry("!", normalized=False), "special": True},
        str(encoder["<|startoftext|>"]): {**token_entry("<|startoftext|>"), "special": True},
        str(encoder["<|endoftext|>"]): {**token_entry("<|endoftext|>"), "special": True},
        str(n): {**token_entry("<rass>"), "lstrip": True, "special": False},
    }
    config2 = {
        "added_tokens_decoder": dec,
        "bos_token": "<|startoftext|>",
        "clean_up_tokenization_spaces": False,
        "do_lower_case": True,
        "eos_token": "<|endoftext|>",
        "errors": "replace",
        "model_max_length": 77,
        "pad_token": "!",
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": "<|endoftext|>",
    }
    with open(added / "tokenizer_config.json", "w", encoding="utf-8") as f:
        json.dump(config2, f, indent=2)

    # Merges quirks: CRLF line ends, a duplicate of an early merge at the end (its
    # rank becomes the last), a blank line and a line with three fields.
    quirks = OUT / "quirks"
    quirks.mkdir(parents=True, exist_ok=True)
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    lines.insert(40, "")
    lines.insert(60, "x y z")
    lines.append(lines[5])
    with open(quirks / "merges.txt", "w", encoding="utf-8", newline="") as f:
        f.write("\r\n".join(lines) + "\r\n")
    return encoder, merges


# ---------------------------------------------------------------------------
# 2. The reference
# ---------------------------------------------------------------------------

STUB_UTILS = r'''
import logging as _logging
from enum import Enum

import numpy as np

CHAT_TEMPLATE_DIR = "additional_chat_templates"
CHAT_TEMPLATE_FILE = "chat_template.jinja"


class ExplicitEnum(str, Enum):
    @classmethod
    def _missing_(cls, value):
        raise ValueError(f"{value} is not a valid {cls.__name__}")


class PaddingStrategy(ExplicitEnum):
    LONGEST = "longest"
    MAX_LENGTH = "max_length"
    DO_NOT_PAD = "do_not_pad"


class TensorType(ExplicitEnum):
    PYTORCH = "pt"
    TENSORFLOW = "tf"
    NUMPY = "np"
    JAX = "jax"
    MLX = "mlx"


class PushToHubMixin:
    def push_to_hub(self, *args, **kwargs):
        raise NotImplementedError


def add_end_docstrings(*docstr):
    return lambda fn: fn


def copy_func(f):
    return f


def cached_file(path_or_repo_id, filename, subfolder="", **kwargs):
    p = __import__("os").path.join(path_or_repo_id, subfolder or "", filename)
    return p if __import__("os").path.isfile(p) else None


def extract_commit_hash(resolved_file, commit_hash):
    return commit_hash


def _no(*args, **kwargs):
    return False


add_model_info_to_auto_map = add_model_info_to_custom_pipelines = lambda x, *a: x
download_url = list_repo_templates = lambda *a, **k: []
is_flax_available = is_jax_tensor = is_mlx_available = is_protobuf_available = _no
is_remote_url = is_tf_available = is_tf_tensor = is_torch_available = _no
is_torch_device = is_torch_tensor = _no
is_offline_mode = lambda: True
is_tokenizers_available = lambda: True


def is_numpy_array(x):
    return isinstance(x, np.ndarray)


def requires_backends(obj, backends):
    raise ImportError(str(backends))


def to_py_obj(obj):
    if isinstance(obj, (list, tuple)):
        return [to_py_obj(o) for o in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


class _Logger(_logging.LoggerAdapter):
    def process(self, msg, kwargs):
        return msg, kwargs

    def warning_once(self, *args, **kwargs):
        self.warning(*args, **kwargs)

    def warning_advice(self, *args, **kwargs):
        self.warning(*args, **kwargs)


class logging:
    @staticmethod
    def get_logger(name=None):
        return _Logger(_logging.getLogger(name), {})
'''

STUB_TOKENIZERS = r'''
class AddedToken:
    """Stand-in for tokenizers.AddedToken (Rust): same fields, defaults, str, state."""

    def __init__(self, content, single_word=False, lstrip=False, rstrip=False, normalized=None, special=False):
        self.content = content
        self.single_word = single_word
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.special = special
        self.normalized = (not special) if normalized is None else normalized

    def __getstate__(self):
        return {"content": self.content, "single_word": self.single_word, "lstrip": self.lstrip,
                "rstrip": self.rstrip, "normalized": self.normalized, "special": self.special}

    def __setstate__(self, state):
        for k, v in state.items():
            setattr(self, k, v)

    def __str__(self):
        return self.content

    def __repr__(self):
        return f"AddedToken({self.content!r}, special={self.special})"

    def __hash__(self):
        return hash(self.content)

    def __eq__(self, other):
        return isinstance(other, AddedToken) and self.content == other.content


class Encoding:
    pass
'''


def setup_reference(transformers_src):
    src = Path(transformers_src)
    for cand in (src / "src" / "transformers", src / "transformers", src):
        if (cand / "tokenization_utils_base.py").is_file():
            src = cand
            break
    else:
        sys.exit(f"no tokenization_utils_base.py under {transformers_src}")
    tmp = Path(tempfile.mkdtemp(prefix="rass-tok-ref-"))
    pkg = tmp / "transformers"
    (pkg / "utils").mkdir(parents=True)
    (pkg / "models" / "clip").mkdir(parents=True)
    version = regex.search(r'__version__ = "([^"]+)"', (src / "__init__.py").read_text()).group(1)
    (pkg / "__init__.py").write_text(f'__version__ = "{version}"\n')
    (pkg / "utils" / "__init__.py").write_text(STUB_UTILS)
    (pkg / "utils" / "chat_template_utils.py").write_text("def render_jinja_template(*a, **k):\n    raise NotImplementedError\n")
    (pkg / "utils" / "import_utils.py").write_text('PROTOBUF_IMPORT_ERROR = "{0}"\n')
    (pkg / "dynamic_module_utils.py").write_text("def custom_object_save(*a, **k):\n    pass\n")
    (pkg / "models" / "__init__.py").write_text("")
    (pkg / "models" / "clip" / "__init__.py").write_text("")
    for rel in ("tokenization_utils_base.py", "tokenization_utils.py", "models/clip/tokenization_clip.py"):
        shutil.copy(src / rel, pkg / rel)
    (tmp / "tokenizers").mkdir()
    (tmp / "tokenizers" / "__init__.py").write_text(STUB_TOKENIZERS)
    sys.path.insert(0, str(tmp))
    from transformers.models.clip.tokenization_clip import CLIPTokenizer

    return CLIPTokenizer, version, tmp


def make_tokenizer(CLIPTokenizer, kind, ftfy_path=None):
    """kind: sd2 | sd1 | added | quirks. ftfy_path: None = the BasicTokenizer path."""
    if ftfy_path:
        if ftfy_path not in sys.path:
            sys.path.insert(0, ftfy_path)
        sys.modules.pop("ftfy", None)
    else:
        sys.modules["ftfy"] = None  # `import ftfy` raises ImportError
    clip = OUT / "tiny-clip"
    if kind == "sd2":
        tok = CLIPTokenizer.from_pretrained(str(clip))
    elif kind == "sd1":
        tok = CLIPTokenizer(str(clip / "vocab.json"), str(clip / "merges.txt"))
    elif kind == "added":
        with tempfile.TemporaryDirectory(prefix="rass-tok-added-") as d:
            for f in ("vocab.json", "merges.txt"):
                shutil.copy(clip / f, Path(d) / f)
            shutil.copy(OUT / "added" / "tokenizer_config.json", Path(d) / "tokenizer_config.json")
            tok = CLIPTokenizer.from_pretrained(d)
    elif kind == "quirks":
        tok = CLIPTokenizer(str(clip / "vocab.json"), str(OUT / "quirks" / "merges.txt"))
    else:
        raise ValueError(kind)
    assert (tok.fix_text is not None) == bool(ftfy_path), "ftfy availability is not what was asked"
    assert not hasattr(tok, "do_lower_case")
    return tok


def strip_pad(tok, padded):
    """The padded ids without their trailing run of pad ids (the test appends them back)."""
    assert len(padded) == 77
    n = len(padded)
    while n > 0 and padded[n - 1] == tok.pad_token_id:
        n -= 1
    return padded[:n]


def run(tok, text):
    return {
        "ids": tok(text, add_special_tokens=False)["input_ids"],
        "padded": strip_pad(tok, tok(text, padding="max_length", max_length=77, truncation=True)["input_ids"]),
    }


# ---------------------------------------------------------------------------
# The strings
# ---------------------------------------------------------------------------

HANDWRITTEN = [
    "", " ", "   ", "\t\n", "a", "A", "!", "a photo of a cat", "A Photo Of A CAT", "a  photo\tof\na   cat  ",
    "cat, dog, green grass", "cat,dog,green grass", " cat , dog ,  green grass ", "cat, dog, green grass,",
    ",cat,,dog,", "sky, tree, person, car, road, building, sidewalk, mountain, wall, floor, ceiling",
    "chest of drawers, pool table, kitchen island", "dog (small), cat [black], tree {tall}", "dog), cat",
    "hello!", "hello!world", "wow!!!", "! !! !!!", "!a!", "?!", "what?!", "...", "a...b", "--", "a-b-c", "e-mail",
    "it's", "It'S", "IT'S", "they're", "we've", "I'm", "you'll", "he'd", "don't", "can't", "won't", "'s", "'t",
    "''s", "'sa", "s's's", "rock'n'roll", "o'clock", "'", "''", "' '", "don’t", "can’t", "it‘s", "ʼs", "'ſ", "ſ",
    "0", "7", "12345", "3.14", "1,000,000", "2.5e-3", "50%", "$100", "#1", "@user", "x4", "f/2.8", "1080p", "16:9",
    "RGB-D", "3D", "4K", "h264", "abc123def", "½", "²³", "Ⅻ", "ⅻ", "٣٤٥", "١٢٣", "০১২", "①②",
    "café", "cafe\u0301", "CAFE\u0301", "naïve", "na\u0308ive", "résumé", "Ångström", "A\u030angstro\u0308m",
    "ÉCOLE", "STRAßE", "straße", "ẞ", "İstanbul", "istanbul", "IĞDIR", "ǅ", "ǆ", "Ǆ",
    "ΟΔΟΣ", "ΟΔΟΣ ΣΟΦΟΣ", "Σ", "ΑΣ", "ΑΣ.", "ΑΣ'Β", "Α.Σ", "ΣΑ", "ὈΔΥΣΣΕΎΣ", "Ω", "ΐ",
    "кошка", "КОШКА", "ёлка", "Ёлка", "猫", "猫が好き", "一只猫坐在窗边", "日本語のテキスト", "カタカナ", "ｶﾀｶﾅ",
    "고양이", "고양이가 있습니다", "\u1100\u1161\u11a8", "\u1100\u1161", "각\u11a8", "ᄀ", "ㄱ", "한국어 텍스트",
    "قطة", "مرحبا بالعالم", "שלום", "बिल्ली", "ไทย", "ქართული", "አማርኛ",
    "🐱", "🐱 cat", "cat🐱dog", "👍🏽", "👩‍👩‍👧", "🇫🇷", "☀️", "❤", "😀😃😄", "🏳️‍🌈",
    "ﬁsh", "ﬂower", "Ｈｅｌｌｏ", "ＡＢＣ１２３", "&amp;", "&lt;b&gt;", "a &amp; b", "<b>bold</b>", "Â€œ", "Ã©",
    "<|startoftext|>", "<|endoftext|>", "<|startoftext|>hello<|endoftext|>", "a<|endoftext|>b",
    "<|ENDOFTEXT|>", "<|EndOfText|>", "<|endoftext|", "<|endoftext", "|endoftext|>", "<|ſtartoftext|>",
    "<|startoftext|><|startoftext|>", "x <|endoftext|> y", "<|endoftext|>!", "<|end!oftext|>", "<<|endoftext|>>",
    "<rass>", "a <rass> b", "a<rass>b", "cat <rass>, dog",
    "\x00", "a\x00b", "\x07bell", "tab\there", "new\nline", "cr\rlf\r\n", "\x0b\x0c", "\x1c\x1d\x1e\x1f",
    "\x85", "a\u00a0b", "a\u2028b", "a\u2029b", "a\u200bb", "a\u200db", "a\ufeffb", "\ufffd", "a\ufffdb",
    "a\u3000b", "a\u1680b", "a\u2003b", "\u0301", "\u0301a", "a\u0301\u0301", "\u0345", "a\u0345", "\U000e0041",
    "\ue000", "\U0010ffff", "\u0378", "a\u0300\u0316b", "a\u0316\u0300b", "ạ\u0302", "ḱ\u0323",
    "supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis" * 3,
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "a" * 300, "ab" * 200, "!" * 100, "cat " * 100, "cat, " * 80,
    "a photo of " + ", ".join(["cat", "dog", "grass", "sky", "tree", "car", "road", "wall", "floor", "bed"] * 10),
    "The quick brown fox jumps over the lazy dog. " * 6,
    "low quality, blurry, noisy, jpeg artifacts, downsampled, out of focus",
    "a high-resolution photo of a living room with a sofa, a coffee table, a rug and a painting",
    "Segmentation of degraded images needs restoration-aware features (RASS).",
]


def random_strings(rng, n):
    pools = [
        "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " ", "  \t\n",
        ".,;:!?'\"()[]{}-_/\\@#$%^&*+=<>|~`", ",", "!", "'s", "'t", "'re", "'ll", "'ve", "'m", "'d",
        "éèêëàâäôöûüçñßøåæœ", "ÉÈÊËÀÂÄÔÖÛÜÇÑØÅÆŒ", "\u0300\u0301\u0302\u0308\u0316\u0323\u0327\u0345",
        "ΑΒΓΔΣΩαβγδσςω", "АБВГДабвгд", "猫狗草天空一二三", "ひらがなカタカナ", "가각갂\u1100\u1161\u11a8",
        "🐱🐶🌿👍🏽\u200d\ufe0f", "\x00\x07\x1f\x85\u200b\ufffd\ufeff", "\u00a0\u2028\u3000",
        "½²Ⅻ٣①", "ﬁﬂＡＢ１", "İıſ", "<|startoftext|>", "<|endoftext|>", "<|", "|>", "<rass>",
    ]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 14)):
            pool = rng.choice(pools)
            if len(pool) > 3 and pool[0] not in "<'":
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
            else:
                parts.append(pool)
        out.append("".join(parts))
    return out


def tag_prompts(rng, n):
    words = ["cat", "dog", "green grass", "blue sky", "person", "tree", "car", "road", "building", "sidewalk",
             "chest of drawers", "pool table", "traffic light", "crt screen", "television receiver", "it's",
             "dog!", "cat (black)", "3 apples", "café", "猫", "ΟΔΟΣ", "🐱", "a-b", "x4", "sky."]
    out = []
    for _ in range(n):
        k = rng.randint(1, 30)
        sep = rng.choice([", ", ",", " , ", ",  "])
        out.append(sep.join(rng.choice(words) for _ in range(k)))
    return out


INVALID_UTF8 = [b"a\xffb", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82(", b"\xed\xa0\x80", b"\xf0\x9f\x90",
                b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\x80\x80cat", b"dog\xf0\x9f\x90\xb1\xb1"]


def decode_cases(tok, rng, n):
    """Random id sequences (split UTF-8 sequences included) and their decode()."""
    ids = list(tok.encoder.values()) + [0] * 20
    out = []
    for _ in range(n):
        seq = [rng.choice(ids) for _ in range(rng.randint(0, 12))]
        out.append({"ids": seq, "text": tok.decode(seq, clean_up_tokenization_spaces=False),
                    "skip": tok.decode(seq, skip_special_tokens=True, clean_up_tokenization_spaces=False)})
    return out


# ---------------------------------------------------------------------------
# 3. Unicode helpers
# ---------------------------------------------------------------------------

def unicode_cases(rng, n):
    pools = [
        [chr(c) for c in range(0x300, 0x370)], [chr(c) for c in range(0x1100, 0x1200)],
        [chr(c) for c in range(0xAC00, 0xAC80)], [chr(c) for c in range(0x370, 0x400)],
        list("aeiouAEIOUnNcCsSzZyY \t.'’:-"), [chr(c) for c in range(0xC0, 0x250)],
        [chr(c) for c in range(0x1E00, 0x1F00)], [chr(c) for c in range(0x1F00, 0x2000)],
        [chr(c) for c in range(0x0900, 0x0980)], [chr(c) for c in range(0x0B00, 0x0BF0)],
        [chr(c) for c in range(0x0F00, 0x0FD0)], [chr(c) for c in range(0x3040, 0x3100)],
        ["\u03a3", "\u03a3", "\u0345", "\u00ad", "\u0130", "\u2126", "\u212b", "\u0340", "\u0344",
         "\u0f73", "\u0f75", "\u0f81", "\u1e9e", "\u2160", "\u24b6", "\U0001d400", "\U00010400", "\u0587"],
        [chr(rng.randrange(0x10000)) for _ in range(200)] + [chr(rng.randrange(0x10000, 0x30000)) for _ in range(50)],
    ]
    out = []
    for _ in range(n):
        s = "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 16)))
        s = "".join(c for c in s if not 0xD800 <= ord(c) < 0xE000)
        out.append({"s": s, "nfc": unicodedata.normalize("NFC", s), "lower": s.lower()})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transformers-src", required=True)
    ap.add_argument("--transformers-commit", help="the commit of that checkout, recorded in the golden")
    ap.add_argument("--ftfy-src", help="folder holding the ftfy package (for the ftfy comparison)")
    args = ap.parse_args()

    encoder, merges = write_fixture_files()
    CLIPTokenizer, version, tmp = setup_reference(args.transformers_src)
    toks = {kind: make_tokenizer(CLIPTokenizer, kind) for kind in ("sd2", "sd1", "added", "quirks")}
    ftfy_tok = make_tokenizer(CLIPTokenizer, "sd2", args.ftfy_src) if args.ftfy_src else None
    sd2 = toks["sd2"]
    assert sd2.pad_token == "!" and sd2.pad_token_id == 0
    assert toks["sd1"].pad_token_id == encoder["<|endoftext|>"]

    rng = random.Random(20261123)
    strings = HANDWRITTEN + random_strings(rng, 260) + tag_prompts(rng, 40)
    cases = []
    ftfy_same = 0
    for text in strings:
        case = {"text": text}
        for kind, tok in toks.items():
            r = run(tok, text)
            if kind == "sd2":
                r["decoded"] = tok.decode(r["padded"], clean_up_tokenization_spaces=False)
                r["decoded_skip"] = tok.decode(r["padded"], skip_special_tokens=True,
                                               clean_up_tokenization_spaces=False)
                if text in HANDWRITTEN:
                    r["tokens"] = tok.tokenize(text)
            if kind == "quirks":
                del r["padded"]
            if kind != "sd2":  # stored only where they differ from sd2's
                r = {k: v for k, v in r.items() if v != case["sd2"][k]}
            case[kind] = r
        if ftfy_tok is not None:
            same = run(ftfy_tok, text)["padded"] == case["sd2"]["padded"]
            case["ftfy_same"] = same
            ftfy_same += same
        cases.append(case)
    invalid = []
    for raw in INVALID_UTF8:
        text = raw.decode("utf-8", errors="replace")
        invalid.append({"hex": raw.hex(), "decoded": text, "sd2": run(sd2, text)})
    golden = {
        "reference": {
            "transformers": version,
            "transformers_commit": args.transformers_commit,
            "ftfy_compared": bool(ftfy_tok),
        "pad_ids": {kind: tok.pad_token_id for kind, tok in toks.items()},
            "python": sys.version.split()[0],
            "regex": regex.__version__,
            "unicodedata": unicodedata.unidata_version,
        },
        "vocab_size": len(encoder),
        "merges": len(merges),
        "cases": cases,
        "invalid_utf8": invalid,
        "decode": decode_cases(sd2, rng, 150) + decode_cases(toks["added"], rng, 30),
    }
    for case in golden["decode"][150:]:
        case["kind"] = "added"
    with open(OUT / "tokenizer_golden.json", "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    with open(OUT / "unicode_golden.json", "w", encoding="utf-8") as f:
        json.dump(unicode_cases(rng, 1500), f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"transformers {version}: {len(cases)} strings, {len(encoder)} vocab entries, {len(merges)} merges"
          + (f"; ftfy path identical on {ftfy_same}/{len(cases)}" if ftfy_tok else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
