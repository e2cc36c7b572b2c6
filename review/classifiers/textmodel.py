"""The local text classifier: MiniLM sentence embeddings with a logistic head, prototype
sentences for what the training data has no labels for, the thread context, and the
policy's term banks.

Everything runs on this machine from files in the repository (``models/``): the int8 ONNX
encoder (review.classifiers.minilm), the head ``text_head.npz`` made by
scripts/train_text_head.py. The text is only ever the model's input, never put inside
instructions to anything.

Labels (and why they count as they do, ``default_labels``):

- ``hate_speech``, ``offensive``: the head, trained on the Davidson tweets (MIT; test split
  accuracy and the TF-IDF baseline in bench/results/text_head.md). Davidson's "offensive"
  is mostly profanity and sexist slurs, often not aimed at anyone ("this fucking game"),
  so it counts 0.6 towards harassment: alone it can send a text to review (0.5) but never
  flag it (0.85).
- ``threat``, ``self_harm``, ``sexual``, ``spam``, ``insult``: the nearest of a few
  prototype sentences per category (``texthead.PROTOTYPES``), its cosine turned into a
  score by a logistic fitted to the benign training tweets: 0.5 at their 99.9th
  percentile (1 in 1,000 reaches review), 0.25 at their 99th.
- ``term_<category>``: a block term of the policy's term banks (review.terms), after
  normalising leetspeak, confusables, spacing and repeats: 1.0; 0.6 inside quotation marks
  or beside an allow term of its category (counter-speech); 0 inside an allow term (a
  reclaimed word). An allow term also scales its category's model labels by 0.3.
- The thread context: a short reply that points back ("you too", "same to you") takes 0.7
  of what the message it answers scored on hate, harassment and threat (to review, never
  flagged on the other message's words alone).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings

from review.categories import Detection
from review.terms import TermSet, terms_for

from .base import Classifier, ClassifierResult
from .minilm import embedder
from .texthead import ALLOW_FACTOR, CONTEXT_LABELS, CONTEXT_WEIGHT, TextHead, points_back


@dataclass(frozen=True)
class WithTerms:
    subject: object
    terms: TermSet | None


class TextModelClassifier(Classifier):
    name = "textmodel"
    media_kinds = ("text",)
    categories = ("hate", "harassment", "violence", "self_harm", "sexual", "spam")
    default_labels = {
        "hate_speech": ("hate", 1.0),
        "offensive": ("harassment", 0.6),
        "insult": ("harassment", 1.0),
        "threat": ("violence", 1.0),
        "self_harm": ("self_harm", 1.0),
        "sexual": ("sexual", 1.0),
        "spam": ("spam", 1.0),
        **{f"term_{c}": (c, 1.0) for c in categories},
    }
    # Which model labels an allow term of a category tempers.
    LABELS_OF = {
        "hate": ("hate_speech",),
        "harassment": ("offensive", "insult"),
        "violence": ("threat",),
        "self_harm": ("self_harm",),
        "sexual": ("sexual",),
        "spam": ("spam",),
    }

    def __init__(self):
        self.head = TextHead()
        self.embedder = embedder(settings.TEXT_MODEL_THREADS)

    def prepare(self, subjects: list, policy=None) -> list:
        """Each text with the policy's term banks (read here, in the analysis's thread)."""
        terms = terms_for(policy) if policy is not None else None
        return [WithTerms(s, terms) for s in subjects]

    def classify(self, subject) -> ClassifierResult:
        return self.classify_batch([subject])[0]

    def model_scores(self, texts: list[str]) -> list[dict[str, float]]:
        return self.head.scores(self.embedder.embed(texts)) if texts else []

    def classify_batch(self, subjects: list) -> list[ClassifierResult]:
        started = time.perf_counter()
        terms = [getattr(s, "terms", None) for s in subjects]
        subjects = [getattr(s, "subject", s) for s in subjects]
        texts = [s.text for s in subjects]
        replies = [i for i, s in enumerate(subjects) if s.previous and points_back(s.text)]
        scored = self.model_scores(texts + [subjects[i].previous for i in replies])
        own, previous = scored[: len(texts)], dict(zip(replies, scored[len(texts) :], strict=True))
        each_ms = (time.perf_counter() - started) * 1000 / max(1, len(subjects))
        results = []
        for index, subject in enumerate(subjects):
            scores = dict(own[index])
            context = None
            if index in previous:
                context = {
                    label: round(CONTEXT_WEIGHT * previous[index][label], 4)
                    for label in CONTEXT_LABELS
                }
                for label, value in context.items():
                    scores[label] = max(scores[label], value)
            matches = terms[index].match(subject.text) if terms[index] is not None else None
            if matches is not None:
                for category in matches.allowed_categories:
                    for label in self.LABELS_OF.get(category, ()):
                        scores[label] = round(scores[label] * ALLOW_FACTOR, 4)
            detections = [Detection((label,), score) for label, score in scores.items()]
            raw = {"model": own[index], "context": context}
            if matches is not None:
                for category, score in matches.block_scores().items():
                    detections.append(Detection((f"term_{category}",), score))
                raw["terms"] = matches.as_list()
            results.append(ClassifierResult(self.name, detections, raw=raw, elapsed_ms=each_ms))
        return results
