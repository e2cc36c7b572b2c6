"""Categories and their scores: from provider labels to one score per category.

Pure functions over plain values, so the decision engine and its tests need no database.
A provider reports labelled detections (NudeNet's body parts, Rekognition's moderation
labels, a text model's classes); the policy's label rows say which category each label
counts towards and with what weight; a category's score is the highest weighted score of
its labels over every provider ("any provider flagging is enough"), and a category with
``at_least`` is never scored below that one (explicit content is also suggestive).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# provider -> label in lower case -> [(category, weight)]
LabelMap = Mapping[str, Mapping[str, Sequence[tuple[str, float]]]]
# The overall class is the most severe category scoring at least this; else neutral.
CLASS_FLOOR = 0.5
NEUTRAL = "neutral"


@dataclass(frozen=True)
class CategoryRule:
    name: str
    label: str
    review_at: float
    flag_at: float
    rank: int = 0
    media_kind: str = "image"
    at_least: str | None = None


# Seeded into every policy (review.models.Policy.seed_defaults); edited in admin after.
DEFAULT_CATEGORIES = (
    CategoryRule("explicit", "Explicit", review_at=0.30, flag_at=0.60, rank=20),
    # flag_at 1.0: suggestive content is never flagged by a score alone.
    CategoryRule(
        "suggestive", "Suggestive", review_at=0.50, flag_at=1.0, rank=10, at_least="explicit"
    ),
)
# The text kind's (review.classifiers.textmodel; seeded with the above). Self-harm is never
# flagged by a score: a person reads it (and may offer help), nobody is struck.
TEXT_CATEGORIES = (
    CategoryRule("violence", "Violence or threat", 0.50, 0.85, rank=19, media_kind="text"),
    CategoryRule("hate", "Hate speech", 0.50, 0.85, rank=18, media_kind="text"),
    CategoryRule("self_harm", "Self-harm", 0.50, 1.0, rank=17, media_kind="text"),
    CategoryRule("harassment", "Harassment", 0.50, 0.85, rank=16, media_kind="text"),
    CategoryRule("sexual", "Sexual", 0.50, 0.85, rank=15, media_kind="text"),
    CategoryRule("spam", "Spam", 0.50, 0.85, rank=5, media_kind="text"),
)


def sort_rules(rules: Iterable[CategoryRule]) -> list[CategoryRule]:
    """Most severe first; the order decide() checks them in."""
    return sorted(rules, key=lambda r: (-r.rank, r.name))


@dataclass(frozen=True)
class Detection:
    """One labelled finding: its names, most specific first (Rekognition gives a label and
    its parent), and a score from 0 to 1."""

    names: tuple[str, ...]
    score: float


def label_scores(
    provider: str,
    detections: Iterable[Detection],
    labels: LabelMap,
    categories: Iterable[str] = (),
) -> dict[str, float]:
    """One provider's category scores: each detection counts through the first of its
    names that has a label row (so a child label new to the taxonomy lands in its
    parent's category); without one, a name equal to a category's counts for it with
    weight 1 (a provider that scores categories directly, as text models do)."""
    table = labels.get(provider, {})
    direct = {name.lower(): [(name, 1.0)] for name in categories}
    scores: dict[str, float] = {}
    for detection in detections:
        for name in detection.names:
            weights = table.get(name.lower()) or direct.get(name.lower())
            if weights is None:
                continue
            for category, weight in weights:
                scores[category] = max(scores.get(category, 0.0), weight * detection.score)
            break
    return scores


def category_scores(
    results: Iterable, labels: LabelMap, rules: Sequence[CategoryRule]
) -> dict[str, float]:
    """Every rule's score (0 when nothing counted) over all provider results."""
    scores = {rule.name: 0.0 for rule in rules}
    for result in results:
        found = label_scores(result.provider, result.detections, labels, scores)
        for name, value in found.items():
            if name in scores:
                scores[name] = max(scores[name], value)
    for rule in rules:
        if rule.at_least in scores:
            scores[rule.name] = max(scores[rule.name], scores[rule.at_least])
    return scores


def overall_class(
    scores: Mapping[str, float], rules: Sequence[CategoryRule], floor: float = CLASS_FLOOR
) -> tuple[str, float]:
    """Collapse category scores into one class: the most severe category at the floor or
    above, with its score; else neutral, with 1 - the highest score."""
    for rule in sort_rules(rules):
        score = scores.get(rule.name, 0.0)
        if score >= floor:
            return rule.name, score
    return NEUTRAL, 1.0 - max(scores.values(), default=0.0)
