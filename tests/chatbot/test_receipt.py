"""The Events API endpoint: signatures, the 5-minute window, url_verification, dedupe on
event_id across Slack's retries, and what the bot leaves alone."""

import json
import time

import pytest

from chatbot.models import Event
from tests.chatbot.conftest import CHANNEL, MEMBER, deliver, envelope, sign
from tests.chatbot.fakeslack import BOT_ID, BOT_USER


def file_event(**extra):
    event = {
        "type": "message",
        "subtype": "file_share",
        "channel": CHANNEL,
        "channel_type": "channel",
        "user": MEMBER,
        "ts": "1700000000.000100",
        "files": [{"id": "F1", "url_private": "https://files.slack.com/x.jpg"}],
    }
    event.update(extra)
    return event


@pytest.fixture
def no_tasks(monkeypatch):
    """Receipt only: what would be queued is counted, not run."""
    queued = []
    from chatbot import tasks

    monkeypatch.setattr(tasks.handle_event, "delay", lambda pk: queued.append(pk))
    return queued


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"X-Slack-Request-Timestamp": str(int(time.time()))}, id="no-signature"),
        pytest.param({"X-Slack-Signature": "v0=00"}, id="no-timestamp"),
        pytest.param("wrong-secret", id="wrong-secret"),
        pytest.param("stale", id="six-minutes-old"),
        pytest.param("future", id="six-minutes-ahead"),
        pytest.param("not-a-number", id="non-numeric-timestamp"),
        pytest.param("tampered", id="body-changed-after-signing"),
    ],
)
def test_an_unsigned_or_badly_signed_event_gets_401_in_the_error_shape_and_changes_nothing(
    client, workspace, no_tasks, headers, django_capture_on_commit_callbacks
):
    body = envelope(file_event())
    now = int(time.time())
    if headers == "wrong-secret":
        headers = sign(body, secret="another-apps-secret")
    elif headers == "stale":
        headers = sign(body, timestamp=str(now - 6 * 60))
    elif headers == "future":
        headers = sign(body, timestamp=str(now + 6 * 60))
    elif headers == "not-a-number":
        headers = sign(body, timestamp="17e8")  # slack_sdk's int() raises ValueError
    elif headers == "tampered":
        headers = sign(body)
        body = body.replace(b"look", b"LOOK") if b"look" in body else body + b" "
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(client, body, headers)
    assert response.status_code == 401
    assert response.json() == {
        "code": "bad_signature",
        "detail": "The request is not signed by Slack.",
    }
    assert not Event.objects.exists() and no_tasks == []


def test_four_minutes_either_way_is_inside_the_window(client, workspace, no_tasks):
    now = int(time.time())
    for offset in (-4 * 60, 4 * 60):
        body = envelope(file_event())
        assert deliver(client, body, sign(body, timestamp=str(now + offset))).status_code == 200
    assert Event.objects.count() == 2


def test_url_verification_is_answered_only_when_signed(client, workspace):
    body = json.dumps({"token": "t", "challenge": "3eZbrw1aB", "type": "url_verification"})
    body = body.encode()
    assert deliver(client, body, {}).status_code == 401
    assert deliver(client, body, sign(body, secret="nope")).status_code == 401
    response = deliver(client, body)
    assert response.status_code == 200 and response.json() == {"challenge": "3eZbrw1aB"}


def test_the_apps_own_secret_signs_for_workspaces_installed_through_oauth(
    client, workspace, settings, no_tasks, django_capture_on_commit_callbacks
):
    workspace.set_secret("signing_secret", "")
    workspace.save()
    settings.SLACK_SIGNING_SECRET = "the-apps-secret"
    body = envelope(file_event())
    assert deliver(client, body).status_code == 401  # the old per-workspace secret is gone
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, body, sign(body, secret="the-apps-secret")).status_code == 200
    assert len(no_tasks) == 1


def test_four_deliveries_of_one_event_are_acknowledged_and_queued_once(
    client, workspace, no_tasks, django_capture_on_commit_callbacks
):
    body = envelope(file_event(), event_id="Ev0RETRIED")
    with django_capture_on_commit_callbacks(execute=True):
        answers = [deliver(client, body, retry=n or None).status_code for n in range(4)]
    assert answers == [200, 200, 200, 200]
    event = Event.objects.get()
    assert (event.deliveries, event.last_retry_num, event.status) == (4, 3, "queued")
    assert no_tasks == [event.pk]


def test_a_first_delivery_lost_and_retried_is_handled_once(
    client, workspace, no_tasks, django_capture_on_commit_callbacks
):
    body = envelope(file_event())
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, body, retry=1).status_code == 200
    assert len(no_tasks) == 1 and Event.objects.get().last_retry_num == 1


@pytest.mark.parametrize(
    "change, why",
    [
        ({"subtype": "message_changed"}, "subtype message_changed"),
        ({"subtype": "message_deleted"}, "subtype message_deleted"),
        ({"subtype": "bot_message", "bot_id": "B0OTHER"}, "subtype bot_message"),
        ({"bot_id": "B0OTHER"}, "a bot's message"),
        ({"bot_id": BOT_ID}, "the bot's own message"),
        ({"user": BOT_USER}, "the bot's own message"),
        ({"channel_type": "im"}, "channel type im"),
        ({"files": []}, "no files"),
        ({"type": "reaction_added"}, "not a message"),
    ],
)
def test_echoes_bots_the_bots_own_posts_and_messages_without_files_are_recorded_not_handled(
    client, workspace, no_tasks, change, why, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, envelope(file_event(**change))).status_code == 200
    event = Event.objects.get()
    assert (event.status, event.note) == ("ignored", why)
    assert no_tasks == []


def test_a_private_channels_file_share_is_handled(
    client, workspace, no_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, envelope(file_event(channel_type="group")))
    assert Event.objects.get().status == "queued" and len(no_tasks) == 1


def test_bad_bodies_get_4xx_never_500(client, workspace):
    for body in (b"not json", b"[]", b'{"type": "event_callback", "team_id": "T0TEAM"}'):
        response = deliver(client, body)
        assert response.status_code == 400, body
        assert response.json()["code"] == "invalid"
    big = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    assert deliver(client, big).status_code == 413
    assert client.get("/slack/events/").status_code == 405
