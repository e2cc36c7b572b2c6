"""The one "item changed" event, and its first listener: the uploader's open pages.

Whatever changes an item's state (the analysis, a decision, a reversal) calls
``announce(item)``; after the transaction commits, every receiver of ``item_changed`` is
called with the item. Receivers today: the live push to the uploader's upload page (here).
Client webhooks and Slack replies connect to the same signal. A failing receiver is logged
and does not stop the others (``send_robust``).
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.dispatch import Signal, receiver

from .models import MediaItem
from .serializers import item_payload

log = logging.getLogger(__name__)

item_changed = Signal()  # sender=MediaItem, item=MediaItem


def announce(item: MediaItem) -> None:
    """Tell every listener, after commit, that this item's state changed."""
    transaction.on_commit(lambda: _send(item))


def _send(item: MediaItem) -> None:
    for listener, result in item_changed.send_robust(sender=MediaItem, item=item):
        if isinstance(result, Exception):
            log.error("item-changed listener %s failed: %r", listener, result)


def uploader_group(user_id: int) -> str:
    return f"uploads.user.{user_id}"


@receiver(item_changed, dispatch_uid="uploads.push_to_uploader")
def push_to_uploader(sender, item: MediaItem, **kwargs) -> None:
    """The uploader's open upload pages show the new state live."""
    if not item.uploader_id:
        return
    layer = get_channel_layer()
    if layer is not None:
        payload = {"type": "item.update", "item": item_payload(item)}
        async_to_sync(layer.group_send)(uploader_group(item.uploader_id), payload)
