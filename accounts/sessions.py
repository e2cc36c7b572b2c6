"""Where a signed-in person is connected, and how that ends.

Every websocket of a signed-in user joins two channel-layer groups: the user's
(`user_group`) and its browser session's (`session_group`). Ending access sends them a
"session.ended" message and the consumers (`EndsWithSession`) close:

- a log-out ends one session: its sockets close (accounts.signals), and review releases
  the claims that session made (`credential_of` names it on each claim);
- a ban or a deactivation ends every session of the user: `end_access(user_id, cause)`,
  after commit, closes all the user's sockets and sends `access_ended`, on which review
  releases all the user's claims.

A socket is also refused at connect when its user is banned or inactive, or its session
is already gone (`accounts.services.may_stay_connected`).
"""

import hashlib
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.dispatch import Signal
from rest_framework.authtoken.models import Token

log = logging.getLogger(__name__)

# sender=None, user_id=int, cause="banned" | "deactivated"; sent after commit.
access_ended = Signal()

# Close codes: the session ended (sign in again), or the account may not connect at all.
CLOSE_SIGNED_OUT = 4401
CLOSE_REFUSED = 4403


def _digest(secret: str) -> str:
    """Group names and claim records never carry a session key or a token itself."""
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


def user_group(user_id: int) -> str:
    return f"user-{user_id}"


def session_group(session_key: str) -> str:
    return f"session-{_digest(session_key)}"


def session_source(session_key: str | None) -> str:
    return f"session:{_digest(session_key)}" if session_key else ""


def token_source(token_key: str) -> str:
    return f"token:{_digest(token_key)}"


def credential_of(request) -> str:
    """Which credential made a request: "token:<digest>" for an API token (another key
    model: "<its name>:<digest>"), "session:<digest>" for a browser session, "" when
    neither is known."""
    auth = getattr(request, "auth", None)  # DRF's request: the Token for token auth
    if isinstance(auth, Token):
        return token_source(auth.key)
    if getattr(auth, "pk", None) is not None:
        return f"{type(auth).__name__.lower()[:20]}:{_digest(str(auth.pk))}"
    session = getattr(request, "session", None)
    return session_source(session.session_key) if session is not None else ""


def close_sockets(group: str, code: int) -> None:
    """Close every socket in a group. Best effort: a down channel layer must not stop a
    log-out or a ban (the sockets' next connect is checked anyway)."""
    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group, {"type": "session.ended", "code": code})
    except Exception:  # any layer failure: logged, never raised
        log.exception("could not close the sockets of %s", group)


def close_session_sockets(session_key: str | None) -> None:
    """A log-out: the sockets opened with this browser session close."""
    if session_key:
        close_sockets(session_group(session_key), CLOSE_SIGNED_OUT)


def end_access(user_id: int, cause: str) -> None:
    """A ban or a deactivation: after commit, close all the user's sockets and tell the
    apps above (review releases the user's claims)."""

    def run():
        close_sockets(user_group(user_id), CLOSE_REFUSED)
        for listener, result in access_ended.send_robust(None, user_id=user_id, cause=cause):
            if isinstance(result, Exception):
                log.error("access-ended listener %s failed: %r", listener, result)

    transaction.on_commit(run)


class EndsWithSession:
    """Mixin for the websocket consumers of signed-in users (before the channels consumer
    class in the bases): joins the user's and the session's groups and closes on
    "session.ended"."""

    session_groups: tuple = ()

    async def join_session_groups(self, user) -> None:
        """Call before the last check of `connect`: an end committed after that check then
        still reaches this socket."""
        session = self.scope.get("session")
        key = getattr(session, "session_key", None)
        groups = [user_group(user.pk)] + ([session_group(key)] if key else [])
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.session_groups = tuple(groups)

    async def leave_session_groups(self) -> None:
        for group in self.session_groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.session_groups = ()

    async def session_ended(self, event):
        await self.close(code=event.get("code", CLOSE_SIGNED_OUT))

    async def refuse(self, code: int) -> None:
        """Refuse a connection with a close code the page can act on (4401: sign in again;
        4403: no permission). Closed before the handshake is accepted, a socket is
        rejected with an HTTP 403 and the browser reports only 1006 (abnormal closure), so
        the page could neither say why nor know not to reconnect: the handshake is
        accepted, nothing is sent, and the socket is closed with the code."""
        await self.accept()
        await self.close(code=code)
