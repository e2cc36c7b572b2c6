"""Rekognition provider with a stubbed client, and the registry's failure handling."""

import io
import threading
import time

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.stub import ANY, Stubber
from PIL import Image

from review.categories import DEFAULT_CATEGORIES, Detection, category_scores
from review.classifiers import (
    Classifier,
    ClassifierError,
    ClassifierResult,
    get_classifier,
    registry,
    run_classifiers,
)
from review.classifiers.registry import default_label_map
from review.classifiers.rekognition import (
    RekognitionClassifier,
    detections_of,
    jpeg_bytes,
)

OP = "detect_moderation_labels"
LABELS = default_label_map(["rekognition"])


def scores_from_labels(labels: list[dict]) -> dict:
    """Recorded ModerationLabels through the default label table."""
    return scores_of(ClassifierResult("rekognition", detections_of(labels)))


def scores_of(result) -> dict:
    return category_scores([result], LABELS, DEFAULT_CATEGORIES)


# Recorded response shapes (v7 and v6 taxonomies); ResponseMetadata omitted.
V7_EXPLICIT = {
    "ModerationLabels": [
        {"Confidence": 98.25, "Name": "Explicit", "ParentName": "", "TaxonomyLevel": 1},
        {
            "Confidence": 98.25,
            "Name": "Explicit Nudity",
            "ParentName": "Explicit",
            "TaxonomyLevel": 2,
        },
        {
            "Confidence": 96.5,
            "Name": "Exposed Female Nipple",
            "ParentName": "Explicit Nudity",
            "TaxonomyLevel": 3,
        },
        {
            "Confidence": 71.0,
            "Name": "Non-Explicit Nudity of Intimate parts and Kissing",
            "ParentName": "",
            "TaxonomyLevel": 1,
        },
    ],
    "ModerationModelVersion": "7.0",
    "ContentTypes": [{"Confidence": 88.0, "Name": "Illustrated"}],
}
V7_SUGGESTIVE = {
    "ModerationLabels": [
        {
            "Confidence": 91.0,
            "Name": "Swimwear or Underwear",
            "ParentName": "",
            "TaxonomyLevel": 1,
        },
        {
            "Confidence": 91.0,
            "Name": "Female Swimwear or Underwear",
            "ParentName": "Swimwear or Underwear",
            "TaxonomyLevel": 2,
        },
        {"Confidence": 64.0, "Name": "Alcohol", "ParentName": "", "TaxonomyLevel": 1},
    ],
    "ModerationModelVersion": "7.0",
}
V6_SUGGESTIVE = {
    "ModerationLabels": [
        {"Confidence": 87.5, "Name": "Suggestive", "ParentName": ""},
        {"Confidence": 87.5, "Name": "Female Swimwear Or Underwear", "ParentName": "Suggestive"},
    ],
    "ModerationModelVersion": "6.1",
}
V6_EXPLICIT = {
    "ModerationLabels": [
        {"Confidence": 93.0, "Name": "Explicit Nudity", "ParentName": ""},
        {"Confidence": 93.0, "Name": "Graphic Female Nudity", "ParentName": "Explicit Nudity"},
    ],
    "ModerationModelVersion": "6.1",
}
EMPTY = {"ModerationLabels": [], "ModerationModelVersion": "7.0"}


def _client(endpoint_url=None, **config):
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return session.client("rekognition", endpoint_url=endpoint_url, config=Config(**config))


@pytest.fixture
def stubbed():
    clf = RekognitionClassifier(client=_client(), min_confidence=50.0)
    with Stubber(clf.client) as stub:
        yield clf, stub
        stub.assert_no_pending_responses()


@pytest.fixture
def image():
    return Image.new("RGB", (640, 480), (90, 140, 200))


@pytest.mark.parametrize(
    ("response", "explicit", "suggestive"),
    [
        (V7_EXPLICIT, 0.9825, 0.9825),
        (V7_SUGGESTIVE, 0.0, 0.91),
        (V6_SUGGESTIVE, 0.0, 0.875),
        (V6_EXPLICIT, 0.93, 0.93),
        (EMPTY, 0.0, 0.0),
    ],
)
def test_recorded_responses_map_to_scores(stubbed, image, response, explicit, suggestive):
    clf, stub = stubbed
    params = {"Image": {"Bytes": ANY}, "MinConfidence": 50.0}
    stub.add_response(OP, response, params)
    result = clf.classify(image)
    assert result.provider == "rekognition"
    assert scores_of(result) == pytest.approx({"explicit": explicit, "suggestive": suggestive})
    assert result.raw["labels"] == response["ModerationLabels"]
    assert result.raw["model_version"] == response["ModerationModelVersion"]


def test_unknown_child_label_falls_back_to_parent():
    labels = [{"Confidence": 80.0, "Name": "Some New Label", "ParentName": "Explicit Nudity"}]
    assert scores_from_labels(labels) == pytest.approx({"explicit": 0.8, "suggestive": 0.8})
    other = [{"Confidence": 99.0, "Name": "Graphic Violence", "ParentName": "Violence"}]
    assert scores_from_labels(other) == {"explicit": 0.0, "suggestive": 0.0}
    # A known child label counts through its own row, not its parent's.
    child = [{"Confidence": 70.0, "Name": "Swimwear Or Underwear", "ParentName": "Explicit"}]
    assert scores_from_labels(child) == pytest.approx({"explicit": 0.0, "suggestive": 0.7})


@pytest.mark.parametrize(
    "code", ["InvalidImageFormatException", "ImageTooLargeException", "AccessDeniedException"]
)
def test_service_error_raises_classifier_error(stubbed, image, code):
    clf, stub = stubbed
    stub.add_client_error(OP, service_error_code=code, service_message="nope")
    with pytest.raises(ClassifierError, match=code):
        clf.classify(image)


def test_unreachable_endpoint_raises_classifier_error(image):
    """A closed local port gives botocore's EndpointConnectionError without network."""
    client = _client("http://127.0.0.1:9", connect_timeout=1, retries={"max_attempts": 1})
    clf = RekognitionClassifier(client=client)
    with pytest.raises(ClassifierError, match="Could not connect.*127.0.0.1:9"):
        clf.classify(image)


def test_client_created_lazily_with_region(settings):
    assert RekognitionClassifier().client.meta.region_name == "us-east-1"
    settings.AWS_REKOGNITION_REGION = "eu-west-1"
    clf = RekognitionClassifier()
    assert clf._client is None
    assert clf.client is clf.client
    assert clf.client.meta.region_name == "eu-west-1"


def test_jpeg_bytes_stays_under_limit():
    noise = np.random.default_rng(0).integers(0, 256, (1200, 1600, 3), dtype=np.uint8)
    image = Image.fromarray(noise)
    data = jpeg_bytes(image, max_bytes=300_000)
    assert len(data) <= 300_000 and data[:2] == b"\xff\xd8"
    smaller = Image.open(io.BytesIO(data))
    assert smaller.width < 1600 and smaller.width / smaller.height == pytest.approx(4 / 3, 0.01)
    assert len(jpeg_bytes(Image.new("L", (64, 64)))) < 5 * 1024 * 1024


# --- registry -------------------------------------------------------------------------


class FakeClassifier(Classifier):
    name = "fake"

    def classify(self, image):
        return ClassifierResult(self.name, [Detection(("explicit",), 0.1)], [], 1.0)


class BoomClassifier(Classifier):
    name = "boom"

    def classify(self, image):
        raise RuntimeError("model exploded")


class SlowClassifier(Classifier):
    """Blocks until released, so the test does not leave a sleeping thread behind."""

    name = "slow"

    def __init__(self):
        self.release = threading.Event()

    def classify(self, image):
        self.release.wait(10)
        return FakeClassifier().classify(image)


def test_get_classifier_caches_and_rejects_unknown():
    assert get_classifier("rekognition") is get_classifier("rekognition")
    with pytest.raises(ClassifierError, match="unknown"):
        get_classifier("no-such-provider")


def test_run_classifiers_collects_failures(monkeypatch, image):
    rek = RekognitionClassifier(client=_client())
    for name, inst in (("fake", FakeClassifier()), ("boom", BoomClassifier()), ("rek", rek)):
        monkeypatch.setitem(registry._instances, name, inst)
    with Stubber(rek.client) as stub:
        stub.add_client_error(OP, service_error_code="ThrottlingException")
        results, errors = run_classifiers(["fake", "boom", "rek", "nope"], image)
    assert [r.provider for r in results] == ["fake"]
    assert set(errors) == {"boom", "rek", "nope"}
    assert "model exploded" in errors["boom"]
    assert "ThrottlingException" in errors["rek"]
    assert "unknown" in errors["nope"]


def test_run_classifiers_times_out_slow_provider(monkeypatch, image):
    slow = SlowClassifier()
    monkeypatch.setitem(registry._instances, "slow", slow)
    monkeypatch.setitem(registry._instances, "fake", FakeClassifier())
    try:
        start = time.monotonic()
        results, errors = run_classifiers(["fake", "slow"], image, timeout_s=0.3)
        assert time.monotonic() - start < 2
        assert [r.provider for r in results] == ["fake"]
        assert "timed out" in errors["slow"]
    finally:
        slow.release.set()
