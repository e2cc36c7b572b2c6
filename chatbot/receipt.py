"""The request path of Slack's Events API and interactivity: verify, record, enqueue.

Slack wants an answer within 3 seconds and retries otherwise (``X-Slack-Retry-Num`` 1 to
3, the same ``event_id``), so nothing here calls Slack or analyses anything: the signature
is checked (HMAC-SHA256 of ``v0:<timestamp>:<raw body>`` with the signing secret,
constant-time, the timestamp within 5 minutes of now either way), the event recorded once
(its unique ``(team_id, event_id)`` row is the dedupe: a retry only counts a delivery),
and the work queued for a Celery worker after commit.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from slack_sdk.signature import SignatureVerifier

from . import tasks
from .models import Event, Workspace

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # Slack's events are a few KB; anything near this is not Slack
# Message events worth a look: plain ones and file shares (replies and broadcasts too).
# Edits, deletions and other subtypes (message_changed, message_deleted, bot_message,
# channel_join, ...) are echoes or not a member's new post.
HANDLED_SUBTYPES = {None, "file_share", "thread_broadcast"}
CHANNEL_TYPES = {"channel", "group"}  # public and private channels


@dataclass(frozen=True)
class Receipt:
    status: int
    body: dict | None = None
    code: str = ""
    detail: str = ""
    event: Event | None = None


def _refused(status, code, detail) -> Receipt:
    return Receipt(status, code=code, detail=detail)


# A workspace row and its opened signing secret are kept this long per process: the two
# queries and the Fernet opening were a third of a receipt's time (bench/slack.py), and an
# admin's edit (a new secret, a deactivation) is seen within it.
WORKSPACE_CACHE_S = 2.0
_cache: dict[str, tuple[float, Workspace | None, str]] = {}


def workspace_of(team_id: str) -> tuple[Workspace | None, str]:
    """The active workspace of ``team_id`` (or None) and its own signing secret ("")."""
    now = time.monotonic()
    hit = _cache.get(team_id)
    if hit is not None and hit[0] > now:
        return hit[1], hit[2]
    workspace = Workspace.objects.filter(team_id=team_id, active=True).first()
    secret = workspace.secret("signing_secret") if workspace else ""
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[team_id] = (now + WORKSPACE_CACHE_S, workspace, secret)
    return workspace, secret


def forget_workspace(sender, instance, **kwargs) -> None:
    """post_save/post_delete of a Workspace (chatbot.apps): this process sees it at once."""
    _cache.pop(instance.team_id, None)


def secrets_for(team_id: str | None) -> list[str]:
    """The signing secrets a request of ``team_id`` may be signed with: a workspace
    configured as its own app has its own; apps installed through OAuth share the app's
    (``SLACK_SIGNING_SECRET``). Without a team (``url_verification``): all of them."""
    if team_id is not None:
        found = [workspace_of(team_id)[1]]
    else:
        rows = Workspace.objects.filter(active=True).exclude(signing_secret_sealed="")
        found = [w.secret("signing_secret") for w in rows]
    if settings.SLACK_SIGNING_SECRET:
        found.append(settings.SLACK_SIGNING_SECRET)
    return [s for s in found if s]


def verified(body: bytes, headers, team_id: str | None) -> bool:
    timestamp = headers.get("X-Slack-Request-Timestamp")
    signature = headers.get("X-Slack-Signature")
    if not timestamp or not signature:
        return False
    for secret in secrets_for(team_id):
        try:
            if SignatureVerifier(secret).is_valid(body, timestamp, signature):
                return True
        except ValueError:  # a timestamp that is not a number: slack_sdk's int() raises
            return False
    return False


def _json(body: bytes):
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def receive_event(body: bytes, headers) -> Receipt:
    """One POST of the Events API: 401 unless signed, 200 for the rest (a retry too)."""
    if len(body) > MAX_BODY:
        return _refused(413, "too_large", "The event is larger than Slack sends.")
    envelope = _json(body)
    team_id = envelope.get("team_id") if envelope else None
    if not verified(body, headers, team_id if isinstance(team_id, str) else None):
        return _refused(401, "bad_signature", "The request is not signed by Slack.")
    if envelope is None:
        return _refused(400, "invalid", "The body is not a JSON object.")
    kind = envelope.get("type")
    if kind == "url_verification":
        return Receipt(200, {"challenge": str(envelope.get("challenge", ""))})
    if kind != "event_callback":
        return Receipt(200)  # app_rate_limited and the like: nothing to do
    event_id = envelope.get("event_id")
    if not isinstance(event_id, str) or not event_id or not isinstance(team_id, str):
        return _refused(400, "invalid", "An event_callback needs event_id and team_id.")
    if not isinstance(envelope.get("event"), dict):
        return _refused(400, "invalid", "An event_callback needs its event.")
    event_id = event_id[:64]
    return Receipt(200, event=_record(envelope, team_id, event_id, headers))


def _record(envelope: dict, team_id: str, event_id: str, headers) -> Event:
    event = envelope["event"]
    retry = headers.get("X-Slack-Retry-Num")
    retry_num = int(retry) if retry and retry.isdigit() and len(retry) < 4 else None
    workspace, _ = workspace_of(team_id)
    ignored = why_ignored(event, workspace)
    try:
        with transaction.atomic():
            row = Event.objects.create(
                team_id=team_id[:32],
                event_id=event_id,
                workspace=workspace,
                type=_type_of(event),
                status=Event.Status.IGNORED if ignored else Event.Status.QUEUED,
                note=ignored or "",
                last_retry_num=retry_num,
                last_retry_reason=headers.get("X-Slack-Retry-Reason", "")[:64],
                payload=event,
            )
            if not ignored:
                transaction.on_commit(lambda: enqueue_event(row.pk))
        return row
    except IntegrityError:
        # Seen before (Slack's retry, or two deliveries at once): counted, never redone.
        Event.objects.filter(team_id=team_id[:32], event_id=event_id).update(
            deliveries=F("deliveries") + 1, last_retry_num=retry_num
        )
        return Event.objects.get(team_id=team_id[:32], event_id=event_id)


def _type_of(event: dict) -> str:
    kind = str(event.get("type", ""))
    sub = event.get("subtype")
    return f"{kind}/{sub}"[:64] if sub else kind[:64]


def why_ignored(event: dict, workspace: Workspace | None) -> str:
    """Why the bot leaves this event alone, or "" to handle it."""
    if workspace is None:
        return "no active workspace for this team"
    if event.get("type") != "message":
        return "not a message"
    if event.get("subtype") not in HANDLED_SUBTYPES:
        return f"subtype {event.get('subtype')}"
    if event.get("bot_id") or event.get("bot_profile"):
        own = workspace.bot_id and event.get("bot_id") == workspace.bot_id
        return "the bot's own message" if own else "a bot's message"
    if workspace.bot_user_id and event.get("user") == workspace.bot_user_id:
        return "the bot's own message"
    if event.get("channel_type") not in CHANNEL_TYPES:
        return f"channel type {event.get('channel_type')}"
    files = event.get("files")
    if (not isinstance(files, list) or not files) and not workspace.text_to_check(event):
        return "no files or text to check" if workspace.check_text else "no files"
    if not all(isinstance(event.get(k), str) for k in ("user", "channel", "ts")):
        return "no user, channel or ts"
    return ""


def enqueue_event(event_pk: int) -> None:
    try:
        tasks.handle_event.delay(event_pk)
    except Exception:  # broker down: the row stays queued; requeue_events picks it up
        log.exception("could not queue slack event %s", event_pk)


def receive_interaction(body: bytes, headers) -> Receipt:
    """A button press (the notice's Appeal): form-encoded ``payload``, signed the same way."""
    if len(body) > MAX_BODY:
        return _refused(413, "too_large", "The request is larger than Slack sends.")
    try:
        form = parse_qs(body.decode("utf-8"), max_num_fields=5)
        payload = json.loads(form.get("payload", [""])[0])
    except (UnicodeDecodeError, ValueError):
        payload = None
    team = payload.get("team") if isinstance(payload, dict) else None
    team_id = team.get("id") if isinstance(team, dict) else None
    if not verified(body, headers, team_id if isinstance(team_id, str) else None):
        return _refused(401, "bad_signature", "The request is not signed by Slack.")
    if not isinstance(payload, dict) or not isinstance(team_id, str):
        return _refused(400, "invalid", "The body has no interaction payload.")
    return Receipt(200, body={"payload": payload, "team_id": team_id})
