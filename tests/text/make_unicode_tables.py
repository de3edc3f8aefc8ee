#!/usr/bin/env python3
"""Generates lib/rass/text/unicode_tables.cpp: the Unicode data the CLIP tokenizer needs.

Every table is read off the very functions the reference tokenizer calls, so the
C++ code reproduces them code point for code point:

  clip class   what `regex` (the PyPI module, imported as `re` by transformers'
               tokenization_clip.py) matches, with re.IGNORECASE as CLIP compiles
               its pattern, for [\\p{L}] (1), [\\p{N}] (2), [^\\s\\p{L}\\p{N}] (3), or none (0:
               whitespace, and U+0345 whose case partner is a letter);
  clean class  BasicTokenizer._clean_text: 1 = dropped (NUL, U+FFFD, category C* but
               tab/LF/CR), 2 = becomes " " (space, tab, LF, CR, category Zs), 0 = kept;
  py space     str.isspace() (str.split() / str.strip());
  lower        str.lower() for single code points (all 1:1 but U+0130, handled in
               code), as runs (first, last, stride, delta);
  sigma        the Final_Sigma context of str.lower() (CPython's handle_capital_sigma):
               1 = cased and not case-ignorable, 2 = case-ignorable, 0 = neither,
               measured by lowering probe strings around U+03A3;
  ccc          unicodedata.combining();
  (checked)    the literal letters of the pattern ('s, <|endoftext|>, ...) match
               under IGNORECASE only themselves in both cases, and U+017F for "s";
  decomp       canonical decompositions (one level, as unicodedata.decomposition
               gives them) with a flag: the pair is a primary composite, i.e.
               NFC(a + b) == cp (this folds in the composition exclusions).

Run with Debian's python3 and python3-regex from the repository root:

    /usr/bin/python3 tests/text/make_unicode_tables.py > lib/rass/text/unicode_tables.cpp
"""
import sys
import unicodedata

import regex

MAX = 0x110000


def code_points():
    for c in range(MAX):
        if 0xD800 <= c < 0xE000:  # surrogates: never decoded from UTF-8
            continue
        yield c


def runs(classify):
    """[(start, class)] where the class changes; surrogates take the class before them."""
    out = []
    prev = None
    for c in range(MAX):
        k = prev if 0xD800 <= c < 0xE000 else classify(c)
        if k != prev:
            out.append((c, k))
            prev = k
    return out


def clip_class():
    L = regex.compile(r"[\p{L}]", regex.IGNORECASE)
    N = regex.compile(r"[\p{N}]", regex.IGNORECASE)
    P = regex.compile(r"[^\s\p{L}\p{N}]", regex.IGNORECASE)

    def f(c):
        ch = chr(c)
        hits = [bool(L.match(ch)), bool(N.match(ch)), bool(P.match(ch))]
        assert sum(hits) <= 1, hex(c)
        return hits.index(True) + 1 if any(hits) else 0

    return runs(f)


def check_ignorecase_literals():
    """clip_tokenizer.cpp matches the pattern's literal letters as ASCII of either
    case, plus U+017F LONG S for "s": make sure that is all IGNORECASE matches."""
    for letter in sorted(set("startoftextendoftextsrevlmd")):
        hits = {c for c in code_points() if regex.fullmatch(letter, chr(c), regex.IGNORECASE)}
        want = {ord(letter), ord(letter.upper())} | ({0x17F} if letter == "s" else set())
        assert hits == want, (letter, sorted(map(hex, hits)))


def clean_class():
    def f(c):
        ch = chr(c)
        if ch in "\t\n\r":
            return 2
        if c == 0 or c == 0xFFFD or unicodedata.category(ch).startswith("C"):
            return 1
        if ch == " " or unicodedata.category(ch) == "Zs":
            return 2
        return 0

    return runs(f)


def lower_rules():
    maps = []
    for c in code_points():
        lo = chr(c).lower()
        if len(lo) != 1:
            assert c == 0x130 and lo == "i\u0307", hex(c)
            continue
        if ord(lo) != c:
            maps.append((c, ord(lo) - c))
    rules = []  # [first, last, stride, delta]
    for c, d in maps:
        if rules:
            r = rules[-1]
            if r[3] == d and r[0] == r[1] and c - r[1] <= 2:
                r[1], r[2] = c, c - r[0]
                continue
            if r[3] == d and r[0] != r[1] and c - r[1] == r[2]:
                r[1] = c
                continue
        rules.append([c, c, 1, d])
    for c in code_points():  # self-check
        lo = chr(c).lower()
        if len(lo) != 1:
            continue
        m = c
        for first, last, stride, delta in rules:
            if first <= c <= last and (c - first) % stride == 0:
                m = c + delta
                break
        assert m == ord(lo), hex(c)
    return rules


def sigma_class():
    def final(s, i):
        return s.lower()[i] == "\u03c2"

    def f(c):
        ch = chr(c)
        if ch == "\u03a3":
            # Σ itself is cased and not case-ignorable.
            return 1
        f1 = final("A" + ch + "\u03a3", -1)  # ignorable, or cased
        f2 = final("A\u03a3" + ch, 1)  # ignorable, or not cased
        if f1 and f2:
            return 2
        return 1 if f1 else 0

    return runs(f)


def ccc_runs():
    return runs(lambda c: unicodedata.combining(chr(c)))


def decompositions():
    out = []
    for c in code_points():
        d = unicodedata.decomposition(chr(c))
        if not d or d.startswith("<"):
            continue
        parts = [int(x, 16) for x in d.split()]
        assert 1 <= len(parts) <= 2, hex(c)
        composes = len(parts) == 2 and unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == chr(c)
        out.append((c, parts[0], parts[1] if len(parts) == 2 else 0, int(composes)))
    return out


def emit_runs(name, rs, shift, comment):
    print(f"// {comment}")
    print(f"extern const uint32_t {name}[] = {{")
    items = [f"0x{(start << shift) | k:x}" for start, k in rs]
    for i in range(0, len(items), 8):
        print("    " + ", ".join(items[i:i + 8]) + ",")
    print("};")
    print(f"extern const size_t {name}_size = {len(rs)};\n")


def main():
    check_ignorecase_literals()
    print("// Generated by tests/text/make_unicode_tables.py: do not edit.")
    print(f"// Python {sys.version.split()[0]} unicodedata {unicodedata.unidata_version}, "
          f"regex {regex.__version__} (Unicode tables of the regex module).")
    print('#include "rass/text/unicode_tables.hpp"\n')
    print("namespace rass::text::tables {\n")
    emit_runs("kClipClassRuns", clip_class(), 2,
              "(start << 2) | class; class: 0 none, 1 [\\p{L}], 2 [\\p{N}], 3 [^\\s\\p{L}\\p{N}] (IGNORECASE)")
    emit_runs("kCleanRuns", clean_class(), 2, "(start << 2) | class; class: 0 keep, 1 drop, 2 space")
    emit_runs("kSigmaRuns", sigma_class(), 2, "(start << 2) | class; class: 0 other, 1 cased, 2 case-ignorable")
    emit_runs("kCccRuns", ccc_runs(), 8, "(start << 8) | canonical combining class")
    spaces = [c for c in code_points() if chr(c).isspace()]
    print("// str.isspace()")
    print("extern const uint32_t kPySpace[] = {" + ", ".join(f"0x{c:x}" for c in spaces) + "};")
    print(f"extern const size_t kPySpace_size = {len(spaces)};\n")
    rules = lower_rules()
    print("// str.lower() of one code point: {first, last, stride, delta}")
    print("extern const LowerRule kLowerRules[] = {")
    for i in range(0, len(rules), 4):
        print("    " + " ".join(f"{{0x{a:x}, 0x{b:x}, {s}, {d}}}," for a, b, s, d in rules[i:i + 4]))
    print("};")
    print(f"extern const size_t kLowerRules_size = {len(rules)};\n")
    dec = decompositions()
    print("// canonical decompositions {cp, first, second (0: singleton), second composes back}")
    print("extern const Decomposition kDecompositions[] = {")
    for i in range(0, len(dec), 4):
        print("    " + " ".join(f"{{0x{c:x}, 0x{a:x}, 0x{b:x}, {k}}}," for c, a, b, k in dec[i:i + 4]))
    print("};")
    print(f"extern const size_t kDecompositions_size = {len(dec)};\n")
    print("}  // namespace rass::text::tables")


if __name__ == "__main__":
    main()
