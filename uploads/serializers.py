"""The one representation of an item: page JSON, websocket pushes, the API and the bot.

``ItemSerializer`` is what anyone allowed to see an item gets; ``StaffItemSerializer`` adds
what only moderators see (the author and the matches). Review tools add their claim on top.
"""

from django.urls import reverse
from rest_framework import serializers

from .models import MediaItem


class ItemSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    outcome = serializers.CharField(read_only=True)
    name = serializers.CharField(source="original_name", read_only=True)
    duplicate_of = serializers.SerializerMethodField()
    original_url = serializers.SerializerMethodField()

    class Meta:
        model = MediaItem
        fields = [
            "id",
            "kind",
            "status",
            "outcome",
            "category",
            "confidence",
            "scores",
            "reason",
            "reason_text",
            "name",
            "mime",
            "size",
            "width",
            "height",
            "details",
            "source",
            "duplicate_of",
            "duplicate_distance",
            "created_at",
            "original_url",
        ]
        read_only_fields = fields

    def get_duplicate_of(self, item) -> str | None:
        return str(item.duplicate_of.uuid) if item.duplicate_of_id else None

    def get_original_url(self, item) -> str:
        return reverse("uploads:original", args=[item.uuid])


class AuthorSerializer(serializers.Serializer):
    name = serializers.CharField(source="__str__")
    kind = serializers.CharField()
    status = serializers.CharField()
    strikes = serializers.IntegerField()


class StaffItemSerializer(ItemSerializer):
    author = AuthorSerializer(allow_null=True, read_only=True)
    matches = serializers.JSONField(read_only=True)

    class Meta(ItemSerializer.Meta):
        fields = [*ItemSerializer.Meta.fields, "author", "matches"]
        read_only_fields = fields


def item_payload(item: MediaItem) -> dict:
    """The item as its uploader and the community see it (plain JSON types)."""
    return _plain(ItemSerializer(item).data)


def _plain(data) -> dict:
    """DRF gives UUID/datetime as strings already; make the ReturnDict a plain dict so the
    channel layer (msgpack) and JsonResponse take it as is."""
    return {key: value for key, value in data.items()}
