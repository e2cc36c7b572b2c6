from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.services import may_stay_connected
from accounts.sessions import CLOSE_REFUSED, CLOSE_SIGNED_OUT, EndsWithSession

from .events import uploader_group


class UploadStatusConsumer(EndsWithSession, AsyncJsonWebsocketConsumer):
    """Pushes the signed-in uploader's item updates to their upload page. Anonymous 4401;
    banned or inactive 4403. Closes when its session ends (log-out 4401; ban or
    deactivation 4403)."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_SIGNED_OUT)
            return
        await self.join_session_groups(user)
        if not await database_sync_to_async(may_stay_connected)(user, self.scope.get("session")):
            await self.leave_session_groups()
            await self.refuse(CLOSE_REFUSED)
            return
        self.group = uploader_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.leave_session_groups()

    async def item_update(self, event):
        await self.send_json({"type": "item", "item": event["item"]})
