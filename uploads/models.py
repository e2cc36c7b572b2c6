import uuid

from django.conf import settings
from django.db import models


def original_path(instance, filename):
    """Server-made name: nothing of the client's file name reaches the storage path."""
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"{instance.uuid.hex[:2]}/{instance.uuid.hex}.{ext}"


class MediaItem(models.Model):
    """One piece of submitted content, stored privately."""

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"

    class Source(models.TextChoices):
        WEB = "web", "Web"
        API = "api", "API"
        SLACK = "slack", "Slack"

    class Status(models.TextChoices):
        PROCESSING = "processing", "Processing"
        PASSED = "passed", "Passed"
        REVIEW = "review", "In review"
        FLAGGED = "flagged", "Flagged"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    VISIBLE = (Status.PASSED, Status.APPROVED)

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.IMAGE)
    file = models.FileField(upload_to=original_path, max_length=255)
    original_name = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    mime = models.CharField(max_length=50)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField()

    source = models.CharField(max_length=10, choices=Source.choices)
    source_url = models.URLField(max_length=2000, blank=True)
    source_ref = models.JSONField(default=dict, blank=True, help_text="e.g. Slack channel/ts.")
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="uploads",
    )
    author = models.ForeignKey(
        "accounts.Author", null=True, blank=True, on_delete=models.SET_NULL, related_name="items"
    )

    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.PROCESSING, db_index=True
    )
    reason = models.CharField(max_length=64, blank=True, help_text="Machine reason.")
    reason_text = models.CharField(max_length=500, blank=True)
    category = models.CharField(max_length=12, blank=True, help_text="neutral/suggestive/explicit")
    confidence = models.FloatField(null=True, blank=True)
    scores = models.JSONField(default=dict, blank=True)
    matches = models.JSONField(default=dict, blank=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates"
    )
    duplicate_distance = models.PositiveSmallIntegerField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    analysed_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"])]
        permissions = [("view_original", "Can view any original, flagged ones included")]

    def __str__(self):
        return f"{self.kind} {self.uuid.hex[:8]} ({self.status})"

    @property
    def is_visible(self) -> bool:
        return self.status in self.VISIBLE

    @property
    def outcome(self) -> str:
        return {
            self.Status.PASSED: "pass",
            self.Status.APPROVED: "pass",
            self.Status.REVIEW: "review",
            self.Status.FLAGGED: "flagged",
            self.Status.REJECTED: "flagged",
        }.get(self.status, "")

    def as_status(self) -> dict:
        """The public shape of an item's state: page JSON, websocket pushes and the API."""
        return {
            "id": str(self.uuid),
            "status": self.status,
            "outcome": self.outcome,
            "category": self.category,
            "confidence": self.confidence,
            "scores": self.scores,
            "reason": self.reason,
            "reason_text": self.reason_text,
            "width": self.width,
            "height": self.height,
            "mime": self.mime,
            "name": self.original_name,
            "duplicate_of": str(self.duplicate_of.uuid) if self.duplicate_of_id else None,
            "duplicate_distance": self.duplicate_distance,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }
