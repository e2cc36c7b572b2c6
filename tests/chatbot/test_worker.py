"""The real thing: events over HTTP to a live server, a Celery worker through Redis, the
fake Slack on loopback. A burst of events, each delivered twice at once, is handled once."""

import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from chatbot.models import Event, Workspace
from review.models import Policy
from tests.chatbot.conftest import CHANNEL, MEMBER, SIGNING_SECRET, envelope, sign
from tests.chatbot.fakeslack import ADMIN_TOKEN, BOT_ID, BOT_TOKEN, BOT_USER, TEAM
from uploads.models import MediaItem


def post_signed(url: str, body: bytes, retry: int | None = None) -> int:
    headers = {"Content-Type": "application/json", **sign(body)}
    if retry:
        headers["X-Slack-Retry-Num"] = str(retry)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


@pytest.mark.redis
def test_a_burst_through_a_real_worker_removes_each_explicit_post_once(
    transactional_db, live_server, fake_slack, jpeg, venus_bytes
):
    from celery.contrib.testing.worker import start_worker

    from moderation_site.celery import app

    Policy.current()
    ws = Workspace(team_id=TEAM, bot_user_id=BOT_USER, bot_id=BOT_ID)
    ws.set_secret("signing_secret", SIGNING_SECRET)
    ws.set_secret("bot_token", BOT_TOKEN)
    ws.set_secret("admin_token", ADMIN_TOKEN)
    ws.save()
    pictures = [venus_bytes if n % 4 == 0 else jpeg("coffee", quality=60 + n) for n in range(8)]
    bodies = []
    for data in pictures:
        event = fake_slack.post_message(CHANNEL, MEMBER, [fake_slack.add_file(data, user=MEMBER)])
        bodies.append(envelope(event))
    url = f"{live_server.url}/slack/events/"
    app.conf.task_always_eager = False
    with start_worker(
        app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=30
    ):
        with ThreadPoolExecutor(8) as pool:  # each event twice at once: a retry racing it
            statuses = list(
                pool.map(
                    lambda args: post_signed(url, *args),
                    [(b, r) for b in bodies for r in (None, 1)],
                )
            )
        assert statuses == [200] * 16
        deadline = time.monotonic() + 120
        while (
            Event.objects.exclude(status="done").exists()
            or MediaItem.objects.filter(status="processing").exists()
            or len(fake_slack.called("chat.delete")) < 2
            or len(fake_slack.posts(MEMBER)) < 2
        ):
            assert time.monotonic() < deadline, list(Event.objects.values("status", "note"))
            time.sleep(0.2)
        time.sleep(1)  # anything duplicated would arrive now
    assert Event.objects.count() == 8
    assert sorted(Event.objects.values_list("deliveries", flat=True)) == [2] * 8
    assert MediaItem.objects.count() == 8 and len(fake_slack.downloads) == 8
    assert MediaItem.objects.filter(status="flagged").count() == 2
    assert len(fake_slack.called("files.delete")) == 2
    assert len(fake_slack.called("chat.delete")) == 2
    assert len(fake_slack.posts(CHANNEL)) == 2 and len(fake_slack.posts(MEMBER)) == 2
