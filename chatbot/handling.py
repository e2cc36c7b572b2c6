"""The worker's side of a message event: every file of the message, fetched from Slack's
file hosts only and through the SSRF guard, taken by the one intake as an item of its
author (the analysis, and so the verdict, follow as for any item: chatbot.verdicts).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Author
from accounts.services import author_for_external
from uploads.intake import IntakeResult, Submission, take
from uploads.kinds import kind_for
from uploads.text import max_chars, max_context, text_submission
from uploads.urlfetch import FetchRefused, fetch_url
from uploads.validation import RefusedUpload

from . import webapi
from .models import Action, Event, Message, PostedFile, Workspace

VIDEO_TYPES = {"mp4", "mov", "webm", "m4v", "quicktime"}

log = logging.getLogger(__name__)


def slack_author(workspace: Workspace, user_id: str) -> Author:
    """A Slack member is an author per workspace (their strikes count there)."""
    return author_for_external(Author.Kind.SLACK, f"{workspace.team_id}:{user_id}")


def allowed_file_url(url: str) -> bool:
    """Only Slack's file hosts get the bot token: each entry of ``SLACK_FILE_HOSTS`` is a
    host (https on 443) or an origin (``http://127.0.0.1:8081`` in the tests)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if parts.username or parts.password or not host:
        return False
    port = port or {"https": 443, "http": 80}.get(scheme)
    for entry in settings.SLACK_FILE_HOSTS:
        entry = entry.strip().lower()
        if "://" in entry:
            allowed = urlsplit(entry)
            allowed_port = allowed.port or {"https": 443, "http": 80}.get(allowed.scheme)
            if (scheme, host, port) == (allowed.scheme, allowed.hostname, allowed_port):
                return True
        elif (scheme, host, port) == ("https", entry, 443):
            return True
    return False


def handle_event(event_pk: int) -> str:
    """Check every file of the message once; a second delivery of the task does nothing."""
    claimed = Event.objects.filter(pk=event_pk, status=Event.Status.QUEUED).update(
        status=Event.Status.WORKING
    )
    if not claimed:
        return "skipped"
    event = Event.objects.select_related("workspace").get(pk=event_pk)
    workspace, data = event.workspace, event.payload
    notes = []
    try:
        message = _message(workspace, data)
        for number, file in enumerate(data.get("files") or [], 1):
            if isinstance(file, dict):
                notes.append(f"file {number}: {take_file(workspace, message, file)}")
        text = workspace.text_to_check(data)
        if text:
            notes.append(f"text: {take_text(workspace, message, text)}")
        status = Event.Status.DONE
    except Exception as exc:  # a bug or the database: kept on the row, logged
        log.exception("slack event %s failed", event.event_id)
        notes.append(f"failed: {type(exc).__name__}")
        status = Event.Status.FAILED
    Event.objects.filter(pk=event_pk).update(
        status=status, note="; ".join(notes)[:500], handled_at=timezone.now()
    )
    return status


def _message(workspace: Workspace, data: dict) -> Message:
    message, created = Message.objects.get_or_create(
        workspace=workspace,
        channel=data["channel"][:32],
        ts=data["ts"][:32],
        defaults={
            "thread_ts": str(data.get("thread_ts") or "")[:32],
            "user": data["user"][:32],
            "author": slack_author(workspace, data["user"]),
        },
    )
    if created:
        answer = webapi.call(
            workspace,
            "chat.getPermalink",
            why="link",
            channel=message.channel,
            message_ts=message.ts,
        )
        link = answer.data.get("permalink", "") if answer.ok else ""
        if link.startswith("https://") or link.startswith("http://"):
            Message.objects.filter(pk=message.pk).update(permalink=link[:500])
            message.permalink = link[:500]
    return message


def take_file(workspace: Workspace, message: Message, file: dict) -> str:
    """Fetch one file and give it to the intake; a sentence says what happened."""
    file_id = str(file.get("id") or "")[:32]
    if not file_id:
        return "no file id"
    if PostedFile.objects.filter(message=message, file_id=file_id).exists():
        return "already taken"
    if file.get("file_access") == "check_file_info":  # a Slack Connect stub: no URL yet
        answer = webapi.call(workspace, "files.info", why="connect stub", file=file_id)
        if not answer.ok or not isinstance(answer.data.get("file"), dict):
            return f"files.info failed: {answer.error}"
        file = answer.data["file"]
    if file.get("mode") == "tombstone" or file.get("file_access") == "access_denied":
        return "file not available"
    cap = workspace.file_cap
    size = file.get("size")
    if isinstance(size, int) and size > cap:
        return f"too_large: {size} bytes, over {cap}"
    if not workspace.check_video and _is_video(file):
        return "a video: this workspace does not check videos"
    url = file.get("url_private_download") or file.get("url_private") or ""
    if not isinstance(url, str) or not allowed_file_url(url):
        Action.objects.create(
            workspace=workspace,
            method="file download",
            why="refused host",
            token="",
            target={"file": file_id},
            error=f"not a Slack file host: {urlsplit(str(url)).hostname}",
        )
        return "refused: not a Slack file host"
    try:
        fetched = fetch_url(
            url,
            max_bytes=cap,
            timeout=settings.URL_FETCH_TIMEOUT,
            max_redirects=0,  # a redirect would leave Slack's hosts (and drop the token)
            headers={"Authorization": f"Bearer {webapi.token_of(workspace, webapi.BOT)}"},
        )
    except FetchRefused as exc:
        Action.objects.create(
            workspace=workspace,
            method="file download",
            why="check",
            token=webapi.BOT,
            target={"file": file_id},
            error=f"{exc.code}: {exc.message}"[:255],
        )
        return f"{exc.code}: {exc.message}"
    name = str(file.get("name") or file.get("title") or file_id)[:255]
    if not workspace.check_video and _is_video_data(fetched.data):
        return "a video: this workspace does not check videos"  # named otherwise by Slack
    result = _take_posting(
        workspace, message, Submission(name=name, data=fetched.data), file_id, file=file_id
    )
    if not result.accepted and result.banned and workspace.admin_channel:
        # The intake takes nothing from a banned author, so the file is not checked: the
        # admins are told (the bot cannot stop a member posting; Slack's admins can).
        webapi.call(
            workspace,
            "chat.postMessage",
            why="banned author",
            channel=workspace.admin_channel,
            text=f"<@{message.user}>, banned here, posted a file in <#{message.channel}>; it "
            "was not checked. Remove it or deactivate the member in Slack.",
        )
    return _said(result)


def _take_posting(workspace, message, submission, file_id: str, **ref) -> IntakeResult:
    """One posting of a message (a file, or its text) taken by the one intake as an item
    of its author, with its PostedFile row in the same transaction (the analysis starts
    once that row exists too)."""
    source_ref = {
        "team": workspace.team_id,
        "channel": message.channel,
        "ts": message.ts,
        **ref,
        "user": message.user,
        "link": message.permalink,
    }
    with transaction.atomic():
        result = take([submission], source="slack", author=message.author, source_ref=source_ref)
        for item in result.accepted:
            PostedFile.objects.create(
                message=message, item=item, file_id=file_id, name=submission.name
            )
    return result


def _said(result: IntakeResult) -> str:
    """What the intake did, for the event's note."""
    if result.accepted:
        return f"item {result.accepted[0].uuid}"
    refusal = result.refused[0]
    return f"{refusal.code}: {refusal.detail}"


def _is_video(file: dict) -> bool:
    """What Slack says of the file (its MIME type or file type) before it is fetched."""
    mime = str(file.get("mimetype") or "").lower()
    return mime.startswith("video/") or str(file.get("filetype") or "").lower() in VIDEO_TYPES


def thread_context(workspace: Workspace, message: Message) -> list[dict]:
    """A reply's earlier messages in its thread, oldest first, at most the text kind's
    ``max_context`` (20), for the text classifier ("you too" under an insult): Slack's
    ``conversations.replies`` with the bot token (``channels:history``/``groups:history``).
    Empty for a message that starts no thread's reply, or when Slack does not answer (the
    text is then judged alone; the audit has the failure)."""
    parent = message.thread_ts
    if not parent or parent == message.ts:
        return []
    answer = webapi.call(
        workspace,
        "conversations.replies",
        why="thread context",
        channel=message.channel,
        ts=parent,
        limit=max_context() + 1,
    )
    if not answer.ok:
        return []
    earlier = []
    for reply in answer.data.get("messages") or []:
        if not isinstance(reply, dict) or reply.get("ts") == message.ts:
            continue
        words = reply.get("text")
        if not isinstance(words, str) or not words.strip() or _after(reply, message.ts):
            continue
        earlier.append({"text": words[: max_chars()], "author": str(reply.get("user") or "")[:255]})
    return earlier[-max_context() :]


def _after(reply: dict, ts: str) -> bool:
    try:
        return float(reply.get("ts") or 0) > float(ts)
    except ValueError:
        return True


def _is_video_data(data: bytes) -> bool:
    try:
        return kind_for(data).name == "video"
    except RefusedUpload:
        return False  # the intake names what it is not


def take_text(workspace: Workspace, message: Message, text: str) -> str:
    """The message's own text as a text item of its author (the workspace checks text):
    the text classifiers, term banks and text banks judge it as any text item, and a
    flagged one is removed like a file (chatbot.verdicts)."""
    if PostedFile.objects.filter(message=message, file_id=PostedFile.TEXT).exists():
        return "already taken"
    context = thread_context(workspace, message)
    submission = text_submission(text, context, name="message text")
    return _said(_take_posting(workspace, message, submission, PostedFile.TEXT))
