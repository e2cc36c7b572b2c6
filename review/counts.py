"""Live queue numbers: a snapshot for everyone, each viewer's share, and the poke that
tells open review pages (through the channel layer) that the numbers moved."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import QueueEntry

COUNTS_GROUP = "review.counts"


def counts_snapshot() -> dict:
    """The queue's numbers for everyone; each viewer's own share is taken out later."""
    pending = QueueEntry.objects.filter(claimed_by__isnull=True).aggregate(
        n=Count("pk"), oldest=Min("item_created_at")
    )
    claimed = (
        QueueEntry.objects.filter(claimed_by__isnull=False)
        .values_list("claimed_by")
        .annotate(n=Count("pk"))
        .order_by()
    )
    oldest = pending["oldest"]
    return {
        "pending": pending["n"],
        "oldest_pending_at": oldest.isoformat() if oldest else None,
        "claimed_by": {str(user_id): n for user_id, n in claimed},
    }


def stats_for(snapshot: dict, user_id, now=None) -> dict:
    """A viewer's view of a snapshot: pending, theirs, others', the oldest pending age."""
    claimed = snapshot["claimed_by"]
    mine = claimed.get(str(user_id), 0) if user_id is not None else 0
    total = sum(claimed.values())
    oldest = snapshot["oldest_pending_at"]
    age = None
    if oldest:
        age = max(0, round(((now or timezone.now()) - parse_datetime(oldest)).total_seconds()))
    return {
        "pending": snapshot["pending"],
        "claimed": total,
        "claimed_by_me": mine,
        "claimed_by_others": total - mine,
        "oldest_pending_at": oldest,
        "oldest_pending_age_s": age,
    }


def pending_stats(viewer=None) -> dict:
    return stats_for(counts_snapshot(), viewer.pk if viewer is not None else None)


def counts_changed() -> None:
    """After commit, tell open review pages that the numbers moved.

    Only a poke travels: the consumers re-read the numbers, coalescing bursts, so a busy
    queue costs one count per process per moment rather than one per claim.
    """
    transaction.on_commit(poke_review_pages, robust=True)


def poke_review_pages() -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(COUNTS_GROUP, {"type": "counts.changed"})
