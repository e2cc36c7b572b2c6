import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

SCORE = [MinValueValidator(0.0), MaxValueValidator(1.0)]


def validate_providers(value: str):
    from .classifiers.registry import PROVIDERS

    unknown = [p for p in _split(value) if p not in PROVIDERS]
    if unknown:
        raise ValidationError(
            f"Unknown provider(s): {', '.join(unknown)}. Known: {', '.join(PROVIDERS)}."
        )


def _split(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


class Policy(models.Model):
    """The admin-edited thresholds and counts that turn matches and scores into outcomes.

    One row (pk=1). Every change made through admin is recorded in PolicyChange.
    """

    explicit_flag_at = models.FloatField(default=0.60, validators=SCORE)
    explicit_review_at = models.FloatField(default=0.30, validators=SCORE)
    suggestive_flag_at = models.FloatField(
        default=1.0,
        validators=SCORE,
        help_text="1.0 means suggestive content is never auto-flagged.",
    )
    suggestive_review_at = models.FloatField(default=0.50, validators=SCORE)
    near_duplicate_distance = models.PositiveSmallIntegerField(
        default=6,
        validators=[MaxValueValidator(12)],
        help_text="Max pHash Hamming distance (of 64 bits) for a near duplicate of a past item.",
    )
    providers = models.CharField(
        max_length=200,
        default="nudenet",
        validators=[validate_providers],
        help_text="Comma-separated classifier providers to run (nudenet, rekognition).",
    )

    # Voters against hash banks (issue: hash banks and quorum voting).
    ahash_enabled = models.BooleanField(default=True)
    ahash_threshold = models.PositiveSmallIntegerField(
        default=8, validators=[MaxValueValidator(12)]
    )
    dhash_enabled = models.BooleanField(default=True)
    dhash_threshold = models.PositiveSmallIntegerField(
        default=10, validators=[MaxValueValidator(12)]
    )
    phash_enabled = models.BooleanField(default=True)
    phash_threshold = models.PositiveSmallIntegerField(
        default=8, validators=[MaxValueValidator(12)]
    )
    mhash_enabled = models.BooleanField(default=True)
    mhash_threshold = models.PositiveSmallIntegerField(
        default=12, validators=[MaxValueValidator(12)]
    )
    pdq_enabled = models.BooleanField(default=True)
    pdq_threshold = models.PositiveSmallIntegerField(default=31, validators=[MaxValueValidator(31)])
    quorum = models.PositiveSmallIntegerField(
        default=0, help_text="Votes needed to block; 0 means a majority of the voters that hashed."
    )
    mirror_aware = models.BooleanField(default=True, help_text="Also match mirrored copies.")

    # Strikes and review.
    strikes_to_ban = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text="Strikes before a ban; earlier strikes are warnings.",
    )
    claim_batch_default = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1)]
    )
    claim_batch_max = models.PositiveSmallIntegerField(
        default=50, validators=[MinValueValidator(1)]
    )
    lease_minutes = models.PositiveSmallIntegerField(default=10, validators=[MinValueValidator(1)])
    reject_reasons = models.TextField(
        default="Explicit nudity\nSuggestive content\nKnown banned image\nHarassment\nSpam",
        help_text="One reason per line; moderators pick one or write their own.",
    )

    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "policy"
        permissions = [
            ("moderate", "Can claim and decide items under review"),
            ("override", "Can reverse an earlier decision"),
        ]

    def __str__(self):
        return "Moderation policy"

    @classmethod
    def current(cls) -> "Policy":
        policy, _ = cls.objects.get_or_create(pk=1)
        return policy

    @property
    def provider_names(self) -> list[str]:
        return _split(self.providers)

    @property
    def reject_reason_list(self) -> list[str]:
        return [line.strip() for line in self.reject_reasons.splitlines() if line.strip()]

    def voter_thresholds(self) -> dict[str, int]:
        """Enabled voters and their thresholds."""
        names = ("ahash", "dhash", "phash", "mhash", "pdq")
        return {n: getattr(self, f"{n}_threshold") for n in names if getattr(self, f"{n}_enabled")}


class PolicyChange(models.Model):
    """Who changed which policy field, when, old → new."""

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="changes")
    field = models.CharField(max_length=64)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-changed_at"]


class Analysis(models.Model):
    """One automated run over an item: the audit record of what the machine saw and decided."""

    request_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    item = models.ForeignKey("uploads.MediaItem", on_delete=models.CASCADE, related_name="analyses")
    source = models.CharField(max_length=10)
    author = models.ForeignKey(
        "accounts.Author", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    hashes = models.JSONField(default=dict)
    matches = models.JSONField(default=dict)
    scores = models.JSONField(default=dict)
    raw = models.JSONField(default=dict, help_text="Raw provider output.")
    errors = models.JSONField(default=dict)
    outcome = models.CharField(max_length=10)
    reason = models.CharField(max_length=64)
    reason_text = models.CharField(max_length=500)
    timings = models.JSONField(default=dict, help_text="Milliseconds per stage.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "analyses"


class QueueEntry(models.Model):
    """An item waiting for a person: pending until claimed, held until decided or released.

    The row is deleted when the item is decided; the Decision is the lasting record.
    """

    item = models.OneToOneField(
        "uploads.MediaItem", on_delete=models.CASCADE, related_name="queue_entry"
    )
    severity = models.FloatField(default=0.0, help_text="Higher is worked first.")
    item_created_at = models.DateTimeField(help_text="When the item was posted: older first.")
    group_key = models.UUIDField(
        null=True, blank=True, db_index=True, help_text="Near duplicates share one key."
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="review_claims",
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    queued_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-severity", "item_created_at", "pk"]
        verbose_name = "queue entry"
        verbose_name_plural = "queue"
        indexes = [
            models.Index(fields=["claimed_by", "-severity", "item_created_at"]),
            # The claim query reads only pending rows, in this order.
            models.Index(
                fields=["-severity", "item_created_at", "id"],
                condition=models.Q(claimed_by__isnull=True),
                name="review_queue_pending_order",
            ),
        ]

    def __str__(self):
        who = self.claimed_by or "nobody"
        return f"{self.item} (claimed by {who})"


class Decision(models.Model):
    """A person's verdict on one item. Never edited: a reversal is a new, superseding record."""

    class Verdict(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    item = models.ForeignKey(
        "uploads.MediaItem", on_delete=models.CASCADE, related_name="decisions"
    )
    moderator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision = models.CharField(max_length=10, choices=Verdict.choices)
    reason = models.CharField(max_length=500, blank=True)
    previous_status = models.CharField(max_length=12, blank=True)
    batch = models.UUIDField(
        default=uuid.uuid4, db_index=True, help_text="Decisions made by one action share it."
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(db_index=True)
    seconds_to_decide = models.FloatField(null=True, blank=True)
    supersedes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.RESTRICT, related_name="superseded_by"
    )
    is_override = models.BooleanField(default=False)

    class Meta:
        ordering = ["-decided_at", "-pk"]

    def __str__(self):
        return f"{self.decision} {self.item} by {self.moderator}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Decisions are immutable; record a superseding decision instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Decisions are part of the audit trail and are never deleted.")
