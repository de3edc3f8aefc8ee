#!/usr/bin/env python3
"""Golden values for tests/text/test_wordnet.cpp: the REFERENCE is NLTK's WordNet
reader (nltk.corpus.reader.wordnet.WordNetCorpusReader, nltk 3.10.4) reading the
same Debian wordnet-base files (WordNet 3.0) the C++ code reads.

NLTK's reader wants a `lexnames` file, which Debian's wordnet-base lacks; it is
only used for lexname(), never for similarity, so a temporary copy of the data
folder gets the standard 45 names. NLTK data cannot be downloaded here; only the
database files are read.

Writes tests/fixtures/text/wordnet_golden.tsv, tab-separated lines:
  morphy  WORD    FORM,FORM,...          nltk _morphy(word, 'n')
  synsets WORD    NAME NAME ...          nltk synsets(word, 'n')
  depth   NAME    MIN MAX                min_depth(), max_depth()
  wup     NAME_A  NAME_B  VALUE          wup_similarity(a, b)
  sim     N  TAG  CLASS  VALUE           the tag/class similarity of rass (wordnet.hpp):
                                         1.0 for equal normalised spellings, else the max
                                         of nltk wup over the first N phrase synsets of
                                         each (N = 0: all); -1 if none
  map     N  TAG  CLASS  VALUE           the best ADE20K (mmseg) class for TAG by `sim`
                                         (first maximum in class order), "-" when none
Values are repr() of Python floats (17 significant digits).

Usage: /tmp/loravenv/bin/python tests/text/make_wordnet_golden.py [--wordnet /usr/share/wordnet]
"""
import argparse
import os
import re
import shutil
import tempfile

import nltk
from nltk.corpus.reader.wordnet import WordNetCorpusReader

LEXNAMES = """adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute
noun.body noun.cognition noun.communication noun.event noun.feeling noun.food noun.group
noun.location noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession
noun.process noun.quantity noun.relation noun.shape noun.state noun.substance noun.time
verb.body verb.change verb.cognition verb.communication verb.competition verb.consumption
verb.contact verb.creation verb.emotion verb.motion verb.perception verb.possession
verb.social verb.stative verb.weather adj.ppl""".split()

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def ade20k_classes():
    """mmseg's 150 ADE20K names, read from the C++ source so both sides use one list."""
    src = open(os.path.join(ROOT, "lib/rass/metrics/class_names.cpp")).read()
    block = src[src.index("kAde20k = {"):]
    block = block[:block.index("};")]
    names = re.findall(r'"([^"]*)"', block)
    assert len(names) == 150, len(names)
    return names


# Seed 000 Table 8's RAM tags, then tags RAM prints often (plurals, collocations,
# exception forms, words WordNet lacks as nouns).
TABLE8 = ["lake", "blanket", "woman", "sit", "stair", "home", "entrance", "doorway", "harbor", "pond"]
TAGS = TABLE8 + [
    "people", "men", "women", "children", "dogs", "buses", "boxes", "glasses", "leaves", "knives",
    "city", "street", "church", "spire", "bed", "couch", "traffic light", "wooden bench", "stop sign",
    "palm tree", "living room", "sky", "cloud", "mountain", "car", "vehicle", "ocean", "beach", "grass",
    "lamp post", "t-shirt", "kitchen", "window", "red", "running", "xyzzy", "Cat", "mouse", "laptop",
    "boardwalk", "skyscrapers", "stairs", "dock", "bathroom",
]
SIM_TAGS = TABLE8 + ["people", "traffic light", "wooden bench", "church", "xyzzy", "buses", "couch"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wordnet", default="/usr/share/wordnet")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/fixtures/text/wordnet_golden.tsv"))
    args = ap.parse_args()

    tmp = tempfile.mkdtemp()
    try:
        for f in os.listdir(args.wordnet):
            shutil.copy(os.path.join(args.wordnet, f), os.path.join(tmp, f))
        if not os.path.exists(os.path.join(tmp, "lexnames")):
            with open(os.path.join(tmp, "lexnames"), "w") as fp:
                for i, n in enumerate(LEXNAMES):
                    fp.write("%02d\t%s\t%d\n" % (i, n, 1 if n.startswith("adj") else 2))
        nltk.data.path.insert(0, tmp)  # nltk 3.10 reads corpora only under its data paths
        # map_wn maps other WordNet versions to the bundled 'wordnet' corpus for the
        # multilingual (OMW) functions, which cannot be downloaded here and which
        # similarity never uses.
        WordNetCorpusReader.map_wn = lambda self, version="wordnet": None
        wn = WordNetCorpusReader(tmp, None)
        write(wn, args.out)
    finally:
        shutil.rmtree(tmp)


def normalize(s):
    return " ".join(s.replace("_", " ").split()).lower()


def phrase_synsets(wn, phrase):
    norm = normalize(phrase)
    if not norm:
        return []
    ids = wn.synsets(norm.replace(" ", "_"), "n")
    if not ids and " " in norm:
        ids = wn.synsets(norm.split(" ")[-1], "n")
    return ids


def sim(wn, tag, cls, senses):
    t, c = normalize(tag), normalize(cls)
    if t and t == c:
        return 1.0
    best = -1.0
    n = senses if senses > 0 else None
    for a in phrase_synsets(wn, t)[:n]:
        for b in phrase_synsets(wn, c)[:n]:
            v = a.wup_similarity(b)
            best = max(best, v)
    return best


def write(wn, out):
    classes = ade20k_classes()
    lines = []
    words = sorted(set(w for t in TAGS + classes for w in normalize(t).split(" ")))
    for w in words + ["traffic_light", "stop_sign", "palm_tree", "living_room", "oxen", "geese", "axes"]:
        lines.append("morphy\t%s\t%s" % (w, ",".join(wn._morphy(w, "n"))))
        lines.append("synsets\t%s\t%s" % (w, " ".join(s.name() for s in wn.synsets(w, "n"))))
    seen = set()
    synsets = []
    for t in TAGS[:30]:
        for s in phrase_synsets(wn, t)[:3]:
            if s.name() not in seen:
                seen.add(s.name())
                synsets.append(s)
    for s in synsets:
        lines.append("depth\t%s\t%d\t%d" % (s.name(), s.min_depth(), s.max_depth()))
    for a in synsets:
        for b in synsets[::3]:
            lines.append("wup\t%s\t%s\t%r" % (a.name(), b.name(), a.wup_similarity(b)))
    for senses in (0, 2):
        for t in SIM_TAGS:
            for c in classes:
                lines.append("sim\t%d\t%s\t%s\t%r" % (senses, t, c, sim(wn, t, c, senses)))
        for t in TAGS:
            scores = [sim(wn, t, c, senses) for c in classes]
            best = max(range(len(classes)), key=lambda i: (scores[i], -i))
            if scores[best] < 0:
                lines.append("map\t%d\t%s\t-\t-1.0" % (senses, t))
            else:
                lines.append("map\t%d\t%s\t%s\t%r" % (senses, t, classes[best], scores[best]))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as fp:
        fp.write("\n".join(lines) + "\n")
    print("wrote %s (%d lines)" % (out, len(lines)))


if __name__ == "__main__":
    main()
