"""The local text model: shipped in the repository, offline, accurate enough on the Davidson
test split and on the functional set, and the thread context counting where it should.

The floors are a little under what bench/text.py measured (docs/benchmarks.md), so that a
regression fails here; the bench reports the figures per function.
"""

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from review.categories import TEXT_CATEGORIES, category_scores
from review.classifiers import minilm
from review.classifiers.registry import get_classifier
from review.classifiers.texthead import CLASSES, points_back
from review.classifiers.textmodel import TextModelClassifier, WithTerms
from review.outcomes import decide
from review.terms import TermSet, compile_term
from uploads.text import ContextMessage, TextSubject

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "text"
RULES = list(TEXT_CATEGORIES)
LABELS = {
    "textmodel": {
        label.lower(): [(category, weight)]
        for label, (category, weight) in TextModelClassifier.default_labels.items()
    }
}


def rows(name):
    with open(FIXTURES / name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def model():
    return get_classifier("textmodel")


@pytest.fixture(scope="module")
def terms():
    return TermSet(
        tuple(compile_term(r["text"], r["category"], r["kind"]) for r in rows("terms.csv"))
    )


def verdicts(model, subjects, terms=None):
    results = model.classify_batch([WithTerms(s, terms) for s in subjects])
    return [
        decide(scores=category_scores([r], LABELS, RULES), rules=RULES).outcome for r in results
    ]


def test_the_model_ships_in_the_repository_and_runs_offline():
    assert minilm.MODEL_FILE.stat().st_size < 30_000_000  # int8: 23 MB
    assert minilm.TOKENIZER_FILE.exists()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    vectors = minilm.embedder().embed(["a cat sat on the mat", "a kitten sits on a rug", "tax"])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


def test_it_is_accurate_on_the_davidson_test_split(model):
    sample = rows("davidson_test.csv")[::4]  # 620 of the 2,478: the bench runs them all
    scored = model.model_scores([r["tweet"] for r in sample])
    truth = np.array([int(r["class"]) for r in sample])
    probs = np.array([[s[c] for c in CLASSES[:2]] for s in scored])
    predicted = np.where(probs.max(1) > 1 - probs.sum(1), probs.argmax(1), 2)
    assert (predicted == truth).mean() >= 0.84  # 0.87 on the whole split
    offensive = truth == 1
    assert probs[offensive, 1].mean() > 0.6 > probs[truth == 2, 1].mean()


def test_it_is_accurate_on_the_functional_set_per_function(model, terms):
    cases = rows("functional.csv")
    subjects = [
        TextSubject(r["text"], (ContextMessage(r["context"]),) if r["context"] else ())
        for r in cases
    ]
    got = verdicts(model, subjects, terms)
    right: dict[str, list[bool]] = {}
    for case, verdict in zip(cases, got, strict=True):
        right.setdefault(case["function"], []).append(
            (verdict != "pass") == (case["expected"] == "harmful")
        )
    share = {name: sum(v) / len(v) for name, v in right.items()}
    overall = sum(sum(v) for v in right.values()) / len(cases)
    assert overall >= 0.75, share
    for function in ("leetspeak", "spacing", "thread_context", "plain_abuse", "benign"):
        assert share[function] >= 0.8, (function, share)


def test_term_banks_catch_what_the_model_misses_and_allow_terms_what_it_overcalls(model, terms):
    leet = TextSubject("k y s loser")
    reclaimed = TextSubject("Proud dyke and happy about it")
    without = verdicts(model, [leet, reclaimed])
    with_terms = verdicts(model, [leet, reclaimed], terms)
    assert with_terms[0] != "pass"
    assert with_terms[1] == "pass"
    assert without != with_terms


def test_a_reply_that_points_back_is_judged_with_the_message_it_answers(model):
    insult = (ContextMessage("You are a worthless, pathetic piece of garbage"),)
    kind = (ContextMessage("Have a wonderful weekend!"),)
    got = verdicts(
        model,
        [
            TextSubject("you too", insult),
            TextSubject("you too", kind),
            TextSubject("you too"),
            TextSubject("ok, I will think about it", insult),  # does not point back
        ],
    )
    assert got == ["review", "pass", "pass", "pass"]
    (result,) = model.classify_batch([WithTerms(TextSubject("same to you", insult), None)])
    assert result.raw["context"]["insult"] > 0.5
    assert max(result.raw["context"].values()) <= 0.7  # never flagged on the other's words


@pytest.mark.parametrize(
    ("reply", "points"),
    [
        ("you too", True),
        ("Same to you!", True),
        ("right back at ya", True),
        ("so are you", True),
        ("no u", True),
        ("you too, have a nice day", True),
        ("I think you are right about the bus times", False),
        ("thanks", False),
        ("you are too kind to everyone in this whole thread honestly", False),
    ],
)
def test_which_replies_point_back(reply, points):
    assert points_back(reply) is points
