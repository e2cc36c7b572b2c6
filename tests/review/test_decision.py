"""The outcome rules on recorded scores and matches, over any declared category."""

import pytest

from review.categories import DEFAULT_CATEGORIES, CategoryRule
from review.outcomes import decide


@pytest.fixture
def pol():
    return DEFAULT_CATEGORIES  # the seeded defaults, no database: the engine is a plain function


def test_clean_scores_pass(pol):
    out = decide(scores={"explicit": 0.05, "suggestive": 0.1}, rules=pol)
    assert (out.outcome, out.reason) == ("pass", "clean")


@pytest.mark.parametrize(
    "explicit,expected",
    [
        (0.29, ("pass", "clean")),
        (0.30, ("review", "explicit_for_review")),
        (0.59, ("review", "explicit_for_review")),
        (0.60, ("flagged", "explicit_flagged")),
    ],
)
def test_explicit_thresholds(pol, explicit, expected):
    out = decide(scores={"explicit": explicit, "suggestive": explicit}, rules=pol)
    assert (out.outcome, out.reason) == expected


def test_suggestive_goes_to_review_and_names_the_threshold(pol):
    out = decide(scores={"explicit": 0.0, "suggestive": 0.55}, rules=pol)
    assert (out.outcome, out.reason) == ("review", "suggestive_for_review")
    assert "55%" in out.text and "50%" in out.text


def test_a_failed_classifier_never_lets_an_item_pass(pol):
    out = decide(scores={}, rules=pol, classifier_errors={"nudenet": "timeout"})
    assert (out.outcome, out.reason) == ("review", "classifier_error")


def test_a_confident_flag_from_a_working_provider_wins_over_another_providers_error(pol):
    out = decide(scores={"explicit": 0.9}, rules=pol, classifier_errors={"rekognition": "x"})
    assert out.outcome == "flagged"


def test_an_exact_copy_of_a_rejected_item_is_flagged_before_any_model(pol):
    dups = [{"id": "abc", "distance": 0, "exact": True, "status": "rejected"}]
    out = decide(scores={"explicit": 0.0}, rules=pol, duplicates=dups)
    assert (out.outcome, out.reason) == ("flagged", "duplicate_of_rejected")
    assert out.details == {"duplicate_of": "abc", "distance": 0}


def test_a_near_copy_of_a_rejected_item_goes_to_a_person_unless_a_model_flags_it(pol):
    dups = [
        {
            "id": "abc",
            "distance": 3,
            "exact": False,
            "status": "rejected",
            "votes": 6,
            "eligible": 9,
            "voters": {"ahash": 3, "dhash": 2, "phash_simple": 1, "phash": 4},
        }
    ]
    out = decide(scores={"explicit": 0.0}, rules=pol, duplicates=dups)
    assert (out.outcome, out.reason) == ("review", "near_copy_of_rejected")
    assert "(4 hash voters agreed, vote weight 6 of 9)" in out.text
    assert out.details == {"duplicate_of": "abc", "distance": 3}
    flagged = decide(scores={"explicit": 0.9}, rules=pol, duplicates=dups)
    assert flagged.reason == "explicit_flagged"


def test_a_duplicate_of_an_approved_item_passes_unless_a_classifier_objects(pol):
    dups = [{"id": "abc", "distance": 0, "exact": True, "status": "approved"}]
    out = decide(scores={"explicit": 0.0}, rules=pol, duplicates=dups)
    assert (out.outcome, out.reason) == ("pass", "duplicate_of_approved")
    out = decide(scores={"explicit": 0.7}, rules=pol, duplicates=dups)
    assert out.outcome == "flagged"


def test_a_bank_block_by_quorum_is_flagged_unless_an_allow_entry_matches(pol):
    bank = {
        "blocked": True,
        "allowed": False,
        "votes": 4,
        "voters": 5,
        "quorum": 3,
        "bank": "known-bad",
    }
    out = decide(scores={}, rules=pol, bank=bank)
    assert (out.outcome, out.reason) == ("flagged", "bank_match")
    out = decide(scores={"explicit": 0.0}, rules=pol, bank={**bank, "allowed": True})
    assert (out.outcome, out.reason) == ("pass", "allow_listed")


def test_a_strict_bank_match_says_which_hash_was_close_on_its_own(pol):
    """A one-hash list reference cannot claim "1 of 1 hash voters agreed"."""
    bank = {
        "blocked": True,
        "allowed": False,
        "votes": 1,
        "voters": 5,
        "eligible": 1,
        "quorum": 1,
        "strict": True,
        "per_voter": {
            "phash": {"vote": True, "distance": 3},
            "dhash": {"vote": False, "distance": 9},
        },
    }
    out = decide(scores={}, rules=pol, bank=bank)
    assert (out.outcome, out.reason) == ("flagged", "bank_match")
    assert "too few hashes for a vote" in out.text and "(phash at distance 3)" in out.text
    assert "voters agreed" not in out.text and "dhash" not in out.text


def test_any_declared_category_is_thresholded_most_severe_first(pol):
    """A text category is one more rule: no code knows its name."""
    rules = [
        *pol,
        CategoryRule("spam", "Spam", review_at=0.4, flag_at=0.9, rank=5, media_kind="text"),
    ]
    assert decide(scores={"spam": 0.95}, rules=rules).reason == "spam_flagged"
    out = decide(scores={"spam": 0.5}, rules=rules)
    assert (out.outcome, out.reason) == ("review", "spam_for_review")
    assert out.text == "Possibly spam (50%; review from 40%)."
    # Explicit outranks spam, whatever order the rules come in.
    both = decide(scores={"spam": 0.95, "explicit": 0.7}, rules=list(reversed(rules)))
    assert both.reason == "explicit_flagged"
