"""Celery tasks of the API: delivering callbacks, with retries on api.callbacks' schedule."""

import logging

from celery import shared_task
from django.db import DatabaseError

from . import callbacks
from .models import Delivery

log = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name="api.deliver_callback",
    acks_late=True,
    max_retries=None,  # the schedule decides (settings.CALLBACK_RETRY_SCHEDULE)
    # The database itself failing (before or after the POST): a few quick tries more.
    autoretry_for=(DatabaseError,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_kwargs={"max_retries": 5},
)
def deliver_callback(self, delivery_id: int, expected: int, manual: bool = False) -> str:
    """One attempt; on a failure worth retrying, the next one after the schedule's wait.

    ``expected`` is the delivery's attempt count when this message was sent: a message the
    broker delivers twice, or one a resend has overtaken, does nothing.
    """
    tried = callbacks.attempt(
        delivery_id, expected, retries=self.request.retries or 0, manual=manual
    )
    if tried is None:
        return "skipped"
    if tried.retry_in is not None:
        raise self.retry(
            args=(delivery_id, tried.attempt.number),
            kwargs={"manual": False},
            countdown=tried.retry_in,
        )
    return "delivered" if tried.attempt.succeeded else "failed"


def send(delivery: Delivery, *, manual: bool = False) -> None:
    """Queue the delivery's next attempt now. A broker that is down leaves it pending (an
    admin can resend it); it never fails the caller."""
    try:
        deliver_callback.apply_async((delivery.pk, delivery.attempts), {"manual": manual})
    except Exception:
        log.exception("could not queue callback %s", delivery.event_id)


def resend(delivery: Delivery) -> None:
    """Admin's "resend": a fresh attempt now, then the whole retry schedule again."""
    callbacks.prepare_resend(delivery)
    send(delivery, manual=True)


def on_item_changed(sender, item, **kwargs) -> None:
    """uploads.events.item_changed (after commit, every verdict): call the client back."""
    delivery = callbacks.record_event(item)
    if delivery is not None:
        send(delivery)
