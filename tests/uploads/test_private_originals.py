"""Originals are private: permission-checked view only; flagged ones only for staff."""

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.roles import MODERATOR
from review import claims, decisions
from uploads.intake import ingest_bytes
from uploads.models import MediaItem


@pytest.fixture
def item_of(jpeg):
    def make(user, status=MediaItem.Status.PASSED):
        item = ingest_bytes(jpeg("coffee"), name="c.jpg", source="web", uploader=user)
        MediaItem.objects.filter(pk=item.pk).update(status=status)
        item.refresh_from_db()
        return item

    return make


def fetch(client, item):
    return client.get(reverse("uploads:original", args=[item.uuid]))


def test_the_file_is_stored_under_a_server_made_name_outside_any_served_folder(uploader, jpeg):
    item = ingest_bytes(
        jpeg("coffee"), name="../../etc/passwd.jpg", source="web", uploader=uploader
    )
    assert "passwd" not in item.file.name and ".." not in item.file.name
    assert item.file.name.endswith(".jpg") and item.uuid.hex in item.file.name
    assert item.original_name == "passwd.jpg"
    assert not str(settings.PRIVATE_MEDIA_ROOT).startswith(str(settings.STATIC_ROOT))
    with pytest.raises(ValueError):
        _ = item.file.url  # no public URL exists for an original


def test_the_uploader_sees_their_own_processing_item_but_others_do_not(
    client, uploader, outsider, item_of
):
    item = item_of(uploader, MediaItem.Status.PROCESSING)
    client.force_login(uploader)
    response = fetch(client, item)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"
    client.force_login(outsider)
    assert fetch(client, item).status_code == 404


@pytest.mark.parametrize("status", [MediaItem.Status.FLAGGED, MediaItem.Status.REJECTED])
def test_a_flagged_image_is_shown_to_staff_only(
    client, uploader, outsider, policy_admin, item_of, status
):
    item = item_of(uploader, status)
    for user in (uploader, outsider):
        client.force_login(user)
        assert fetch(client, item).status_code == 404
    client.force_login(policy_admin)
    assert fetch(client, item).status_code == 200


def test_a_passed_image_is_visible_to_signed_in_users_and_not_to_anonymous(
    client, uploader, outsider, item_of
):
    item = item_of(uploader, MediaItem.Status.PASSED)
    client.force_login(outsider)
    assert fetch(client, item).status_code == 200
    client.logout()
    assert fetch(client, item).status_code == 302


def test_an_item_in_review_is_visible_to_moderators_not_to_outsiders(
    client, uploader, outsider, moderator, item_of
):
    item = item_of(uploader, MediaItem.Status.REVIEW)
    client.force_login(outsider)
    assert fetch(client, item).status_code == 404
    assert client.get(reverse("uploads:item_status", args=[item.uuid])).status_code == 404
    client.force_login(moderator)
    assert fetch(client, item).status_code == 200


def _jpeg_with_gps(photo) -> bytes:
    import io

    from PIL import Image

    image = photo("coffee")
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}  # GPS IFD
    buf = io.BytesIO()
    image.save(buf, "JPEG", exif=exif, quality=90)
    return buf.getvalue()


def test_other_viewers_get_a_copy_without_exif_while_the_uploader_gets_the_original(
    client, uploader, outsider, moderator, photo
):
    import io

    from PIL import Image

    data = _jpeg_with_gps(photo)
    item = ingest_bytes(data, name="gps.jpg", source="web", uploader=uploader)
    MediaItem.objects.filter(pk=item.pk).update(status=MediaItem.Status.PASSED)
    for user, exact in ((uploader, True), (moderator, True), (outsider, False)):
        client.force_login(user)
        body = b"".join(fetch(client, item).streaming_content)
        assert (body == data) is exact
        exif = Image.open(io.BytesIO(body)).getexif()
        assert (0x8825 in exif and exif.get(0x010F) == "SecretCam") is exact
        if not exact:
            assert Image.open(io.BytesIO(body)).size == Image.open(io.BytesIO(data)).size


def test_the_item_page_shows_the_decision_history_without_moderator_names_to_the_uploader(
    client, uploader, item_of, django_user_model
):
    alice = django_user_model.objects.create_user("mod-alice", password="x")
    alice.groups.add(Group.objects.get(name=MODERATOR))
    item = item_of(uploader, MediaItem.Status.REVIEW)
    claims.enqueue_for_review(item)
    claims.claim_items(alice, 1)
    decisions.record_decision(alice, item, "reject", "Spam")
    client.force_login(uploader)
    page = client.get(reverse("uploads:item", args=[item.uuid])).content.decode()
    assert "Spam" in page and "Rejected" in page
    assert "mod-alice" not in page
    client.force_login(alice)
    page = client.get(reverse("uploads:item", args=[item.uuid])).content.decode()
    assert "Spam" in page and "mod-alice" in page


def test_a_file_lost_from_storage_is_a_404_not_a_500(client, uploader, outsider, item_of):
    item = item_of(uploader, MediaItem.Status.PASSED)
    item.file.storage.delete(item.file.name)
    for user in (uploader, outsider):  # the exact original, and the public rendition
        client.force_login(user)
        assert fetch(client, item).status_code == 404
