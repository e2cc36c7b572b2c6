"""Celery tasks of the bot: the event's files, a verdict acted on in Slack, an appeal."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from uploads.models import MediaItem

from . import appeals, handling, removals, verdicts
from .models import Event

log = logging.getLogger(__name__)

_RETRY = {
    "autoretry_for": (DatabaseError,),
    "retry_backoff": 2,
    "retry_kwargs": {"max_retries": 5},
    "acks_late": True,
}


@shared_task(name="chatbot.handle_event", **_RETRY)
def handle_event(event_pk: int) -> str:
    return handling.handle_event(event_pk)


@shared_task(name="chatbot.act_on_item", **_RETRY)
def act_on_item(item_id: int) -> list[str]:
    return verdicts.act_on_item(item_id)


@shared_task(name="chatbot.handle_interaction", **_RETRY)
def handle_interaction(team_id: str, payload: dict) -> str:
    return appeals.handle_interaction(team_id, payload)


@shared_task(name="chatbot.requeue_events")
def requeue_events(older_than_s: int = 120) -> int:
    """Events still queued after ``older_than_s`` (the broker was down at receipt)."""
    stale = Event.objects.filter(
        status=Event.Status.QUEUED, received_at__lt=timezone.now() - timedelta(seconds=older_than_s)
    ).values_list("pk", flat=True)
    count = 0
    for pk in stale.iterator():
        handle_event.delay(pk)
        count += 1
    return count


@shared_task(name="chatbot.retry_removals")
def retry_removals() -> int:
    """Beat, every minute: deletes Slack failed for a reason that may pass, tried again
    with backoff (chatbot.removals)."""
    return removals.retry_removals()


@shared_task(name="chatbot.forget_event_payloads")
def forget_event_payloads(days: int | None = None) -> int:
    """Beat, daily: empty the payloads of events received more than
    settings.SLACK_EVENT_PAYLOAD_DAYS (30) days ago and no longer being handled; returns
    how many. The rows stay: a late retry of one is still recognised, and its status and
    note still say what was done."""
    days = settings.SLACK_EVENT_PAYLOAD_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    return (
        Event.objects.filter(received_at__lt=cutoff)
        .exclude(status__in=[Event.Status.QUEUED, Event.Status.WORKING])
        .exclude(payload={})
        .update(payload={})
    )


def on_item_changed(sender, item, **kwargs) -> None:
    """uploads.events.item_changed (after commit): a Slack item's verdict, acted on by a
    worker (Slack's rate limits may make it wait)."""
    if item.source != MediaItem.Source.SLACK or item.status == MediaItem.Status.PROCESSING:
        return
    try:
        act_on_item.delay(item.pk)
    except Exception:
        log.exception("could not queue the slack verdict of item %s", item.pk)
