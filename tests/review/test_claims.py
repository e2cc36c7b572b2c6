"""Claims and leases, one process: order, counts, leases, heartbeats, release, groups."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.roles import MODERATOR
from review import claims, decisions, pipeline
from review.models import Decision, QueueEntry
from review.tasks import release_expired_claims
from tests.review.review_factories import review_item
from uploads.intake import ingest_bytes
from uploads.models import MediaItem


@pytest.fixture
def second_moderator(db, django_user_model):
    user = django_user_model.objects.create_user(username="moderator2", password="pw-moderator2")
    user.groups.add(Group.objects.get_or_create(name=MODERATOR)[0])
    return user


def expire_leases_of(user):
    QueueEntry.objects.filter(claimed_by=user).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_claim_takes_the_most_severe_items_first_then_the_oldest(moderator, uploader):
    mild_old = review_item(uploader, explicit=0.35, age=timedelta(hours=3))
    severe = review_item(uploader, explicit=0.55)
    mild_new = review_item(uploader, explicit=0.35)
    claimed = claims.claim_items(moderator, 2)
    assert [e.item for e in claimed] == [severe, mild_old]
    assert claims.claim_items(moderator, 5)[0].item == mild_new


def test_a_claim_uses_the_policy_default_and_refuses_counts_outside_the_policy(moderator, policy):
    for _ in range(12):
        review_item()
    assert len(claims.claim_items(moderator)) == policy.claim_batch_default == 10
    for bad in (0, -1, policy.claim_batch_max + 1, "ten", 2.5, True, [3]):
        with pytest.raises(ValidationError):
            claims.claim_items(moderator, bad)
    assert QueueEntry.objects.filter(claimed_by__isnull=True).count() == 2


def test_two_moderators_never_receive_the_same_item(moderator, second_moderator):
    items = {review_item().pk for _ in range(7)}
    first = {e.item_id for e in claims.claim_items(moderator, 4)}
    second = {e.item_id for e in claims.claim_items(second_moderator, 4)}
    assert len(first) == 4 and len(second) == 3
    assert not first & second and first | second == items
    assert claims.claim_items(second_moderator, 4) == []


def test_a_claim_carries_a_lease_that_heartbeats_extend(moderator, policy):
    review_item()
    policy.lease_minutes = 7
    policy.save()
    before = timezone.now()
    (entry,) = claims.claim_items(moderator, 1)
    assert entry.claimed_by == moderator and entry.claimed_at >= before
    assert timedelta(minutes=6) < entry.lease_expires_at - before <= timedelta(minutes=7, seconds=5)
    expire_leases_of(moderator)
    held = claims.heartbeat(moderator)  # the page is still open: the item is still theirs
    assert [e.pk for e in held] == [entry.pk]
    assert held[0].lease_expires_at > timezone.now() + timedelta(minutes=6)


def test_an_expired_lease_goes_to_the_next_claimer_and_the_old_holder_gets_409(
    moderator, second_moderator
):
    item = review_item()
    claims.claim_items(moderator, 1)
    assert claims.claim_items(second_moderator, 1) == []
    expire_leases_of(moderator)
    (taken,) = claims.claim_items(second_moderator, 1)
    assert taken.item == item and taken.claimed_by == second_moderator
    with pytest.raises(claims.ClaimConflict, match="Another moderator holds this item"):
        decisions.record_decision(moderator, item, "approve")
    assert claims.heartbeat(moderator) == []
    assert not Decision.objects.exists()


def test_the_periodic_task_returns_expired_claims_to_the_queue(moderator):
    item = review_item()
    claims.claim_items(moderator, 1)
    assert release_expired_claims.delay().get() == 0
    expire_leases_of(moderator)
    assert release_expired_claims.delay().get() == 1
    entry = QueueEntry.objects.get(item=item)
    assert entry.claimed_by is None and entry.lease_expires_at is None
    with pytest.raises(claims.ClaimConflict, match="ran out"):
        decisions.record_decision(moderator, item, "approve")


def test_release_hands_back_what_is_undecided_and_only_the_moderators_own(
    moderator, second_moderator
):
    a, b, c = review_item(), review_item(), review_item()
    claims.claim_items(moderator, 2)
    claims.claim_items(second_moderator, 1)
    mine = set(QueueEntry.objects.filter(claimed_by=moderator).values_list("item", flat=True))
    one = MediaItem.objects.get(pk=sorted(mine)[0])
    assert claims.release_claims(moderator, [one.uuid]) == 1
    assert claims.release_claims(moderator) == 1
    assert claims.release_claims(moderator) == 0
    assert QueueEntry.objects.filter(claimed_by=second_moderator).count() == 1
    assert QueueEntry.objects.filter(claimed_by__isnull=True).count() == 2
    assert {a.pk, b.pk, c.pk} == set(QueueEntry.objects.values_list("item", flat=True))


def test_logging_out_releases_the_moderators_claims(client, moderator):
    review_item()
    review_item()
    client.force_login(moderator)
    client.post(reverse("review:claim"), {"count": 2})  # claimed by this browser session
    assert QueueEntry.objects.filter(claimed_by=moderator).count() == 2
    client.post(reverse("logout"))
    assert not QueueEntry.objects.filter(claimed_by__isnull=False).exists()


def test_people_without_the_moderator_role_cannot_claim(uploader, outsider, policy_admin):
    review_item()
    for user in (uploader, outsider):
        with pytest.raises(PermissionDenied):
            claims.claim_items(user, 1)
        with pytest.raises(PermissionDenied):
            claims.heartbeat(user)
    assert len(claims.claim_items(policy_admin, 1)) == 1


def test_an_item_the_analysis_sends_to_review_joins_the_queue_once(uploader, jpeg, policy):
    # Everything that is not flagged goes to a person.
    policy.categories.filter(name="explicit").update(review_at=0.0)
    item = ingest_bytes(jpeg("coffee"), name="c.jpg", source="web", uploader=uploader)
    pipeline.analyse_item(item.pk)
    item.refresh_from_db()
    assert item.status == MediaItem.Status.REVIEW
    entry = QueueEntry.objects.get(item=item)
    assert entry.claimed_by is None and entry.group_key is None  # no duplicate waiting
    assert entry.severity == max(item.scores["explicit"], item.scores["suggestive"])
    assert claims.enqueue_for_review(item) == entry
    assert QueueEntry.objects.count() == 1


def test_near_duplicates_waiting_together_are_one_group_and_are_claimed_together(
    moderator, second_moderator, uploader, policy, photo
):
    from tests.conftest import encode

    policy.categories.filter(name="explicit").update(review_at=0.0)
    original = photo("chelsea")
    items = []
    for quality, size in ((92, None), (60, (200, 150)), (45, (300, 225))):
        img = original.resize(size) if size else original
        item = ingest_bytes(
            encode(img, quality=quality), name="c.jpg", source="web", uploader=uploader
        )
        pipeline.analyse_item(item.pk)
        items.append(MediaItem.objects.get(pk=item.pk))
    other = review_item(explicit=0.0, suggestive=0.0)  # unrelated, newer, no more severe
    assert all(i.status == MediaItem.Status.REVIEW for i in items)
    keys = {QueueEntry.objects.get(item=i).group_key for i in items}
    assert keys == {items[0].uuid}
    claimed = claims.claim_items(moderator, 1)
    assert {e.item_id for e in claimed} == {i.pk for i in items}
    assert [e.item for e in claims.claim_items(second_moderator, 5)] == [other]


def test_one_decision_settles_the_group_with_one_record_per_item_and_one_strike(
    moderator, uploader
):
    first = review_item(uploader, explicit=0.5)
    copy = review_item(uploader, explicit=0.45, duplicates=[first])
    copy2 = review_item(uploader, explicit=0.3, duplicates=[copy, first])
    alone = review_item(uploader, explicit=0.2)
    assert len({QueueEntry.objects.get(item=i).group_key for i in (first, copy, copy2)}) == 1
    assert len(claims.claim_items(moderator, 1)) == 3
    made = decisions.record_decision(moderator, copy, "reject", "Known banned image")
    assert {d.item for d in made} == {first, copy, copy2}
    assert len({d.batch for d in made}) == 1
    assert set(MediaItem.objects.filter(status="rejected")) == {first, copy, copy2}
    author = copy.author
    author.refresh_from_db()
    assert author.strikes == 1 and author.status == "warned"
    assert list(QueueEntry.objects.values_list("item", flat=True)) == [alone.pk]
