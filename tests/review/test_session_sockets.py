"""Websockets end with their session: refused for banned and inactive users, closed at
log-out (that browser's), at a ban and at a deactivation (all of the user's), and opened
only from our exact origins. On the in-memory layer and on channels-redis."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from accounts.models import Strike
from accounts.services import add_strike
from moderation_site.asgi import application
from moderation_site.origins import ExactOriginValidator, origin_allowed
from review.consumers import ReviewCountsConsumer
from tests.services import close_code
from uploads.consumers import UploadStatusConsumer

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = "http://127.0.0.1:8000"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def layer(request, settings):
    settings.WEBSOCKET_ALLOWED_ORIGINS = [ORIGIN]
    if request.param == "redis":
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    "hosts": [settings.REDIS_URL],
                    "prefix": f"test-sessions-{uuid.uuid4().hex[:8]}",
                },
            }
        }
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    yield request.param
    if request.param == "redis":
        await get_channel_layer().flush()


def browser(user) -> Client:
    """A signed-in browser of its own (its own session)."""
    client = Client()
    client.force_login(user)
    return client


def cookie_of(client: Client) -> bytes:
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_socket(path, client=None, origin=ORIGIN, cookie=None):
    """A socket through the whole site: origin check, session, user, consumer."""
    headers = [(b"origin", origin.encode())]
    if client is not None or cookie is not None:
        headers.append((b"cookie", cookie or cookie_of(client)))
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await comm.connect(timeout=3)
    return comm, connected, code


async def direct(consumer, path, user):
    """A socket straight to the consumer, its user set in the scope (no session)."""
    comm = WebsocketCommunicator(consumer.as_asgi(), path)
    comm.scope["user"] = user
    return comm, *(await comm.connect(timeout=3))


async def still_open(comm) -> bool:
    """Only pushes (the review page's counts), no close, until it falls quiet."""
    while not await comm.receive_nothing(timeout=0.3, interval=0.02):
        if (await comm.receive_output())["type"] == "websocket.close":
            return False
    return True


def ban(user):
    add_strike(user.author, source=Strike.Source.MODERATOR, reason="abuse", strikes_to_ban=1)


def deactivate(user):
    user.is_active = False
    user.save()


SOCKETS = [(ReviewCountsConsumer, "/ws/review/"), (UploadStatusConsumer, "/ws/uploads/")]


async def test_banned_and_inactive_users_are_refused_at_connect(layer, moderator, policy_admin):
    client = await sync_to_async(browser)(moderator)  # signed in before the ban
    await sync_to_async(ban)(moderator)
    await sync_to_async(deactivate)(policy_admin)
    for consumer, path in SOCKETS:
        for user in (moderator, policy_admin):
            comm, connected, _ = await direct(consumer, path, user)
            # Accepted, then closed with the code the page acts on (a browser reads only
            # 1006 from a handshake refused outright).
            assert connected and await close_code(comm) == 4403, (path, user)
        # A session opened before the ban does not open a socket either.
        comm, connected, _ = await open_socket(path, client)
        assert connected and await close_code(comm) == 4403, path


async def test_a_fresh_log_in_after_a_ban_opens_no_socket(layer, moderator):
    await sync_to_async(ban)(moderator)
    client = Client()
    await sync_to_async(client.force_login)(moderator)  # force_login skips the login form
    for _, path in SOCKETS:
        comm, connected, _ = await open_socket(path, client)
        assert connected and await close_code(comm) == 4403, path


async def test_logging_out_closes_that_browsers_sockets_only(layer, moderator):
    first, second = await sync_to_async(browser)(moderator), await sync_to_async(browser)(moderator)
    sockets = {}
    for name, client in (("first", first), ("second", second)):
        for _, path in SOCKETS:
            comm, connected, _ = await open_socket(path, client)
            assert connected, (name, path)
            sockets[name, path] = comm
    old_cookie = cookie_of(first)
    response = await sync_to_async(first.post)("/accounts/logout/")
    assert response.status_code == 302
    for _, path in SOCKETS:
        assert await close_code(sockets["first", path]) == 4401, path
        assert await still_open(sockets["second", path]), path
        await sockets["second", path].disconnect()
    # The logged-out session's cookie opens nothing any more.
    comm, connected, _ = await open_socket("/ws/uploads/", cookie=old_cookie)
    assert connected and await close_code(comm) == 4401


@pytest.mark.parametrize("end", [ban, deactivate], ids=["ban", "deactivation"])
async def test_a_ban_or_a_deactivation_closes_every_socket_of_the_user(
    layer, end, moderator, uploader
):
    client = await sync_to_async(browser)(moderator)
    mine = []
    for consumer, path in SOCKETS:
        comm, connected, _ = await open_socket(path, client)
        assert connected
        mine.append(comm)
        comm, connected, _ = await direct(consumer, path, moderator)  # no session at all
        assert connected
        mine.append(comm)
    theirs, connected, _ = await direct(UploadStatusConsumer, "/ws/uploads/", uploader)
    assert connected
    await sync_to_async(end)(moderator)
    for comm in mine:
        assert await close_code(comm) == 4403
    assert await still_open(theirs)  # another user's socket is not touched
    await theirs.disconnect()


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:9999",  # another port of an allowed host
        "https://127.0.0.1",  # another scheme
        "http://127.0.0.1",  # the default port, not 8000
        "https://127.0.0.1:8000",
    ],
)
async def test_a_foreign_port_or_scheme_is_refused(layer, moderator, origin):
    client = await sync_to_async(browser)(moderator)
    for _, path in SOCKETS:
        comm, connected, _ = await open_socket(path, client, origin=origin)
        assert not connected, (origin, path)


async def test_our_origin_is_accepted_and_others_or_none_are_refused(layer, moderator):
    client = await sync_to_async(browser)(moderator)
    for _, path in SOCKETS:
        comm, connected, _ = await open_socket(path, client, origin="http://127.0.0.1:8000/")
        assert connected, path
        await comm.disconnect()
        for origin in ("http://evil.example:8000", "null", "http://127.0.0.1:8000/path"):
            comm, connected, _ = await open_socket(path, client, origin=origin)
            assert not connected, (origin, path)
    comm = WebsocketCommunicator(
        application, "/ws/uploads/", headers=[(b"cookie", cookie_of(client))]
    )
    assert not (await comm.connect(timeout=3))[0]  # no Origin header at all


def test_a_listed_wildcard_subdomain_matches_with_its_scheme_and_port_only(settings):
    settings.WEBSOCKET_ALLOWED_ORIGINS = ["https://*.example.org", "http://127.0.0.1:8000"]
    assert origin_allowed("https://mod.example.org")
    assert origin_allowed("https://mod.example.org:443")
    assert not origin_allowed("https://example.org")  # a subdomain, as CSRF_TRUSTED_ORIGINS
    assert not origin_allowed("http://mod.example.org")
    assert not origin_allowed("https://mod.example.org:8443")
    assert not origin_allowed("https://evilexample.org")
    assert not origin_allowed(None)


def test_an_entry_that_is_not_an_origin_stops_the_server_at_start(settings):
    settings.WEBSOCKET_ALLOWED_ORIGINS = ["127.0.0.1:8000"]  # no scheme: any would pass
    with pytest.raises(ImproperlyConfigured, match="is not an origin"):
        ExactOriginValidator(application)


def origins_under(**env) -> list[str]:
    """WEBSOCKET_ALLOWED_ORIGINS as the production settings compute them from `env`."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "VIRTUAL_ENV")}
    code = (
        "import json; from django.conf import settings; "
        "print(json.dumps(settings.WEBSOCKET_ALLOWED_ORIGINS))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={
            **keep,
            "DJANGO_SETTINGS_MODULE": "moderation_site.settings",
            "SECRET_KEY": "origins-test-key-" + "x" * 40,
            **env,
        },
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_the_default_origins_are_the_csrf_trusted_ones_plus_make_run_for_a_local_trial():
    production = {"DEBUG": "false", "REDIS_URL": "redis://127.0.0.1:6379/0"}
    assert origins_under(**production, CSRF_TRUSTED_ORIGINS="https://mod.example.org") == [
        "https://mod.example.org"
    ]
    assert origins_under(DEBUG="true", RUN_PORT="9001") == [
        "http://127.0.0.1:9001",
        "http://localhost:9001",
    ]
