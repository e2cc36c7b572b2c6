"""An author's appeal (the notice's Appeal button): into the review queue, purpose appeal,
with the context a moderator needs (the item, its message's link in ``source_ref``)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from review.claims import enqueue_for_review
from review.counts import counts_changed
from review.models import QueueEntry
from uploads.models import MediaItem

from . import webapi
from .models import Appeal, PostedFile, Workspace
from .verdicts import APPEAL_ACTION, REMOVED


def handle_interaction(team_id: str, payload: dict) -> str:
    workspace = Workspace.objects.filter(team_id=team_id, active=True).first()
    if workspace is None or payload.get("type") != "block_actions":
        return "ignored"
    user = (payload.get("user") or {}).get("id", "")
    channel = (payload.get("channel") or {}).get("id", "")
    for action in payload.get("actions") or []:
        if isinstance(action, dict) and action.get("action_id") == APPEAL_ACTION:
            return open_appeal(workspace, str(action.get("value", "")), user, channel)
    return "ignored"


def open_appeal(workspace: Workspace, item_uuid: str, user: str, channel: str) -> str:
    posted = (
        PostedFile.objects.select_related("message", "item")
        .filter(item__uuid__iexact=item_uuid[:36], message__workspace=workspace)
        .first()
        if len(item_uuid) in (32, 36)
        else None
    )
    if posted is None or posted.message.user != user:
        _ephemeral(workspace, channel, user, "Only the person who posted the file can appeal.")
        return "refused: not the author"
    item = posted.item
    if item.status not in REMOVED:
        _ephemeral(workspace, channel, user, "This file is not removed: nothing to appeal.")
        return "refused: not removed"
    try:
        with transaction.atomic():
            appeal = Appeal.objects.create(item=item, posted=posted)
            queue_appeal(item)
    except IntegrityError:
        _ephemeral(workspace, channel, user, "Your appeal is already with the moderators.")
        return "already open"
    webapi.call(
        workspace,
        "chat.postMessage",
        why="appeal opened",
        item=item,
        channel=user,
        text=f"Your appeal about “{posted.name}” is with the moderators; the answer will come "
        "here.",
    )
    return f"appeal {appeal.pk} opened"


def queue_appeal(item: MediaItem) -> QueueEntry:
    """The item waits for a person as an appeal; an entry already waiting (a model's block
    to confirm) becomes one, at an appeal's priority."""
    entry = enqueue_for_review(item, QueueEntry.Purpose.APPEAL)
    if entry.purpose != QueueEntry.Purpose.APPEAL:
        QueueEntry.objects.filter(pk=entry.pk).update(
            purpose=QueueEntry.Purpose.APPEAL,
            priority=QueueEntry.PRIORITY[QueueEntry.Purpose.APPEAL],
        )
        counts_changed()
    return entry


def _ephemeral(workspace, channel, user, text) -> None:
    if channel and user:
        webapi.call(
            workspace, "chat.postEphemeral", why="appeal", channel=channel, user=user, text=text
        )
