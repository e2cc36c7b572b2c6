"""Classifiers (NudeNet locally, optional AWS Rekognition) behind one small API.

Only light modules are imported here; providers load their runtimes on first use.
"""

from .base import Classifier, ClassifierError, ClassifierResult
from .registry import (
    PROVIDERS,
    classify_frames,
    get_classifier,
    provider_class,
    providers_for,
    run_classifiers,
)

__all__ = [
    "PROVIDERS",
    "Classifier",
    "ClassifierError",
    "ClassifierResult",
    "classify_frames",
    "get_classifier",
    "provider_class",
    "providers_for",
    "run_classifiers",
]
