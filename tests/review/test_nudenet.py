"""NudeNet provider on real images, and equivalence with nudenet's own detector."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from review.categories import DEFAULT_CATEGORIES, category_scores, overall_class
from review.classifiers import get_classifier
from review.classifiers import nudenet as nn
from review.classifiers.registry import default_label_map

LABELS = default_label_map(["nudenet"])


def scores_of(result) -> dict:
    """A NudeNet result through the default label table."""
    return category_scores([result], LABELS, DEFAULT_CATEGORIES)


TESTDATA = Path(__file__).resolve().parents[1] / "fixtures"
VENUS = TESTDATA / "venus-of-urbino-titian.jpg"


@pytest.fixture(scope="module")
def clf():
    return get_classifier("nudenet")


@pytest.fixture(scope="module")
def venus():
    if not VENUS.is_file():
        pytest.skip(f"test image missing: {VENUS}")
    with Image.open(VENUS) as im:
        return im.convert("RGB")


@pytest.fixture(scope="module")
def reference():
    """nudenet's own detector (its own session), the ground truth for equivalence."""
    from nudenet import NudeDetector

    return NudeDetector()


def _bgr(image):
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[..., ::-1])


def test_venus_is_explicit(clf, venus):
    result = clf.classify(venus)
    found = [(d["class"], d["score"]) for d in result.raw]
    breasts = [s for c, s in found if c == "FEMALE_BREAST_EXPOSED"]
    assert len(breasts) == 2 and all(s == pytest.approx(0.65, abs=0.05) for s in breasts)
    assert dict(found)["BELLY_EXPOSED"] == pytest.approx(0.77, abs=0.05)
    assert "FACE_FEMALE" in dict(found)
    assert scores_of(result)["explicit"] > 0.5
    assert scores_of(result)["suggestive"] >= scores_of(result)["explicit"]
    assert overall_class(scores_of(result), DEFAULT_CATEGORIES)[0] == "explicit"
    assert result.provider == "nudenet" and result.elapsed_ms > 0
    json.dumps(result.raw)  # stored as JSON by the pipeline


@pytest.mark.parametrize("name", ["coffee", "rocket", "chelsea"])
def test_benign_photos_are_not_explicit(clf, name):
    result = clf.classify(Image.fromarray(getattr(data, name)()))
    assert scores_of(result)["explicit"] < 0.3
    assert overall_class(scores_of(result), DEFAULT_CATEGORIES)[0] != "explicit"


def test_solid_colour_is_neutral(clf):
    result = clf.classify(Image.new("RGB", (800, 600), (200, 120, 90)))
    assert overall_class(scores_of(result), DEFAULT_CATEGORIES)[0] == "neutral"
    assert set(scores_of(result)) == {"explicit", "suggestive"}


def test_non_rgb_modes_are_accepted(clf, venus):
    rgb = scores_of(clf.classify(venus))
    rgba = scores_of(clf.classify(venus.convert("RGBA")))
    assert rgba == pytest.approx(rgb)
    assert set(scores_of(clf.classify(venus.convert("L")))) == {"explicit", "suggestive"}


def _variants(venus):
    return {
        "venus": venus,
        "venus-tall": venus.transpose(Image.Transpose.ROTATE_90),
        "venus-cropped-at-edge": venus.crop((120, 60, 380, 267)),
        "venus-upscaled": venus.resize((1024, 720)),
        "astronaut": Image.fromarray(data.astronaut()),
        "coffee": Image.fromarray(data.coffee()),
    }


@pytest.mark.parametrize(
    "variant",
    ["venus", "venus-tall", "venus-cropped-at-edge", "venus-upscaled", "astronaut", "coffee"],
)
def test_detections_equal_nudenet(clf, reference, venus, variant):
    image = _variants(venus)[variant]
    ours = clf.classify(image).raw
    theirs = reference.detect(_bgr(image))
    assert [d["class"] for d in ours] == [d["class"] for d in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a["score"] == pytest.approx(b["score"], abs=1e-3)
        assert np.abs(np.subtract(a["box"], b["box"])).max() <= 2


def test_detections_equal_nudenet_from_file(clf, reference, venus):
    """Also against nudenet's own decode path (cv2.imread), tolerating decoder noise."""
    ours = clf.classify(venus).raw
    theirs = reference.detect(str(VENUS))
    assert [d["class"] for d in ours] == [d["class"] for d in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a["score"] == pytest.approx(b["score"], abs=1e-3)
        assert np.abs(np.subtract(a["box"], b["box"])).max() <= 2


def test_preprocess_matches_read_image(venus):
    from nudenet import nudenet as upstream

    for image in (venus, venus.transpose(Image.Transpose.ROTATE_90)):
        blob, width, height = nn.preprocess(image)
        ref = upstream._read_image(_bgr(image), nn.INPUT_SIZE)
        assert blob.dtype == np.float32 and blob.shape == ref[0].shape == (1, 3, 320, 320)
        np.testing.assert_allclose(blob, ref[0], atol=1e-6)
        assert (width, height) == (ref[5], ref[6])


def test_postprocess_matches_loop_on_synthetic_output():
    """Random raw outputs incl. boxes past the borders: same result as nudenet's loop."""
    from nudenet import nudenet as upstream

    rng = np.random.default_rng(7)
    n = 2100
    out = np.zeros((1, 4 + len(nn.LABELS), n), np.float32)
    out[0, 0:2] = rng.uniform(-20, 340, (2, n))
    out[0, 2:4] = rng.uniform(2, 120, (2, n))
    out[0, 4:] = rng.uniform(0, 0.3, (len(nn.LABELS), n)) ** 2
    hot = rng.choice(n, 60, replace=False)
    out[0, 4 + rng.integers(0, len(nn.LABELS), 60), hot] = rng.uniform(0.2, 0.99, 60)
    for width, height in ((380, 267), (267, 380), (1024, 1024)):
        ours = nn.postprocess(out, width, height)
        theirs = upstream._postprocess(
            [out],
            max(width, height) - width,
            max(width, height) - height,
            None,
            None,
            width,
            height,
            320,
            320,
        )
        assert ours and ours == theirs


def test_labels_match_nudenet():
    from nudenet import nudenet as upstream

    assert nn.LABELS == tuple(getattr(upstream, "__labels"))
    assert nn.get_session().get_outputs()[0].shape[1] == 4 + len(nn.LABELS)


def test_model_loaded_once_per_process(clf, venus):
    assert get_classifier("nudenet") is clf
    session = clf.session
    clf.classify(venus)
    assert clf.session is session is nn.get_session()
    assert nn.NudeNetClassifier().session is session
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert nn.model_path().name == "320n.onnx" and nn.model_path().is_file()
