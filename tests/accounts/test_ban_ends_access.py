"""A ban is felt at once: no log-in (with the ban message and how to appeal), and the
user's review claims go back to the queue the moment the ban or a deactivation commits."""

import pytest
from django.urls import reverse

from accounts.models import Strike
from accounts.services import BANNED_MESSAGE, add_strike, lift_ban
from review import claims
from review.models import QueueEntry
from tests.review.review_factories import review_item


def ban(user):
    add_strike(user.author, source=Strike.Source.MODERATOR, reason="abuse", strikes_to_ban=1)


def test_a_banned_user_cannot_log_in_and_is_told_why_and_how_to_appeal(client, uploader):
    ban(uploader)
    response = client.post(reverse("login"), {"username": "uploader", "password": "pw-uploader"})
    assert response.status_code == 200  # the form again, not a redirect into the site
    page = response.content.decode()
    assert BANNED_MESSAGE in page and "appeal" in BANNED_MESSAGE
    assert "_auth_user_id" not in client.session


def test_a_banned_admin_cannot_log_in_to_the_admin_either(client, policy_admin):
    ban(policy_admin)
    response = client.post(
        reverse("admin:login"), {"username": "policyadmin", "password": "pw-policyadmin"}
    )
    assert response.status_code == 200
    assert BANNED_MESSAGE in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_wrong_password_of_a_banned_user_tells_nothing_about_the_ban(client, uploader):
    ban(uploader)
    response = client.post(reverse("login"), {"username": "uploader", "password": "wrong"})
    assert response.status_code == 200 and BANNED_MESSAGE not in response.content.decode()


def test_once_the_ban_is_lifted_the_user_logs_in_again(client, uploader, policy_admin):
    ban(uploader)
    lift_ban(uploader.author, actor=policy_admin)
    response = client.post(reverse("login"), {"username": "uploader", "password": "pw-uploader"})
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(uploader.pk)


def deactivate(user):
    user.is_active = False
    user.save()


@pytest.mark.parametrize("end", [ban, deactivate], ids=["ban", "deactivation"])
def test_a_ban_or_a_deactivation_releases_the_users_claims_at_once(
    end, moderator, policy_admin, django_capture_on_commit_callbacks
):
    for _ in range(3):
        review_item()
    claims.claim_items(moderator, 2)
    claims.claim_items(policy_admin, 1)
    with django_capture_on_commit_callbacks(execute=True):
        end(moderator)
    assert not QueueEntry.objects.filter(claimed_by=moderator).exists()
    assert QueueEntry.objects.filter(claimed_by=policy_admin).count() == 1  # others keep theirs
    released = QueueEntry.objects.filter(released_by=moderator)
    assert released.count() == 2
    assert set(released.values_list("release_cause", flat=True)) == {"account"}


def test_the_claims_go_only_when_the_ban_commits(moderator, django_capture_on_commit_callbacks):
    review_item()
    claims.claim_items(moderator, 1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ban(moderator)
    assert QueueEntry.objects.filter(claimed_by=moderator).count() == 1  # not yet committed
    for callback in callbacks:
        callback()
    assert not QueueEntry.objects.filter(claimed_by=moderator).exists()


def test_saving_an_active_user_or_a_log_in_releases_nothing(client, moderator):
    review_item()
    claims.claim_items(moderator, 1)
    moderator.first_name = "Mo"
    moderator.save()
    client.post(reverse("login"), {"username": "moderator", "password": "pw-moderator"})
    assert QueueEntry.objects.filter(claimed_by=moderator).count() == 1
