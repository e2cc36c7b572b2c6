"""Live counts over the review websocket, on the in-memory layer and on channels-redis."""

import os
import time
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client
from django.utils import timezone

from moderation_site.asgi import application
from review import claims, decisions
from review.consumers import ReviewCountsConsumer
from review.models import QueueEntry
from tests.review.review_factories import review_item
from tests.services import close_code

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://127.0.0.1:8000")


@pytest.fixture(params=["memory", "redis"])
async def layer(request, settings):
    settings.WEBSOCKET_ALLOWED_ORIGINS = [ORIGIN[1].decode()]
    if request.param == "redis":
        url = os.environ.get("REDIS_URL")
        if not url:
            pytest.skip("channels-redis needs a Redis server: set REDIS_URL")
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [url], "prefix": f"test-review-{uuid.uuid4().hex[:8]}"},
            }
        }
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    yield request.param
    layer = get_channel_layer()
    if request.param == "redis":
        await layer.flush()
    # The tests' sync_to_async calls ran in asgiref's one shared thread, whose connection
    # no request ever closes: left open, it kept the test database in use at teardown.
    await sync_to_async(connections.close_all)()


async def connect(user):
    comm = WebsocketCommunicator(ReviewCountsConsumer.as_asgi(), "/ws/review/")
    comm.scope["user"] = user
    connected, code = await comm.connect(timeout=3)
    return comm, connected, code


async def next_counts(comm, within=1.0) -> dict:
    """The next push, which must arrive within a second of the change."""
    started = time.monotonic()
    message = await comm.receive_json_from(timeout=within)
    assert message["type"] == "counts"
    assert time.monotonic() - started < within
    return message


async def test_every_change_reaches_an_open_page_within_a_second(layer, moderator, policy_admin):
    for _ in range(3):
        await sync_to_async(review_item)(age=timedelta(minutes=5))
    comm, connected, _ = await connect(moderator)
    assert connected
    first = await next_counts(comm)
    assert (first["pending"], first["claimed_by_others"], first["claimed_by_me"]) == (3, 0, 0)
    assert 290 <= first["oldest_pending_age_s"] <= 400

    await sync_to_async(review_item)()  # intake
    assert (await next_counts(comm))["pending"] == 4

    await sync_to_async(claims.claim_items)(policy_admin, 2)  # someone else claims
    counts = await next_counts(comm)
    assert (counts["pending"], counts["claimed_by_others"], counts["claimed_by_me"]) == (2, 2, 0)

    await sync_to_async(claims.release_claims)(policy_admin)  # they release
    counts = await next_counts(comm)
    assert (counts["pending"], counts["claimed_by_others"]) == (4, 0)

    (mine,) = await sync_to_async(claims.claim_items)(moderator, 1)  # this moderator claims
    counts = await next_counts(comm)
    assert (counts["pending"], counts["claimed_by_me"]) == (3, 1)

    item = await sync_to_async(lambda: mine.item)()
    await sync_to_async(decisions.record_decision)(moderator, item, "approve")  # a decision
    counts = await next_counts(comm)
    assert (counts["pending"], counts["claimed"]) == (3, 0)

    await sync_to_async(claims.claim_items)(policy_admin, 1)
    assert (await next_counts(comm))["claimed_by_others"] == 1
    await sync_to_async(
        lambda: QueueEntry.objects.filter(claimed_by=policy_admin).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
    )()
    assert await sync_to_async(claims.release_expired)() == 1  # the lease ran out
    counts = await next_counts(comm)
    assert (counts["pending"], counts["claimed_by_others"]) == (3, 0)
    await comm.disconnect()


async def test_a_burst_of_changes_is_coalesced_and_ends_on_the_true_numbers(layer, moderator):
    for _ in range(12):
        await sync_to_async(review_item)()
    comm, connected, _ = await connect(moderator)
    assert connected and (await next_counts(comm))["pending"] == 12
    for _ in range(12):
        await sync_to_async(claims.claim_items)(moderator, 1)
    pushes = [await next_counts(comm)]
    while pushes[-1]["pending"] != 0:
        pushes.append(await next_counts(comm))
    assert len(pushes) < 12
    assert pushes[-1]["claimed_by_me"] == 12
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_two_open_pages_both_hear_a_claim(layer, moderator, policy_admin):
    await sync_to_async(review_item)()
    first, ok1, _ = await connect(moderator)
    second, ok2, _ = await connect(policy_admin)
    assert ok1 and ok2
    await next_counts(first), await next_counts(second)
    await sync_to_async(claims.claim_items)(policy_admin, 1)
    theirs, mine = await next_counts(first), await next_counts(second)
    assert theirs["claimed_by_others"] == 1 and mine["claimed_by_me"] == 1
    await first.disconnect()
    await second.disconnect()


async def test_non_moderators_are_refused_with_4403(layer, uploader, outsider):
    for user in (uploader, outsider):
        comm, connected, _ = await connect(user)
        # Accepted, then closed with the code the page acts on (a handshake refused
        # outright reaches a browser as 1006, and the page would keep reconnecting).
        assert connected and await close_code(comm) == 4403


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def test_through_the_site_only_a_signed_in_moderator_from_our_origin_connects(
    layer, moderator, outsider
):
    cookie = await sync_to_async(session_cookie)(moderator)
    comm = WebsocketCommunicator(application, "/ws/review/", headers=[ORIGIN, (b"cookie", cookie)])
    connected, _ = await comm.connect(timeout=3)
    assert connected
    assert (await next_counts(comm))["pending"] == 0
    await comm.disconnect()

    anonymous = WebsocketCommunicator(application, "/ws/review/", headers=[ORIGIN])
    assert (await anonymous.connect(timeout=3))[0]
    assert await close_code(anonymous) == 4401  # signed out: the page goes to the log-in

    foreign = WebsocketCommunicator(
        application,
        "/ws/review/",
        headers=[(b"origin", b"https://evil.example"), (b"cookie", cookie)],
    )
    connected, _ = await foreign.connect(timeout=3)
    assert not connected

    outsider_cookie = await sync_to_async(session_cookie)(outsider)
    refused = WebsocketCommunicator(
        application, "/ws/review/", headers=[ORIGIN, (b"cookie", outsider_cookie)]
    )
    assert (await refused.connect(timeout=3))[0] and await close_code(refused) == 4403
