"""Removals that Slack did not carry out, tried again (beat: ``chatbot.retry_removals``).

A flagged or rejected posting is removed once (chatbot.verdicts.remove: the file, the
notice, the message). When Slack fails a delete for a reason that may pass (its 5xx, a
rate limit outlasting the client's own retry, the network), the posting keeps
``removed_at`` but not ``file_deleted_at`` or its message's ``deleted_at``, and this sweep
tries the missing deletes again after 1, 5, 15 and 60 minutes, then 3 and 10 hours
(``BACKOFF_S``), 7 tries in all over about 14 hours. A refusal that will not pass
(``cant_delete_file``: no admin token; ``missing_scope``) is not retried: the workspace's
admins were told at the first try. A posting that a moderator approved meanwhile is left
alone. Each try is a claim on ``removal_attempts`` (a conditional update), so two beat
runs or two workers never try the same posting at once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import F, Q
from django.utils import timezone

from . import webapi
from .models import PostedFile
from .verdicts import REMOVED, delete_message, note_file_deleted, token_for

log = logging.getLogger(__name__)

# Seconds after try N (1-based) before try N + 1.
BACKOFF_S = (60, 300, 900, 3600, 3 * 3600, 10 * 3600)
MAX_ATTEMPTS = len(BACKOFF_S) + 1
# Slack's errors that no retry will change.
FINAL = {
    "cant_delete_file",
    "cant_delete_message",
    "missing_scope",
    "not_authed",
    "invalid_auth",
    "account_inactive",
    "token_revoked",
    "no_permission",
    "channel_not_found",
}


def pending():
    """Postings removed in intent but not yet in Slack, with tries left."""
    return PostedFile.objects.filter(
        removed_at__isnull=False, removal_attempts__lt=MAX_ATTEMPTS
    ).filter(Q(file_deleted_at__isnull=True) | Q(message__deleted_at__isnull=True))


def retry_removals(now=None) -> int:
    """Try again what is due; returns how many postings were tried."""
    now = now or timezone.now()
    tried = 0
    for posted in pending().select_related("message__workspace", "item").iterator():
        wait = BACKOFF_S[min(posted.removal_attempts, len(BACKOFF_S)) - 1]
        if posted.last_removal_at and now - posted.last_removal_at < timedelta(seconds=wait):
            continue
        if posted.item.status not in REMOVED:  # approved meanwhile: nothing to remove
            PostedFile.objects.filter(pk=posted.pk).update(removal_attempts=MAX_ATTEMPTS)
            continue
        claimed = PostedFile.objects.filter(
            pk=posted.pk, removal_attempts=posted.removal_attempts
        ).update(removal_attempts=F("removal_attempts") + 1, last_removal_at=now)
        if not claimed:
            continue  # another run has it
        tried += 1
        errors = retry_one(posted)
        if errors & FINAL:
            PostedFile.objects.filter(pk=posted.pk).update(removal_attempts=MAX_ATTEMPTS)
        log.info(
            "removal retry %s of posting %s: %s",
            posted.removal_attempts + 1,
            posted.pk,
            ", ".join(sorted(errors)) or "done",
        )
    return tried


def retry_one(posted: PostedFile) -> set[str]:
    """The deletes still missing; Slack's errors of those that failed again."""
    token, why, errors = token_for(posted), posted.item.status, set()
    if posted.file_deleted_at is None:
        answer = webapi.call(
            posted.message.workspace,
            "files.delete",
            token=token,
            why=f"{why} (retry)",
            item=posted.item,
            file=posted.file_id,
        )
        note_file_deleted(posted, answer)
        if not answer.ok:
            errors.add(answer.error)
    if posted.message.deleted_at is None:
        done = delete_message(posted, token=token, why=f"{why} (retry)")
        errors |= {d.removeprefix("chat.delete ") for d in done if not d.endswith(" ok")}
    return errors
