import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models


def original_path(instance, filename):
    """Server-made name: nothing of the client's file name reaches the storage path."""
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"{instance.uuid.hex[:2]}/{instance.uuid.hex}.{ext}"


class MediaItem(models.Model):
    """One piece of submitted content, stored privately.

    ``kind`` names a media kind in uploads.kinds (image today). Facts that only some kinds
    have are optional (``width``/``height``) or live in ``details``.
    """

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
    kind = models.CharField(max_length=16, default="image", db_index=True)
    file = models.FileField(upload_to=original_path, max_length=255)
    original_name = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    mime = models.CharField(max_length=50)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    size = models.PositiveIntegerField()
    details = models.JSONField(
        default=dict, blank=True, help_text="Facts of the kind: frames, duration, language…"
    )

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
    category = models.CharField(
        max_length=32, blank=True, help_text="The overall class: neutral or a category's name."
    )
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
    def source_host(self) -> str:
        """The source URL's host alone (no user name, port, path or query): what people
        other than staff are shown of it."""
        try:
            return urlsplit(self.source_url).hostname or ""
        except ValueError:
            return ""

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
