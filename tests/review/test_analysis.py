"""Duplicates of decided items, provider failures and idempotence of the analysis."""

import pytest
from PIL import Image

from accounts.models import Author, Strike
from review import pipeline
from review.classifiers import Classifier, ClassifierError, registry
from review.models import Analysis
from tests.conftest import encode
from tests.images import low_detail
from uploads.intake import ingest_bytes
from uploads.models import MediaItem


def ingest(data, user, name="x.jpg"):
    item = ingest_bytes(data, name=name, source="web", uploader=user)
    pipeline.analyse_item(item.pk)
    item.refresh_from_db()
    return item


def test_an_exact_copy_of_a_rejected_item_is_flagged_and_counts_a_strike(uploader, jpeg):
    data = jpeg("chelsea")
    first = ingest(data, uploader)
    MediaItem.objects.filter(pk=first.pk).update(status=MediaItem.Status.REJECTED)
    again = ingest(data, uploader)
    assert again.status == MediaItem.Status.FLAGGED
    assert again.reason == "duplicate_of_rejected" and "exact copy" in again.reason_text
    assert "Warning: strike 1 of 3" in again.reason_text
    assert again.duplicate_of == first and again.duplicate_distance == 0
    strike = Strike.objects.get(author__user=uploader)
    assert strike.item == again and strike.resulting_status == Author.Status.WARNED


def test_a_resized_recompressed_copy_of_a_rejected_item_goes_to_a_person(uploader, photo):
    """A near copy is weaker evidence than a byte-identical one: review, no strike."""
    original = photo("chelsea")
    first = ingest(encode(original, quality=92), uploader)
    MediaItem.objects.filter(pk=first.pk).update(status=MediaItem.Status.REJECTED)
    copy = original.resize((original.width // 2, original.height // 2))
    again = ingest(encode(copy, quality=45), uploader)
    assert (again.status, again.reason) == (MediaItem.Status.REVIEW, "near_copy_of_rejected")
    assert "hash voters agreed" in again.reason_text and "strike" not in again.reason_text
    assert again.duplicate_of == first
    dup = again.matches["duplicates"][0]
    assert dup["id"] == str(first.uuid) and dup["exact"] is False
    assert dup["votes"] >= dup["quorum"] >= 3 and set(dup["voters"]) <= {
        "ahash",
        "dhash",
        "phash_simple",
        "phash",
        "pdq",
    }
    assert not Strike.objects.filter(author__user=uploader).exists()


def test_a_mirrored_copy_is_found_too(uploader, photo):
    original = photo("coffee")
    first = ingest(encode(original), uploader)
    MediaItem.objects.filter(pk=first.pk).update(status=MediaItem.Status.REJECTED)
    again = ingest(encode(original.transpose(Image.Transpose.FLIP_LEFT_RIGHT)), uploader)
    assert again.reason == "near_copy_of_rejected" and again.duplicate_of == first


def test_a_five_percent_crop_of_a_rejected_item_is_still_found(uploader, photo):
    """pHash alone put it at distance 10 (the old limit was 6); the voters together agree."""
    original = photo("astronaut")
    first = ingest(encode(original), uploader)
    MediaItem.objects.filter(pk=first.pk).update(status=MediaItem.Status.REJECTED)
    w, h = original.size
    cropped = original.crop((int(w * 0.025), int(h * 0.025), int(w * 0.975), int(h * 0.975)))
    again = ingest(encode(cropped, quality=80), uploader)
    assert again.reason == "near_copy_of_rejected" and again.duplicate_of == first


def test_one_rejected_blank_image_strikes_nobody_else(uploader, outsider):
    """Regression: after one plain black image was rejected, every low-detail upload was
    flagged as its "near copy (distance 0)" with a strike; three banned an account."""
    black = ingest(encode(Image.new("RGB", (640, 480))), outsider)
    MediaItem.objects.filter(pk=black.pk).update(status=MediaItem.Status.REJECTED)
    for name, picture in low_detail().items():
        if name == "black":
            continue
        item = ingest(encode(picture), uploader, name=f"{name}.jpg")
        assert item.reason not in ("duplicate_of_rejected", "near_copy_of_rejected"), name
        assert item.duplicate_of is None and item.matches["duplicates"] == [], name
    assert not Strike.objects.filter(author__user=uploader).exists()
    assert Author.objects.get(user=uploader).status == Author.Status.OK


def test_low_detail_uploads_do_not_group_together_in_the_queue(uploader, policy):
    from review.models import QueueEntry

    policy.categories.filter(name="explicit").update(review_at=0.0)  # all go to a person
    for name, picture in low_detail().items():
        ingest(encode(picture), uploader, name=f"{name}.jpg")
    keys = list(QueueEntry.objects.values_list("group_key", flat=True))
    assert len(keys) == len(low_detail()) and set(keys) == {None}


def test_a_copy_of_an_approved_item_reuses_the_approval(uploader, jpeg):
    first = ingest(jpeg("rocket"), uploader)
    MediaItem.objects.filter(pk=first.pk).update(status=MediaItem.Status.APPROVED)
    again = ingest(jpeg("rocket", quality=60), uploader)
    assert again.status == MediaItem.Status.PASSED
    assert again.reason == "duplicate_of_approved" and again.duplicate_of == first


def test_unrelated_images_are_not_duplicates(uploader, jpeg):
    first = ingest(jpeg("chelsea"), uploader)
    MediaItem.objects.filter(pk=first.pk).update(status=MediaItem.Status.REJECTED)
    other = ingest(jpeg("rocket"), uploader)
    assert other.reason != "duplicate_of_rejected" and other.duplicate_of is None


class Broken(Classifier):
    name = "broken"

    def classify(self, image):
        raise ClassifierError("model exploded")


@pytest.fixture
def broken_provider(monkeypatch, policy):
    monkeypatch.setitem(registry.PROVIDERS, "broken", f"{__name__}.Broken")
    registry._instances.pop("broken", None)
    policy.providers = "broken"
    policy.save()


def test_a_failing_provider_sends_the_item_to_review_never_to_pass(uploader, jpeg, broken_provider):
    item = ingest(jpeg("coffee"), uploader)
    assert item.status == MediaItem.Status.REVIEW and item.reason == "classifier_error"
    audit = Analysis.objects.get(item=item)
    assert "model exploded" in audit.errors["broken"]


def test_unreadable_storage_sends_the_item_to_review(uploader, jpeg):
    item = ingest_bytes(jpeg("coffee"), name="x.jpg", source="web", uploader=uploader)
    item.file.storage.delete(item.file.name)
    pipeline.analyse_item(item.pk)
    item.refresh_from_db()
    assert item.status == MediaItem.Status.REVIEW and item.reason == "analysis_error"


def test_the_analysis_runs_once_per_item(uploader, jpeg):
    item = ingest(jpeg("coffee"), uploader)
    assert pipeline.analyse_item(item.pk) is None
    assert Analysis.objects.filter(item=item).count() == 1


def test_items_stuck_in_processing_are_analysed_again(uploader, jpeg):
    from datetime import timedelta

    from django.utils import timezone

    from uploads.intake import requeue_stuck_items

    item = ingest_bytes(jpeg("coffee"), name="x.jpg", source="web", uploader=uploader)
    assert requeue_stuck_items() == 0  # too recent to be stuck
    MediaItem.objects.filter(pk=item.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert requeue_stuck_items() == 1  # eager in tests: analysed right away
    item.refresh_from_db()
    assert item.status == MediaItem.Status.PASSED


def test_the_class_badge_names_what_held_the_item(uploader, jpeg, policy):
    """Regression: "neutral 65 %" on an item held as possibly explicit."""
    policy.categories.filter(name="explicit").update(review_at=0.0)
    held = ingest(jpeg("coffee"), uploader)
    assert held.reason == "explicit_for_review"
    assert (held.category, held.confidence) == ("explicit", held.scores["explicit"])


def test_a_bank_match_shows_no_model_class(uploader, jpeg):
    """Regression: "neutral 100 %" on an item blocked by a bank match."""
    from hashing import services

    bank = services.create_bank("known bad")
    services.add_images(bank, [("cat.jpg", jpeg("chelsea"))])
    blocked = ingest(jpeg("chelsea", quality=50), uploader)
    assert blocked.reason == "bank_match"
    assert (blocked.category, blocked.confidence) == ("", None)
    clean = ingest(jpeg("rocket"), uploader)
    assert clean.reason == "clean" and clean.category == "neutral"
