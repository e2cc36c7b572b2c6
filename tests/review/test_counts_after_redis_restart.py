"""Live counts survive a Redis restart (issue 14): a private redis-server (never the
machine's) carries the channel layer; it is killed under an open review page and started
again empty, as a restart without persistence leaves it."""

import time
import uuid

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from moderation_site.cache import channel_layer_host
from review import claims
from review.consumers import ReviewCountsConsumer
from tests.review.review_factories import review_item
from tests.services import PrivateRedis

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def private_layer(settings, tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [channel_layer_host(server.url)],
                "prefix": f"restart-{uuid.uuid4().hex[:8]}",
            },
        }
    }
    yield server
    if server.process.poll() is None:
        server.stop()


async def open_page(user):
    comm = WebsocketCommunicator(ReviewCountsConsumer.as_asgi(), "/ws/review/")
    comm.scope["user"] = user
    connected, _ = await comm.connect(timeout=3)
    assert connected
    return comm


async def test_counts_resume_after_a_redis_restart(private_layer, moderator, policy_admin):
    """The page's socket ends when its layer goes (review.js reconnects with backoff on
    any close but 4401/4403); claims during the outage succeed without their poke; the
    page that reconnects once Redis is back gets the true numbers and hears changes again,
    though the restart lost every group membership."""
    await sync_to_async(review_item)()
    page = await open_page(moderator)
    assert (await page.receive_json_from(timeout=2))["pending"] == 1

    private_layer.stop()
    with pytest.raises(redis.exceptions.ConnectionError):
        await page.receive_output(timeout=5)  # the consumer ends: the socket closes
    # A claim while Redis is down still succeeds: the poke is a hint and is dropped.
    assert len(await sync_to_async(claims.claim_items)(policy_admin, 1)) == 1
    await sync_to_async(review_item)()  # and intake goes on

    private_layer.start()  # empty
    again = await open_page(moderator)  # the reconnect
    counts = await again.receive_json_from(timeout=2)
    assert (counts["pending"], counts["claimed_by_others"]) == (1, 1)
    await sync_to_async(review_item)()
    started = time.monotonic()
    assert (await again.receive_json_from(timeout=2))["pending"] == 2
    assert time.monotonic() - started < 1.0
    await again.disconnect()
