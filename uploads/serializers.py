"""The one representation of an item: page JSON, websocket pushes, the API and the bot.

``item_payload`` is what anyone allowed to see an item gets (of a source URL, its host
alone: a pasted pre-signed URL's query string is a key); ``staff_payload`` adds what only
moderators see (the author, the matches and the source URL in full). Review tools add
their claim on top. The serializers declare the same fields for the API schema and answer
through these functions: one shape, built without DRF's per-call field introspection
(which cost about 1 ms per item on the upload path, measured).
"""

from django.urls import reverse
from rest_framework import serializers

from .models import MediaItem

_DATETIME = serializers.DateTimeField()


def item_payload(item: MediaItem) -> dict:
    """The item as its uploader and the community see it (plain JSON types)."""
    return {
        "id": str(item.uuid),
        "kind": item.kind,
        "status": item.status,
        "outcome": item.outcome,
        "category": item.category,
        "confidence": item.confidence,
        "scores": item.scores,
        "reason": item.reason,
        "reason_text": item.reason_text,
        "name": item.original_name,
        "mime": item.mime,
        "size": item.size,
        "width": item.width,
        "height": item.height,
        "details": item.details,
        "source": item.source,
        "source_host": item.source_host,
        "duplicate_of": str(item.duplicate_of.uuid) if item.duplicate_of_id else None,
        "duplicate_distance": item.duplicate_distance,
        "created_at": _DATETIME.to_representation(item.created_at) if item.created_at else None,
        "original_url": reverse("uploads:original", args=[item.uuid]),
    }


def staff_payload(item: MediaItem) -> dict:
    """What moderators see: the item, who posted it and what it matched."""
    author = item.author
    return {
        **item_payload(item),
        "author": {
            "name": str(author),
            "kind": author.kind,
            "status": author.status,
            "strikes": author.strikes,
        }
        if author is not None
        else None,
        "matches": item.matches,
        "source_url": item.source_url,
    }


class ItemSerializer(serializers.Serializer):
    """The schema of ``item_payload`` (what it answers is that function's)."""

    id = serializers.UUIDField()
    kind = serializers.CharField()
    status = serializers.ChoiceField(choices=MediaItem.Status.choices)
    outcome = serializers.CharField()
    category = serializers.CharField()
    confidence = serializers.FloatField(allow_null=True)
    scores = serializers.DictField(child=serializers.FloatField())
    reason = serializers.CharField()
    reason_text = serializers.CharField()
    name = serializers.CharField()
    mime = serializers.CharField()
    size = serializers.IntegerField()
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    details = serializers.JSONField()
    source = serializers.CharField()
    source_host = serializers.CharField(help_text="The source URL's host, or empty.")
    duplicate_of = serializers.UUIDField(allow_null=True)
    duplicate_distance = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    original_url = serializers.CharField()

    def to_representation(self, item):
        return item_payload(item)


class AuthorSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    strikes = serializers.IntegerField()


class StaffItemSerializer(ItemSerializer):
    """The schema of ``staff_payload``."""

    author = AuthorSerializer(allow_null=True)
    matches = serializers.JSONField()
    source_url = serializers.CharField(help_text="The URL the item was fetched from, in full.")

    def to_representation(self, item):
        return staff_payload(item)
