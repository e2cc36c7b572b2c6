"""End to end: bank blocks through the upload page, strikes to a ban, sessions and tokens."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import ImageEnhance, ImageOps
from rest_framework.authtoken.models import Token

from accounts.models import AccountEvent, Author, Strike
from accounts.services import add_strike
from hashing import services
from hashing.models import Bank
from review.models import Analysis
from tests.conftest import encode
from uploads.models import MediaItem


@pytest.fixture
def chelsea(photo):
    return photo("chelsea")


@pytest.fixture
def known_bad(db, admin_user, chelsea):
    """An admin loads the bank with a reference picture."""
    bank = services.create_bank("known bad", actor=admin_user)
    services.add_images(bank, [("chelsea.jpg", encode(chelsea, quality=95))], actor=admin_user)
    return bank


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    def send(data: bytes, name: str = "copy.jpg"):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                reverse("uploads:submit"),
                {"files": [SimpleUploadedFile(name, data)]},
                HTTP_ACCEPT="application/json",
            )

    return send


def copies(image):
    half = image.resize((image.width // 2, image.height // 2))
    return [
        ("recompressed.jpg", encode(image, quality=40)),
        ("resized.jpg", encode(half)),
        ("brightened.jpg", encode(ImageEnhance.Brightness(image).enhance(1.2))),
        ("mirrored.jpg", encode(ImageOps.mirror(image))),
    ]


def newest_item() -> MediaItem:
    return MediaItem.objects.order_by("-pk").first()


def test_blocked_copies_warn_twice_then_ban_ending_session_and_token(
    client, uploader, known_bad, chelsea, post
):
    token = Token.objects.create(user=uploader)
    schema = reverse("api-schema")
    assert client.get(schema, HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 200
    client.force_login(uploader)
    sent = copies(chelsea)
    for (name, data), expected in zip(sent, ("warned", "warned", "banned")):
        response = post(data, name)
        assert response.status_code == 200, response.content
        item = newest_item()
        assert item.original_name == name
        assert item.status == MediaItem.Status.FLAGGED and item.reason == "bank_match"
        assert "Matches known banned content" in item.reason_text
        strike = Strike.objects.filter(author__user=uploader).order_by("-pk").first()
        assert strike.item == item and strike.source == Strike.Source.BANK
        assert strike.resulting_status == expected
        audit = Analysis.objects.get(item=item).matches["bank"]
        assert audit["blocked"] and audit["votes"] >= audit["quorum"] == 4
        assert set(audit["per_voter"]) == {"ahash", "dhash", "phash_simple", "phash", "pdq"}
        if expected == "warned":
            status = client.get(reverse("uploads:item_status", args=[item.uuid])).json()
            assert status["outcome"] == "flagged" and status["reason"] == "bank_match"

    # The ban ended the session: the next request is sent to log in...
    response = client.get(reverse("uploads:upload"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert "_auth_user_id" not in client.session
    # ...and the API token stopped working.
    assert not Token.objects.filter(user=uploader).exists()
    assert client.get(schema, HTTP_AUTHORIZATION=f"Token {token.key}").status_code in (401, 403)

    # Logging in again does not get around it: the fourth copy is refused with a message.
    client.force_login(uploader)
    name, data = sent[3]
    response = post(data, name)
    assert response.status_code == 403 and "banned" in response.json()["detail"]
    assert MediaItem.objects.count() == 3
    assert Author.objects.get(user=uploader).strikes == 3


def test_a_blocked_upload_is_visible_to_nobody(
    client, uploader, outsider, known_bad, chelsea, post
):
    client.force_login(uploader)
    post(encode(chelsea, quality=40))
    item = newest_item()
    assert item.status == MediaItem.Status.FLAGGED
    # Not even its uploader gets the original back; nobody else sees the item at all.
    assert client.get(reverse("uploads:original", args=[item.uuid])).status_code == 404
    client.force_login(outsider)
    assert str(item.uuid) not in client.get(reverse("uploads:feed")).content.decode()
    assert client.get(reverse("uploads:item_status", args=[item.uuid])).status_code == 404
    assert client.get(reverse("uploads:original", args=[item.uuid])).status_code == 404


def test_an_allow_entry_lets_a_false_match_through(client, uploader, known_bad, chelsea, post):
    allow = services.create_bank("benign look-alikes", kind=Bank.Kind.ALLOW)
    services.add_images(allow, [("chelsea.jpg", encode(chelsea, quality=95))])
    client.force_login(uploader)
    post(encode(chelsea, quality=40))
    item = newest_item()
    assert item.status == MediaItem.Status.PASSED and item.reason == "allow_listed"
    assert item.matches["bank"]["allowed"] and item.matches["bank"]["blocked"]
    assert not Strike.objects.exists()


def test_bank_blocks_and_moderator_rejections_count_the_same(
    client, uploader, moderator, known_bad, chelsea, post
):
    client.force_login(uploader)
    post(encode(chelsea, quality=40))
    add_strike(
        uploader.author,
        source=Strike.Source.MODERATOR,
        reason="Spam",
        actor=moderator,
        strikes_to_ban=3,
    )
    assert Author.objects.get(user=uploader).status == Author.Status.WARNED
    post(encode(chelsea, quality=60))
    author = Author.objects.get(user=uploader)
    assert author.status == Author.Status.BANNED and author.strikes == 3
    sources = set(author.strike_records.values_list("source", flat=True))
    assert sources == {Strike.Source.BANK, Strike.Source.MODERATOR}


def test_an_admin_lifts_the_ban_audited_and_uploads_work_again(
    client, admin_user, uploader, known_bad, jpeg, post, policy
):
    for _ in range(policy.strikes_to_ban):
        add_strike(
            uploader.author, source=Strike.Source.BANK, reason="bank_match", strikes_to_ban=3
        )
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:accounts_author_changelist"),
        {"action": "lift_bans", "_selected_action": [uploader.author.pk]},
    )
    assert response.status_code == 302
    event = AccountEvent.objects.get(author__user=uploader, action="ban_lifted")
    assert event.actor == admin_user
    client.force_login(uploader)
    assert post(jpeg("coffee")).status_code == 200
    assert newest_item().status == MediaItem.Status.PASSED


def test_the_strike_count_for_a_ban_comes_from_the_policy(
    client, uploader, known_bad, chelsea, post, policy
):
    policy.strikes_to_ban = 1
    policy.save()
    client.force_login(uploader)
    post(encode(chelsea, quality=40))
    assert Author.objects.get(user=uploader).status == Author.Status.BANNED
