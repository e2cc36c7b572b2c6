"""Decisions and their consequences: visibility, strikes and bans, audit, reversals."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.models import Author, Strike
from accounts.services import lift_ban
from review import claims, decisions
from review.models import Decision, QueueEntry
from tests.review.review_factories import review_item
from uploads.events import item_changed
from uploads.intake import AuthorBanned, ingest_bytes
from uploads.models import MediaItem
from uploads.serializers import item_payload
from uploads.services import feed_items


def claimed(moderator, uploader=None, **kw) -> MediaItem:
    item = review_item(uploader, **kw)
    (entry,) = [e for e in claims.claim_items(moderator, 50) if e.item_id == item.pk]
    return item


def test_an_approved_item_becomes_visible_in_the_feed(moderator, uploader):
    item = claimed(moderator, uploader)
    assert item not in feed_items()
    (decision,) = decisions.record_decision(moderator, item, "approve")
    item.refresh_from_db()
    assert item.status == MediaItem.Status.APPROVED and item.decided_at is not None
    assert item in feed_items() and item.reason_text == "A moderator approved this item."
    assert decision.reason == "" and decision.previous_status == "review"
    assert not QueueEntry.objects.filter(item=item).exists()


def test_a_decision_records_who_when_what_why_and_how_long_it_took(moderator, uploader):
    item = claimed(moderator, uploader)
    QueueEntry.objects.filter(item=item).update(claimed_at=timezone.now() - timedelta(seconds=42))
    (decision,) = decisions.record_decision(moderator, item, "reject", "  Explicit nudity  ")
    decision.refresh_from_db()
    assert decision.moderator == moderator and decision.decision == "reject"
    assert decision.reason == "Explicit nudity"
    assert decision.claimed_at < decision.decided_at
    assert 41 < decision.seconds_to_decide < 60
    assert decision.supersedes is None and decision.is_override is False


def test_a_rejected_item_stays_hidden_and_its_author_is_warned_then_banned(
    client, moderator, uploader, policy, jpeg, django_user_model
):
    client.force_login(uploader)
    statuses = []
    for n in range(policy.strikes_to_ban):
        item = claimed(moderator, uploader)
        decisions.record_decision(moderator, item, "reject", f"Spam #{n}")
        item.refresh_from_db()
        assert item.status == MediaItem.Status.REJECTED and item not in feed_items()
        assert item.reason_text.startswith(f"A moderator rejected this item: Spam #{n}.")
        author = Author.objects.get(user=uploader)
        statuses.append(author.status)
    assert "Warning: strike 2 of 3" in MediaItem.objects.filter(status="rejected")[1].reason_text
    assert item.reason_text.endswith("Your account is now banned (3 strikes).")
    assert statuses == ["warned", "warned", "banned"]
    strikes = Strike.objects.filter(author__user=uploader)
    assert strikes.count() == 3 and set(strikes.values_list("source", flat=True)) == {"moderator"}
    assert strikes.first().created_by == moderator
    # The ban ends the session at once and further uploads are refused with a message.
    response = client.get(reverse("uploads:upload"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    fresh = django_user_model.objects.get(pk=uploader.pk)
    with pytest.raises(AuthorBanned, match="banned"):
        ingest_bytes(jpeg("coffee"), name="x.jpg", source="web", uploader=fresh)
    lift_ban(Author.objects.get(user=uploader), actor=moderator)
    assert Author.objects.get(user=uploader).status == "ok"


def test_the_strike_count_for_a_ban_comes_from_the_policy(moderator, uploader, policy):
    policy.strikes_to_ban = 1
    policy.save()
    decisions.record_decision(moderator, claimed(moderator, uploader), "reject", "Harassment")
    assert Author.objects.get(user=uploader).status == Author.Status.BANNED


def test_a_decision_on_an_item_someone_else_holds_is_refused(moderator, policy_admin):
    item = claimed(policy_admin)
    with pytest.raises(claims.ClaimConflict, match="Another moderator holds"):
        decisions.record_decision(moderator, item, "approve")
    assert QueueEntry.objects.get(item=item).claimed_by == policy_admin


def test_a_decision_on_an_unclaimed_or_decided_item_is_refused(moderator):
    waiting = review_item()
    with pytest.raises(claims.ClaimConflict, match="You do not hold this item"):
        decisions.record_decision(moderator, waiting, "approve")
    item = claimed(moderator)
    decisions.record_decision(moderator, item, "approve")
    with pytest.raises(claims.ClaimConflict, match="already decided: approve by moderator"):
        decisions.record_decision(moderator, item, "reject", "Spam")
    assert Decision.objects.filter(item=item).count() == 1


@pytest.mark.parametrize(
    "decision, reason, message",
    [
        ("maybe", "", "must be “approve” or “reject”"),
        ("", "", "must be “approve” or “reject”"),
        (None, "", "must be “approve” or “reject”"),
        ("reject", "", "needs a reason"),
        ("reject", "   ", "needs a reason"),
        ("approve", "x" * 501, "at most 500"),
        ("approve", 12, "must be text"),
    ],
)
def test_bad_decisions_are_refused_with_a_message(moderator, decision, reason, message):
    item = claimed(moderator)
    with pytest.raises(ValidationError, match=message):
        decisions.record_decision(moderator, item, decision, reason)
    assert QueueEntry.objects.get(item=item).claimed_by == moderator


def test_decisions_are_never_edited_or_deleted(moderator):
    item = claimed(moderator)
    (decision,) = decisions.record_decision(moderator, item, "approve")
    decision.reason = "changed my mind"
    with pytest.raises(ValueError, match="immutable"):
        decision.save()
    with pytest.raises(ValueError, match="never deleted"):
        decision.delete()
    assert Decision.objects.get(pk=decision.pk).reason == ""


def test_a_reversal_is_a_new_record_that_supersedes_the_first(moderator, policy_admin, uploader):
    item = claimed(moderator, uploader)
    (first,) = decisions.record_decision(moderator, item, "reject", "Spam")
    with pytest.raises(PermissionDenied):
        decisions.override_decision(moderator, item, "approve", "Not spam after all")
    with pytest.raises(ValidationError, match="needs a reason"):
        decisions.override_decision(policy_admin, item, "approve", "")
    with pytest.raises(ValidationError, match="already rejected"):
        decisions.override_decision(policy_admin, item, "reject", "Still spam")
    second = decisions.override_decision(policy_admin, item, "approve", "Not spam after all")
    item.refresh_from_db()
    assert item.status == MediaItem.Status.APPROVED and item in feed_items()
    assert second.supersedes == first and second.is_override
    assert second.previous_status == "rejected"
    first.refresh_from_db()
    assert first.decision == "reject" and first.reason == "Spam"
    assert list(Decision.objects.filter(item=item).order_by("decided_at", "pk")) == [first, second]


def test_an_item_waiting_in_the_queue_cannot_be_overridden(policy_admin):
    item = review_item()
    with pytest.raises(claims.ClaimConflict, match="decide it from the queue"):
        decisions.override_decision(policy_admin, item, "approve", "Looks fine")


def test_an_automatic_flag_can_be_reversed_too(policy_admin, uploader):
    item = review_item(uploader)
    QueueEntry.objects.filter(item=item).delete()
    MediaItem.objects.filter(pk=item.pk).update(status=MediaItem.Status.FLAGGED)
    record = decisions.override_decision(policy_admin, item, "approve", "A painting, not nudity")
    assert record.supersedes is None and record.previous_status == "flagged"
    assert MediaItem.objects.get(pk=item.pk).status == MediaItem.Status.APPROVED


def test_the_uploader_is_told_about_the_decision_after_commit(
    moderator, uploader, django_capture_on_commit_callbacks
):
    """The one "item changed" event fires after commit, and carries the item's new state."""
    received = []

    def listener(sender, item, **kwargs):
        received.append(item_payload(item))

    item = claimed(moderator, uploader)
    item_changed.connect(listener)
    try:
        with django_capture_on_commit_callbacks() as callbacks:
            decisions.record_decision(moderator, item, "approve")
        assert received == []  # nothing before the commit
        for callback in callbacks:
            callback()
    finally:
        item_changed.disconnect(listener)
    (payload,) = [p for p in received if p["id"] == str(item.uuid)]
    assert payload["status"] == "approved" and payload["outcome"] == "pass"
