"""API clients and their keys, and what a client submitted.

A client is a third-party platform: its end users (``user_uuid``) are Authors scoped to it,
its items are MediaItems linked through a Submission, its callbacks are signed with its own
secret. Each client acts through a service user of its own, so that every audit record
(bank changes, decisions) names the client as the actor.
"""

import hashlib
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models

from review.models import Policy

# Scopes a key's client may hold; each endpoint names the one it needs.
ANALYSE, LOOKUP, BANKS_READ, BANKS_WRITE, REVIEW = (
    "analyse",
    "lookup",
    "banks:read",
    "banks:write",
    "review",
)
SCOPES = (ANALYSE, LOOKUP, BANKS_READ, BANKS_WRITE, REVIEW)
KEY_PREFIX = "mk_"


def validate_scopes(value):
    unknown = sorted(set(value or ()) - set(SCOPES))
    if unknown:
        raise ValidationError(f"Unknown scopes: {', '.join(unknown)}. Known: {', '.join(SCOPES)}.")


def validate_rate(value):
    """DRF's throttle rate syntax: "<n>/<second|minute|hour|day>"."""
    try:
        count, period = value.split("/")
        int(count)
    except ValueError:
        raise ValidationError("A rate is a number per period, e.g. 600/minute.") from None
    if period[:1] not in ("s", "m", "h", "d"):
        raise ValidationError("The period is second, minute, hour or day.")


def new_signing_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class ApiClient(models.Model):
    """A third-party platform that calls the API."""

    name = models.CharField(max_length=100, unique=True)
    scopes = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_scopes],
        help_text=f"What its keys may do: {', '.join(SCOPES)}.",
    )
    throttle_rate = models.CharField(
        max_length=32,
        default="600/minute",
        validators=[validate_rate],
        help_text="Requests per period for all of its keys together, e.g. 600/minute.",
    )
    callback_url = models.URLField(
        max_length=2000,
        blank=True,
        # Only what the guarded POST sends to (Django's URLField also takes ftp and ftps).
        validators=[
            URLValidator(
                schemes=["http", "https"],
                message="Enter an http or https URL: callbacks are POSTed there.",
            )
        ],
        help_text="Where decided analyses are POSTed (through the SSRF guard), signed.",
    )
    signing_secret = models.CharField(
        max_length=100,
        default=new_signing_secret,
        help_text="Signs callbacks (HMAC-SHA256). Never shown in answers or logs.",
    )
    policy = models.ForeignKey(
        "review.Policy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The policy its items are judged by (empty: the site's policy).",
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="api_client",
        help_text="The service account the client acts as (audit records name it).",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def allows(self, scope: str) -> bool:
        return scope in (self.scopes or ())

    def judging_policy(self) -> Policy:
        """The policy its items and lookups are judged by: its own, else the site's."""
        return self.policy if self.policy_id else Policy.current()


class ApiKey(models.Model):
    """One key of a client: shown once when made, stored as its SHA-256 (keys are 32
    random bytes, so a fast hash is enough), revocable on its own."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="keys")
    name = models.CharField(max_length=100, blank=True, help_text="Where it is used.")
    prefix = models.CharField(max_length=16, db_index=True, help_text="Shown to tell keys apart.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self):
        state = " (revoked)" if self.revoked_at else ""
        return f"{self.prefix}…{state}"

    @staticmethod
    def digest_of(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()


class Submission(models.Model):
    """What a client sent for one item: the link from its world (its user, its metadata,
    its idempotency key) to the item, its analysis and the callbacks."""

    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="submissions")
    item = models.OneToOneField(
        "uploads.MediaItem", on_delete=models.CASCADE, related_name="submission"
    )
    user_uuid = models.CharField(max_length=255, help_text="The client's own id of its user.")
    metadata = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True)
    body_digest = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the request, for idempotent replays."
    )
    batch = models.UUIDField(null=True, blank=True, db_index=True)
    position = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="one_submission_per_idempotency_key",
            )
        ]
        indexes = [models.Index(fields=["client", "-created_at"], name="submission_client_recent")]

    def __str__(self):
        return f"{self.client}: {self.item_id}"


class Delivery(models.Model):
    """One event for a client's callback URL: its body is fixed when the event happens (so
    every attempt sends the same bytes and the same ``event_id``); each try is a
    DeliveryAttempt. The signing secret is never stored here: each attempt signs afresh."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Retrying"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    event_id = models.UUIDField(unique=True, editable=False)
    event = models.CharField(max_length=32, help_text="analysis.decided, .reviewed or .reversed.")
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="deliveries")
    item = models.ForeignKey(
        "uploads.MediaItem", on_delete=models.CASCADE, related_name="callback_deliveries"
    )
    body = models.TextField(help_text="The JSON sent, byte for byte, on every attempt.")
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "callback deliveries"
        verbose_name = "callback delivery"
        indexes = [models.Index(fields=["client", "-created_at"], name="delivery_client_recent")]

    def __str__(self):
        return f"{self.event} {self.event_id} to {self.client} ({self.status})"


class DeliveryAttempt(models.Model):
    """One POST of a delivery: when, where (the URL without its query), what came back
    (status code, or why nothing did), how long it took, and when the next try is due."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="tries")
    number = models.PositiveIntegerField()
    manual = models.BooleanField(default=False, help_text="Sent by a resend from admin.")
    started_at = models.DateTimeField()
    duration_ms = models.FloatField(null=True, blank=True)
    url = models.CharField(max_length=2000, blank=True, help_text="Its query string masked.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    retry_in = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds until the next try (none: no more tries)."
    )

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="one_attempt_per_number")
        ]

    def __str__(self):
        outcome = self.status_code or self.error or "…"
        return f"attempt {self.number}: {outcome}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
