#!/usr/bin/env python3
"""Reference fixtures for FactorlabTokenizer (GPT-2 byte-level BPE), made with Hugging Face `tokenizers`.

Run from the repository root (needs Python 3 with `tokenizers` and `transformers`; tested with
tokenizers 0.23.3 and transformers 5.24.0):

    python3 Tools/reference/make_tokenizer_fixtures.py [--corpora /work/shared/corpora]

It writes into Tests/FactorlabTokenizerTests/Fixtures/:

  training_texts.json  the documents the reference vocabulary is trained on: excerpts of three
                       Shakespeare works and three Milton files (two with CRLF line ends, one with a
                       UTF-8 BOM, kept as they are). The Swift tests train on the same texts and must produce
                       the same merges.
  vocab.json           a 2,000-token GPT-2 style vocabulary trained by `tokenizers.trainers.BpeTrainer`
  merges.txt           (ByteLevel pre-tokenizer, add_prefix_space=False, the GPT-2 regex, all 256 byte
                       tokens, `<|endoftext|>` as special token); saved with `model.save`, so merges.txt
                       starts with a `#version: 0.2` line.
  encode_cases.json    texts and the ids Hugging Face produces for them with these two files:
                       `ids_special`: `<|endoftext|>` registered as a special token (GPT2TokenizerFast
                       behaviour, the equivalent of allowSpecial: true); `ids_plain`: the same BPE model
                       without any added token, so `<|endoftext|>` is ordinary text (allowSpecial: false).
  pretokenize_cases.json  strings (hand-written and seeded random ones drawn from letters, digits,
                       punctuation, apostrophes and Unicode whitespace) with the pieces the ByteLevel
                       pre-tokenizer (Oniguruma running the GPT-2 regex) splits them into.

The script checks that GPT2TokenizerFast loaded from vocab.json + merges.txt gives the same ids as
the `tokenizers` pipeline before it writes anything.
"""
import argparse
import json
import os
import random
import sys
import tempfile

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FIXTURES = os.path.join(ROOT, "Tests", "FactorlabTokenizerTests", "Fixtures")
VOCAB_SIZE = 2000
EOT = "<|endoftext|>"

# (folder, file, number of characters kept from the start)
TRAINING_FILES = [
    ("shakespeare", "hamlet_gut.txt", 60_000),
    ("shakespeare", "sonnets_gut.txt", 40_000),
    ("shakespeare", "tempest_gut.txt", 40_000),
    ("milton", "areopagitica_gut.txt", 20_000),   # CRLF line ends
    ("milton", "poemata_gut.txt", 20_000),        # CRLF line ends and a UTF-8 byte-order mark
    ("milton", "paradise_lost_gut.txt", 20_000),  # spaces before line ends
]

ENCODE_CASES = [
    "Hello world",
    "It's a truth, isn't it? They're here, we've seen 'em; I'm sure he'll say she'd go.",
    "IT'S LOUD. THEY'RE HERE, WE'VE SEEN; I'M SURE HE'LL SAY SHE'D GO. DON'T.",
    "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer",
    "Numbers: 0 7 42 1999 3.14159 -12,345.67 1e10 and 2024-05-17.",
    "Punctuation runs!!! ... ?!?! --- *** (((nested))) [a] {b} <c> ''quoted'' \"double\"",
    "multiple   spaces    here     and a tab\there\t\tand two tabs",
    "line one\nline two\r\nline three (CRLF)\r\n\r\n\n\nafter blank lines",
    "trailing whitespace   ",
    "trailing newlines\n\n",
    "   leading spaces",
    "\u00a0non-breaking\u00a0space and\u2003em space and\u3000ideographic space",
    "Caf\u00e9 na\u00efve fa\u00e7ade \u00e9l\u00e8ve \u00c5ngstr\u00f6m M\u00fcller se\u00f1or",
    "\u0395\u03bd \u03b1\u03c1\u03c7\u1fc7 \u1f26\u03bd \u1f41 \u03bb\u03cc\u03b3\u03bf\u03c2 (Greek)",
    "\u4e2d\u6587\u5b57\u7b26\u6d4b\u8bd5\uff0c\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3002\ud55c\uad6d\uc5b4",
    "Emoji: \U0001F600 \U0001F44D\U0001F3FD \U0001F468\u200d\U0001F469\u200d\U0001F467 \u2764\ufe0f!",
    "first document" + EOT + "second document",
    "end of text " + EOT + " starts again\n" + EOT + "\nand " + EOT + EOT + " twice",
    "a partial <|endoftext| token and <|endoftext|>> extra",
    "combining: e\u0301 a\u0308 and decomposed n\u0303",
    "mixed123abc 123abc abc123 '123 'abc ' s's",
    "   ",
    "\n",
    "",
    # Pre-tokens longer than 64 bytes take the encoder's heap path and are not cached.
    "thouartthekingandthequeenthatshallbe" * 6 + " " + "-=" * 50 + " " + "1234567890" * 8,
]


def read_text(path):
    with open(path, "r", encoding="utf-8", newline="") as f:  # keep CRLF and the BOM as they are
        return f.read()


def build_training_texts(corpora):
    texts = []
    for folder, name, n in TRAINING_FILES:
        texts.append(read_text(os.path.join(corpora, folder, name))[:n])
    return texts


def train_reference(texts):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def load_pipeline(vocab, merges, with_special):
    tok = Tokenizer(models.BPE.from_file(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    if with_special:
        tok.add_special_tokens([EOT])
    return tok


def random_pretokenize_strings(n, seed=1234):
    rng = random.Random(seed)
    pools = [
        "abcdefgXYZ",            # ASCII letters
        "\u00e9\u00df\u03b1\u0416\u4e2d\u3042",  # non-ASCII letters
        "0123456789\u0663\u00bd\u2163",  # ASCII digits, Arabic-Indic digit, vulgar fraction, Roman numeral
        ".,;:!?-'\"()",          # punctuation incl. apostrophe
        "'",                    # extra apostrophes to hit contractions
        "stmdrvel",              # letters that follow apostrophes in contractions
        "\U0001F600\u2764\u0301", # emoji, symbol, combining mark (category Mn: neither L nor N)
        " ",
        "  ",
        "\t\n\r\u00a0\u2003\u3000\u000b\u000c\u0085\u2028",  # other Unicode whitespace
    ]
    out = []
    for _ in range(n):
        length = rng.randint(1, 24)
        s = "".join(rng.choice(rng.choice(pools)) for _ in range(length))
        out.append(s)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", default="/work/shared/corpora")
    args = ap.parse_args()

    os.makedirs(FIXTURES, exist_ok=True)
    texts = build_training_texts(args.corpora)
    ref = train_reference(texts)
    ref.model.save(FIXTURES)  # vocab.json, merges.txt
    vocab = os.path.join(FIXTURES, "vocab.json")
    merges = os.path.join(FIXTURES, "merges.txt")

    with_special = load_pipeline(vocab, merges, True)
    plain = load_pipeline(vocab, merges, False)

    from transformers import GPT2TokenizerFast
    fast = GPT2TokenizerFast.from_pretrained(FIXTURES)  # reads vocab.json + merges.txt from the folder

    sample = "\n".join(c for c in ENCODE_CASES if c)
    cases = []
    for text in ENCODE_CASES + [sample]:
        ids_special = with_special.encode(text).ids
        ids_plain = plain.encode(text).ids
        fast_ids = fast(text)["input_ids"]
        if fast_ids != ids_special:
            sys.exit(f"GPT2TokenizerFast disagrees with tokenizers on {text!r}: {fast_ids} vs {ids_special}")
        if with_special.decode(ids_special, skip_special_tokens=False) != text:
            sys.exit(f"reference does not round-trip {text!r}")
        cases.append({"text": text, "ids_special": ids_special, "ids_plain": ids_plain})

    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hand = [
        "Hello world", "I'm here", "  two", "a  b", "a\t\tb", "end  ", "x\n\ny", " 's", "'sup",
        "they'RE", "12abc", "don't!!!", "\u00a0x", "a \u00a0b", "\u3000\u4e2d", " \U0001F600\U0001F600",
    ]
    pre_cases = []
    for s in hand + random_pretokenize_strings(300):
        pieces = [s[a:b] for _, (a, b) in pre.pre_tokenize_str(s)]
        if "".join(pieces) != s:
            sys.exit(f"pre-tokenizer pieces do not cover {s!r}")
        pre_cases.append({"text": s, "pieces": pieces})
    try:  # OpenAI's original GPT-2 encoder used the `regex` module; check that it agrees, if installed.
        import regex
        gpt2_pattern = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
        for case in pre_cases:
            if gpt2_pattern.findall(case["text"]) != case["pieces"]:
                sys.exit(f"regex module and tokenizers disagree on {case['text']!r}")
        print(f"pre-tokenizer: `regex` module agrees with tokenizers on {len(pre_cases)} strings")
    except ImportError:
        print("pre-tokenizer: `regex` module not installed, skipped the cross-check")

    with open(os.path.join(FIXTURES, "training_texts.json"), "w", encoding="utf-8") as f:
        json.dump({"vocabulary_size": VOCAB_SIZE, "special_tokens": [EOT], "texts": texts}, f, ensure_ascii=False)
    with open(os.path.join(FIXTURES, "encode_cases.json"), "w", encoding="utf-8") as f:
        json.dump({"cases": cases}, f, ensure_ascii=False, indent=0)
    with open(os.path.join(FIXTURES, "pretokenize_cases.json"), "w", encoding="utf-8") as f:
        json.dump({"cases": pre_cases}, f, ensure_ascii=False, indent=0)

    for name in sorted(os.listdir(FIXTURES)):
        print(f"{name}: {os.path.getsize(os.path.join(FIXTURES, name))} bytes")


if __name__ == "__main__":
    main()
