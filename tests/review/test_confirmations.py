"""A block that rests on a model's score alone is hidden and also seen by a person.

NudeNet scores colour wheels and other synthetic graphics 64-84 % "explicit"; such blocks
went unseen. Now they wait in the queue (after review items) for a moderator to confirm
(reject) or restore (approve), and admin shows the confirmation rate per category.
"""

import pytest
from django.urls import reverse

from accounts.models import Strike
from hashing import services
from review import claims, decisions, pipeline
from review.models import Policy, QueueEntry
from tests.conftest import encode
from tests.review.review_factories import review_item
from uploads.events import item_changed
from uploads.intake import ingest_bytes
from uploads.models import MediaItem
from uploads.services import feed_items


def ingest(data: bytes, user, name="x.jpg") -> MediaItem:
    item = ingest_bytes(data, name=name, source="web", uploader=user)
    pipeline.analyse_item(item.pk)
    item.refresh_from_db()
    return item


@pytest.fixture
def model_block(uploader, venus_bytes) -> MediaItem:
    """The painting NudeNet flags on its own: a block with no bank or copy behind it."""
    item = ingest(venus_bytes, uploader, "venus.jpg")
    assert (item.status, item.reason) == (MediaItem.Status.FLAGGED, "explicit_flagged")
    return item


def test_a_model_only_block_stays_hidden_and_waits_for_confirmation(model_block):
    entry = QueueEntry.objects.get(item=model_block)
    assert entry.purpose == QueueEntry.Purpose.CONFIRM and entry.confirms
    assert entry.priority < QueueEntry.PRIORITY[QueueEntry.Purpose.REVIEW]
    assert model_block not in feed_items()
    assert model_block.reason_text.endswith("A moderator will check it.")
    assert not Strike.objects.exists()


def test_the_switch_off_leaves_the_block_unseen(uploader, venus_bytes):
    Policy.objects.update(confirm_model_flags=False)
    item = ingest(venus_bytes, uploader, "venus.jpg")
    assert item.status == MediaItem.Status.FLAGGED
    assert not QueueEntry.objects.filter(item=item).exists()
    assert "moderator" not in item.reason_text


def test_a_bank_match_needs_no_confirmation(uploader, photo):
    cat = photo("chelsea")
    services.add_images(services.create_bank("known"), [("cat.jpg", encode(cat, quality=95))])
    item = ingest(encode(cat, quality=60), uploader)
    assert (item.status, item.reason) == (MediaItem.Status.FLAGGED, "bank_match")
    assert not QueueEntry.objects.filter(item=item).exists()


def test_review_items_are_worked_before_confirmations(moderator, uploader, model_block):
    """A held item (its uploader is waiting) comes first, even when less severe."""
    mild = review_item(uploader, explicit=0.3, suggestive=0.1)
    assert QueueEntry.objects.get(item=model_block).severity > 0.3
    (first,) = claims.claim_items(moderator, 1)
    assert first.item_id == mild.pk
    (second,) = claims.claim_items(moderator, 1)
    assert second.item_id == model_block.pk
    assert [e.item_id for e in claims.claimed_entries(moderator)] == [mild.pk, model_block.pk]


def test_approving_restores_the_item_and_tells_the_uploader(
    moderator, model_block, django_capture_on_commit_callbacks
):
    told = []

    def listener(sender, item, **kwargs):
        told.append((item.pk, item.status))

    claims.claim_items(moderator, 10)
    item_changed.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            (decision,) = decisions.record_decision(moderator, model_block, "approve")
    finally:
        item_changed.disconnect(listener)
    model_block.refresh_from_db()
    assert decision.previous_status == MediaItem.Status.FLAGGED
    assert model_block.status == MediaItem.Status.APPROVED and model_block in feed_items()
    assert model_block.reason_text == "A moderator approved this item."
    assert (model_block.pk, MediaItem.Status.APPROVED) in told
    assert not Strike.objects.exists()


def test_confirming_rejects_with_a_strike(moderator, model_block):
    claims.claim_items(moderator, 10)
    decisions.record_decision(moderator, model_block, "reject", "Explicit nudity")
    model_block.refresh_from_db()
    assert model_block.status == MediaItem.Status.REJECTED
    assert Strike.objects.filter(item=model_block, source=Strike.Source.MODERATOR).count() == 1


def confirm_entry(uploader, category="explicit") -> MediaItem:
    """An item the machine blocked on `category`'s score, waiting for confirmation."""
    item = review_item(uploader, explicit=0.7)
    MediaItem.objects.filter(pk=item.pk).update(
        status=MediaItem.Status.FLAGGED, reason=f"{category}_flagged", category=category
    )
    QueueEntry.objects.filter(item=item).update(purpose="confirm", priority=0)
    item.refresh_from_db()
    return item


def test_the_confirmation_rate_per_category_is_shown_in_admin(
    client, policy_admin, moderator, uploader, model_block
):
    assert str(decisions.confirmation_rate("explicit")) == "none decided yet"
    restored = confirm_entry(uploader)
    other = confirm_entry(uploader, "suggestive")
    # A review item decided on the same category is not a confirmation.
    held = review_item(uploader, explicit=0.55)
    MediaItem.objects.filter(pk=held.pk).update(category="explicit")
    claims.claim_items(moderator, 10)
    decisions.record_decision(moderator, model_block, "reject", "Explicit nudity")
    decisions.record_decision(moderator, restored, "approve")
    decisions.record_decision(moderator, other, "approve")
    decisions.record_decision(moderator, held, "reject", "Explicit nudity")
    rate = decisions.confirmation_rate("explicit")
    assert (rate.confirmed, rate.decided, rate.rate) == (1, 2, 0.5)
    assert str(decisions.confirmation_rate("suggestive")) == "0 of 1 confirmed (0 %)"
    client.force_login(policy_admin)
    page = client.get(reverse("admin:review_policy_change", args=[Policy.current().pk]))
    assert page.status_code == 200
    assert "1 of 2 confirmed (50 %)" in page.content.decode()
    assert "Confirm model-only blocks" in page.content.decode()
