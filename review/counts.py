"""Live queue numbers: a snapshot for everyone, each viewer's share, and the poke that
tells open review pages (through the channel layer) that the numbers moved."""

import asyncio
import logging
import os
import threading
import time

from asgiref.sync import SyncToAsync
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


# A poke waits this long for the changes after it: a burst of claims in one process sends
# one poke per 50 ms instead of one per claim. Each poke cost 0.42 ms of the claiming
# process's CPU, half of a claim's (bench/claims.py), plus Redis's share.
POKE_DELAY_S = 0.05
# A poke scheduled on an event loop that stopped before sending it (a test's loop) is
# given up after this long, so the next change pokes again.
POKE_GIVE_UP_S = 1.0


def poke_review_pages() -> None:
    """Send the poke, coalesced: within POKE_DELAY_S of the first change, one poke carries
    every change made meanwhile (the pages re-read the numbers when it arrives).

    Called from a request under daphne (a thread of sync_to_async) it runs on the server's
    event loop, as async_to_sync does, without waiting for it. From a plain thread (a
    Celery worker, a management command, a benchmark) async_to_sync would start a thread
    and an event loop for each poke (~5 ms) and channels-redis a connection per loop: the
    poke goes to one event loop per process instead. A poke is a hint: a failed send is
    logged, never raised.
    """
    global _poke_due
    layer = get_channel_layer()
    if layer is None:
        return
    main = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    loop = main if main is not None and main.is_running() else _loop()
    now = time.monotonic()
    with _poke_lock:
        due = _poke_due
        if due is not None and due[0] is loop and now < due[1] + POKE_GIVE_UP_S:
            return  # a poke is on its way and will carry this change too
        _poke_due = (loop, now + POKE_DELAY_S)
    loop.call_soon_threadsafe(loop.call_later, POKE_DELAY_S, _send_poke, loop, layer)


_poke_due: tuple[asyncio.AbstractEventLoop, float] | None = None
_poke_tasks: set = set()  # asyncio holds tasks weakly: a poke in flight is kept here


def _send_poke(loop, layer) -> None:
    global _poke_due
    with _poke_lock:
        if _poke_due is not None and _poke_due[0] is loop:
            _poke_due = None  # a change from now on needs a poke of its own
    task = loop.create_task(layer.group_send(COUNTS_GROUP, {"type": "counts.changed"}))
    _poke_tasks.add(task)
    task.add_done_callback(_poke_tasks.discard)
    task.add_done_callback(_log_failure)


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
