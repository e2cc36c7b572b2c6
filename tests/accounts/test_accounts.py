"""Sign-up, roles, strikes and bans."""

from django.contrib.auth.models import Group
from django.urls import reverse
from rest_framework.authtoken.models import Token

from accounts.models import AccountEvent, Author, Strike
from accounts.roles import MODERATOR, POLICY_ADMIN, UPLOADER
from accounts.services import add_strike, lift_ban


def test_sign_up_makes_an_uploader_with_an_author_and_logs_in(client, db):
    response = client.post(
        reverse("signup"),
        {
            "username": "newcomer",
            "email": "n@example.org",
            "password1": "a-long-enough-pass-42",
            "password2": "a-long-enough-pass-42",
        },
    )
    assert response.status_code == 302
    from accounts.models import User

    user = User.objects.get(username="newcomer")
    assert list(user.groups.values_list("name", flat=True)) == [UPLOADER]
    assert user.author.kind == "site" and user.author.status == "ok"
    assert client.get(reverse("uploads:upload")).status_code == 200


def test_a_bad_sign_up_shows_the_form_again_with_errors(client, db):
    response = client.post(reverse("signup"), {"username": "x", "password1": "1", "password2": "2"})
    assert response.status_code == 200
    assert "password" in response.content.decode().lower()


def test_roles_exist_with_their_permissions(db):
    assert Group.objects.get(name=MODERATOR).permissions.filter(codename="moderate").exists()
    admin_perms = set(
        Group.objects.get(name=POLICY_ADMIN).permissions.values_list("codename", flat=True)
    )
    assert {"moderate", "override", "change_policy", "lift_ban"} <= admin_perms


def test_log_in_and_log_out_pages(client, uploader):
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "uploader", "password": "pw-uploader"})
    assert response.status_code == 302
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("uploads:upload")).status_code == 302


def test_strikes_warn_twice_then_ban_and_end_sessions_and_tokens(client, uploader, policy):
    author = uploader.author
    token = Token.objects.create(user=uploader)
    client.force_login(uploader)
    for expected in ("warned", "warned", "banned"):
        add_strike(
            author,
            source=Strike.Source.MODERATOR,
            reason="rejected",
            strikes_to_ban=policy.strikes_to_ban,
        )
        assert author.status == expected
    assert author.strikes == 3
    assert not Token.objects.filter(pk=token.pk).exists()
    response = client.get(reverse("uploads:upload"))
    assert response.status_code == 302 and "login" in response["Location"]
    assert "_auth_user_id" not in client.session
    assert AccountEvent.objects.filter(author=author, action="banned").exists()


def test_an_admin_lifts_a_ban_and_it_is_audited(uploader, policy_admin, policy):
    author = uploader.author
    for _ in range(policy.strikes_to_ban):
        add_strike(
            author, source=Strike.Source.BANK, reason="bank", strikes_to_ban=policy.strikes_to_ban
        )
    lifted = lift_ban(author, actor=policy_admin)
    assert lifted.status == Author.Status.OK and lifted.strikes == 0
    event = AccountEvent.objects.get(author=author, action="ban_lifted")
    assert event.actor == policy_admin
