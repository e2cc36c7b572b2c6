"""The fake Slack, a workspace pointed at it, and signed deliveries of events."""

import hashlib
import hmac
import itertools
import json
import threading
import time

import pytest
from django.urls import reverse

from chatbot import receipt
from chatbot.models import Workspace
from review.models import Policy
from review.policy import add_policy
from tests.chatbot import fakeslack
from tests.chatbot.fakeslack import ADMIN_TOKEN, BOT_ID, BOT_TOKEN, BOT_USER, TEAM

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ADMIN_CHANNEL = "C0ADMINS"
MEMBER = "U0MEMBER"
CHANNEL = "C0GENERAL"
_event_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def _no_cached_workspaces():
    """Workspaces of other tests' databases (the same team ids) must not be served."""
    receipt._cache.clear()
    yield
    receipt._cache.clear()


@pytest.fixture
def fake_slack(settings):
    server = fakeslack.FakeSlack()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.SLACK_API_URL = server.api_url
    settings.SLACK_FILE_HOSTS = [server.origin]
    settings.URL_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.SLACK_SIGNING_SECRET = ""
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def workspace_policy(db):
    """The workspace's own policy: a ban at the second strike ("warning 1 of 2")."""
    Policy.current()
    return add_policy(Policy(strikes_to_ban=2))


@pytest.fixture
def workspace(db, workspace_policy):
    ws = Workspace(
        team_id=TEAM,
        name="Acme",
        bot_user_id=BOT_USER,
        bot_id=BOT_ID,
        admin_channel=ADMIN_CHANNEL,
        policy=workspace_policy,
    )
    ws.set_secret("signing_secret", SIGNING_SECRET)
    ws.set_secret("bot_token", BOT_TOKEN)
    ws.set_secret("admin_token", ADMIN_TOKEN)
    ws.save()
    return ws


def sign(body: bytes, *, secret: str = SIGNING_SECRET, timestamp: str | None = None) -> dict:
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    base = b"v0:" + timestamp.encode() + b":" + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}


def envelope(event: dict, event_id: str | None = None, team: str = TEAM) -> bytes:
    return json.dumps(
        {
            "token": "deprecated-verification-token",
            "team_id": team,
            "api_app_id": "A0APP",
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(_event_ids):08d}",
            "event_time": int(time.time()),
            "event": event,
        }
    ).encode()


def deliver(client, body: bytes, headers: dict | None = None, retry: int | None = None):
    """POST an event as Slack does: signed unless ``headers`` are given."""
    headers = dict(sign(body) if headers is None else headers)
    if retry is not None:
        headers["X-Slack-Retry-Num"] = str(retry)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return client.post(
        reverse("chatbot:events"), data=body, content_type="application/json", headers=headers
    )


@pytest.fixture
def post(client, fake_slack, workspace, django_capture_on_commit_callbacks):
    """A member posts files (bytes or (bytes, add_file options)); Slack delivers the event
    ``deliveries`` times (retries numbered 1, 2, 3)."""

    def send(*files, deliveries=1, user=MEMBER, thread_ts=""):
        shared = []
        for f in files:
            data, options = f if isinstance(f, tuple) else (f, {})
            shared.append(fake_slack.add_file(data, user=user, **options))
        event = fake_slack.post_message(CHANNEL, user, shared, thread_ts=thread_ts)
        body = envelope(event)
        for n in range(deliveries):
            with django_capture_on_commit_callbacks(execute=True):
                assert deliver(client, body, retry=n or None).status_code == 200
        return event

    return send
