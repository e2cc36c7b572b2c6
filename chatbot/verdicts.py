"""A Slack item's verdict acted on in Slack, each status once (``PostedFile.acted_status``,
set by a conditional update, so a repeated "item changed" or a retried task does nothing
twice):

- flagged or rejected: the file deleted (``files.delete``), a notice in the message's
  thread naming the category with an Appeal button, then the message deleted
  (``chat.delete``: a bot token deletes only the bot's own messages, so a member's needs
  the workspace's admin user token); the author told by DM (their strike, "Warning: strike
  1 of 2"), and at a ban the workspace's admin channel. The notice goes before the message
  is deleted: a deleted message with replies stays as "This message was deleted." with its
  thread, while a reply to an already deleted message has no thread to go to.
- approved after a removal: a correction in the thread and a DM.
- an appeal decided (an approve or a reject after it was opened): its author told.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from accounts.models import Author, Strike
from accounts.services import strike_notice
from review.models import Decision
from review.policy import policy_for
from uploads.models import MediaItem

from . import webapi
from .models import Appeal, Message, PostedFile

REMOVED = (MediaItem.Status.FLAGGED, MediaItem.Status.REJECTED)
APPEAL_ACTION = "appeal"


def act_on_item(item_id: int) -> list[str]:
    """What the bot did about the item's current status (the list is for the task log)."""
    posted = (
        PostedFile.objects.select_related("message__workspace", "message__author", "item")
        .filter(item_id=item_id)
        .first()
    )
    if posted is None:
        return []
    item, done = posted.item, []
    status = item.status
    decision = Decision.objects.filter(item_id=item.pk).select_related("moderator").first()
    actor = decision.moderator if decision and item.decided_at else None
    first_time = (
        PostedFile.objects.filter(pk=posted.pk)
        .exclude(acted_status=status)
        .update(acted_status=status)
    )
    if first_time and status in REMOVED:
        done += remove(posted, why=status, actor=actor)
        done += tell_author(posted, actor=actor)
    elif first_time and status == MediaItem.Status.APPROVED and posted.removed_at:
        done += correct(posted, actor=actor)
    done += settle_appeals(posted, actor=actor)
    return done


def why_removed(item: MediaItem) -> str:
    """The category, as people read it, or what else removed it."""
    decision = Decision.objects.filter(item_id=item.pk).first()
    if item.status == MediaItem.Status.REJECTED and decision and decision.reason:
        return f"a moderator's decision ({decision.reason.rstrip('.')})"
    if item.category and item.category != "neutral":
        label = (
            policy_for(item).categories.filter(name=item.category).values_list("label", flat=True)
        ).first()
        return label or item.category
    if item.reason in ("bank_match", "duplicate_of_rejected"):
        return "a known banned message" if item.kind == "text" else "a known banned image"
    return "the workspace's content rules"


def what_of(posted: PostedFile) -> str:
    """How the author's DM names what was checked."""
    return "message" if posted.file_id == PostedFile.TEXT else f"file “{posted.name}”"


def token_for(posted: PostedFile) -> str:
    """The bot's own posts with its token; a member's with the admin user token if set."""
    workspace = posted.message.workspace
    if posted.message.user == workspace.bot_user_id or not workspace.has_secret("admin_token"):
        return webapi.BOT
    return webapi.ADMIN


def remove(posted: PostedFile, *, why: str, actor=None) -> list[str]:
    now = timezone.now()
    claimed = PostedFile.objects.filter(pk=posted.pk, removed_at__isnull=True).update(
        removed_at=now, removal_attempts=1, last_removal_at=now
    )
    if not claimed:
        return []
    message, workspace, item = posted.message, posted.message.workspace, posted.item
    token = token_for(posted)
    done = []
    label = why_removed(item)
    if posted.file_id == PostedFile.TEXT:  # the message's own words: the message goes
        deleted = None
        PostedFile.objects.filter(pk=posted.pk).update(file_deleted_at=now)  # no file
        text = (
            f"A message was removed from this thread: {label}. If you wrote it and think "
            "this is a mistake, press Appeal and a moderator will look again."
        )
    else:
        deleted = webapi.call(
            workspace,
            "files.delete",
            token=token,
            why=why,
            item=item,
            actor=actor,
            file=posted.file_id,
        )
        note_file_deleted(posted, deleted)
        done.append(f"files.delete {'ok' if deleted.ok else deleted.error}")
        text = (
            f"A file was removed from this message: {label}. If you posted it and think this "
            "is a mistake, press Appeal and a moderator will look again."
        )
    notice = webapi.call(
        workspace,
        "chat.postMessage",
        why=why,
        item=item,
        actor=actor,
        channel=message.channel,
        thread_ts=message.thread,
        text=text,
        blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": APPEAL_ACTION,
                        "text": {"type": "plain_text", "text": "Appeal"},
                        "value": str(item.uuid),
                    }
                ],
            },
        ],
    )
    if notice.ok:
        PostedFile.objects.filter(pk=posted.pk).update(notice_ts=str(notice.data.get("ts", "")))
    done.append(f"notice {'ok' if notice.ok else notice.error}")
    done += delete_message(posted, token=token, why=why, actor=actor)
    if deleted is not None and not deleted.ok:
        tell_admins(
            posted,
            f"The bot could not delete a file {label} posted by <@{message.user}> in "
            f"<#{message.channel}> ({deleted.error}). Delete it by hand, or give the bot an "
            "admin user token with files:write and chat:write.",
            why=why,
        )
    return done


# Slack's answers that say the file or message is already gone: as good as a delete.
GONE = {"file_not_found", "file_deleted", "message_not_found"}


def note_file_deleted(posted: PostedFile, answer) -> None:
    if answer.ok or answer.error in GONE:
        PostedFile.objects.filter(pk=posted.pk).update(file_deleted_at=timezone.now())


def delete_message(posted: PostedFile, *, token: str, why: str, actor=None) -> list[str]:
    """chat.delete of the posting's message, once however many of its files are removed
    (``Message.deleted_at``, claimed by a conditional update, released on a failure so that
    a retry, chatbot.removals, may try again)."""
    message = posted.message
    if not Message.objects.filter(pk=message.pk, deleted_at__isnull=True).update(
        deleted_at=timezone.now()
    ):
        return []
    gone = webapi.call(
        message.workspace,
        "chat.delete",
        token=token,
        why=why,
        item=posted.item,
        actor=actor,
        channel=message.channel,
        ts=message.ts,
    )
    if not gone.ok and gone.error not in GONE:
        Message.objects.filter(pk=message.pk).update(deleted_at=None)
    return [f"chat.delete {'ok' if gone.ok else gone.error}"]


def tell_author(posted: PostedFile, *, actor=None) -> list[str]:
    """The author's DM: why, and their strike (or that a person will confirm it first)."""
    item, message = posted.item, posted.message
    policy = policy_for(item)
    strike = Strike.objects.filter(item_id=item.pk).select_related("author").order_by("-pk").first()
    where = f"<#{message.channel}>"
    text = f"Your {what_of(posted)} in {where} was removed: {why_removed(item)}."
    if strike is not None:
        text += f" {strike_notice(strike, policy.strikes_to_ban)}"
    else:
        author = Author.objects.filter(pk=message.author_id).first()
        count = author.strikes if author else 0
        text += (
            " A moderator will check it; if they confirm it, it counts as a strike (you "
            f"have {count} of {policy.strikes_to_ban})."
        )
    text += " If you think this is a mistake, press Appeal under the notice in the thread."
    dm = webapi.call(
        message.workspace,
        "chat.postMessage",
        why="strike" if strike else "removal",
        item=item,
        actor=actor,
        channel=message.user,
        text=text,
    )
    done = [f"dm {'ok' if dm.ok else dm.error}"]
    if strike is not None and strike.resulting_status == Author.Status.BANNED:
        done += tell_admins(
            posted,
            f"<@{message.user}> is now banned from posting files checked by the bot "
            f"({strike.author.strikes} strikes; the last: {why_removed(item)}, in {where}). "
            "An admin can lift the ban in the moderation site's admin (Authors).",
            why="ban",
        )
    return done


def tell_admins(posted: PostedFile, text: str, *, why: str) -> list[str]:
    workspace = posted.message.workspace
    if not workspace.admin_channel:
        return []
    answer = webapi.call(
        workspace,
        "chat.postMessage",
        why=why,
        item=posted.item,
        channel=workspace.admin_channel,
        text=text,
    )
    return [f"admin notice {'ok' if answer.ok else answer.error}"]


def correct(posted: PostedFile, *, actor=None) -> list[str]:
    claimed = PostedFile.objects.filter(pk=posted.pk, corrected_at__isnull=True).update(
        corrected_at=timezone.now()
    )
    if not claimed:
        return []
    message = posted.message
    text = (
        "Correction: a moderator looked again at the file removed here and approved it. "
        "Sorry for the removal; it can be posted again."
    )
    thread = webapi.call(
        message.workspace,
        "chat.postMessage",
        why="approved",
        item=posted.item,
        actor=actor,
        channel=message.channel,
        thread_ts=message.thread,
        text=text,
    )
    dm = webapi.call(
        message.workspace,
        "chat.postMessage",
        why="approved",
        item=posted.item,
        actor=actor,
        channel=message.user,
        text=f"A moderator approved your {what_of(posted)} removed from <#{message.channel}>."
        " You can post it again.",
    )
    return [
        f"correction {'ok' if thread.ok else thread.error}",
        f"dm {'ok' if dm.ok else dm.error}",
    ]


def settle_appeals(posted: PostedFile, *, actor=None) -> list[str]:
    """An open appeal followed by a person's decision is answered, once."""
    item = posted.item
    if item.decided_at is None or item.status not in (
        MediaItem.Status.APPROVED,
        MediaItem.Status.REJECTED,
    ):
        return []
    granted = item.status == MediaItem.Status.APPROVED
    done = []
    for appeal in Appeal.objects.filter(
        Q(posted=posted, status=Appeal.Status.OPEN, opened_at__lt=item.decided_at)
    ):
        new = Appeal.Status.GRANTED if granted else Appeal.Status.UPHELD
        if not Appeal.objects.filter(pk=appeal.pk, status=Appeal.Status.OPEN).update(
            status=new, decided_at=timezone.now()
        ):
            continue
        decision = Decision.objects.filter(item_id=item.pk).first()
        reason = f" ({decision.reason.rstrip('.')})" if decision and decision.reason else ""
        text = (
            f"Your appeal about “{posted.name}” was granted: a moderator approved it."
            if granted
            else f"Your appeal about “{posted.name}” was turned down: a moderator confirmed "
            f"the removal{reason}."
        )
        dm = webapi.call(
            posted.message.workspace,
            "chat.postMessage",
            why="appeal decided",
            item=item,
            actor=actor,
            channel=posted.message.user,
            text=text,
        )
        done.append(f"appeal {new} dm {'ok' if dm.ok else dm.error}")
    return done
