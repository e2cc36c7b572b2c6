import asyncio
import time
import weakref

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.services import may_stay_connected
from accounts.sessions import CLOSE_REFUSED, CLOSE_SIGNED_OUT, EndsWithSession

from .access import is_moderator
from .counts import COUNTS_GROUP, counts_snapshot, stats_for

# A burst of claims or decisions becomes one update per page per this many seconds.
COALESCE_S = 0.1


class SharedSnapshot:
    """The queue's numbers, read at most once per burst per process however many pages
    are open: a page asks for numbers read after the poke it is answering."""

    def __init__(self):
        self.value = None
        self.read_at = float("-inf")
        self._locks = weakref.WeakKeyDictionary()  # asyncio locks belong to one event loop

    async def read_after(self, moment: float) -> dict:
        lock = self._locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with lock:
            if self.read_at <= moment:
                started = time.monotonic()
                self.value = await database_sync_to_async(counts_snapshot)()
                self.read_at = started
            return self.value


snapshots = SharedSnapshot()


class ReviewCountsConsumer(EndsWithSession, AsyncJsonWebsocketConsumer):
    """Live queue numbers for open review pages; moderators only, not banned (close code
    4403; signed out 4401). Closes when its session ends (log-out 4401; ban or deactivation
    4403)."""

    user_id = None
    refresh = None
    poked_at = float("-inf")
    last_sent = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_SIGNED_OUT)  # the page reloads through the log-in form
            return
        if not await database_sync_to_async(is_moderator)(user):
            await self.refuse(CLOSE_REFUSED)
            return
        await self.join_session_groups(user)
        if not await database_sync_to_async(may_stay_connected)(user, self.scope.get("session")):
            await self.leave_session_groups()
            await self.refuse(CLOSE_REFUSED)
            return
        self.user_id = user.pk
        await self.channel_layer.group_add(COUNTS_GROUP, self.channel_name)
        await self.accept()
        await self._send(await snapshots.read_after(time.monotonic()))

    async def disconnect(self, code):
        if self.refresh is not None:
            self.refresh.cancel()
        if self.user_id is not None:
            await self.channel_layer.group_discard(COUNTS_GROUP, self.channel_name)
        await self.leave_session_groups()

    async def counts_changed(self, event):
        self.poked_at = time.monotonic()
        if self.refresh is None or self.refresh.done():
            self.refresh = asyncio.create_task(self._refresh())

    async def _refresh(self):
        while True:
            await asyncio.sleep(COALESCE_S)
            answered = self.poked_at
            snapshot = await snapshots.read_after(answered)
            if snapshot != self.last_sent:
                await self._send(snapshot)
            if self.poked_at == answered:  # no poke arrived while reading
                return

    async def _send(self, snapshot):
        self.last_sent = snapshot
        await self.send_json({"type": "counts", **stats_for(snapshot, self.user_id)})
