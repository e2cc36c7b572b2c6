"""An author's appeal (the notice's Appeal button): into the review queue, purpose appeal,
with the context a moderator needs (the item, its message's link in ``source_ref``)."""

from __future__ import annotations

import json

from django.db import IntegrityError, transaction

from review.claims import enqueue_for_review
from review.counts import counts_changed
from review.models import QueueEntry
from uploads.models import MediaItem

from . import webapi
from .models import Appeal, PostedFile, Workspace
from .verdicts import APPEAL_ACTION, REMOVED, what_of

# The modal the Appeal button opens: the author says why (optional), then submits.
APPEAL_VIEW = "appeal"
WHY_BLOCK = WHY_ACTION = "why"
MAX_WHY = 2000


def handle_interaction(team_id: str, payload: dict) -> str:
    workspace = Workspace.objects.filter(team_id=team_id, active=True).first()
    if workspace is None:
        return "ignored"
    user = (payload.get("user") or {}).get("id", "")
    if payload.get("type") == "view_submission":
        view = payload.get("view") or {}
        if not isinstance(view, dict) or view.get("callback_id") != APPEAL_VIEW:
            return "ignored"
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            return "ignored"
        if not isinstance(meta, dict):
            return "ignored"
        return open_appeal(
            workspace,
            str(meta.get("item", "")),
            user,
            str(meta.get("channel", "")),
            why=_why_of(view),
        )
    if payload.get("type") != "block_actions":
        return "ignored"
    channel = (payload.get("channel") or {}).get("id", "")
    for action in payload.get("actions") or []:
        if isinstance(action, dict) and action.get("action_id") == APPEAL_ACTION:
            item_uuid = str(action.get("value", ""))
            trigger = payload.get("trigger_id")
            if isinstance(trigger, str) and trigger:
                return ask_why(workspace, item_uuid, user, channel, trigger)
            return open_appeal(workspace, item_uuid, user, channel)
    return "ignored"


def _why_of(view: dict) -> str:
    """The author's words in the modal's text box ("" when left empty)."""
    values = ((view.get("state") or {}).get("values") or {}).get(WHY_BLOCK) or {}
    value = (values.get(WHY_ACTION) or {}).get("value") if isinstance(values, dict) else None
    return value.strip()[:MAX_WHY] if isinstance(value, str) else ""


def _appealable(workspace: Workspace, item_uuid: str, user: str, channel: str):
    """The author's removed posting, or None after telling the presser why not."""
    posted = (
        PostedFile.objects.select_related("message", "item")
        .filter(item__uuid__iexact=item_uuid[:36], message__workspace=workspace)
        .first()
        if len(item_uuid) in (32, 36)
        else None
    )
    if posted is None or posted.message.user != user:
        _ephemeral(workspace, channel, user, "Only the person who posted it can appeal.")
        return None
    if posted.item.status not in REMOVED:
        _ephemeral(workspace, channel, user, "This is not removed: nothing to appeal.")
        return None
    return posted


def ask_why(workspace: Workspace, item_uuid: str, user: str, channel: str, trigger: str) -> str:
    """The Appeal button: a modal asking the author why a moderator should look again.
    Slack's trigger lasts 3 s after the press; when the modal cannot be opened (the task
    ran late, Slack refused) the appeal is opened at once, without the author's words."""
    posted = _appealable(workspace, item_uuid, user, channel)
    if posted is None:
        return "refused"
    if Appeal.objects.filter(item=posted.item, status=Appeal.Status.OPEN).exists():
        _ephemeral(workspace, channel, user, "Your appeal is already with the moderators.")
        return "already open"
    what = what_of(posted)
    view = {
        "type": "modal",
        "callback_id": APPEAL_VIEW,
        "private_metadata": json.dumps({"item": str(posted.item.uuid), "channel": channel}),
        "title": {"type": "plain_text", "text": "Appeal a removal"},
        "submit": {"type": "plain_text", "text": "Send to a moderator"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": WHY_BLOCK,
                "optional": True,
                "label": {
                    "type": "plain_text",
                    "text": f"Why should a moderator look again at your {what}?",
                },
                "element": {
                    "type": "plain_text_input",
                    "action_id": WHY_ACTION,
                    "multiline": True,
                    "max_length": MAX_WHY,
                },
            }
        ],
    }
    opened = webapi.call(
        workspace, "views.open", why="appeal", item=posted.item, trigger_id=trigger, view=view
    )
    if opened.ok:
        return "asked why"
    return open_appeal(workspace, item_uuid, user, channel)


def open_appeal(
    workspace: Workspace, item_uuid: str, user: str, channel: str, why: str = ""
) -> str:
    posted = _appealable(workspace, item_uuid, user, channel)
    if posted is None:
        return "refused"
    item = posted.item
    try:
        with transaction.atomic():
            appeal = Appeal.objects.create(item=item, posted=posted, why=why)
            if why:  # for the moderator: the review card shows the author's words
                MediaItem.objects.filter(pk=item.pk).update(
                    details={**(item.details or {}), "appeal": {"why": why}}
                )
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
        text=f"Your appeal about your {what_of(posted)} is with the moderators; the answer will "
        "come here.",
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
