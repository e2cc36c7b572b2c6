"""Workspaces: secrets sealed at rest and write-only in admin, the OAuth install, and a
rotated bot token refreshed before it expires."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from chatbot import sealing, webapi
from chatbot.models import Action, Workspace
from tests.chatbot.conftest import SIGNING_SECRET
from tests.chatbot.fakeslack import ADMIN_TOKEN, BOT_TOKEN, TEAM


def raw_columns(pk):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT signing_secret_sealed, bot_token_sealed, admin_token_sealed "
            "FROM chatbot_workspace WHERE id = %s",
            [pk],
        )
        return cursor.fetchone()


def test_tokens_and_secrets_are_sealed_at_rest(workspace):
    stored = raw_columns(workspace.pk)
    for plain, sealed in zip((SIGNING_SECRET, BOT_TOKEN, ADMIN_TOKEN), stored, strict=True):
        assert plain not in sealed and sealed.startswith("gAAAA")  # a Fernet token
    fresh = Workspace.objects.get(pk=workspace.pk)
    assert fresh.secret("bot_token") == BOT_TOKEN


def test_a_key_of_its_own_rotates_and_another_key_opens_nothing(workspace, settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.SLACK_ENCRYPTION_KEY = [old_key]
    sealed = sealing.seal("xoxb-rotate-me")
    settings.SLACK_ENCRYPTION_KEY = [new_key, old_key]  # the first seals, both open
    assert sealing.open_sealed(sealed) == "xoxb-rotate-me"
    resealed = sealing.reseal(sealed)
    settings.SLACK_ENCRYPTION_KEY = [new_key]
    assert sealing.open_sealed(resealed) == "xoxb-rotate-me"
    with pytest.raises(sealing.InvalidToken):
        sealing.open_sealed(sealed)


@pytest.fixture
def admin_client(client, policy_admin):
    policy_admin.is_superuser = True
    policy_admin.save()
    client.force_login(policy_admin)
    return client


def test_admin_takes_secrets_once_and_never_shows_them_again(admin_client, workspace):
    url = reverse("admin:chatbot_workspace_change", args=[workspace.pk])
    page = admin_client.get(url).content.decode()
    for secret in (SIGNING_SECRET, BOT_TOKEN, ADMIN_TOKEN, *raw_columns(workspace.pk)):
        assert secret not in page
    assert page.count("Set. ") >= 3 and 'type="password"' in page
    form = {
        "team_id": TEAM,
        "name": "Acme",
        "active": "on",
        "bot_user_id": "U0BOT",
        "bot_id": "B0BOT",
        "admin_channel": "C0ADMINS",
        "policy": workspace.policy_id,
        "max_file_bytes": "",
        "signing_secret": "",
        "bot_token": "xoxb-new-one",
        "admin_token": "",
        "clear_admin_token": "on",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    workspace.refresh_from_db()
    assert workspace.secret("bot_token") == "xoxb-new-one"
    assert workspace.secret("signing_secret") == SIGNING_SECRET  # empty kept it
    assert not workspace.has_secret("admin_token")  # cleared
    assert "xoxb-new-one" not in admin_client.get(url).content.decode()


def test_the_install_needs_a_policy_admin_and_a_signed_state(client, outsider, settings):
    settings.SLACK_CLIENT_ID, settings.SLACK_CLIENT_SECRET = "123.456", "client-secret"
    assert client.get(reverse("chatbot:install")).status_code in (302, 403)
    client.force_login(outsider)
    assert client.get(reverse("chatbot:install")).status_code == 403
    assert client.get(reverse("chatbot:oauth-callback"), {"code": "c"}).status_code == 403


def test_an_oauth_install_keeps_the_workspace_with_its_tokens_sealed(
    admin_client, fake_slack, settings
):
    settings.SLACK_CLIENT_ID, settings.SLACK_CLIENT_SECRET = "123.456", "client-secret"
    response = admin_client.get(reverse("chatbot:install"))
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    query = parse_qs(target.query)
    assert target.netloc == "slack.com" and target.path == "/oauth/v2/authorize"
    assert query["scope"] == ["channels:history,groups:history,files:read,files:write,chat:write"]
    assert query["user_scope"] == ["chat:write,files:write"]
    state = query["state"][0]
    fake_slack.oauth_answer = {
        "ok": True,
        "access_token": BOT_TOKEN,
        "token_type": "bot",
        "bot_user_id": "U0BOT",
        "refresh_token": "xoxe-1-refresh",
        "expires_in": 43200,
        "team": {"id": "T0NEW", "name": "New Co"},
        "authed_user": {"id": "U0ADMIN", "access_token": ADMIN_TOKEN},
    }
    # A forged state, then the real one.
    bad = admin_client.get(reverse("chatbot:oauth-callback"), {"code": "c", "state": "x"})
    assert bad.status_code == 400 and bad.json()["code"] == "install_failed"
    response = admin_client.get(
        reverse("chatbot:oauth-callback"), {"code": "the-code", "state": state}
    )
    assert response.status_code == 302
    workspace = Workspace.objects.get(team_id="T0NEW")
    assert (workspace.name, workspace.bot_user_id, workspace.bot_id) == ("New Co", "U0BOT", "B0BOT")
    assert workspace.secret("bot_token") == BOT_TOKEN
    assert workspace.secret("admin_token") == ADMIN_TOKEN
    assert workspace.bot_token_expires_at > timezone.now() + timedelta(hours=11)
    (exchange,) = fake_slack.called("oauth.v2.access")
    assert exchange.token == "basic:123.456:client-secret"
    assert exchange.params["code"] == "the-code"
    audit = Action.objects.get(method="oauth.v2.access")
    assert BOT_TOKEN not in str(audit.answer) and "xoxe" not in str(audit.answer)
    # The state works once.
    again = admin_client.get(reverse("chatbot:oauth-callback"), {"code": "c", "state": state})
    assert again.status_code == 400


def test_a_rotated_bot_token_is_refreshed_before_it_expires(workspace, fake_slack, settings):
    settings.SLACK_CLIENT_ID, settings.SLACK_CLIENT_SECRET = "123.456", "client-secret"
    workspace.set_secret("bot_token", "xoxe.xoxb-old")
    workspace.set_secret("bot_refresh_token", "xoxe-1-old")
    workspace.bot_token_expires_at = timezone.now() + timedelta(minutes=2)
    workspace.save()
    fake_slack.oauth_answer = {
        "ok": True,
        "access_token": BOT_TOKEN,
        "refresh_token": "xoxe-1-new",
        "expires_in": 43200,
    }
    answer = webapi.call(workspace, "auth.test")
    assert answer.ok  # made with the new token (the fake knows only that one)
    (refresh,) = fake_slack.called("oauth.v2.access")
    assert refresh.params["grant_type"] == "refresh_token"
    assert refresh.params["refresh_token"] == "xoxe-1-old"
    workspace.refresh_from_db()
    assert workspace.secret("bot_refresh_token") == "xoxe-1-new"
    assert workspace.secret("bot_token") == BOT_TOKEN
    webapi.call(workspace, "auth.test")
    assert len(fake_slack.called("oauth.v2.access")) == 1  # fresh now: not refreshed again


def test_reseal_moves_every_secret_to_the_new_first_key(workspace, settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.SLACK_ENCRYPTION_KEY = [old_key]
    workspace.set_secret("bot_token", BOT_TOKEN)
    workspace.set_secret("signing_secret", SIGNING_SECRET)
    workspace.set_secret("admin_token", ADMIN_TOKEN)
    workspace.save()
    settings.SLACK_ENCRYPTION_KEY = [new_key, old_key]
    call_command("reseal_slack_secrets")
    settings.SLACK_ENCRYPTION_KEY = [new_key]
    fresh = Workspace.objects.get(pk=workspace.pk)
    assert fresh.secret("bot_token") == BOT_TOKEN
    assert fresh.secret("admin_token") == ADMIN_TOKEN


def test_a_code_slack_refuses_installs_nothing(admin_client, fake_slack, settings):
    settings.SLACK_CLIENT_ID, settings.SLACK_CLIENT_SECRET = "123.456", "client-secret"
    state = parse_qs(urlsplit(admin_client.get(reverse("chatbot:install"))["Location"]).query)
    response = admin_client.get(
        reverse("chatbot:oauth-callback"), {"code": "stale", "state": state["state"][0]}
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": "install_failed",
        "detail": "Slack refused the install: invalid_code.",
    }
    assert not Workspace.objects.exists()
