#!/usr/bin/env python3
"""Writes the reference fixture for Factorlab's text metrics (factorlab score, the one-shot tasks).

Run from the repository root (needs sacrebleu 2.x and rouge-score; the output is committed):

    pip install sacrebleu rouge-score
    python3 Tools/reference/make_metric_fixtures.py

Output: Tests/FactorlabTasksTests/Fixtures/metrics-reference.json with
  tokenize13a: [[input, sacrebleu's 13a tokenization after rstrip()]] for lines with punctuation,
      numbers, dashes, HTML entities, <skipped>, non-ASCII letters, tabs and other whitespace;
  bleu: corpora (hypotheses, reference sets) with sacrebleu.corpus_bleu's score, precisions,
      brevity penalty and lengths under its defaults (13a, exp smoothing, no lowercasing);
  porter: [[word, stem]] from NLTK's PorterStemmer() (the NLTK_EXTENSIONS mode rouge-score uses) for
      crafted words that reach every rule and the distinct words of Milton's Comus (bundled corpus);
  rouge: [prediction, references, rouge1, rouge2, rougeL F-measures] from rouge_score's
      RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True).score_multi.
"""
import re
import json
import os

import sacrebleu
from nltk.stem.porter import PorterStemmer
from rouge_score import rouge_scorer
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


CRAFTED_WORDS = """caresses ponies ties caress cats feed agreed plastered bled motoring sing conflated troubled sized
hopping tanned falling hissing fizzed failing filing happy sky relational conditional rational valenci hesitanci digitizer
conformabli radicalli differentli vileli analogousli vietnamization predication operator feudalism decisiveness hopefulness
callousness formaliti sensitiviti sensibiliti triplicate formative formalize electriciti electrical hopeful goodness revival
allowance inference airliner gyroscopic adjustable defensible irritant replacement adjustment dependent adoption homologou
communism activate angulariti homologous effective bowdlerize probate rate cease controll roll dying lying tying news innings
inning outings cannings howe proceed exceed succeed skies dies spied tied cried generously logically analogies fully
carefulli yyyy toy enjoying played happiness flies agreement ied ies hoped hopping fizzing sizing""".split()

ROUGE_CASES = [
    ("The cat sat on the mat.", ["The cat is sitting on the mat."]),
    ("police killed the gunman", ["police kill the gunman", "the gunman was shot down by police"]),
    ("Running runners ran; generously, the generous generals generalized.", ["A runner runs generously, generally."]),
    ("", ["nothing predicted"]),
    ("only prediction", [""]),
    ("Numbers 1,000 and 3.5 and 2024-05-01 stay", ["numbers 1000 and 3 5 and 2024 05 01 stay"]),
    ("Résumé café naïve", ["resume cafe naive"]),
    ("a b c a b c a b", ["c b a c b a"]),
    ("The quick brown fox jumps over the lazy dog near the riverbank today.",
     ["A quick brown fox jumped over a lazy dog.", "The fox, quick and brown, jumps over the dog by the river."]),
]


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
    stemmer = PorterStemmer()
    comus = open(os.path.join(os.path.dirname(__file__), "..", "..", "Recipes", "corpora", "milton", "comus_gut.txt"),
                 encoding="utf-8").read().lower()
    words = list(dict.fromkeys(CRAFTED_WORDS + [w for w in re.split(r"[^a-z0-9]+", comus) if len(w) > 3]))
    out["porter"] = [[w, stemmer.stem(w)] for w in words]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    out["rouge"] = []
    for prediction, refs in ROUGE_CASES:
        s = scorer.score_multi(refs, prediction)
        out["rouge"].append([prediction, refs, s["rouge1"].fmeasure, s["rouge2"].fmeasure, s["rougeL"].fmeasure])
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
