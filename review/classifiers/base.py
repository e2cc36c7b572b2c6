"""Provider-neutral types shared by all classifiers.

Kept free of heavy imports so the web process can import the package cheaply; the model
runtimes (onnxruntime, cv2, boto3) live in the provider modules only.

A provider declares the media kinds it accepts and its default label table (label ->
(category, weight)), which seeds the policy's label rows; at run time it only reports
labelled detections, and review.categories turns them into category scores with the
rows an admin may have edited.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from review.categories import Detection


class ClassifierError(Exception):
    """A provider failed (bad response, model error, timeout, misconfiguration)."""


@dataclass
class ClassifierResult:
    provider: str
    detections: list[Detection]
    raw: list | dict = field(default_factory=list)  # JSON-serialisable provider output
    elapsed_ms: float = 0.0


class Classifier:
    """Base class of providers; instances are shared per process, so be thread-safe."""

    name: str = ""
    media_kinds: tuple[str, ...] = ("image",)
    categories: tuple[str, ...] = ()  # what it scores; each needs a Category row to count
    default_labels: dict[str, tuple[str, float]] = {}

    def warm(self) -> None:
        """Load what the first item would otherwise wait for (a model file): a worker
        process calls this when it starts (moderation_site.celery). Instances that load
        everything when made need nothing more."""

    def classify(self, subject) -> ClassifierResult:
        """Detections in a decoded item (an RGB PIL image, possibly JPEG-draft downscaled
        to >= ~640 px, for images)."""
        raise NotImplementedError

    def prepare(self, subjects: list, policy=None) -> list:
        """Called in the analysis's own thread before ``classify_batch`` (which runs in
        the fan-out pool, where the database must not be read): what the provider needs
        of the policy's rows goes with the subjects (the text model's term banks)."""
        return subjects

    def classify_batch(self, subjects: list) -> list[ClassifierResult]:
        """One result per subject (the sampled frames of an animation), in order. A
        provider whose model takes a batch overrides this to make one call."""
        return [self.classify(subject) for subject in subjects]
