"""Live queue numbers: a snapshot for everyone, each viewer's share, and the poke that
tells open review pages (through the channel layer) that the numbers moved."""

import asyncio
import logging
import os
import threading

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import QueueEntry

COUNTS_GROUP = "review.counts"

log = logging.getLogger(__name__)


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
    """Send the poke. Called from a request under daphne (a thread of sync_to_async) it runs
    on the server's event loop, as async_to_sync does. From a plain thread (a Celery
    worker, a management command, a benchmark) async_to_sync would start a thread and an
    event loop for each poke (~5 ms, half of a claim's cost: bench/claims.py) and
    channels-redis a connection per loop: the poke goes to one event loop per process
    instead, without waiting (a poke is a hint; the pages re-read the numbers)."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "counts.changed"}
    main = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if main is not None and main.is_running():
        async_to_sync(layer.group_send)(COUNTS_GROUP, message)
        return
    future = asyncio.run_coroutine_threadsafe(layer.group_send(COUNTS_GROUP, message), _loop())
    future.add_done_callback(_log_failure)


_poke_loop: tuple[int, asyncio.AbstractEventLoop] | None = None
_poke_lock = threading.Lock()


def _loop() -> asyncio.AbstractEventLoop:
    """This process's poke loop, in a daemon thread; a forked child starts its own."""
    global _poke_loop
    with _poke_lock:
        if _poke_loop is None or _poke_loop[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="review-pokes", daemon=True).start()
            _poke_loop = (os.getpid(), loop)
        return _poke_loop[1]


def _log_failure(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("could not poke the review pages: %s", future.exception())
