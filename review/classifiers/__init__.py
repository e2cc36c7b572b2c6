"""Image classifiers (NudeNet locally, optional AWS Rekognition) behind one small API.

Only light modules are imported here; providers load their runtimes on first use.
"""

from .base import (
    CATEGORIES,
    CLASSES,
    Classifier,
    ClassifierError,
    ClassifierResult,
    combine,
    overall_class,
)
from .registry import PROVIDERS, get_classifier, run_classifiers

__all__ = [
    "CATEGORIES",
    "CLASSES",
    "PROVIDERS",
    "Classifier",
    "ClassifierError",
    "ClassifierResult",
    "combine",
    "get_classifier",
    "overall_class",
    "run_classifiers",
]
