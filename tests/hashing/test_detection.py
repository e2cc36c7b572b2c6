"""The detection test set (issue 9) against the product's default policy.

The set (tests/detection.py): 8 bank photos from scikit-image, 20 copies of each (exact,
recompressed, resized, greyscale, brighter, watermarked, cropped, mirrored, rotated ±3°/±5°
with black corners and cropped to content, and a combination), and 43 innocent pictures, 16
of them flat or low-detail. The bank is made with ``services.add_images``, every copy is
hashed as an upload and voted on by ``matcher.vote`` under ``Policy.current()``'s rules, and
near copies among the low-detail pictures are looked for with ``find_duplicates``.

Aims: recall ≥ 0.98 over all variants, no false match, no copy blocked as another bank
picture, no near-duplicate pair among the low-detail pictures, a margin per voter.

The defaults before issue 9 §2 missed rotated copies (and the copies whose crop a rotation
adds): 0.744 overall. bench/detection.py measured the alternatives; the product adopted
rotated reference versions (hashing.references) and any two of the four strong voters
carrying a match (weights 2, quorum 4), which blocked 159 of 160. The per-variant minimums
below are that, less one copy of slack for the hardest variants.
"""

import pytest
from django.db import transaction

from hashing import matcher
from hashing.algorithms import names
from hashing.duplicates import item_index
from review.models import Policy
from tests import detection

# The module's one evaluation (below) uses the database outside any test's transaction; the
# mark makes pytest-django create the test database when this module runs alone.
pytestmark = pytest.mark.django_db

# Copies of 8 blocked at least, per variant.
MINIMUM = dict.fromkeys(detection.VARIANTS, 8)
MINIMUM.update(
    {
        # The watermark's half-opaque badge on the Hubble field's black sky moves aHash 19
        # bits and pHash 24: only dHash (9) still agrees, so one copy in 8 passes even under
        # the recommended configuration.
        "watermark": 7,
        "crop_10pc": 7,
        **{v: 7 for v in detection.ROTATION_VARIANTS},
    }
)

# What the defaults before issue 9 §2 blocked (of 8): every variant not named here was
# already caught in full, and must stay so.
BEFORE_ROTATED_REFERENCES = {
    "watermark": 6,
    "crop_10pc": 3,
    "rotate_+5": 3,
    "rotate_-5": 3,
    "rotate_+3_cropped": 3,
    "rotate_-3_cropped": 6,
    "rotate_+5_cropped": 2,
    "rotate_-5_cropped": 0,
    "combined": 5,
}


@pytest.fixture(scope="module")
def detection_set():
    return detection.build_set()


@pytest.fixture(scope="module")
def measured(detection_set, django_db_setup, django_db_blocker):
    """One bank and one evaluation for the module, rolled back afterwards."""
    with django_db_blocker.unblock():
        matcher.matcher.reset()
        item_index.reset()
        try:
            with transaction.atomic():
                rules = Policy.current().voting_rules()
                bank = detection.make_bank(detection_set)
                result = detection.evaluate(detection_set, rules, bank, label="defaults")
                agreement = _agreement(detection_set, rules, bank)
                transaction.set_rollback(True)
        finally:
            matcher.matcher.reset()
            item_index.reset()
    return {"result": result, "rules": rules, "agreement": agreement}


def _agreement(ds, rules, bank):
    """Where the in-memory rule (what bench/detection.py measures alternatives with) and
    the product's vote and duplicate check differ."""
    votes = []
    for key, fp in [*ds.variant_fps.items(), *ds.negative_fps.items()]:
        product = detection.product_vote([fp], rules, bank)
        offline = detection.offline_vote([fp], rules, bank)
        if product != offline:
            votes.append((key, product, offline))
    names = sorted(ds.negatives)
    product_pairs = {(a, b) for a, b, _ in detection.product_duplicate_pairs(ds, rules, names)}
    offline_pairs = {(a, b) for a, b, _ in detection.offline_duplicate_pairs(ds, rules, names)}
    return {"votes": votes, "pairs": product_pairs ^ offline_pairs}


def test_the_set_has_what_the_issue_asks_for(detection_set):
    assert len(detection_set.references) >= 7
    wanted = {
        "exact",
        "jpeg_q30",
        "jpeg_q40",
        "half_size",
        "greyscale",
        "brighter_20pc",
        "brighter_30pc",
        "watermark",
        "crop_5pc",
        "crop_10pc",
        "mirrored",
        "rotate_+3",
        "rotate_-3",
        "rotate_+5",
        "rotate_-5",
        "combined",
    }
    assert wanted <= set(detection_set.variant_names)
    assert len(detection_set.negatives) >= 30
    assert len(detection_set.low_detail) >= 10
    assert len(detection_set.variants) == len(detection_set.references) * len(detection.VARIANTS)
    # Every copy differs from every other upload (no variant degenerates to the original,
    # except "exact", which is the bank's own bytes).
    uploads = list(detection_set.variants.values()) + list(detection_set.negatives.values())
    exact = {detection_set.variants[p, "exact"] for p in detection_set.references}
    assert len(set(uploads)) == len(uploads)
    assert exact == set(detection_set.references.values())


def test_no_innocent_picture_is_blocked(measured):
    result = measured["result"]
    assert result.false_matches == []
    assert result.wrong == [], "copies blocked as another bank picture"


def test_no_two_low_detail_pictures_are_near_copies(measured):
    assert measured["result"].duplicate_pairs == []


def test_every_voter_has_a_margin_on_the_nearest_negative(measured):
    """Each enabled voter counted somewhere, and no negative came near a quorum: measured
    13 bits from being blocked (the colour wheel against the rocket) under the defaults,
    11 under the recommended configuration."""
    result = measured["result"]
    assert set(result.voter_margin) == set(measured["rules"].voter_settings())
    # The pictures' voters; the video and text ones never vote on a picture.
    margins = {n: m for n, m in result.voter_margin.items() if n in names("image")}
    assert all(gap is not None for gap, _ in margins.values()), result.voter_margin
    bits, where = result.margin
    assert bits >= 8, f"a negative came within {bits} bits of being blocked: {where}"


@pytest.mark.parametrize("variant", detection.VARIANTS)
def test_recall_per_variant(measured, variant):
    blocked, copies = measured["result"].recall[variant]
    misses = [m for m in measured["result"].misses if m[1] == variant]
    assert copies == 8 and blocked >= MINIMUM[variant], misses


def test_recall_over_all_variants(measured):
    result = measured["result"]
    assert result.overall_recall >= 0.98, result.misses


def test_recall_without_rotations_or_their_crops(measured):
    """Every copy of the variants the former defaults already caught stays caught."""
    result = measured["result"]
    easy = [v for v in detection.VARIANTS if v not in BEFORE_ROTATED_REFERENCES]
    assert result.recall_of(easy) == 1.0, [m for m in result.misses if m[1] in easy]


def test_the_bench_rule_is_the_products(measured):
    """bench/detection.py judges rules the product lacks by tests.detection.judge: it must
    decide as matcher.vote and find_duplicates do wherever both apply. If this fails after
    a change to the matcher or the duplicate check, update tests/detection.py to match."""
    assert measured["agreement"]["votes"] == []
    assert measured["agreement"]["pairs"] == set()
