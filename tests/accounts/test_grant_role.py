"""`manage.py grant_role USER moderator|policy_admin|uploader [--revoke]`."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from accounts.roles import MODERATOR, POLICY_ADMIN
from tests.factories import UserFactory


def grant(*args) -> str:
    out = StringIO()
    call_command("grant_role", *args, stdout=out)
    return out.getvalue()


def test_a_user_becomes_a_moderator_and_can_open_the_review_page(db, client):
    user = UserFactory(username="alice")
    assert not user.has_perm("review.moderate")

    said = grant("alice", "moderator")

    assert "alice now has the role moderator" in said
    user = User.objects.get(pk=user.pk)  # a fresh instance: permissions are cached
    assert user.groups.filter(name=MODERATOR).exists()
    assert user.has_perm("review.moderate") and not user.is_staff
    client.force_login(user)
    assert client.get("/review/").status_code == 200
    grant("alice", "moderator")  # again: nothing changes
    assert user.groups.filter(name=MODERATOR).count() == 1


def test_a_policy_admin_is_made_staff_and_reaches_the_admin(db, client):
    UserFactory(username="bob")

    said = grant("bob", "policy_admin")

    assert "staff" in said
    bob = User.objects.get(username="bob")
    assert bob.is_staff and bob.groups.filter(name=POLICY_ADMIN).exists()
    assert bob.has_perm("review.change_policy")
    client.force_login(bob)
    assert client.get("/admin/").status_code == 200


def test_revoke_takes_the_role_and_the_staff_status_away(db):
    UserFactory(username="carol")
    grant("carol", "policy_admin")
    said = grant("carol", "policy_admin", "--revoke")

    carol = User.objects.get(username="carol")
    assert "no longer has the role policy_admin" in said
    assert not carol.is_staff and not carol.groups.filter(name=POLICY_ADMIN).exists()


def test_an_unknown_user_or_role_is_refused_with_what_to_do(db):
    with pytest.raises(CommandError, match="sign up at /accounts/signup/"):
        grant("nobody", "moderator")
    UserFactory(username="dave")
    with pytest.raises(CommandError, match="invalid choice"):
        grant("dave", "superhero")
