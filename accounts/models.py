from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """Site account. Roles are groups: uploader, moderator, policy admin."""


class Author(models.Model):
    """Whoever posted an item: a site user, an API client's end user or a Slack user."""

    class Kind(models.TextChoices):
        SITE = "site", "Site user"
        API = "api", "API end user"
        SLACK = "slack", "Slack user"

    class Status(models.TextChoices):
        OK = "ok", "OK"
        WARNED = "warned", "Warned"
        BANNED = "banned", "Banned"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    external_id = models.CharField(
        max_length=255, help_text="User id, API end-user id or Slack id."
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="author",
    )
    display_name = models.CharField(max_length=255, blank=True)
    strikes = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OK)
    banned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "external_id"], name="author_unique_identity")
        ]
        permissions = [("lift_ban", "Can lift a ban")]

    def __str__(self):
        return self.display_name or f"{self.kind}:{self.external_id}"


class Strike(models.Model):
    """One counted violation. Blocks by banks and rejections by moderators count the same."""

    class Source(models.TextChoices):
        BANK = "bank", "Hash bank block"
        MODERATOR = "moderator", "Moderator rejection"
        POLICY = "policy", "Automatic flag"

    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="strike_records")
    item = models.ForeignKey(
        "uploads.MediaItem", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=12, choices=Source.choices)
    reason = models.CharField(max_length=255)
    resulting_status = models.CharField(max_length=10, choices=Author.Status.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class AccountEvent(models.Model):
    """Audit of account-level actions: bans, lifted bans."""

    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=32)
    detail = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
