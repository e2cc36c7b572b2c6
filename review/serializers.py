from django.urls import reverse
from rest_framework import serializers

from .models import Decision
from .queue import MAX_REASON


class ClaimSerializer(serializers.Serializer):
    # The range is the policy's and is checked by the service, with the same message.
    count = serializers.IntegerField(required=False, allow_null=True)


class ReleaseSerializer(serializers.Serializer):
    items = serializers.ListField(
        child=serializers.UUIDField(), required=False, allow_empty=True, max_length=1000
    )


class DecisionInputSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(
        choices=Decision.Verdict.values,
        error_messages={"invalid_choice": "The decision must be “approve” or “reject”."},
    )
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=MAX_REASON, trim_whitespace=True
    )


class AuthorSerializer(serializers.Serializer):
    name = serializers.CharField(source="__str__")
    kind = serializers.CharField()
    status = serializers.CharField()
    strikes = serializers.IntegerField()


class ReviewItemSerializer(serializers.Serializer):
    """A claimed item as tools see it (a QueueEntry in, the item's fields out)."""

    id = serializers.UUIDField(source="item.uuid")
    status = serializers.CharField(source="item.status")
    category = serializers.CharField(source="item.category")
    confidence = serializers.FloatField(source="item.confidence", allow_null=True)
    scores = serializers.JSONField(source="item.scores")
    reason = serializers.CharField(source="item.reason")
    reason_text = serializers.CharField(source="item.reason_text")
    matches = serializers.JSONField(source="item.matches")
    source = serializers.CharField(source="item.source")
    author = AuthorSerializer(source="item.author", allow_null=True)
    created_at = serializers.DateTimeField(source="item.created_at")
    severity = serializers.FloatField()
    group = serializers.UUIDField(source="group_key", allow_null=True)
    claimed_at = serializers.DateTimeField()
    lease_expires_at = serializers.DateTimeField()
    original_url = serializers.SerializerMethodField()

    def get_original_url(self, entry) -> str:
        return reverse("uploads:original", args=[entry.item.uuid])


class DecisionSerializer(serializers.ModelSerializer):
    item = serializers.UUIDField(source="item.uuid")
    moderator = serializers.CharField(source="moderator.get_username", default=None)
    supersedes = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Decision
        fields = [
            "id",
            "item",
            "decision",
            "reason",
            "moderator",
            "previous_status",
            "batch",
            "claimed_at",
            "decided_at",
            "seconds_to_decide",
            "supersedes",
            "is_override",
        ]
