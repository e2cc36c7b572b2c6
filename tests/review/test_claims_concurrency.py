"""Claims under real concurrency: threads, each with its own PostgreSQL connection."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import close_old_connections, connection
from django.utils import timezone

from accounts.roles import MODERATOR
from accounts.sessions import session_source
from review import claims, decisions
from review.models import Decision, QueueEntry
from tests.review.review_factories import many_review_items, review_item

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,  # row locks (SKIP LOCKED) need PostgreSQL
]


def moderators(django_user_model, n):
    group = Group.objects.get_or_create(name=MODERATOR)[0]
    users = []
    for i in range(n):
        user = django_user_model.objects.create_user(username=f"mod{i}", password="x")
        user.groups.add(group)
        users.append(user)
    return users


def run_threads(target, args_list):
    errors = []

    def wrapped(*args):
        try:
            target(*args)
        except Exception as exc:  # surfaced in the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=wrapped, args=args) for args in args_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors


def test_eight_moderators_drain_500_items_and_none_is_handed_out_twice_or_lost(
    django_user_model,
):
    ids = many_review_items(500)
    mods = moderators(django_user_model, 8)
    handed_out: list[int] = []
    lock = threading.Lock()

    def work(moderator, batch):
        close_old_connections()
        while True:
            entries = claims.claim_items(moderator, batch)
            if not entries:
                return
            with lock:
                handed_out.extend(e.item_id for e in entries)
            # Decide one of each batch while the others keep claiming.
            decisions.record_decision(moderator, entries[0].item, "approve")

    run_threads(work, [(m, 3 + i % 5) for i, m in enumerate(mods)])
    assert len(handed_out) == 500
    assert Counter(handed_out).most_common(1)[0][1] == 1
    assert set(handed_out) == set(ids)
    decided = Counter(Decision.objects.values_list("item_id", flat=True))
    assert set(decided.values()) == {1}
    held = set(QueueEntry.objects.values_list("item_id", flat=True))
    assert not held & set(decided) and held | set(decided) == set(ids)
    assert not QueueEntry.objects.filter(claimed_by__isnull=True).exists()
    # Work was actually shared: with SKIP LOCKED nobody waits for another's claim.
    assert len(set(Decision.objects.values_list("moderator", flat=True))) > 1


def test_an_expired_item_is_either_decided_by_its_holder_or_taken_never_both(
    django_user_model,
):
    holder, taker = moderators(django_user_model, 2)
    outcomes = Counter()
    for _ in range(15):
        item = review_item()
        claims.claim_items(holder, 1)
        QueueEntry.objects.filter(item=item).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
        barrier = threading.Barrier(2)
        result = {}

        def decide(item=item, barrier=barrier, result=result):
            barrier.wait()
            try:
                decisions.record_decision(holder, item, "approve")
                result["decided"] = True
            except claims.ClaimConflict:
                result["decided"] = False

        def take(barrier=barrier, result=result):
            barrier.wait()
            result["taken"] = [e.item_id for e in claims.claim_items(taker, 1)]

        run_threads(lambda f: f(), [(decide,), (take,)])
        decided, taken = result["decided"], result["taken"] == [item.pk]
        assert decided != taken, result
        assert Decision.objects.filter(item=item).count() == int(decided)
        outcomes[decided] += 1
        claims.release_claims(taker)
        QueueEntry.objects.all().delete()
    assert sum(outcomes.values()) == 15


def test_a_moderator_logging_out_mid_batch_hands_the_rest_to_the_others(django_user_model, client):
    many_review_items(40)
    leaver, *others = moderators(django_user_model, 4)
    client.force_login(leaver)
    claims.claim_items(leaver, 10, source=session_source(client.session.session_key))
    client.post("/accounts/logout/")
    got = []

    def work(moderator):
        while entries := claims.claim_items(moderator, 7):
            got.extend(e.item_id for e in entries)

    run_threads(work, [(m,) for m in others])
    assert len(got) == len(set(got)) == 40
