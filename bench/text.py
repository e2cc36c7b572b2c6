"""Benchmark of the text kind: speed, accuracy per function, near copies, install size.

Prints markdown tables (docs/benchmarks.md keeps the latest):

- speed: the text model (review.classifiers.textmodel: MiniLM int8 ONNX + head + the term
  banks) per text alone (p50, p95) and in batches of 64 (texts/s), against the profanity
  filter better-profanity 0.7.0 in the same run (the obvious cheap alternative), with the
  ratio;
- accuracy on the Davidson test split (tests/fixtures/text/davidson_test.csv, 2,478 tweets
  never seen in training): the head's three classes, and "abusive or not" (hate speech or
  offensive, against neither) for the whole classifier's verdict and for the filter;
- accuracy per function of the functional set (tests/fixtures/text/functional.csv: what
  each case should get, harmful = review or flagged, ok = pass), for the whole classifier
  (model + term banks from tests/fixtures/text/terms.csv + thread context), the model
  without term banks, and the filter;
- near copies: text_minhash distances of one-word edits and of each tweet's nearest other
  tweet, and whether leetspeak, spacing and confusable variants of known messages match;
- the model's install size (files in the repository, and the tokenizers package with what
  it pulls in).

Usage: python bench/text.py [--repeat 200]
The verdict is the pipeline's own arithmetic (review.categories + review.outcomes with the
default label rows and categories); no database is needed.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import os
import platform
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("TEXT_MODEL_THREADS", "1")
FIXTURES = ROOT / "tests" / "fixtures" / "text"


def setup():
    import django

    django.setup()


def load_functional():
    with open(FIXTURES / "functional.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def load_davidson():
    with open(FIXTURES / "davidson_test.csv", newline="", encoding="utf-8") as fh:
        return [(r["tweet"], int(r["class"])) for r in csv.DictReader(fh)]


def term_set():
    from review.terms import TermSet, compile_term

    with open(FIXTURES / "terms.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return TermSet(tuple(compile_term(r["text"], r["category"], r["kind"]) for r in rows))


class Judge:
    """The pipeline's verdict for texts: provider detections → category scores → decide."""

    def __init__(self):
        from review.categories import TEXT_CATEGORIES
        from review.classifiers.textmodel import TextModelClassifier

        self.model = TextModelClassifier()
        self.rules = list(TEXT_CATEGORIES)
        self.labels = {
            "textmodel": {
                label.lower(): [(category, weight)]
                for label, (category, weight) in TextModelClassifier.default_labels.items()
            }
        }

    def verdicts(self, subjects, terms=None) -> list[str]:
        from review.categories import category_scores
        from review.classifiers.textmodel import WithTerms
        from review.outcomes import decide

        results = self.model.classify_batch([WithTerms(s, terms) for s in subjects])
        out = []
        for result in results:
            scores = category_scores([result], self.labels, self.rules)
            out.append(decide(scores=scores, rules=self.rules).outcome)
        return out


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


def speed(judge, texts, repeat, terms):
    from better_profanity import profanity

    from review.classifiers.textmodel import WithTerms
    from uploads.text import TextSubject

    subjects = [TextSubject(t) for t in texts]
    profanity.load_censor_words()
    judge.model.classify_batch([WithTerms(subjects[0], terms)])  # warm
    single, filt = [], []
    for i in range(repeat):
        s = subjects[i % len(subjects)]
        t = time.perf_counter()
        judge.model.classify_batch([WithTerms(s, terms)])
        single.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        profanity.contains_profanity(s.text)
        filt.append((time.perf_counter() - t) * 1000)
    batch = [WithTerms(s, terms) for s in subjects[:256]]
    t = time.perf_counter()
    for start in range(0, len(batch), 64):
        judge.model.classify_batch(batch[start : start + 64])
    batched = len(batch) / (time.perf_counter() - t)
    t = time.perf_counter()
    for s in subjects[:256]:
        profanity.contains_profanity(s.text)
    filt_rate = len(batch) / (time.perf_counter() - t)
    return single, filt, batched, filt_rate


def davidson_accuracy(judge, rows, terms):
    import numpy as np
    from better_profanity import profanity

    from uploads.text import TextSubject

    texts = [t for t, _ in rows]
    truth = np.array([c for _, c in rows])
    scored = judge.model.model_scores(texts)
    probs = np.array([[s["hate_speech"], s["offensive"]] for s in scored])
    head = np.where(probs.max(1) > 1 - probs.sum(1), probs.argmax(1), 2)
    verdicts = judge.verdicts([TextSubject(t) for t in texts], terms)
    abusive = truth != 2
    system = np.array([v != "pass" for v in verdicts])
    filt = np.array([profanity.contains_profanity(t) for t in texts])
    return {
        "head, 3 classes (hate speech / offensive / neither)": float((head == truth).mean()),
        "head, 3 classes: majority class (offensive)": float((truth == 1).mean()),
        "whole classifier, abusive (hate or offensive) or not": float((system == abusive).mean()),
        "better-profanity, abusive or not": float((filt == abusive).mean()),
        "abusive or not: majority (all abusive)": float(abusive.mean()),
        "whole classifier: hate speech held (review or flagged)": float(system[truth == 0].mean()),
        "better-profanity: hate speech caught": float(filt[truth == 0].mean()),
        "whole classifier: neither passed": float(1 - system[truth == 2].mean()),
        "better-profanity: neither passed": float(1 - filt[truth == 2].mean()),
    }


def functional(judge, rows, terms):
    from better_profanity import profanity

    from uploads.text import ContextMessage, TextSubject

    subjects = [
        TextSubject(r["text"], (ContextMessage(r["context"]),) if r["context"] else ())
        for r in rows
    ]
    whole = judge.verdicts(subjects, terms)
    bare = judge.verdicts(subjects, None)
    table = defaultdict(lambda: [0, 0, 0, 0])
    misses = []
    for row, w, b in zip(rows, whole, bare, strict=True):
        want = row["expected"] == "harmful"
        filt = profanity.contains_profanity(row["text"])
        line = table[row["function"]]
        line[0] += 1
        line[1] += (w != "pass") == want
        line[2] += (b != "pass") == want
        line[3] += filt == want
        if (w != "pass") != want:
            misses.append((row["function"], row["text"], row["context"], w))
    return table, misses


def near_copies():
    import numpy as np

    from hashing.text import EXACT, MINHASH
    from hashing.textnorm import normalise
    from uploads.text import TextSubject

    tweets = [t for t, _ in load_davidson()]
    hashes = np.array([MINHASH.compute(TextSubject(t)) for t in tweets], dtype=np.uint64)
    nearest = []
    for i, h in enumerate(hashes):
        d = np.bitwise_count(hashes ^ h)
        d[i] = 99
        nearest.append(int(d.min()))
    rng = random.Random(12)
    edits = []
    for t in rng.sample(tweets, 300):
        words = t.split()
        if len(words) < 6:
            continue
        k = rng.randrange(len(words))
        for variant in (
            " ".join(words[:k] + ["really"] + words[k:]),
            " ".join(words[:k] + words[k + 1 :]),
            t.upper() + "!!!",
        ):
            a, b = MINHASH.compute(TextSubject(t)), MINHASH.compute(TextSubject(variant))
            edits.append((a ^ b).bit_count())
    known = "Earn money fast from home, visit our site for the details today"
    variants = {
        "leetspeak": "3arn m0ney f4st fr0m h0me, v!sit 0ur s1te f0r the deta1ls t0day",
        "spacing": "E a r n money fast from home . . . visit our site for the details today",
        "confusables": "Еаrn mоney fаst frоm hоme, visit оur site fоr the detаils tоday",
        "repeats": "Earnnnn money fast from hooome, visit our site for the details todaaay",
        "one word changed": "Earn money quickly from home, visit our site for the details today",
    }
    base = (EXACT.compute(TextSubject(known)), MINHASH.compute(TextSubject(known)))
    found = {}
    for name, text in variants.items():
        exact = EXACT.compute(TextSubject(text)) == base[0]
        distance = (MINHASH.compute(TextSubject(text)) ^ base[1]).bit_count()
        found[name] = (exact, distance, normalise(text) == normalise(known))
    return nearest, edits, found


def install_size():
    from review.classifiers.minilm import install_size as repo_bytes

    def dist_bytes(name):
        try:
            files = importlib.metadata.distribution(name).files or []
        except importlib.metadata.PackageNotFoundError:
            return 0
        return sum(f.locate().stat().st_size for f in files if f.locate().exists())

    pulled = ("tokenizers", "huggingface-hub", "hf-xet", "fsspec", "httpx2", "httpcore2")
    pulled += ("h11", "filelock", "tqdm", "anyio", "truststore")
    return repo_bytes(), {name: dist_bytes(name) for name in pulled}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    setup()
    load = os.getloadavg()
    print(f"# bench/text.py · {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    judge = Judge()
    terms = term_set()
    davidson = load_davidson()
    single, filt, batched, filt_rate = speed(judge, [t for t, _ in davidson], args.repeat, terms)
    print("## Speed (one thread, TEXT_MODEL_THREADS=1)\n")
    print("| | text model | better-profanity | ratio |\n|---|---|---|---|")
    p50, fp50 = statistics.median(single), statistics.median(filt)
    print(f"| p50 per text, alone | {p50:.2f} ms | {fp50:.3f} ms | {p50 / fp50:.2f}x |")
    p95, fp95 = percentile(single, 95), percentile(filt, 95)
    print(f"| p95 per text, alone | {p95:.2f} ms | {fp95:.3f} ms | {p95 / fp95:.2f}x |")
    print(
        f"| batches of 64 | {batched:.0f} texts/s | {filt_rate:.0f} texts/s | "
        f"{filt_rate / batched:.2f}x |\n"
    )
    print("## Davidson test split (2,478 tweets)\n")
    print("| measure | accuracy |\n|---|---|")
    for name, value in davidson_accuracy(judge, davidson, terms).items():
        print(f"| {name} | {value:.3f} |")
    rows = load_functional()
    table, misses = functional(judge, rows, terms)
    print(f"\n## Functional set ({len(rows)} cases, tests/fixtures/text/functional.csv)\n")
    print("| function | cases | whole classifier | model without terms | better-profanity |")
    print("|---|---|---|---|---|")
    totals = [0, 0, 0, 0]
    for name, (n, w, b, f) in sorted(table.items()):
        print(f"| {name} | {n} | {w / n:.2f} | {b / n:.2f} | {f / n:.2f} |")
        totals = [x + y for x, y in zip(totals, (n, w, b, f), strict=True)]
    n, w, b, f = totals
    print(f"| **all** | {n} | **{w / n:.2f}** | {b / n:.2f} | {f / n:.2f} |\n")
    print("Cases the whole classifier gets wrong:\n")
    for function, text, context, verdict in misses:
        where = f" (after “{context}”)" if context else ""
        print(f"- {function}: “{text}”{where} → {verdict}")
    nearest, edits, found = near_copies()
    print("\n## Near copies (text_minhash, 64 bits; Davidson test split)\n")
    print("| distance of | p1 | p5 | p50 | p90 | p99 |\n|---|---|---|---|---|---|")
    for name, values in (("each tweet's nearest other tweet", nearest), ("one-word edits", edits)):
        cells = " | ".join(str(percentile(values, q)) for q in (1, 5, 50, 90, 99))
        print(f"| {name} | {cells} |")
    print("\n| variant of a known message | text_exact equal | text_minhash distance |")
    print("|---|---|---|")
    for name, (exact, distance, _) in found.items():
        print(f"| {name} | {'yes' if exact else 'no'} | {distance} |")
    repo, pulled = install_size()
    print("\n## Install size\n")
    print(f"- in the repository: {repo / 1e6:.1f} MB (int8 ONNX + tokenizer.json)")
    print(
        f"- packages: {sum(pulled.values()) / 1e6:.1f} MB ("
        + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in pulled.items() if v)
        + "); onnxruntime and numpy were already installed for NudeNet"
    )
    load = os.getloadavg()
    print(f"\nload average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
