"""AWS Rekognition ``DetectModerationLabels`` as an (optional, paid) second opinion.

Off unless the policy lists "rekognition"; the boto3 client is created on first use in
region ``settings.AWS_REKOGNITION_REGION`` (default us-east-1). Minimum confidence comes
from ``settings.AWS_REKOGNITION_MIN_CONFIDENCE`` (default 50, the service default).

Default label -> category table (seeds the policy's label rows). A label is looked up by
Name, then by ParentName (so a child label added to the taxonomy later still lands in its
parent's category); all weights are 1.0, Confidence (0-100) / 100 is the score, category
score = max. Lists cover moderation
model v7 (L1 "Explicit", "Non-Explicit Nudity of Intimate parts and Kissing",
"Swimwear or Underwear") and v6 (L1 "Explicit Nudity", "Suggestive"):

explicit
    Explicit, Explicit Nudity, Explicit Sexual Activity, Sex Toys, Exposed Male
    Genitalia, Exposed Female Genitalia, Exposed Buttocks or Anus, Exposed Female
    Nipple; v6: Nudity, Graphic Male/Female Nudity, Sexual Activity, Illustrated
    Explicit Nudity, Adult Toys
suggestive
    Non-Explicit Nudity of Intimate parts and Kissing, Non-Explicit Nudity, Bare Back,
    Exposed Male Nipple, Partially Exposed Buttocks, Partially Exposed Female Breast,
    Implied Nudity, Obstructed Intimate Parts, Obstructed Female Nipple, Obstructed
    Male Genitalia, Kissing on the Lips, Swimwear or Underwear, Female/Male Swimwear or
    Underwear; v6: Suggestive, Partial Nudity, Barechested Male, Revealing Clothes,
    Sexual Situations
neutral
    everything else (Violence, Drugs & Tobacco, Alcohol, Gambling, ...: kept in raw)

As with NudeNet, the suggestive score is at least the explicit score (``at_least``).
"""

from __future__ import annotations

import io
import math
import threading
import time

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from review.categories import Detection

from .base import Classifier, ClassifierError, ClassifierResult

EXPLICIT_LABELS = (
    "Explicit",
    "Explicit Nudity",
    "Explicit Sexual Activity",
    "Sex Toys",
    "Exposed Male Genitalia",
    "Exposed Female Genitalia",
    "Exposed Buttocks or Anus",
    "Exposed Female Nipple",
    # v6
    "Nudity",
    "Graphic Male Nudity",
    "Graphic Female Nudity",
    "Sexual Activity",
    "Illustrated Explicit Nudity",
    "Adult Toys",
)
SUGGESTIVE_LABELS = (
    "Non-Explicit Nudity of Intimate parts and Kissing",
    "Non-Explicit Nudity",
    "Bare Back",
    "Exposed Male Nipple",
    "Partially Exposed Buttocks",
    "Partially Exposed Female Breast",
    "Implied Nudity",
    "Obstructed Intimate Parts",
    "Obstructed Female Nipple",
    "Obstructed Male Genitalia",
    "Kissing on the Lips",
    "Swimwear or Underwear",
    "Female Swimwear or Underwear",
    "Male Swimwear or Underwear",
    # v6
    "Suggestive",
    "Partial Nudity",
    "Barechested Male",
    "Revealing Clothes",
    "Sexual Situations",
)
# Case-insensitive (label rows are matched so): v6 spells "Swimwear Or Underwear", v7
# "Swimwear or Underwear".
DEFAULT_LABELS = {
    **{name: ("explicit", 1.0) for name in EXPLICIT_LABELS},
    **{name: ("suggestive", 1.0) for name in SUGGESTIVE_LABELS},
}

MAX_IMAGE_BYTES = 5 * 1024 * 1024  # Rekognition's limit for images passed as Bytes


def detections_of(labels: list[dict]) -> list[Detection]:
    """ModerationLabels (Confidence 0-100) as detections named by Name, then ParentName."""
    out = []
    for label in labels:
        names = tuple(n for n in (label.get("Name"), label.get("ParentName")) if n)
        score = min(1.0, max(0.0, float(label.get("Confidence", 0.0)) / 100.0))
        if names:
            out.append(Detection(names, score))
    return out


def jpeg_bytes(image, max_bytes: int = MAX_IMAGE_BYTES, quality: int = 90) -> bytes:
    """Encode as JPEG under `max_bytes`, downscaling if needed (rare for photos)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    for _ in range(6):
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=quality)
        data = buf.getvalue()
        if len(data) <= max_bytes:
            return data
        factor = math.sqrt(max_bytes / len(data)) * 0.9
        size = (max(1, int(image.width * factor)), max(1, int(image.height * factor)))
        image = image.resize(size)
    raise ClassifierError(f"cannot encode image under {max_bytes} bytes")


class RekognitionClassifier(Classifier):
    """``raw`` is {"model_version", "labels": [ModerationLabel], "content_types"}."""

    name = "rekognition"
    media_kinds = ("image",)
    categories = ("explicit", "suggestive")
    default_labels = DEFAULT_LABELS

    def __init__(self, client=None, min_confidence: float | None = None):
        self._client = client
        self._lock = threading.Lock()
        if min_confidence is None:
            min_confidence = settings.AWS_REKOGNITION_MIN_CONFIDENCE
        self.min_confidence = min_confidence

    @property
    def client(self):
        """Created on first use: boto3 is slow to import and needs a region."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3

                    region = settings.AWS_REKOGNITION_REGION
                    # Own session: boto3's default session is not thread-safe.
                    self._client = boto3.session.Session().client(
                        "rekognition",
                        region_name=region,
                        config=Config(
                            connect_timeout=5,
                            read_timeout=20,
                            retries={"max_attempts": 3, "mode": "standard"},
                        ),
                    )
        return self._client

    def classify(self, image) -> ClassifierResult:
        start = time.perf_counter()
        data = jpeg_bytes(image)
        try:
            response = self.client.detect_moderation_labels(
                Image={"Bytes": data}, MinConfidence=self.min_confidence
            )
        except (ClientError, BotoCoreError) as exc:
            raise ClassifierError(f"Rekognition failed: {exc}") from exc
        labels = response.get("ModerationLabels")
        if not isinstance(labels, list):
            raise ClassifierError("Rekognition response has no ModerationLabels")
        return ClassifierResult(
            provider=self.name,
            detections=detections_of(labels),
            raw={
                "model_version": response.get("ModerationModelVersion"),
                "labels": labels,
                "content_types": response.get("ContentTypes", []),
            },
            elapsed_ms=(time.perf_counter() - start) * 1000,
        )
