import time
import pytest
from tests.review.review_factories import many_review_items
from review import queue

pytestmark = pytest.mark.django_db(transaction=True)

def test_prof(moderator):
    many_review_items(300)
    t = time.perf_counter(); n = 0
    while n < 30:
        es = queue.claim_items(moderator, 5); n += 1
    print("claim ms", (time.perf_counter() - t) / n * 1000)
    from review.models import QueueEntry
    es = list(QueueEntry.objects.filter(claimed_by=moderator).select_related("item")[:50])
    t = time.perf_counter()
    for e in es:
        queue.record_decision(moderator, e.item, "approve")
    print("decide ms", (time.perf_counter() - t) / len(es) * 1000)
    t = time.perf_counter()
    for _ in range(20):
        queue.broadcast_counts()
    print("broadcast ms", (time.perf_counter() - t) / 20 * 1000)
    t = time.perf_counter()
    for _ in range(20):
        queue.counts_snapshot()
    print("snapshot ms", (time.perf_counter() - t) / 20 * 1000)
