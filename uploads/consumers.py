from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .events import uploader_group


class UploadStatusConsumer(AsyncJsonWebsocketConsumer):
    """Pushes the signed-in uploader's item updates to their upload page."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.group = uploader_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def item_update(self, event):
        await self.send_json({"type": "item", "item": event["item"]})
