#!/usr/bin/env python3
"""Builds the held-out evaluation files of Recipes/eval/heldout.yaml from Milton's Areopagitica and
Paradise Regained (never in any training mix here), deterministically, standard library only:

- data/milton-lambada.jsonl: LAMBADA-style passages ({"text": ...}): 60-90 words of running text
  that end at the end of a sentence, the last word (a word of 3+ letters) to be predicted; unlike
  LAMBADA, passages are not filtered for words that need the wider context;
- data/milton-cbt.txt: CBT-style cloze in the original CBT format: 20 numbered context sentences,
  then line 21 "query<TAB>answer<TAB><TAB>c1|...|c10", where the query is the next sentence (at most
  30 words, so it fits a small model's context) with one
  word that occurs in the context replaced by XXXXX, and the 10 candidates are that word and 9
  other words of the context (same selection seed).

These are stand-ins built from public-domain text: they test the pipeline and compare models on
the same held-out text; they are not the LAMBADA or CBT datasets.

    python3 Recipes/eval/build_heldout.py     # rewrites Recipes/eval/data/milton-*.{jsonl,txt}
"""
import json, random, re
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = [HERE.parent / "corpora" / "milton" / f for f in ("areopagitica_gut.txt", "paradise_regained_gut.txt")]

def sentences(text):
    text = re.sub(r"\s+", " ", text.replace("\ufeff", "")).strip()
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text) if len(s.split()) >= 4]

def lambada(sents, rng, n=200):
    """Passages start at every sentence and do not overlap once taken."""
    out, i = [], 0
    while i < len(sents) and len(out) < n:
        words, j = [], i
        while j < len(sents) and len(words) < 40:
            words += sents[j].split(); j += 1
        last = re.sub(r"[^A-Za-z]", "", words[-1]) if words else ""
        if 40 <= len(words) <= 120 and len(last) >= 3:
            out.append({"text": " ".join(words[:-1] + [last])})
            i = j
        else:
            i += 1
    return out

def cbt(sents, rng, n=100):
    out, i = [], 0
    while i + 21 <= len(sents) and len(out) < n:
        context, query = sents[i:i + 20], sents[i + 20]
        ctx_words = sorted({w for s in context for w in re.findall(r"\b[a-z]{4,}\b", s)})
        targets = [w for w in re.findall(r"\b[a-z]{4,}\b", query) if w in ctx_words]
        # The completed query is scored whole, so it must fit a 128-token context with room to spare.
        if targets and len(ctx_words) >= 10 and len(query.split()) <= 30:
            answer = rng.choice(targets)
            others = rng.sample([w for w in ctx_words if w != answer], 9)
            cands = sorted(others + [answer])
            q = re.sub(r"\b%s\b" % answer, "XXXXX", query, count=1)
            lines = [f"{k + 1} {s}" for k, s in enumerate(context)] + [f"21 {q}\t{answer}\t\t{'|'.join(cands)}"]
            out.append("\n".join(lines))
            i += 21
        else:
            i += 1
    return out

def main():
    rng = random.Random(20261202)
    sents = [s for src in SOURCES for s in sentences(src.read_text(encoding="utf-8-sig"))]
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    lam = lambada(sents, rng)
    (data / "milton-lambada.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lam), encoding="utf-8")
    cl = cbt(sents, rng)
    (data / "milton-cbt.txt").write_text("\n\n".join(cl) + "\n", encoding="utf-8")
    print(f"{len(lam)} LAMBADA-style passages, {len(cl)} CBT-style questions from {', '.join(s.name for s in SOURCES)}")

if __name__ == "__main__":
    main()
