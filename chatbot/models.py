"""Workspaces (their sealed secrets), the events Slack sent (receipt and dedupe), the
messages and files the bot checked, its Web API calls (the audit) and appeals."""

from django.conf import settings
from django.db import models

from .sealing import open_sealed, seal


class Workspace(models.Model):
    """A Slack installation: its secrets (sealed at rest, chatbot.sealing), where admin
    notices go, and the policy its items are judged by (empty: the site's)."""

    SECRETS = ("signing_secret", "bot_token", "bot_refresh_token", "admin_token")

    team_id = models.CharField(max_length=32, unique=True, help_text="T…, from Slack.")
    name = models.CharField(max_length=255, blank=True)
    active = models.BooleanField(default=True)
    bot_user_id = models.CharField(
        max_length=32, blank=True, help_text="The bot's user (U…): its own messages are ignored."
    )
    bot_id = models.CharField(max_length=32, blank=True, help_text="The bot's id (B…).")
    admin_channel = models.CharField(
        max_length=32, blank=True, help_text="Channel id (C…) for admin notices: bans."
    )
    policy = models.ForeignKey(
        "review.Policy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Judge this workspace's items by this policy; empty: the site's.",
    )
    max_file_bytes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Largest file checked; empty: SLACK_MAX_FILE_BYTES."
    )
    check_text = models.BooleanField(
        default=False,
        help_text="Also check the text of messages (hate, harassment, threats, sexual, "
        "self-harm, spam) with the text classifiers and term banks; a flagged message is "
        "removed like a flagged file. Off: only files are checked.",
    )
    check_video = models.BooleanField(
        default=True,
        help_text="Check video files (MP4, WebM, MOV) at 1 frame a second; off: videos are "
        "left alone (pictures and animations are always checked).",
    )
    # Sealed (chatbot.sealing): never shown again once saved.
    signing_secret_sealed = models.TextField(blank=True, editable=False)
    bot_token_sealed = models.TextField(blank=True, editable=False)
    bot_refresh_token_sealed = models.TextField(blank=True, editable=False)
    bot_token_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    admin_token_sealed = models.TextField(blank=True, editable=False)
    installed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    installed_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "team_id"]

    def __str__(self):
        return self.name or self.team_id

    def text_to_check(self, event: dict) -> str:
        """The message's text when this workspace checks text, else ""."""
        text = event.get("text")
        if not self.check_text or not isinstance(text, str) or not text.strip():
            return ""
        return text

    def secret(self, name: str) -> str:
        assert name in self.SECRETS, name
        return open_sealed(getattr(self, f"{name}_sealed"))

    def set_secret(self, name: str, value: str) -> None:
        assert name in self.SECRETS, name
        setattr(self, f"{name}_sealed", seal(value))

    def has_secret(self, name: str) -> bool:
        return bool(getattr(self, f"{name}_sealed"))

    @property
    def file_cap(self) -> int:
        return self.max_file_bytes or settings.SLACK_MAX_FILE_BYTES


class Event(models.Model):
    """One Events API event, recorded once however often Slack delivers it (its retries
    carry the same ``event_id``): the unique row is the dedupe."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        WORKING = "working", "Being handled"
        DONE = "done", "Done"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    team_id = models.CharField(max_length=32)
    event_id = models.CharField(max_length=64)
    workspace = models.ForeignKey(
        Workspace, null=True, on_delete=models.SET_NULL, related_name="events"
    )
    type = models.CharField(max_length=64, blank=True, help_text="e.g. message, message/file_share")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    note = models.CharField(max_length=500, blank=True, help_text="Why ignored; what was done.")
    deliveries = models.PositiveIntegerField(default=1)
    last_retry_num = models.PositiveSmallIntegerField(null=True, blank=True)
    last_retry_reason = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict, help_text="The event (the envelope's 'event').")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["team_id", "event_id"], name="one_event_per_id")
        ]

    def __str__(self):
        return f"{self.team_id} {self.event_id} ({self.status})"


class Message(models.Model):
    """A Slack message whose files the bot checked."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="messages")
    channel = models.CharField(max_length=32)
    ts = models.CharField(max_length=32)
    thread_ts = models.CharField(max_length=32, blank=True)
    user = models.CharField(max_length=32)
    author = models.ForeignKey(
        "accounts.Author", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    permalink = models.URLField(max_length=500, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "channel", "ts"], name="one_row_per_message"
            )
        ]

    def __str__(self):
        return f"{self.channel}/{self.ts}"

    @property
    def thread(self) -> str:
        """Where the notice goes: the message's thread (its parent's when it is a reply)."""
        return self.thread_ts or self.ts


class PostedFile(models.Model):
    """One file of a message (or the message's own text: ``file_id`` TEXT), taken as an
    item; what the bot did about its verdicts."""

    TEXT = "text"  # the file_id of a message's text (Slack's file ids are F…)

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="files")
    item = models.OneToOneField(
        "uploads.MediaItem", on_delete=models.CASCADE, related_name="slack_file"
    )
    file_id = models.CharField(max_length=32)
    name = models.CharField(max_length=255, blank=True)
    acted_status = models.CharField(
        max_length=12, blank=True, help_text="The item status last acted on (each once)."
    )
    removed_at = models.DateTimeField(null=True, blank=True)
    file_deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="When Slack confirmed the file gone (files.delete)."
    )
    removal_attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Tries at deleting the file and the message (chatbot.removals)."
    )
    last_removal_at = models.DateTimeField(null=True, blank=True)
    notice_ts = models.CharField(max_length=32, blank=True)
    corrected_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.file_id} of {self.message}"


class Action(models.Model):
    """The audit: every Web API call the bot made, who for, and Slack's answer."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="actions")
    item = models.ForeignKey(
        "uploads.MediaItem", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    method = models.CharField(max_length=64, help_text="Web API method, e.g. chat.delete.")
    why = models.CharField(max_length=64, blank=True, help_text="e.g. flagged, rejected.")
    target = models.JSONField(default=dict, help_text="channel, ts, file: what it acted on.")
    token = models.CharField(max_length=8, help_text="bot or admin (a user token).")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The moderator whose decision this carries out; empty: the machine.",
    )
    ok = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)
    answer = models.JSONField(default=dict, help_text="Slack's answer (tokens never).")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.method} {'ok' if self.ok else self.error or 'failed'}"


class Appeal(models.Model):
    """An author asks a person to look again at a removed file; it waits in the review
    queue (purpose appeal) and the decision is posted back to the author."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        GRANTED = "granted", "Granted (approved)"
        UPHELD = "upheld", "Upheld (rejected)"

    item = models.ForeignKey("uploads.MediaItem", on_delete=models.CASCADE, related_name="+")
    posted = models.ForeignKey(PostedFile, on_delete=models.CASCADE, related_name="appeals")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    why = models.TextField(
        blank=True, max_length=2000, help_text="The author's words, from the appeal's text box."
    )
    opened_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["item"],
                condition=models.Q(status="open"),
                name="one_open_appeal_per_item",
            )
        ]

    def __str__(self):
        return f"appeal of {self.item} ({self.status})"
