#!/usr/bin/env python3
"""Builds a GLUE-format single-sentence classification task from the shared public-domain corpora:
is a line by Shakespeare (label 0) or by Milton (label 1)?

    python3 Tools/glue_from_corpora/make_attribution_task.py [OUT_DIR] [--corpora DIR] [--seed N]

OUT_DIR defaults to Checkpoints/data/attribution/ (git-ignored; do not commit the output). Writes, in
the SST-2 layout so `GLUEDataset(task: .sst2, split:, file:)` reads them:

  train.tsv        header `sentence\\tlabel`, label 1 = Milton, 0 = Shakespeare
  dev.tsv          same
  test.tsv         header `index\\tsentence`, no labels (GLUE test layout)
  test_labels.tsv  header `index\\tlabel`, the hidden test labels, for scoring locally
  manifest.json    the works in each split, line counts before and after balancing, the seed

Rules:
  * Split by WORK: no work contributes lines to two splits. Milton's works are assigned by hand
    (there are few; see MILTON_SPLITS), Shakespeare's 42 by a seeded shuffle (5 dev, 5 test, rest train).
  * Milton files left out: poemata_gut.txt (William Cowper's English translation of the Latin poems)
    and comus_gut.txt (William Bell's 1891 school edition, mostly his notes; its text of Comus is in
    lallegro_il_penseroso_comus_and_lycidas_gut.txt). poetical_works_gut.txt overlaps L'Allegro /
    Comus / Lycidas, so it is in the same split (dev); its editor's preface, transcriber's notes and
    the prose-passage appendix (which quotes Areopagitica, a training work) are skipped.
  * Lines: UTF-8 BOM and CR removed, Gutenberg `_italics_` markers and leading indentation dots
    removed, verse numbers at the start and line numbers at the end removed, whitespace collapsed;
    kept when 30-200 characters long, mostly not upper case (headings), not a bracketed stage
    direction, not a transcriber's note. Plays start at their first "ACT I" line (skipping the
    list of persons).
  * Duplicates: exact duplicate lines are kept once per split, and a line already in train is removed
    from dev and test (dev before test).
  * Balance: each split keeps all lines of its smaller class and a seeded sample of the same number
    from the larger one; rows are then shuffled.
"""
import argparse
import json
import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

MILTON_SPLITS = {
    "train": ["paradise_lost_gut.txt", "areopagitica_gut.txt"],
    "dev": ["lallegro_il_penseroso_comus_and_lycidas_gut.txt", "poetical_works_gut.txt"],
    "test": ["paradise_regained_gut.txt"],
}
MILTON_EXCLUDED = {
    "poemata_gut.txt": "Cowper's translation of the Latin and Italian poems",
    "comus_gut.txt": "Bell's edition, mostly editorial notes; Comus itself is in the dev group",
}
# (file, start-after regex, [(skip-from regex, skip-until regex)])
SECTIONS = {
    "poetical_works_gut.txt": (r"^Transcriber's note: Facsimile of Title page of 1645",
                               [(r"^COLLECTION OF PASSAGES TRANSLATED", r"^\s*SAMSON\s*$")]),
}
SHAKESPEARE_DEV_WORKS = 5
SHAKESPEARE_TEST_WORKS = 5
MIN_CHARS, MAX_CHARS = 30, 200


def read_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def clean(line):
    line = line.replace("\t", " ").replace("_", "")
    line = re.sub(r"^[\s.]+", "", line)          # indentation, including L'Allegro's "............"
    line = re.sub(r"^\d+\s+", "", line)          # psalm verse numbers
    line = re.sub(r"\s+\d+\s*$", "", line)       # line numbers at the right margin
    return " ".join(line.split())


def keep(line):
    if not (MIN_CHARS <= len(line) <= MAX_CHARS):
        return False
    if "[" in line or "]" in line or "ranscriber" in line or "Gutenberg" in line:
        return False
    letters = [c for c in line if c.isalpha()]
    if len(letters) < 0.6 * len(line.replace(" ", "")):
        return False
    upper = sum(1 for c in letters if c.isupper())
    return upper <= 0.5 * len(letters)


def work_lines(path):
    lines = read_lines(path)
    name = os.path.basename(path)
    start, skips = SECTIONS.get(name, (None, []))
    if start is None and any(re.match(r"^\s*ACT I\b", l) for l in lines):
        start = r"^\s*ACT I\b"
    if start is not None:
        first = next(i for i, l in enumerate(lines) if re.match(start, l))
        lines = lines[first + 1:]
    out, skipping = [], None
    for raw in lines:
        if skipping is None:
            for begin, end in skips:
                if re.match(begin, raw):
                    skipping = end
                    break
        elif re.match(skipping, raw):
            skipping = None
        if skipping is not None:
            continue
        line = clean(raw)
        if keep(line):
            out.append(line)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", nargs="?", default=os.path.join(REPO, "Checkpoints", "data", "attribution"))
    parser.add_argument("--corpora", default="/work/shared/corpora")
    parser.add_argument("--seed", type=int, default=1608)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    shakespeare_dir = os.path.join(args.corpora, "shakespeare")
    milton_dir = os.path.join(args.corpora, "milton")
    plays = sorted(f for f in os.listdir(shakespeare_dir) if f.endswith(".txt"))
    order = plays[:]
    rng.shuffle(order)
    shakespeare_splits = {"dev": sorted(order[:SHAKESPEARE_DEV_WORKS]),
                          "test": sorted(order[SHAKESPEARE_DEV_WORKS:SHAKESPEARE_DEV_WORKS + SHAKESPEARE_TEST_WORKS]),
                          "train": sorted(order[SHAKESPEARE_DEV_WORKS + SHAKESPEARE_TEST_WORKS:])}
    listed = {f for files in MILTON_SPLITS.values() for f in files} | set(MILTON_EXCLUDED)
    unlisted = sorted(set(f for f in os.listdir(milton_dir) if f.endswith(".txt")) - listed)
    if unlisted:
        sys.exit(f"Milton files not assigned to a split: {unlisted}; add them to MILTON_SPLITS or MILTON_EXCLUDED")

    seen_earlier = set()
    manifest = {"seed": args.seed, "label": {"0": "Shakespeare", "1": "Milton"},
                "milton_excluded": MILTON_EXCLUDED, "splits": {}}
    rows_by_split = {}
    for split in ["train", "dev", "test"]:
        by_label = {}
        for label, directory, files in [(0, shakespeare_dir, shakespeare_splits[split]),
                                        (1, milton_dir, MILTON_SPLITS[split])]:
            lines, seen = [], set()
            for f in files:
                for line in work_lines(os.path.join(directory, f)):
                    if line not in seen and line not in seen_earlier:
                        seen.add(line)
                        lines.append(line)
            by_label[label] = lines
        for lines in by_label.values():
            seen_earlier.update(lines)
        n = min(len(by_label[0]), len(by_label[1]))
        rows = [(line, label) for label in (0, 1) for line in rng.sample(by_label[label], n)]
        rng.shuffle(rows)
        rows_by_split[split] = rows
        manifest["splits"][split] = {
            "shakespeare_works": shakespeare_splits[split], "milton_works": MILTON_SPLITS[split],
            "candidate_lines": {"shakespeare": len(by_label[0]), "milton": len(by_label[1])},
            "rows": len(rows), "rows_per_class": n}

    os.makedirs(args.out, exist_ok=True)
    def write(name, header, rows):
        with open(os.path.join(args.out, name), "w", encoding="utf-8", newline="\n") as f:
            f.write("\t".join(header) + "\n")
            for row in rows:
                f.write("\t".join(str(x) for x in row) + "\n")
    write("train.tsv", ["sentence", "label"], rows_by_split["train"])
    write("dev.tsv", ["sentence", "label"], rows_by_split["dev"])
    write("test.tsv", ["index", "sentence"], [(i, s) for i, (s, _) in enumerate(rows_by_split["test"])])
    write("test_labels.tsv", ["index", "label"], [(i, l) for i, (_, l) in enumerate(rows_by_split["test"])])
    with open(os.path.join(args.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    for split, info in manifest["splits"].items():
        print(f"{split:5s} {info['rows']:6d} rows ({info['rows_per_class']} per class; candidates "
              f"Shakespeare {info['candidate_lines']['shakespeare']}, Milton {info['candidate_lines']['milton']})")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
