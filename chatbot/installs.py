"""Installing the bot in a workspace through Slack's OAuth v2 (slack_sdk's
``AuthorizeUrlGenerator`` and ``oauth.v2.access``), the tokens sealed as they arrive.

Scopes (README "Slack"): the bot reads channel messages and files, deletes files and
posts notices; the optional user scopes, granted by a workspace admin who installs it,
give the admin user token that deletes members' messages and files.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone
from slack_sdk.errors import SlackClientError
from slack_sdk.oauth import AuthorizeUrlGenerator

from . import webapi
from .models import Action, Workspace

BOT_SCOPES = ["channels:history", "groups:history", "files:read", "files:write", "chat:write"]
ADMIN_USER_SCOPES = ["chat:write", "files:write"]
STATE_SALT = "chatbot.oauth-state"
STATE_MAX_AGE = 600  # seconds from "Add to Slack" to the callback
SESSION_KEY = "chatbot_oauth_nonce"


class InstallFailed(Exception):
    pass


def authorize_url(request, redirect_uri: str) -> str:
    """Where "Add to Slack" sends an admin; the state is signed and tied to the session."""
    nonce = secrets.token_urlsafe(16)
    request.session[SESSION_KEY] = nonce
    state = signing.dumps({"n": nonce, "u": request.user.pk}, salt=STATE_SALT)
    generator = AuthorizeUrlGenerator(
        client_id=settings.SLACK_CLIENT_ID,
        scopes=BOT_SCOPES,
        user_scopes=ADMIN_USER_SCOPES,
        redirect_uri=redirect_uri,
    )
    return generator.generate(state)


def check_state(request, state: str) -> None:
    try:
        data = signing.loads(state, salt=STATE_SALT, max_age=STATE_MAX_AGE)
    except signing.BadSignature:
        raise InstallFailed("The install link expired or was not ours; start again.") from None
    nonce = request.session.pop(SESSION_KEY, None)
    if not nonce or data.get("n") != nonce or data.get("u") != request.user.pk:
        raise InstallFailed("The install was started in another session; start again.")


def finish_install(code: str, redirect_uri: str, user) -> Workspace:
    """Exchange the code for the tokens and keep them, sealed."""
    try:
        data = (
            webapi.web_client()
            .oauth_v2_access(
                client_id=settings.SLACK_CLIENT_ID,
                client_secret=settings.SLACK_CLIENT_SECRET,
                code=code,
                redirect_uri=redirect_uri,
            )
            .data
        )
    except SlackClientError as exc:
        raise InstallFailed(f"Slack refused the install: {webapi.slack_error(exc)}.") from None
    team = data.get("team") or {}
    if not data.get("access_token") or not team.get("id"):
        raise InstallFailed("Slack's answer had no bot token or team.")
    with transaction.atomic():
        workspace, _ = Workspace.objects.select_for_update().get_or_create(team_id=team["id"][:32])
        workspace.name = str(team.get("name", ""))[:255]
        workspace.active = True
        workspace.bot_user_id = str(data.get("bot_user_id", ""))[:32]
        workspace.installed_by = user
        workspace.set_secret("bot_token", data["access_token"])
        workspace.set_secret("bot_refresh_token", data.get("refresh_token", ""))
        workspace.bot_token_expires_at = (
            timezone.now() + timedelta(seconds=int(data["expires_in"]))
            if data.get("expires_in")
            else None
        )
        admin = (data.get("authed_user") or {}).get("access_token", "")
        if admin:
            workspace.set_secret("admin_token", admin)
        workspace.save()
        Action.objects.create(
            workspace=workspace,
            method="oauth.v2.access",
            why="install",
            token="",
            actor=user,
            ok=True,
            answer=webapi.scrub(data),
        )
    who = webapi.call(workspace, "auth.test", why="install")
    if who.ok and who.data.get("bot_id"):
        Workspace.objects.filter(pk=workspace.pk).update(bot_id=str(who.data["bot_id"])[:32])
    return workspace
