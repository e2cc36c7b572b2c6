from rest_framework import serializers

from uploads.serializers import StaffItemSerializer, staff_payload

from .decisions import MAX_REASON
from .models import Decision, QueueEntry


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


class ReviewItemSerializer(StaffItemSerializer):
    """A claimed item as tools see it: the one item representation (as staff see it) plus
    the claim. A QueueEntry in."""

    purpose = serializers.ChoiceField(
        choices=QueueEntry.Purpose.choices,
        help_text="review: held for a decision; confirm: hidden on a model's score alone; "
        "appeal: its author asks for another look at a removal.",
    )
    severity = serializers.FloatField()
    group = serializers.UUIDField(source="group_key", allow_null=True)
    claimed_at = serializers.DateTimeField()
    lease_expires_at = serializers.DateTimeField()

    def to_representation(self, entry):
        return {
            **staff_payload(entry.item),
            "purpose": entry.purpose,
            "severity": entry.severity,
            "group": str(entry.group_key) if entry.group_key else None,
            "claimed_at": self.fields["claimed_at"].to_representation(entry.claimed_at),
            "lease_expires_at": self.fields["lease_expires_at"].to_representation(
                entry.lease_expires_at
            ),
        }


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
