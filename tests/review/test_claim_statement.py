"""The claim statement as PostgreSQL runs it: prepared once per connection and run on its
generic plan, which reads expired leases from review_queue_leases whatever the statistics
say; and what a claim returns without reading it back is what it wrote."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from review import claims
from review.models import QueueEntry
from tests.review.review_factories import many_review_items

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def claim_statement_stats():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s",
            ["%UPDATE%review_queueentry%SKIP LOCKED%"],
        )
        return cursor.fetchall()


def test_the_claim_is_prepared_and_runs_on_a_plan_made_once(moderator):
    many_review_items(3000)  # enough pages that PostgreSQL reads them through indexes
    with connection.cursor() as cursor:  # statistics that say nothing is held
        cursor.execute("ANALYZE review_queueentry")
    for _ in range(12):
        assert len(claims.claim_items(moderator, 2)) == 2
    ((name, generic, custom),) = claim_statement_stats()  # one statement, prepared once
    assert generic >= 1, (generic, custom)  # PostgreSQL keeps planning no more
    # That plan reads expired leases from the partial lease index, in its order; with a
    # plain index PostgreSQL's plan read every held row through review_queue_held_order.
    now = timezone.now().isoformat()
    with connection.cursor() as cursor:
        cursor.execute(
            f"EXPLAIN EXECUTE {name}(%s, %s, 'expired', %s, %s, %s, '', %s)",
            [now, now, moderator.pk, now, now, now],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "$1" in plan  # the generic plan, not one made for these values
    assert "review_queue_leases" in plan
    assert "review_queue_held_order" not in plan


def test_expired_leases_come_back_through_the_prepared_claim(moderator, django_user_model):
    many_review_items(6)
    other = django_user_model.objects.create_user(username="other", password="x")
    other.groups.add(*moderator.groups.all())
    for _ in range(8):  # past psycopg's and PostgreSQL's first runs: the generic plan
        for entry in claims.claim_items(other, 1):
            claims.release_claims(other, [entry.item.uuid])
    held = claims.claim_items(other, 6)
    QueueEntry.objects.filter(pk__in=[e.pk for e in held[:3]]).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    taken = claims.claim_items(moderator, 6)
    assert sorted(e.pk for e in taken) == sorted(e.pk for e in held[:3])
    ended = QueueEntry.objects.filter(pk__in=[e.pk for e in taken])
    assert {(e.released_by_id, e.release_cause) for e in ended} == {(other.pk, "expired")}


def test_what_a_claim_returns_is_what_it_wrote(moderator):
    many_review_items(5)
    before = timezone.now()
    entries = claims.claim_items(moderator, 5, source="session:abc")
    assert len(entries) == 5
    for entry in entries:
        stored = QueueEntry.objects.get(pk=entry.pk)
        assert entry.claimed_by == stored.claimed_by == moderator
        assert entry.claimed_at == stored.claimed_at and entry.claimed_at >= before
        assert entry.lease_expires_at == stored.lease_expires_at > entry.claimed_at
        assert entry.claim_source == stored.claim_source == "session:abc"
        assert (entry.item_id, entry.severity, entry.item_created_at) == (
            stored.item_id,
            stored.severity,
            stored.item_created_at,
        )
