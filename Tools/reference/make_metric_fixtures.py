#!/usr/bin/env python3
"""Writes the reference fixture for Factorlab's text metrics (factorlab score, the one-shot tasks).

Run from the repository root (needs sacrebleu 2.x; the output is committed):

    pip install sacrebleu
    python3 Tools/reference/make_metric_fixtures.py

Output: Tests/FactorlabTasksTests/Fixtures/metrics-reference.json with
  tokenize13a: [[input, sacrebleu's 13a tokenization after rstrip()]] for lines with punctuation,
      numbers, dashes, HTML entities, <skipped>, non-ASCII letters, tabs and other whitespace;
  bleu: corpora (hypotheses, reference sets) with sacrebleu.corpus_bleu's score, precisions,
      brevity penalty and lengths under its defaults (13a, exp smoothing, no lowercasing).
"""
import json
import os

import sacrebleu
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "FactorlabTasksTests", "Fixtures", "metrics-reference.json")

LINES = [
    "The cat sat on the mat.",
    "Hello, world! It's 3.5 degrees -- or 1,000.25 in (other) units; see [a] & {b}.",
    "Pages 5-10 and 2-3-4, but not a-b. End.",
    "Quotes: &quot;ok&quot; &amp; &lt;tag&gt; <skipped> done",
    "Résumé «naïve» café — déjà vu… ¿qué?",
    "tabs\tand  double  spaces\u00a0and nbsp   trailing   \t ",
    "hyphen at line end-\nnext line\nthird",
    "a.,b ,. c..d 1.2.3 x,y 9,a a,9 .5 5.",
    "",
    "   ",
    "$100 @home #tag %50 ^caret _under ~tilde |pipe `tick` \\back /slash",
]

CORPORA = {
    "one reference": (
        ["The cat sat on the mat.", "It is raining today, isn't it?", "Numbers like 3.5 and 1,000 stay whole."],
        [["The cat is sitting on the mat.", "It rains today, doesn't it?", "Numbers like 3.5 and 1,000 stay whole."]],
    ),
    "two references": (
        ["the quick brown fox jumps over the lazy dog", "a b c d e f", "hello there general kenobi"],
        [["the quick brown fox jumped over the lazy dog", "a b c d", "hello there"],
         ["a fast brown fox leaps over a lazy dog", "a b c d e f g h", "general kenobi, hello there"]],
    ),
    "short hypotheses (brevity penalty, smoothing)": (
        ["cat", "the", "a dog"],
        [["the cat sat", "the mat was red", "a dog barked loudly at night"]],
    ),
    "no 4-gram matches": (
        ["one two three four five", "six seven eight"],
        [["one two three five four", "six seven nine"]],
    ),
    "no matches at all": (
        ["zzz yyy", "qqq"],
        [["aaa bbb", "ccc"]],
    ),
    "empty hypothesis": (
        ["", "the cat sat on the mat"],
        [["some reference text", "the cat sat on the mat"]],
    ),
    "French with punctuation": (
        ["Le chat est assis sur le tapis.", "C'est « vraiment » bien, n'est-ce pas ?"],
        [["Le chat s'est assis sur le tapis.", "C'est vraiment bien, n'est-ce pas ?"]],
    ),
}


def main():
    tok = Tokenizer13a()
    out = {"sacrebleu_version": sacrebleu.__version__,
           "tokenize13a": [[line, tok(line.rstrip())] for line in LINES],
           "bleu": []}
    for name, (hyps, refs) in CORPORA.items():
        b = sacrebleu.corpus_bleu(hyps, refs)
        out["bleu"].append({"name": name, "hypotheses": hyps, "references": refs, "score": b.score,
                            "precisions": b.precisions, "brevity_penalty": b.bp, "hypothesis_length": b.sys_len,
                            "reference_length": b.ref_len})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
