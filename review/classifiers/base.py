"""Provider-neutral types and score arithmetic shared by all classifiers.

Kept free of heavy imports so the web process can import the package cheaply; the
model runtimes (onnxruntime, cv2, boto3) live in the provider modules only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

CATEGORIES = ("explicit", "suggestive")
CLASSES = ("neutral", "suggestive", "explicit")


class ClassifierError(Exception):
    """A provider failed (bad response, model error, timeout, misconfiguration)."""


@dataclass
class ClassifierResult:
    provider: str
    scores: dict[str, float]  # every name in CATEGORIES, 0..1
    raw: list | dict = field(default_factory=list)  # JSON-serialisable provider output
    elapsed_ms: float = 0.0


class Classifier:
    """Base class of providers; instances are shared per process, so be thread-safe."""

    name: str = ""

    def classify(self, image: Image.Image) -> ClassifierResult:
        """Score an RGB PIL image (possibly JPEG-draft downscaled to >= ~640 px)."""
        raise NotImplementedError


def overall_class(
    scores: dict[str, float], suggestive_floor: float = 0.5, explicit_floor: float = 0.5
) -> tuple[str, float]:
    """Collapse category scores into one class; explicit wins over suggestive."""
    explicit = scores.get("explicit", 0.0)
    suggestive = scores.get("suggestive", 0.0)
    if explicit >= explicit_floor:
        return "explicit", explicit
    if suggestive >= suggestive_floor:
        return "suggestive", suggestive
    return "neutral", 1.0 - max(scores.values(), default=0.0)


def combine(results: list[ClassifierResult]) -> dict[str, float]:
    """Per category the max over providers: any provider flagging is enough."""
    return {
        cat: max((r.scores.get(cat, 0.0) for r in results), default=0.0)
        for cat in CATEGORIES
    }
