from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .queue import COUNTS_GROUP, counts_snapshot, is_moderator, stats_for


class ReviewCountsConsumer(AsyncJsonWebsocketConsumer):
    """Live queue numbers for open review pages; moderators only (close code 4403)."""

    async def connect(self):
        user = self.scope.get("user")
        if not await database_sync_to_async(is_moderator)(user):
            await self.close(code=4403)
            return
        self.user_id = user.pk
        await self.channel_layer.group_add(COUNTS_GROUP, self.channel_name)
        await self.accept()
        await self._send_counts(await database_sync_to_async(counts_snapshot)())

    async def disconnect(self, code):
        if hasattr(self, "user_id"):
            await self.channel_layer.group_discard(COUNTS_GROUP, self.channel_name)

    async def counts_update(self, event):
        await self._send_counts(event["counts"])

    async def _send_counts(self, snapshot):
        await self.send_json({"type": "counts", **stats_for(snapshot, self.user_id)})
