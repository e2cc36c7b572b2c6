"""The whole image path: upload page → private storage → fingerprint → classify → outcome."""

import pytest
from django.urls import reverse
from PIL import Image

from accounts.models import Author
from review.models import Analysis
from tests.conftest import encode
from uploads.models import MediaItem


def post_files(client, files, url="", accept="application/json"):
    data = {"files": files}
    if url:
        data["url"] = url
    return client.post(reverse("uploads:submit"), data, HTTP_ACCEPT=accept)


def named(data: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


@pytest.fixture
def three_images(jpeg, venus_bytes):
    plain = encode(Image.new("RGB", (300, 200), (40, 120, 200)), "PNG")
    return [
        named(jpeg("coffee"), "coffee.jpg"),
        named(venus_bytes, "venus.jpg"),
        named(plain, "blue.png"),
    ]


def test_three_images_each_get_a_class_confidence_and_decision(
    client, uploader, three_images, django_capture_on_commit_callbacks
):
    client.force_login(uploader)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_files(client, three_images)
    assert response.status_code == 200, response.content
    assert [i["name"] for i in response.json()["items"]] == ["coffee.jpg", "venus.jpg", "blue.png"]

    items = {i.original_name: i for i in MediaItem.objects.all()}
    coffee, venus, blue = items["coffee.jpg"], items["venus.jpg"], items["blue.png"]
    assert coffee.status == MediaItem.Status.PASSED and coffee.category == "neutral"
    assert venus.status == MediaItem.Status.FLAGGED
    assert venus.reason == "explicit_flagged" and venus.category == "explicit"
    assert venus.confidence > 0.6 and "Explicit content detected" in venus.reason_text
    assert blue.status == MediaItem.Status.PASSED and blue.mime == "image/png"

    status = client.get(reverse("uploads:item_status", args=[venus.uuid])).json()
    assert status["outcome"] == "flagged" and status["category"] == "explicit"


def test_the_feed_shows_passed_images_and_never_a_flagged_one(
    client, uploader, outsider, three_images, django_capture_on_commit_callbacks
):
    client.force_login(uploader)
    with django_capture_on_commit_callbacks(execute=True):
        post_files(client, three_images)
    venus = MediaItem.objects.get(original_name="venus.jpg")
    client.force_login(outsider)
    page = client.get(reverse("uploads:feed")).content.decode()
    for item in MediaItem.objects.filter(status=MediaItem.Status.PASSED):
        assert str(item.uuid) in page
    assert str(venus.uuid) not in page
    client.force_login(uploader)
    own = client.get(reverse("uploads:feed")).content.decode()
    assert "Your items not in the feed" in own and "venus.jpg" in own


def test_every_analysis_is_audited_with_hashes_scores_raw_output_and_timings(
    client, uploader, venus_bytes, django_capture_on_commit_callbacks
):
    client.force_login(uploader)
    with django_capture_on_commit_callbacks(execute=True):
        post_files(client, [named(venus_bytes, "v.jpg")])
    item = MediaItem.objects.get()
    audit = Analysis.objects.get(item=item)
    assert audit.source == "web" and audit.author == uploader.author
    assert set(audit.hashes) >= {"ahash", "dhash", "phash_simple", "phash", "pdq"}
    assert len(audit.hashes["pdq"]) == 64
    assert audit.scores["explicit"] > 0.6
    labels = {d["class"] for d in audit.raw["nudenet"]}
    assert "FEMALE_BREAST_EXPOSED" in labels
    assert audit.timings["classify"] > 0 and audit.timings["total"] >= audit.timings["classify"]
    assert audit.outcome == "flagged" and audit.reason == "explicit_flagged"
    stored = item.fingerprints.get(algorithm="pdq", mirrored=False)
    assert stored.value == audit.hashes["pdq"] and stored.quality == audit.hashes["quality"]["pdq"]
    assert len(audit.hashes["mirror"]["pdq"]) == 64  # mirrors stay in the audit, not in rows
    assert not item.fingerprints.filter(mirrored=True).exists()


def test_a_refused_file_gets_a_message_naming_it_and_nothing_is_kept(client, uploader, tmp_path):
    client.force_login(uploader)
    response = post_files(client, [named(b"<html><script>alert(1)</script></html>", "cat.jpg")])
    assert response.status_code == 400
    body = response.json()
    error = body["errors"][0]
    assert error["name"] == "cat.jpg" and error["code"] == "unsupported_format"
    assert "JPEG" in error["detail"]
    # Nothing taken: the one error shape on top, naming the first refusal.
    assert (body["code"], body["detail"], body["items"]) == (error["code"], error["detail"], [])
    assert MediaItem.objects.count() == 0
    assert not any(p.is_file() for p in (tmp_path / "private").rglob("*"))


def test_an_oversized_file_is_refused_with_the_limit(client, uploader, settings, jpeg):
    settings.UPLOAD_MAX_BYTES = 10_000
    client.force_login(uploader)
    response = post_files(client, [named(jpeg("astronaut"), "big.jpg")])
    assert response.status_code == 400
    assert "limit" in response.json()["errors"][0]["detail"]
    assert MediaItem.objects.count() == 0


def test_good_files_are_kept_when_another_in_the_batch_is_refused(
    client, uploader, jpeg, django_capture_on_commit_callbacks
):
    client.force_login(uploader)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_files(client, [named(jpeg("coffee"), "ok.jpg"), named(b"junk", "bad.gif")])
    body = response.json()
    assert response.status_code == 200
    assert [i["name"] for i in body["items"]] == ["ok.jpg"]
    assert [e["name"] for e in body["errors"]] == ["bad.gif"]


def test_a_failure_midway_leaves_neither_file_nor_row(
    client, uploader, jpeg, monkeypatch, tmp_path
):
    def broken_save(self, *args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(MediaItem, "save", broken_save)
    client.force_login(uploader)
    client.raise_request_exception = False
    response = post_files(client, [named(jpeg("coffee"), "x.jpg")])
    assert response.status_code == 500
    monkeypatch.undo()
    assert MediaItem.objects.count() == 0
    assert not any(p.is_file() for p in (tmp_path / "private").rglob("*"))


def test_without_javascript_the_form_redirects_with_messages(client, uploader):
    client.force_login(uploader)
    response = post_files(client, [named(b"nope", "a.png")], accept="text/html")
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "a.png" in page


def test_an_empty_submission_is_a_400_with_a_message(client, uploader):
    client.force_login(uploader)
    response = client.post(reverse("uploads:submit"), {}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "empty" and "Choose at least one image" in body["detail"]


def test_a_banned_author_is_refused_with_403(client, uploader, jpeg):
    client.force_login(uploader)
    Author.objects.filter(user=uploader).update(status=Author.Status.BANNED)
    response = post_files(client, [named(jpeg("coffee"), "x.jpg")])
    assert response.status_code == 403
    assert "banned" in response.json()["detail"]
    assert MediaItem.objects.count() == 0


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(reverse("uploads:upload"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.post(reverse("uploads:submit")).status_code == 302
