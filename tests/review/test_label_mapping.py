"""Pure score arithmetic: detection/label mapping on recorded outputs, classes, combine."""

import subprocess
import sys
from pathlib import Path

import pytest

from review.categories import DEFAULT_CATEGORIES, Detection, category_scores, overall_class
from review.classifiers import ClassifierResult
from review.classifiers.nudenet import DEFAULT_LABELS, LABELS, detections_of
from review.classifiers.registry import default_label_map

DEFAULTS = default_label_map()
RULES = DEFAULT_CATEGORIES


def scores_from_detections(detections) -> dict:
    """NudeNet's recorded detections through the default label table."""
    result = ClassifierResult("nudenet", detections_of(detections))
    return category_scores([result], DEFAULTS, RULES)


# nudenet 3.4.2 on tests/fixtures/venus-of-urbino-titian.jpg
VENUS = [
    {"class": "BELLY_EXPOSED", "score": 0.77143394947052, "box": [122, 148, 52, 40]},
    {"class": "FACE_FEMALE", "score": 0.7040573954582214, "box": [58, 93, 32, 30]},
    {"class": "FEMALE_BREAST_EXPOSED", "score": 0.6634125709533691, "box": [107, 125, 29, 27]},
    {"class": "FEMALE_BREAST_EXPOSED", "score": 0.6450768709182739, "box": [80, 134, 31, 27]},
    {"class": "FEET_EXPOSED", "score": 0.3096321225166321, "box": [314, 200, 56, 31]},
]
BIKINI = [
    {"class": "FEMALE_BREAST_COVERED", "score": 0.71, "box": [100, 80, 60, 40]},
    {"class": "BUTTOCKS_COVERED", "score": 0.55, "box": [90, 200, 80, 60]},
    {"class": "BELLY_EXPOSED", "score": 0.8, "box": [100, 130, 60, 50]},
    {"class": "FACE_FEMALE", "score": 0.9, "box": [110, 10, 40, 40]},
]
SHIRTLESS_MAN = [
    {"class": "MALE_BREAST_EXPOSED", "score": 0.82, "box": [50, 60, 100, 60]},
    {"class": "ARMPITS_EXPOSED", "score": 0.4, "box": [20, 60, 30, 30]},
    {"class": "FACE_MALE", "score": 0.88, "box": [80, 0, 40, 40]},
]
NEUTRAL_ONLY = [
    {"class": "FACE_FEMALE", "score": 0.95, "box": [0, 0, 10, 10]},
    {"class": "FEET_EXPOSED", "score": 0.9, "box": [0, 0, 10, 10]},
    {"class": "FEET_COVERED", "score": 0.9, "box": [0, 0, 10, 10]},
    {"class": "BELLY_COVERED", "score": 0.9, "box": [0, 0, 10, 10]},
    {"class": "ARMPITS_COVERED", "score": 0.9, "box": [0, 0, 10, 10]},
]
GENITALIA = [
    {"class": "MALE_GENITALIA_EXPOSED", "score": 0.41, "box": [0, 0, 10, 10]},
    {"class": "FEMALE_BREAST_COVERED", "score": 0.6, "box": [0, 0, 10, 10]},
]


@pytest.mark.parametrize(
    ("detections", "explicit", "suggestive", "klass"),
    [
        (VENUS, 0.6634125709533691, 0.6634125709533691, "explicit"),
        (BIKINI, 0.0, 0.71, "suggestive"),
        # MALE_BREAST_EXPOSED weighs 0.6: 0.82 counts 0.492, just below review (0.50).
        (SHIRTLESS_MAN, 0.0, 0.82 * 0.6, "neutral"),
        (NEUTRAL_ONLY, 0.0, 0.0, "neutral"),
        (GENITALIA, 0.41, 0.6, "suggestive"),
        ([], 0.0, 0.0, "neutral"),
    ],
)
def test_scores_from_detections(detections, explicit, suggestive, klass):
    scores = scores_from_detections(detections)
    assert scores == pytest.approx({"explicit": explicit, "suggestive": suggestive})
    assert overall_class(scores, RULES)[0] == klass


def test_every_mapped_label_exists():
    assert set(DEFAULT_LABELS) <= set(LABELS)
    assert {category for category, _ in DEFAULT_LABELS.values()} == {"explicit", "suggestive"}


def test_label_rows_seeded_from_the_defaults_decide_the_scores(policy):
    """The admin-edited table is what counts: halving a weight halves the category."""
    assert policy.label_map()["nudenet"] == DEFAULTS["nudenet"]
    result = ClassifierResult("nudenet", detections_of(VENUS))
    rules = policy.category_rules("image")
    before = category_scores([result], policy.label_map(), rules)
    assert before["explicit"] == pytest.approx(0.6634125709533691)
    policy.labels.filter(label="FEMALE_BREAST_EXPOSED").update(weight=0.5)
    after = category_scores([result], policy.label_map(), rules)
    assert after["explicit"] == pytest.approx(0.6634125709533691 / 2)


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ({"explicit": 0.5, "suggestive": 0.5}, ("explicit", 0.5)),
        ({"explicit": 0.4999, "suggestive": 0.9}, ("suggestive", 0.9)),
        ({"explicit": 0.4999, "suggestive": 0.5}, ("suggestive", 0.5)),
        ({"explicit": 0.3, "suggestive": 0.4999}, ("neutral", 0.5001)),
        ({"explicit": 0.0, "suggestive": 0.0}, ("neutral", 1.0)),
        ({}, ("neutral", 1.0)),
    ],
)
def test_overall_class_boundaries(scores, expected):
    klass, confidence = overall_class(scores, RULES)
    assert klass == expected[0] and confidence == pytest.approx(expected[1])


def test_overall_class_custom_floor():
    scores = {"explicit": 0.6, "suggestive": 0.7}
    assert overall_class(scores, RULES, floor=0.65)[0] == "suggestive"
    assert overall_class(scores, RULES, floor=0.75) == ("neutral", pytest.approx(0.3))


def _result(provider, **scores):
    """A provider that scores categories directly (its labels are the categories)."""
    detections = [Detection((name,), score) for name, score in scores.items()]
    return ClassifierResult(provider=provider, detections=detections, raw=[], elapsed_ms=1.0)


def test_combine_takes_max_per_category():
    combined = category_scores(
        [_result("a", explicit=0.2, suggestive=0.9), _result("b", explicit=0.7, suggestive=0.1)],
        {},
        RULES,
    )
    assert combined == {"explicit": 0.7, "suggestive": 0.9}


def test_combine_empty_and_missing_keys():
    assert category_scores([], {}, RULES) == {"explicit": 0.0, "suggestive": 0.0}
    # Suggestive is never below explicit (its at_least), whichever provider scored it.
    only = category_scores([_result("a", explicit=0.3)], {}, RULES)
    assert only == {"explicit": 0.3, "suggestive": 0.3}


def test_package_import_is_light():
    """The web process imports the package; runtimes must load only with a provider."""
    code = (
        "import sys, review.classifiers as c; c.PROVIDERS;"
        "heavy = {'onnxruntime', 'cv2', 'boto3', 'botocore'} & set(sys.modules);"
        "assert not heavy, heavy"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)
