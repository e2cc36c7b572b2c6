"""The text model without Django: the MiniLM embeddings' logistic head, the prototype
sentences, and the thread-context rule (review.classifiers.textmodel says how they count).
Kept apart so that scripts/train_text_head.py and bench/text.py read the same code."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .minilm import MODELS

HEAD_FILE = MODELS / "text_head.npz"
CLASSES = ("hate_speech", "offensive", "neither")

# Sentences standing for the categories Davidson does not label. Written for this purpose,
# none of them in tests/fixtures/text/functional.csv.
PROTOTYPES = {
    "threat": (
        "I will kill you",
        "I'm going to hurt you badly",
        "you deserve to be shot",
        "I know where you live and I'm coming for you",
        "someone should beat you to death",
        "I will burn your house down",
        "watch your back, you are dead",
        "I am going to stab you",
    ),
    "self_harm": (
        "I want to kill myself",
        "I'm going to end my life tonight",
        "I cut myself again",
        "I don't want to live anymore",
        "nobody would miss me if I died",
        "how many pills does it take to overdose",
    ),
    "sexual": (
        "send me nudes",
        "I want to have sex with you",
        "show me your naked body",
        "horny and looking for sex tonight",
        "let's fuck tonight baby",
        "free porn videos",
        "my cock is so hard for you",
    ),
    "spam": (
        "buy cheap pills online now",
        "click this link to win a free iPhone",
        "earn $5000 a week working from home",
        "limited time offer, huge discount, visit my website",
        "get free followers, follow this link",
        "crypto investment with guaranteed returns, DM me",
        "hot singles in your area, sign up now",
    ),
    "insult": (
        "you are a worthless idiot",
        "nobody likes you, loser",
        "shut up you stupid moron",
        "you're ugly and disgusting",
        "go away, everyone hates you",
        "go kill yourself, nobody wants you here",
    ),
}

# Only these carry over from the message replied to: an insult returned is an insult; a
# spam message's reply is not spam.
CONTEXT_LABELS = ("hate_speech", "offensive", "insult", "threat")
# 0.7: a returned insult reaches review (0.5) but never flag (0.85) on the other
# message's words: a person judges the exchange.
CONTEXT_WEIGHT = 0.7
# "you too", "same to you", "back at you", "so are you", "and your mother", "ditto",
# "likewise", "right back at ya", "no u", "takes one to know one": at most 6 words.
POINTS_BACK = re.compile(
    r"^\W*(?:(?:and |well |no,? )?(?:you|u|ur|your|ya) (?:too|2|as well|also)|"
    r"same (?:to|for) (?:you|u)|(?:right )?back at (?:you|u|ya)|so (?:are|r|do|is) (?:you|u|ya)|"
    r"and (?:you|u|your \w+)|no,? (?:you|u)|ditto|likewise|takes one to know one|"
    r"look who'?s talking|says you|you first)\b[\W\w]{0,20}$",
    re.IGNORECASE,
)
ALLOW_FACTOR = 0.3


def points_back(reply: str) -> bool:
    """A short reply whose meaning is the message it answers."""
    return len(reply.split()) <= 6 and bool(POINTS_BACK.match(reply.strip()))


class TextHead:
    """The trained head and the prototypes, from text_head.npz."""

    def __init__(self, path: Path = HEAD_FILE):
        with np.load(path) as data:
            self.weights, self.bias = data["weights"], data["bias"]
            self.prototypes = data["prototypes"]
            self.prototype_categories = [str(c) for c in data["prototype_categories"]]
            self.centres = dict(
                zip(
                    (str(c) for c in data["categories"]),
                    zip(data["centres"], data["slopes"], strict=True),
                    strict=True,
                )
            )

    def scores(self, vectors: np.ndarray) -> list[dict[str, float]]:
        z = vectors @ self.weights.T + self.bias
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        cos = vectors @ self.prototypes.T
        out = []
        for row, sims in zip(p, cos, strict=True):
            found = {label: float(row[i]) for i, label in enumerate(CLASSES[:2])}
            for category, (centre, slope) in self.centres.items():
                mask = [c == category for c in self.prototype_categories]
                best = float(sims[mask].max())
                found[category] = float(1 / (1 + np.exp(-(best - centre) / slope)))
            out.append({k: round(v, 4) for k, v in found.items()})
        return out
