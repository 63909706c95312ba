#!/usr/bin/env python3
"""Writes FactorlabTasks' test fixtures and the reference values its tests compare against.

Run from the repository root (needs numpy, scipy and scikit-learn; CI does not, the outputs are committed):

    python3 Tools/reference/make_task_metric_fixtures.py

Outputs, in Tests/FactorlabTasksTests/Fixtures/:

  glue/<Task>/<split>.tsv  A few rows of each of the nine GLUE tasks in the official TSV layouts
                           (header-less CoLA train/dev, MRPC's BOM, CRLF in CoLA and RTE dev, a `"`
                           inside fields, a QQP question broken over two lines = 2 malformed rows,
                           MNLI matched/mismatched dev and test).
  glue_bad/<Task>/...      Files with exactly one problem each; the Swift tests check the messages.
  coqa_dev.json            Three CoQA stories (race, gutenberg: in-domain; reddit: out-of-domain)
                           in the official dev-set format, with additional_answers.
  task_metrics.json        Reference values:
    "glue_loaded":  every fixture file read the way GLUE's reference loaders read it
                    (csv.reader, delimiter tab, quoting=csv.QUOTE_NONE, utf-8-sig, universal
                    newlines; QQP rows with the wrong field count skipped), as label indices.
    "glue_metrics": MCC / F1 / accuracy from scikit-learn and Pearson / Spearman from scipy on
                    fixed prediction lists (ties included), and scipy's average ranks.
    "coqa":         normalize_answer, F1, EM, leave-one-out turn scores and the full
                    model_performance report, from the port of the official evaluate-v1.0.py
                    below (CoQAEvaluator), on coqa_dev.json and fixed predictions.

The Swift tests compare floats with tolerance 1e-12 (the same formulas in a different summation
order differ by a few ulps) and the official one-decimal CoQA numbers exactly.
"""
import collections
import csv
import json
import os
import re
import string
import sys

import numpy as np
import scipy.stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(REPO, "Tests", "FactorlabTasksTests", "Fixtures")
GLUE_ROOT = os.path.join(FIXTURES, "glue")
GLUE_BAD = os.path.join(FIXTURES, "glue_bad")


# ---------------------------------------------------------------- GLUE fixture files

def write_tsv(base, rel, rows, crlf=False, bom=False):
    path = os.path.join(base, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    nl = "\r\n" if crlf else "\n"
    data = (nl.join("\t".join(r) for r in rows) + nl).encode("utf-8")
    if bom:
        data = b"\xef\xbb\xbf" + data
    with open(path, "wb") as f:
        f.write(data)


def write_glue_fixtures():
    w = write_tsv

    # CoLA: train/dev have no header (source, label, original mark, sentence); test has `index sentence`.
    w(GLUE_ROOT, "CoLA/train.tsv", [
        ["gj04", "1", "", "Our friends won't buy this analysis, let alone the next one we propose."],
        ["gj04", "1", "", "One more pseudo generalization and I'm giving up."],
        ["gj04", "0", "*", "They drank the pub."],
        ["cj99", "0", "*", "The more you would want, the less you would eat."],
    ])
    w(GLUE_ROOT, "CoLA/dev.tsv", [
        ["gj04", "1", "", "The sailors rode the breeze clear of the rocks."],
        ["gj04", "0", "*", "The sailors rode the breeze clear from the rocks."],
        ["bc01", "1", "", "Bill whistled past the house."],
    ], crlf=True)
    w(GLUE_ROOT, "CoLA/test.tsv", [["index", "sentence"], ["0", "Bill whistled past the house."],
                              ["1", "The car honked its way down the road."]])

    # SST-2: a `"` inside a sentence; trailing spaces as in the real files.
    w(GLUE_ROOT, "SST-2/train.tsv", [["sentence", "label"],
        ["hide new secretions from the parental units ", "0"],
        ["contains no wit , only labored gags ", "0"],
        ["that loves its characters and communicates something rather beautiful about human nature ", "1"],
        ["the film 's \" twist \" is that there is none ", "0"]])
    w(GLUE_ROOT, "SST-2/dev.tsv", [["sentence", "label"],
        ["it 's a charming and often affecting journey . ", "1"],
        ["unflinchingly bleak and desperate ", "0"]])
    w(GLUE_ROOT, "SST-2/test.tsv", [["index", "sentence"],
        ["0", "uneasy mishmash of styles and genres ."],
        ["1", "director rob marshall went out gunning to make a great one ."],
        ["2", "a \"quirky\" comedy ."]])

    # MRPC: the real train.tsv starts with a UTF-8 BOM.
    mrpc_head = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
    w(GLUE_ROOT, "MRPC/train.tsv", [mrpc_head,
        ["1", "702876", "702977", "Amrozi accused his brother , whom he called \" the witness \" , of deliberately distorting his evidence .",
         "Referring to him as only \" the witness \" , Amrozi accused his brother of deliberately distorting his evidence ."],
        ["0", "2108705", "2108831", "Yucaipa owned Dominick 's before selling the chain to Safeway in 1998 for $ 2.5 billion .",
         "Yucaipa bought Dominick 's in 1995 for $ 693 million and sold it to Safeway for $ 1.8 billion in 1998 ."],
        ["1", "1330381", "1330521", "They had published an advertisement on the Internet on June 10 , offering the cargo for sale , he added .",
         "On June 10 , the ship 's owners had published an advertisement on the Internet , offering the explosives for sale ."]], bom=True)
    w(GLUE_ROOT, "MRPC/dev.tsv", [mrpc_head,
        ["1", "1355540", "1355592", "He said the foodservice pie business doesn 't fit the company 's long-term growth strategy .",
         "\" The foodservice pie business does not fit our long-term growth strategy ."],
        ["0", "2029631", "2029565", "Magnarelli said Racicot hated the Iraqi regime and looked forward to using his long years of training in the war .",
         "His wife said he was \" 100 percent behind George Bush \" and looked forward to using his years of training in the war ."]])
    w(GLUE_ROOT, "MRPC/test.tsv", [["index", "#1 ID", "#2 ID", "#1 String", "#2 String"],
        ["0", "1089874", "1089925", "PCCW 's chief operating officer , Mike Butcher , and Alex Arena , the chief financial officer , will report directly to Mr So .",
         "Current Chief Operating Officer Mike Butcher and Group Chief Financial Officer Alex Arena will report to So ."],
        ["1", "3019446", "3019327", "The world 's two largest automakers said their U.S. sales declined more than predicted last month as a late summer sales frenzy caused more of an industry backlash than expected .",
         "Domestic sales at both GM and No. 2 Ford Motor Co. declined more than predicted as a late summer sales frenzy prompted a larger-than-expected industry backlash ."]])

    # STS-B: score in the last column.
    sts_head = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2"]
    w(GLUE_ROOT, "STS-B/train.tsv", [sts_head + ["score"],
        ["0", "main-captions", "MSRvid", "2012test", "0001", "none", "none", "A plane is taking off.", "An air plane is taking off.", "5.000"],
        ["1", "main-captions", "MSRvid", "2012test", "0004", "none", "none", "A man is playing a large flute.", "A man is playing a flute.", "3.800"],
        ["2", "main-captions", "MSRvid", "2012test", "0005", "none", "none", "A man is spreading shreded cheese on a pizza.", "A man is spreading shredded cheese on an uncooked pizza.", "3.800"],
        ["3", "main-forums", "answers-forums", "2015", "0013", "none", "none", "It depends on what you mean by \"good\".", "It has nothing to do with quality.", "0.400"]])
    w(GLUE_ROOT, "STS-B/dev.tsv", [sts_head + ["score"],
        ["0", "main-captions", "MSRvid", "2012test", "0000", "none", "none", "A man with a hard hat is dancing.", "A man wearing a hard hat is dancing.", "5.000"],
        ["1", "main-captions", "MSRvid", "2012test", "0002", "none", "none", "A young child is riding a horse.", "A child is riding a horse.", "4.750"]])
    w(GLUE_ROOT, "STS-B/test.tsv", [sts_head,
        ["0", "main-captions", "MSRvid", "2012test", "0024", "none", "none", "A girl is styling her hair.", "A girl is brushing her hair."],
        ["1", "main-captions", "MSRvid", "2012test", "0033", "none", "none", "A group of men play soccer on the beach.", "A group of boys are playing soccer on the beach."]])

    # QQP: a question with an embedded newline breaks one row into two malformed lines (4 and 3 fields).
    qqp_head = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
    w(GLUE_ROOT, "QQP/train.tsv", [qqp_head,
        ["133273", "213221", "213222", "How is the life of a math student? Could you describe your own experiences?", "Which level of prepration is enough for the exam jlpt5?", "0"],
        ["402555", "536040", "536041", "How do I control my horny emotions?", "How do you control your horniness?", "1"],
        ["201841", "303345", "303346", "What causes stool color to change to yellow?", "What can cause stool to come out as little balls?"],
        ["", "Is it \"normal\"?", "0"],
        ["360472", "364011", "490273", "What can one do after MBBS?", "What do i do after my MBBS ?", "1"]])
    w(GLUE_ROOT, "QQP/dev.tsv", [qqp_head,
        ["40066", "72277", "72278", "What is the best way to learn \"Python\"?", "How do I learn Python fast?", "1"],
        ["363369", "141453", "39891", "How can I improve my English?", "Which is the best book for English grammar?", "0"]])
    w(GLUE_ROOT, "QQP/test.tsv", [["id", "question1", "question2"],
        ["0", "Why am I mentally very lonely? How can I solve it?", "Find the remainder when [math]23^{24}[/math] is divided by 24,23?"],
        ["1", "Which one dissolve in water quikly sugar, salt, methane and carbon di oxide?", "Which fish would survive in salt water?"]])

    # MNLI: train has label1 + gold_label, dev has label1..label5 + gold_label, test has no labels.
    mnli_base = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                 "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]
    def mnli_row(i, pid, genre, s1, s2, labels):
        return [str(i), str(pid), f"{pid}e", genre, "( " + s1 + " )", "( " + s2 + " )",
                "(ROOT (S " + s1 + "))", "(ROOT (S " + s2 + "))", s1, s2] + labels
    w(GLUE_ROOT, "MNLI/train.tsv", [mnli_base + ["label1", "gold_label"],
        mnli_row(0, 31193, "government", "Conceptually cream skimming has two basic dimensions - product and geography.", "Product and geography are what make cream skimming work. ", ["neutral", "neutral"]),
        mnli_row(1, 101457, "telephone", "you know during the season and i guess at at your level uh you lose them to the next level if", "You lose the things to the following level if the people recall.", ["entailment", "entailment"]),
        mnli_row(2, 134793, "fiction", "One of our number will carry out your instructions minutely.", "A member of my team will execute your orders with immense precision.", ["entailment", "entailment"]),
        mnli_row(3, 37397, "fiction", "How do you know? All this is their information again.", "This information belongs to them.", ["contradiction", "contradiction"])])
    w(GLUE_ROOT, "MNLI/dev_matched.tsv", [mnli_base + ["label1", "label2", "label3", "label4", "label5", "gold_label"],
        mnli_row(0, 63735, "slate", "The new rights are nice enough", "Everyone really likes the newest benefits ", ["neutral", "entailment", "neutral", "neutral", "neutral", "neutral"]),
        mnli_row(1, 91383, "government", "This site includes a list of all award winners and a searchable database of Government Executive articles.", "The Government Executive articles housed on the website are not able to be searched.", ["contradiction"] * 5 + ["contradiction"]),
        mnli_row(2, 755, "telephone", "uh i don't know i i have mixed emotions about him uh sometimes i like him but at the same times i love to see somebody beat him", "I like him for the most part, but would still enjoy seeing someone beat him.", ["entailment"] * 5 + ["entailment"])])
    w(GLUE_ROOT, "MNLI/dev_mismatched.tsv", [mnli_base + ["label1", "label2", "label3", "label4", "label5", "gold_label"],
        mnli_row(0, 75290, "letters", "Your contribution helped make it possible for us to provide our students with a quality education.", "Your contributions were of no help with our students' education.", ["contradiction"] * 5 + ["contradiction"]),
        mnli_row(1, 133794, "verbatim", "The answer has nothing to do with their cause, however, but with the simple fact that dictionaries are not exercises in bi-unique substitutability.", "Dictionaries are indeed exercises in bi-unique substitutability.", ["contradiction", "contradiction", "contradiction", "neutral", "contradiction", "contradiction"])])
    w(GLUE_ROOT, "MNLI/test_matched.tsv", [mnli_base,
        mnli_row(0, 31493, "travel", "Hierbas, ans seco, ans dulce, and frigola are just a few names worth keeping a look-out for.", "Hierbas is a name worth looking out for.", [])])
    w(GLUE_ROOT, "MNLI/test_mismatched.tsv", [mnli_base,
        mnli_row(0, 16130, "facetoface", "What have you decided, what are you going to do?", "So what's your decision?", []),
        mnli_row(1, 128269, "facetoface", "Yes, I did.", "I did not.", [])])

    # QNLI, RTE, WNLI. RTE's dev file has CRLF line ends (the label is the last column).
    w(GLUE_ROOT, "QNLI/train.tsv", [["index", "question", "sentence", "label"],
        ["0", "When did the third Digimon series begin?", "Unlike the two seasons before it and most of the seasons that followed, Digimon Tamers takes a darker and more realistic approach to its story featuring Digimon who do not reincarnate after their deaths and more complex character development in the original Japanese.", "not_entailment"],
        ["1", "Which missile batteries often have individual launchers several kilometres from one another?", "When MANPADS is operated by specialists, batteries may have several dozen teams deploying separately in small sections; self-propelled air defence guns may deploy in pairs.", "not_entailment"],
        ["2", "What two things does Popper argue Tarski's theory involves in an evaluation of truth?", "He bases this interpretation on the fact that examples such as the one described above refer to two things: assertions and the facts to which they refer.", "entailment"]])
    w(GLUE_ROOT, "QNLI/dev.tsv", [["index", "question", "sentence", "label"],
        ["0", "What came into force after the new constitution was herald?", "As of that day, the new constitution heralding the Second Republic came into force.", "entailment"],
        ["1", "What is the first major city in the stream of the Rhine?", "The most important tributaries in this area are the Ill below of Strasbourg, the Neckar in Mannheim and the Main across from Mainz.", "not_entailment"]])
    w(GLUE_ROOT, "QNLI/test.tsv", [["index", "question", "sentence"],
        ["0", "What organization is devoted to Jihad against Israel?", "For some decades prior to the First Palestine Intifada in 1987, the Muslim Brotherhood in Palestine took a \"quiescent\" stance towards Israel."]])
    w(GLUE_ROOT, "RTE/train.tsv", [["index", "sentence1", "sentence2", "label"],
        ["0", "No Weapons of Mass Destruction Found in Iraq Yet.", "Weapons of Mass Destruction Found in Iraq.", "not_entailment"],
        ["1", "A place of sorrow, after Pope John Paul II died, became a place of celebration, as Roman Catholic faithful gathered in downtown Chicago to mark the installation of new Pope Benedict XVI.", "Pope Benedict XVI is the new leader of the Roman Catholic Church.", "entailment"]])
    w(GLUE_ROOT, "RTE/dev.tsv", [["index", "sentence1", "sentence2", "label"],
        ["0", "Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44, according to the Christopher Reeve Foundation.", "Christopher Reeve had an accident.", "not_entailment"],
        ["1", "Yet, we now are discovering that antibiotics are losing their effectiveness against illness.", "Bacteria is winning the war against antibiotics.", "entailment"]], crlf=True)
    w(GLUE_ROOT, "RTE/test.tsv", [["index", "sentence1", "sentence2"],
        ["0", "Mangla was summoned after Madhumita's sister Nidhi Shukla, who was the first witness in the case.", "Shukla is related to Mangla."]])
    w(GLUE_ROOT, "WNLI/train.tsv", [["index", "sentence1", "sentence2", "label"],
        ["0", "I stuck a pin through a carrot. When I pulled the pin out, it had a hole.", "The carrot had a hole.", "1"],
        ["1", "John couldn't see the stage with Billy in front of him because he is so short.", "John is so short.", "1"],
        ["2", "The police arrested all of the gang members. They were trying to stop the drug trade in the neighborhood.", "The police were trying to stop the drug trade in the neighborhood.", "1"],
        ["3", "Steve follows Fred's example in everything. He influences him hugely.", "Steve influences him hugely.", "0"]])
    w(GLUE_ROOT, "WNLI/dev.tsv", [["index", "sentence1", "sentence2", "label"],
        ["0", "The drain is clogged with hair. It has to be cleaned.", "The hair has to be cleaned.", "0"]])
    w(GLUE_ROOT, "WNLI/test.tsv", [["index", "sentence1", "sentence2"],
        ["0", "Maude and Dora had seen the trains rushing across the prairie, with long, rolling puffs of black smoke streaming back from the engine.", "Horses ran away when Maude and Dora came into sight."]])

    # Bad files, one problem each (the line number the error must name is in the comment).
    w(GLUE_BAD, "RTE/train.tsv", [["index", "sentence1", "sentence2", "label"],
        ["0", "A cat sat.", "A cat sat down.", "entailment"],
        ["1", "A dog barked.", "not_entailment"]])                          # line 3: 3 columns
    w(GLUE_BAD, "SST-2/dev.tsv", [["sentence", "label"], ["fine .", "1"], ["odd label .", "2"]])  # line 3: label 2
    w(GLUE_BAD, "STS-B/dev.tsv", [sts_head + ["score"],
        ["0", "main-captions", "MSRvid", "2012test", "0000", "none", "none", "A man.", "A person.", "n/a"]])  # line 2
    w(GLUE_BAD, "STS-B/train.tsv", [sts_head + ["score"],
        ["0", "main-captions", "MSRvid", "2012test", "0000", "none", "none", "A man.", "A person.", "4.5"],
        ["1", "main-captions", "MSRvid", "2012test", "0001", "none", "none", "A man.", "A person.", "5.5"]])  # line 3
    w(GLUE_BAD, "QNLI/dev.tsv", [["index", "question", "sentence", "label"], ["0", "Who?", "Him.", "entailed"]])  # line 2
    w(GLUE_BAD, "WNLI/dev.tsv", [["index", "sentence_1", "sentence2", "label"], ["0", "It.", "That.", "1"]])  # line 1: no sentence1
    w(GLUE_BAD, "CoLA/dev.tsv", [["gj04", "1", "", "Fine."], ["gj04", "1", "Missing a column."]], crlf=True)  # line 2
    w(GLUE_BAD, "MNLI/dev_matched.tsv", [mnli_base + ["label1", "gold_label"],
        mnli_row(0, 1, "slate", "A.", "B.", ["-", "-"])])  # line 2: gold label "-"


# ---------------------------------------------------------------- GLUE files read as the reference loaders do

# (file, split kind) -> columns (id, textA, textB, target) by header name; None = no such column.
GLUE_COLUMNS = {
    "SST-2": (None, "sentence", None, "label"),
    "MRPC": (None, "#1 String", "#2 String", "Quality"),
    "STS-B": ("index", "sentence1", "sentence2", "score"),
    "QQP": ("id", "question1", "question2", "is_duplicate"),
    "MNLI": ("index", "sentence1", "sentence2", "gold_label"),
    "QNLI": ("index", "question", "sentence", "label"),
    "RTE": ("index", "sentence1", "sentence2", "label"),
    "WNLI": ("index", "sentence1", "sentence2", "label"),
}
# Label strings as written in the files, in HF `glue` label-index order.
GLUE_FILE_LABELS = {
    "CoLA": ["0", "1"], "SST-2": ["0", "1"], "MRPC": ["0", "1"], "QQP": ["0", "1"], "WNLI": ["0", "1"],
    "MNLI": ["entailment", "neutral", "contradiction"], "QNLI": ["entailment", "not_entailment"],
    "RTE": ["entailment", "not_entailment"],
}


def read_glue_file(task, rel):
    """A list of {id, textA, textB, label, score, line} as HF's glue builder / GLUE processors read the file."""
    path = os.path.join(GLUE_ROOT, task, rel)
    is_test = rel.startswith("test")
    with open(path, encoding="utf-8-sig", newline="") as f:
        # newline="" keeps "\r\n" for csv, which strips it as a line end, as the csv docs advise.
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    examples, skipped = [], 0
    if task == "CoLA" and not is_test:
        for i, row in enumerate(rows):
            examples.append({"id": str(i), "textA": row[3], "textB": None,
                             "label": GLUE_FILE_LABELS[task].index(row[1]), "score": None, "line": i + 1})
        return examples, skipped
    header = rows[0]
    id_col, a_col, b_col, target_col = GLUE_COLUMNS.get(task, ("index", "sentence", None, "label"))
    if is_test and task in ("SST-2", "MRPC", "CoLA"):
        id_col = "index"
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            assert task == "QQP", (path, line)
            skipped += 1
            continue
        d = dict(zip(header, row))
        ex = {"id": d[id_col] if id_col else str(len(examples)), "textA": d[a_col],
              "textB": d[b_col] if b_col else None, "label": None, "score": None, "line": line}
        if not is_test:
            if task == "STS-B":
                ex["score"] = float(d[target_col])
            else:
                ex["label"] = GLUE_FILE_LABELS[task].index(d[target_col])
        examples.append(ex)
    return examples, skipped


def glue_loaded():
    out = {}
    for task in sorted(os.listdir(GLUE_ROOT)):
        for rel in sorted(os.listdir(os.path.join(GLUE_ROOT, task))):
            examples, skipped = read_glue_file(task, rel)
            out[f"{task}/{rel}"] = {"examples": examples, "skipped": skipped}
    return out


# ---------------------------------------------------------------- GLUE metrics

def glue_metrics():
    rng = np.random.RandomState(20240601)
    out = {}

    def classification(name, refs, preds):
        refs, preds = [int(x) for x in refs], [int(x) for x in preds]
        out[name] = {"references": refs, "predictions": preds,
                     "accuracy": float(accuracy_score(refs, preds)),
                     "f1": float(f1_score(refs, preds, pos_label=1, zero_division=0)) if max(refs + preds) <= 1 else None,
                     "matthews_correlation": float(matthews_corrcoef(refs, preds))}

    refs = rng.randint(0, 2, size=57)
    preds = np.where(rng.rand(57) < 0.7, refs, 1 - refs)
    classification("binary_57", refs, preds)          # CoLA / MRPC / QQP / SST-2 style
    refs = rng.randint(0, 2, size=200)
    preds = np.where(rng.rand(200) < 0.55, refs, rng.randint(0, 2, size=200))
    classification("binary_200", refs, preds)
    classification("binary_by_hand", [1, 1, 0, 0, 1, 0, 1, 1], [1, 0, 0, 1, 1, 0, 1, 0])  # tp 3 tn 2 fp 1 fn 2
    classification("constant_predictions", [1, 0, 1, 1, 0], [1, 1, 1, 1, 1])   # MCC 0 (sklearn convention)
    classification("no_positive_predicted", [1, 0, 1, 0], [0, 0, 0, 0])         # F1 0, MCC 0
    refs = rng.randint(0, 3, size=90)
    preds = np.where(rng.rand(90) < 0.6, refs, rng.randint(0, 3, size=90))
    classification("three_class_90", refs, preds)     # MNLI style (accuracy; MCC in sklearn's multiclass form)
    refs = rng.randint(0, 3, size=41)
    preds = np.where(rng.rand(41) < 0.8, refs, rng.randint(0, 3, size=41))
    classification("three_class_41", refs, preds)

    def regression(name, refs, preds):
        refs, preds = [float(x) for x in refs], [float(x) for x in preds]
        out[name] = {"references": refs, "predictions": preds,
                     "pearson": float(scipy.stats.pearsonr(preds, refs)[0]),
                     "spearmanr": float(scipy.stats.spearmanr(preds, refs)[0]),
                     "ranks_references": scipy.stats.rankdata(refs, method="average").tolist(),
                     "ranks_predictions": scipy.stats.rankdata(preds, method="average").tolist()}

    # STS-B gold scores are multiples of 0.2 mostly, so ties are common.
    refs = np.round(rng.uniform(0, 5, size=64) * 5) / 5
    preds = np.clip(refs + rng.normal(0, 0.8, size=64), 0, 5)
    preds[::7] = np.round(preds[::7])  # some tied predictions too
    regression("stsb_64", refs, preds)
    regression("stsb_ties", [0.0, 1.0, 1.0, 2.5, 2.5, 2.5, 4.0, 5.0], [0.5, 1.2, 0.9, 2.0, 3.1, 2.0, 4.4, 4.4])
    return out


# ---------------------------------------------------------------- CoQA fixture

def coqa_answer(text, turn, span=(-1, -1, "unknown")):
    return {"span_start": span[0], "span_end": span[1], "span_text": span[2], "input_text": text, "turn_id": turn}


def write_coqa_fixture():
    story1 = ("Once there was a beautiful fish named Asta. Asta lived in the ocean. There were lots of other "
              "fish in the ocean where Asta lived. They played all day long. One day, a bottle floated by over "
              "the heads of Asta and his friends. They looked up and saw the bottle. \"What is it?\" said Asta's "
              "friend Sharkie.")
    story2 = ("CHAPTER VII. THE DAUGHTER OF WITHERSTEEN \"Lassiter, will you be my rider?\" Jane had asked him. "
              "\"I reckon so,\" he had replied. Few as the words were, Jane knew how infinitely much they implied. "
              "She wanted him to take charge of her cattle and horses and ranch.")
    story3 = ("TIL that the first ever café in Vienna was opened in 1685 by an Armenian merchant named Johannes "
              "Diodato. He was granted a 20-year monopoly - the first licence to serve coffee in the city.")
    data = {"version": "1.0", "data": [
        {"source": "mctest", "id": "3dr23u6we5exclen4th8uq9rb42tel", "filename": "mc160.test.41", "story": story1,
         "questions": [{"input_text": q, "turn_id": i + 1} for i, q in enumerate([
             "What was the fish named?", "Where did he live?", "Who was his friend?",
             "What floated by?", "Did they see it?"])],
         "answers": [coqa_answer("Asta", 1, (33, 41, "named Asta")),
                     coqa_answer("the ocean", 2, (58, 70, "in the ocean")),
                     coqa_answer("Sharkie", 3, (279, 292, "friend Sharkie")),
                     coqa_answer("a bottle", 4, (145, 163, "a bottle floated by")),
                     coqa_answer("yes", 5, (214, 245, "They looked up and saw the bottle"))],
         "additional_answers": {
             "0": [coqa_answer("Asta.", 1), coqa_answer("in the ocean", 2), coqa_answer("Sharkie", 3),
                   coqa_answer("A bottle", 4), coqa_answer("Yes", 5)],
             "1": [coqa_answer("asta", 1), coqa_answer("ocean", 2), coqa_answer("Sharkie the shark", 3),
                   coqa_answer("bottle", 4), coqa_answer("yes, they looked up", 5)],
             "2": [coqa_answer("Asta", 1), coqa_answer("The ocean.", 2), coqa_answer("sharkie", 3),
                   coqa_answer("a glass bottle", 4), coqa_answer("unknown", 5)]}},
        {"source": "gutenberg", "id": "3zotghdk5ibi9cex97fepx7jetpso7", "filename": "data/gutenberg/txt/Zane Grey___Riders of the Purple Sage.txt/CHAPTER_VII.txt",
         "story": story2,
         "questions": [{"input_text": q, "turn_id": i + 1} for i, q in enumerate([
             "What did Jane ask Lassiter?", "What did he say?", "What did she want him to take charge of?",
             "Was the chapter about her son?"])],
         "answers": [coqa_answer("to be her rider", 1), coqa_answer("I reckon so", 2),
                     coqa_answer("her cattle and horses and ranch", 3), coqa_answer("No", 4)],
         "additional_answers": {
             "0": [coqa_answer("will you be my rider?", 1), coqa_answer("\"I reckon so,\"", 2),
                   coqa_answer("cattle, horses and the ranch", 3), coqa_answer("no", 4)],
             "1": [coqa_answer("be her rider", 1), coqa_answer("he reckoned so", 2),
                   coqa_answer("her cattle", 3), coqa_answer("unknown", 4)],
             "2": [coqa_answer("If he would be her rider", 1), coqa_answer("I reckon so", 2),
                   coqa_answer("cattle and horses and ranch", 3), coqa_answer("No, about her daughter", 4)]}},
        {"source": "reddit", "id": "3tpz7apl9fqh1g0fvr7dl3z9gwl3om", "filename": "reddit/til_cafe.txt", "story": story3,
         "questions": [{"input_text": q, "turn_id": i + 1} for i, q in enumerate([
             "Where was the café?", "When did it open?", "Who opened it?", "How long was his monopoly?"])],
         "answers": [coqa_answer("Vienna", 1), coqa_answer("in 1685", 2),
                     coqa_answer("an Armenian merchant named Johannes Diodato", 3), coqa_answer("20 years", 4)],
         "additional_answers": {
             "0": [coqa_answer("Vienna", 1), coqa_answer("1685", 2), coqa_answer("Johannes Diodato", 3),
                   coqa_answer("20-year", 4)],
             "1": [coqa_answer("In Vienna", 1), coqa_answer("1685.", 2), coqa_answer("Diodato", 3),
                   coqa_answer("twenty years", 4)],
             "2": [coqa_answer("vienna", 1), coqa_answer("In the year 1685", 2),
                   coqa_answer("An Armenian merchant", 3), coqa_answer("a 20-year monopoly", 4)]}},
    ]}
    with open(os.path.join(FIXTURES, "coqa_dev.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return data


# Predictions: exact, partial, articles/punctuation/case differences, "unknown", empty, one turn missing.
COQA_PREDICTIONS = [
    {"id": "3dr23u6we5exclen4th8uq9rb42tel", "turn_id": 1, "answer": "Asta"},
    {"id": "3dr23u6we5exclen4th8uq9rb42tel", "turn_id": 2, "answer": "The Ocean!"},
    {"id": "3dr23u6we5exclen4th8uq9rb42tel", "turn_id": 3, "answer": "his friend Sharkie"},
    {"id": "3dr23u6we5exclen4th8uq9rb42tel", "turn_id": 4, "answer": "a bottle floated by"},
    {"id": "3dr23u6we5exclen4th8uq9rb42tel", "turn_id": 5, "answer": "unknown"},
    {"id": "3zotghdk5ibi9cex97fepx7jetpso7", "turn_id": 1, "answer": "will you be my rider"},
    {"id": "3zotghdk5ibi9cex97fepx7jetpso7", "turn_id": 2, "answer": "I reckon so"},
    # turn 3 of the gutenberg story has no prediction (counts as 0, as in the official script)
    {"id": "3zotghdk5ibi9cex97fepx7jetpso7", "turn_id": 4, "answer": ""},
    {"id": "3tpz7apl9fqh1g0fvr7dl3z9gwl3om", "turn_id": 1, "answer": "in Vienna, Austria"},
    {"id": "3tpz7apl9fqh1g0fvr7dl3z9gwl3om", "turn_id": 2, "answer": "1685"},
    {"id": "3tpz7apl9fqh1g0fvr7dl3z9gwl3om", "turn_id": 3, "answer": "Johannes Diodato, an Armenian"},
    {"id": "3tpz7apl9fqh1g0fvr7dl3z9gwl3om", "turn_id": 4, "answer": "20 years"},
    {"id": "not-a-gold-story", "turn_id": 1, "answer": "ignored"},
]


# ---------------------------------------------------------------- port of CoQA's evaluate-v1.0.py
# (the official script by the CoQA authors, https://stanfordnlp.github.io/coqa/; logic kept line for line,
# file reading and argument parsing left out).

out_domain = ["reddit", "science"]
in_domain = ["mctest", "gutenberg", "race", "cnn", "wikipedia"]
domain_mappings = {"mctest": "children_stories", "gutenberg": "literature", "race": "mid-high_school", "cnn": "news",
                   "wikipedia": "wikipedia", "science": "science", "reddit": "reddit"}


class CoQAEvaluator():

    def __init__(self, dataset):
        self.gold_data, self.id_to_source = CoQAEvaluator.gold_answers_to_dict(dataset)

    @staticmethod
    def gold_answers_to_dict(dataset):
        gold_dict = {}
        id_to_source = {}
        for story in dataset['data']:
            source = story['source']
            story_id = story['id']
            id_to_source[story_id] = source
            questions = story['questions']
            multiple_answers = [story['answers']]
            multiple_answers += story['additional_answers'].values()
            for i, qa in enumerate(questions):
                qid = qa['turn_id']
                if i + 1 != qid:
                    sys.stderr.write("Turn id should match index {}: {}\n".format(i + 1, qa))
                gold_answers = []
                for answers in multiple_answers:
                    answer = answers[i]
                    if qid != answer['turn_id']:
                        sys.stderr.write("Question turn id does match answer: {} {}\n".format(qa, answer))
                    gold_answers.append(answer['input_text'])
                key = (story_id, qid)
                if key in gold_dict:
                    sys.stderr.write("Gold file has duplicate stories: {}".format(source))
                gold_dict[key] = gold_answers
        return gold_dict, id_to_source

    @staticmethod
    def preds_to_dict(preds):
        pred_dict = {}
        for pred in preds:
            pred_dict[(pred['id'], pred['turn_id'])] = pred['answer']
        return pred_dict

    @staticmethod
    def normalize_answer(s):
        """Lower text and remove punctuation, storys and extra whitespace."""

        def remove_articles(text):
            regex = re.compile(r'\b(a|an|the)\b', re.UNICODE)
            return re.sub(regex, ' ', text)

        def white_space_fix(text):
            return ' '.join(text.split())

        def remove_punc(text):
            exclude = set(string.punctuation)
            return ''.join(ch for ch in text if ch not in exclude)

        def lower(text):
            return text.lower()

        return white_space_fix(remove_articles(remove_punc(lower(s))))

    @staticmethod
    def get_tokens(s):
        if not s:
            return []
        return CoQAEvaluator.normalize_answer(s).split()

    @staticmethod
    def compute_exact(a_gold, a_pred):
        return int(CoQAEvaluator.normalize_answer(a_gold) == CoQAEvaluator.normalize_answer(a_pred))

    @staticmethod
    def compute_f1(a_gold, a_pred):
        gold_toks = CoQAEvaluator.get_tokens(a_gold)
        pred_toks = CoQAEvaluator.get_tokens(a_pred)
        common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
        num_same = sum(common.values())
        if len(gold_toks) == 0 or len(pred_toks) == 0:
            # If either is no-answer, then F1 is 1 if they agree, 0 otherwise
            return int(gold_toks == pred_toks)
        if num_same == 0:
            return 0
        precision = 1.0 * num_same / len(pred_toks)
        recall = 1.0 * num_same / len(gold_toks)
        f1 = (2 * precision * recall) / (precision + recall)
        return f1

    @staticmethod
    def _compute_turn_score(a_gold_list, a_pred):
        f1_sum = 0.0
        em_sum = 0.0
        if len(a_gold_list) > 1:
            for i in range(len(a_gold_list)):
                # exclude the current answer
                gold_answers = a_gold_list[0:i] + a_gold_list[i + 1:]
                em_sum += max(CoQAEvaluator.compute_exact(a, a_pred) for a in gold_answers)
                f1_sum += max(CoQAEvaluator.compute_f1(a, a_pred) for a in gold_answers)
        else:
            em_sum += max(CoQAEvaluator.compute_exact(a, a_pred) for a in a_gold_list)
            f1_sum += max(CoQAEvaluator.compute_f1(a, a_pred) for a in a_gold_list)

        return {'em': em_sum / max(1, len(a_gold_list)), 'f1': f1_sum / max(1, len(a_gold_list))}

    def compute_turn_score(self, story_id, turn_id, a_pred):
        key = (story_id, turn_id)
        a_gold_list = self.gold_data[key]
        return CoQAEvaluator._compute_turn_score(a_gold_list, a_pred)

    def get_raw_scores(self, pred_data):
        exact_scores = {}
        f1_scores = {}
        for story_id, turn_id in self.gold_data:
            key = (story_id, turn_id)
            if key not in pred_data:
                sys.stderr.write('Missing prediction for {} and turn_id: {}\n'.format(story_id, turn_id))
                continue
            a_pred = pred_data[key]
            scores = self.compute_turn_score(story_id, turn_id, a_pred)
            exact_scores[key] = scores['em']
            f1_scores[key] = scores['f1']
        return exact_scores, f1_scores

    def model_performance(self, pred_data, rounded=True):
        exact_scores, f1_scores = self.get_raw_scores(pred_data)
        return self.get_domain_scores(exact_scores, f1_scores, rounded)

    def get_domain_scores(self, exact_scores, f1_scores, rounded=True):
        # `rounded=False` is the one addition to the official logic: the same numbers before round(x, 1).
        r = (lambda x: round(x, 1)) if rounded else (lambda x: x)
        sources = {}
        for source in in_domain + out_domain:
            sources[source] = collections.Counter()

        for story_id, turn_id in self.gold_data:
            key = (story_id, turn_id)
            source = self.id_to_source[story_id]
            sources[source]['em_total'] += exact_scores.get(key, 0)
            sources[source]['f1_total'] += f1_scores.get(key, 0)
            sources[source]['turn_count'] += 1

        scores = collections.OrderedDict()
        in_domain_em_total = 0.0
        in_domain_f1_total = 0.0
        in_domain_turn_count = 0

        out_domain_em_total = 0.0
        out_domain_f1_total = 0.0
        out_domain_turn_count = 0

        for source in in_domain + out_domain:
            domain = domain_mappings[source]
            scores[domain] = {}
            scores[domain]['em'] = r(sources[source]['em_total'] / max(1, sources[source]['turn_count']) * 100)
            scores[domain]['f1'] = r(sources[source]['f1_total'] / max(1, sources[source]['turn_count']) * 100)
            scores[domain]['turns'] = sources[source]['turn_count']
            if source in in_domain:
                in_domain_em_total += sources[source]['em_total']
                in_domain_f1_total += sources[source]['f1_total']
                in_domain_turn_count += sources[source]['turn_count']
            elif source in out_domain:
                out_domain_em_total += sources[source]['em_total']
                out_domain_f1_total += sources[source]['f1_total']
                out_domain_turn_count += sources[source]['turn_count']

        scores["in_domain"] = {'em': r(in_domain_em_total / max(1, in_domain_turn_count) * 100),
                               'f1': r(in_domain_f1_total / max(1, in_domain_turn_count) * 100),
                               'turns': in_domain_turn_count}
        scores["out_domain"] = {'em': r(out_domain_em_total / max(1, out_domain_turn_count) * 100),
                                'f1': r(out_domain_f1_total / max(1, out_domain_turn_count) * 100),
                                'turns': out_domain_turn_count}

        em_total = in_domain_em_total + out_domain_em_total
        f1_total = in_domain_f1_total + out_domain_f1_total
        turn_count = in_domain_turn_count + out_domain_turn_count
        scores["overall"] = {'em': r(em_total / max(1, turn_count) * 100),
                             'f1': r(f1_total / max(1, turn_count) * 100),
                             'turns': turn_count}

        return scores


def coqa_reference(dataset):
    ev = CoQAEvaluator(dataset)
    preds = CoQAEvaluator.preds_to_dict(COQA_PREDICTIONS)
    exact, f1 = ev.get_raw_scores(preds)
    normalize_cases = ["The Ocean!", "  an apple a day  ", "Theater, the-atre & THE end.", "a", "",
                       "Café au lait", "it's 20-year old", "’the’ end", "the_thing", "anathema thea",
                       "ÉCOLE   The\tNew\nYork"]
    pair_cases = [("the ocean", "The Ocean!"), ("in the ocean", "ocean"), ("Sharkie the shark", "his friend Sharkie"),
                  ("yes", "unknown"), ("", ""), ("", "something"), ("a", ""), ("the the cat", "cat cat"),
                  ("20-year", "20 years"), ("an Armenian merchant named Johannes Diodato", "Johannes Diodato, an Armenian")]
    turn_cases = [(["Asta", "Asta.", "asta", "Asta"], "Asta"),
                  (["a bottle", "A bottle", "bottle", "a glass bottle"], "a bottle floated by"),
                  (["Sharkie"], "sharkie!"),
                  (["Sharkie"], "his friend Sharkie"),
                  (["yes", "Yes", "yes, they looked up", "unknown"], "unknown")]
    return {
        "predictions": COQA_PREDICTIONS,
        "normalize": [{"input": s, "normalized": CoQAEvaluator.normalize_answer(s),
                       "tokens": CoQAEvaluator.get_tokens(s)} for s in normalize_cases],
        "pairs": [{"gold": g, "prediction": p, "em": CoQAEvaluator.compute_exact(g, p),
                   "f1": float(CoQAEvaluator.compute_f1(g, p))} for g, p in pair_cases],
        "turns": [{"gold": g, "prediction": p, **CoQAEvaluator._compute_turn_score(g, p)} for g, p in turn_cases],
        "turn_scores": [{"id": k[0], "turn_id": k[1], "em": exact[k], "f1": f1[k]} for k in exact],
        "missing": [{"id": k[0], "turn_id": k[1]} for k in ev.gold_data if k not in preds],
        "report": ev.model_performance(preds),
        "report_unrounded": ev.model_performance(preds, rounded=False),
        "report_json": json.dumps(ev.model_performance(preds), indent=2),
    }


def main():
    write_glue_fixtures()
    dataset = write_coqa_fixture()
    reference = {
        "command": "python3 Tools/reference/make_task_metric_fixtures.py",
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__,
                     "sklearn": __import__("sklearn").__version__, "python": sys.version.split()[0]},
        "glue_loaded": glue_loaded(),
        "glue_metrics": glue_metrics(),
        "coqa": coqa_reference(dataset),
    }
    with open(os.path.join(FIXTURES, "task_metrics.json"), "w", encoding="utf-8") as f:
        json.dump(reference, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote", os.path.join(FIXTURES, "task_metrics.json"))


if __name__ == "__main__":
    main()
