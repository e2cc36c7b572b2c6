"""Live updates: pushes sent after commit to the websocket groups that care."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def uploader_group(user_id: int) -> str:
    return f"uploads.user.{user_id}"


def item_changed(item) -> None:
    """Tell the uploader's open pages (after commit) that an item's state changed."""
    if not item.uploader_id:
        return
    payload = {"type": "item.update", "item": item.as_status()}
    group = uploader_group(item.uploader_id)
    transaction.on_commit(lambda: _send(group, payload))


def _send(group: str, payload: dict) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group, payload)
