"""Every Slack Web API call the bot makes goes through ``call``: the workspace's token
(bot, or the optional admin user token), slack_sdk's ``WebClient`` at ``SLACK_API_URL``,
a 429 waited out for its ``Retry-After`` (``RateLimitErrorRetryHandler``, up to 3 times)
and a 500/503 tried once more, ``ok`` checked, and an ``Action`` row recording who, what,
which workspace and Slack's answer, whatever it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from .models import Action, Workspace

log = logging.getLogger(__name__)

BOT, ADMIN = "bot", "admin"
# A bot token Slack rotates (token rotation on) is refreshed this long before it expires.
REFRESH_MARGIN = timedelta(minutes=5)
_SECRET_KEYS = ("token", "secret")  # never kept from an answer (oauth.v2.access has them)


@dataclass(frozen=True)
class Answer:
    ok: bool
    data: dict = field(default_factory=dict)
    error: str = ""
    status: int | None = None


def web_client(token: str = "") -> WebClient:
    return WebClient(
        token=token or None,
        base_url=settings.SLACK_API_URL,
        timeout=int(settings.SLACK_API_TIMEOUT),
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=1),
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=1),
        ],
    )


def token_of(workspace: Workspace, which: str) -> str:
    if which == ADMIN:
        return workspace.secret("admin_token")
    return fresh_bot_token(workspace)


def call(
    workspace: Workspace,
    method: str,
    *,
    token: str = BOT,
    why: str = "",
    item=None,
    actor=None,
    **params,
) -> Answer:
    """Call ``method`` (e.g. "chat.delete") with ``params``; never raises for Slack's or the
    network's failures: the answer says, and the audit row keeps it."""
    target = {k: params[k] for k in ("channel", "ts", "thread_ts", "file") if k in params}
    try:
        client = web_client(token_of(workspace, token))
        response = getattr(client, method.replace(".", "_"))(**params)
        answer = Answer(True, dict(response.data), status=response.status_code)
    except SlackApiError as exc:
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        status = exc.response.status_code
        # A 5xx's body is a proxy's page, not Slack's JSON: the status says more.
        error = data.get("error") if status in (200, 429) else None
        error = error or f"HTTP {status}"
        answer = Answer(False, dict(data), error=str(error), status=status)
    except (SlackClientError, OSError, ValueError) as exc:
        answer = Answer(False, error=f"{type(exc).__name__}: {exc}"[:255])
    Action.objects.create(
        workspace=workspace,
        item=item,
        method=method,
        why=why,
        target=target,
        token=token,
        actor=actor,
        ok=answer.ok,
        status_code=answer.status,
        error=answer.error[:255],
        answer=scrub(answer.data),
    )
    if not answer.ok:
        log.warning("slack %s for %s failed: %s", method, workspace.team_id, answer.error)
    return answer


def slack_error(exc: SlackClientError) -> str:
    """Slack's error code of a failed call (``invalid_code``), else the exception."""
    data = getattr(getattr(exc, "response", None), "data", None)
    return str(data.get("error") or exc) if isinstance(data, dict) else str(exc)


def scrub(data: dict) -> dict:
    """Slack's answer without tokens, secrets or a file's private URLs, and bounded."""
    out = {}
    for key, value in data.items():
        if any(word in key for word in _SECRET_KEYS) or key.startswith("url_private"):
            continue
        out[key] = scrub(value) if isinstance(value, dict) else value
    text = str(out)
    return out if len(text) < 4000 else {"ok": data.get("ok"), "truncated": True}


def fresh_bot_token(workspace: Workspace) -> str:
    """The bot token, refreshed first when Slack rotates it and it is about to expire.

    A refresh token works once: the row is locked so that two workers do not both spend it.
    """
    expires = workspace.bot_token_expires_at
    if expires is None or expires - REFRESH_MARGIN > timezone.now():
        return workspace.secret("bot_token")
    with transaction.atomic():
        locked = Workspace.objects.select_for_update().get(pk=workspace.pk)
        if locked.bot_token_expires_at and locked.bot_token_expires_at - REFRESH_MARGIN > (
            timezone.now()
        ):
            workspace.bot_token_sealed = locked.bot_token_sealed  # another worker refreshed
            workspace.bot_token_expires_at = locked.bot_token_expires_at
            return locked.secret("bot_token")
        try:
            data = (
                web_client()
                .oauth_v2_access(
                    client_id=settings.SLACK_CLIENT_ID,
                    client_secret=settings.SLACK_CLIENT_SECRET,
                    grant_type="refresh_token",
                    refresh_token=locked.secret("bot_refresh_token"),
                )
                .data
            )
        except SlackClientError as exc:
            Action.objects.create(
                workspace=locked,
                method="oauth.v2.access",
                why="token refresh",
                token=BOT,
                error=slack_error(exc)[:255],
            )
            return locked.secret("bot_token")  # let the call fail and be audited
        locked.set_secret("bot_token", data["access_token"])
        if data.get("refresh_token"):
            locked.set_secret("bot_refresh_token", data["refresh_token"])
        locked.bot_token_expires_at = timezone.now() + timedelta(seconds=int(data["expires_in"]))
        locked.save(
            update_fields=["bot_token_sealed", "bot_refresh_token_sealed", "bot_token_expires_at"]
        )
        Action.objects.create(
            workspace=locked,
            method="oauth.v2.access",
            why="token refresh",
            token=BOT,
            ok=True,
            answer=scrub(data),
        )
    workspace.bot_token_sealed = locked.bot_token_sealed
    workspace.bot_token_expires_at = locked.bot_token_expires_at
    return locked.secret("bot_token")
