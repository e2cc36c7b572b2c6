"""Events' payloads (a member's words, file names) are emptied after
SLACK_EVENT_PAYLOAD_DAYS; the rows stay for the dedupe of late retries and the record."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chatbot.models import Event
from chatbot.tasks import forget_event_payloads

PAYLOAD = {"type": "message", "text": "look at this", "files": [{"name": "party.jpg"}]}


def event(n: int, days_ago: float, status=Event.Status.DONE) -> Event:
    row = Event.objects.create(team_id="T1", event_id=f"Ev{n}", status=status, payload=PAYLOAD)
    Event.objects.filter(pk=row.pk).update(received_at=timezone.now() - timedelta(days=days_ago))
    return row


@pytest.mark.django_db
def test_old_handled_payloads_are_emptied_and_the_rows_stay(settings):
    settings.SLACK_EVENT_PAYLOAD_DAYS = 30
    old_done = event(1, 31)
    old_ignored = event(2, 40, Event.Status.IGNORED)
    old_failed = event(3, 31, Event.Status.FAILED)
    old_queued = event(4, 31, Event.Status.QUEUED)  # not handled yet: its payload is the work
    recent = event(5, 29)
    assert forget_event_payloads() == 3
    payloads = dict(Event.objects.values_list("event_id", "payload"))
    assert payloads == {
        old_done.event_id: {},
        old_ignored.event_id: {},
        old_failed.event_id: {},
        old_queued.event_id: PAYLOAD,
        recent.event_id: PAYLOAD,
    }
    assert Event.objects.count() == 5  # a late retry of Ev1 is still recognised
    assert forget_event_payloads() == 0  # nothing twice
    assert forget_event_payloads(days=1) == 1  # the recent one, with a shorter retention
