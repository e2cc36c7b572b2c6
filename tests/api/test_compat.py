"""The replaced API's endpoints: its old bodies and shapes, with a key, over real HTTP for
the URLs; deprecated in the schema."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Author
from api import services
from hashing import services as banks
from tests.api import test_analyses as shared
from tests.conftest import encode
from uploads.models import MediaItem

conforms = shared.conforms  # the loopback image server is tests/api/conftest.py's

IMAGE = "/api/v1/analyse/image"
BATCH = "/api/v1/analyse/images/batch"
SHAPE = {
    "request_id",
    "is_duplicate",
    "decision",
    "reason",
    "review_details",
    "similar_items",
    "author_status",
    "analysis_url",
}


@pytest.mark.django_db(transaction=True)
def test_the_old_single_body_gets_the_old_shape_synchronously(
    api, image_server, loopback_allowed, client, moderator
):
    first = api.post(
        IMAGE, {"url": f"{image_server}/coffee.jpg", "user_uuid": "u-1"}, format="json"
    )
    assert first.status_code == 200, first.content
    body = first.json()
    assert set(body) == SHAPE
    assert body["decision"] == "pass" and body["is_duplicate"] is False
    assert body["similar_items"] == [] and body["author_status"] == "ok"
    assert body["review_details"]["status"] == "passed"
    assert first["Deprecation"] == "true" and "successor-version" in first["Link"]
    # The id is the analysis's: the new API shows it in full.
    assert api.get(reverse("api:analysis", args=[body["request_id"]])).status_code == 200
    # The same picture again, from another URL: a duplicate, with the similar item.
    again_answer = api.post(
        IMAGE, {"url": f"{image_server}/coffee-again.jpg", "user_uuid": "u-1"}, format="json"
    )
    again = again_answer.json()
    assert again["is_duplicate"] is True
    similar = again["similar_items"]
    assert similar[0]["url"] == f"{image_server}/coffee.jpg"
    assert similar[0]["similarity"] == 1.0 and similar[0]["id"] == body["request_id"]
    assert isinstance(similar[0]["labels"], list)
    client.force_login(moderator)  # the schema is for signed-in people
    conforms(client, again_answer, "/api/v1/analyse/image", "post")


def test_a_verdict_not_reached_in_time_says_review_processing(api, image_server, loopback_allowed):
    # The test's transaction holds the analysis back until commit: as a slow worker would.
    answer = api.post(IMAGE, {"url": f"{image_server}/rocket.jpg", "user_uuid": "u"}, format="json")
    assert answer.status_code == 200
    body = answer.json()
    assert body["decision"] == "review" and body["reason"] == "processing"
    assert body["review_details"]["status"] == "processing" and body["analysis_url"]


def test_a_bank_match_is_flagged_in_the_old_vocabulary(
    api, admin_user, photo, image_server, loopback_allowed, django_capture_on_commit_callbacks
):
    bank = banks.create_bank("known bad", actor=admin_user)
    banks.add_images(bank, [("chelsea.jpg", encode(photo("chelsea"), quality=95))])
    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post(
            IMAGE, {"url": f"{image_server}/chelsea.jpg", "user_uuid": "u"}, format="json"
        )
    request_id = answer.json()["request_id"]
    item = MediaItem.objects.get(uuid=request_id)
    assert item.status == MediaItem.Status.FLAGGED
    # Asked again through the new API, the old id has the bank's evidence.
    body = api.get(reverse("api:analysis", args=[request_id])).json()
    assert body["reason"] == "bank_match" and body["bank_matches"]


def test_the_old_batch_body_and_shape_in_input_order(
    api, image_server, loopback_allowed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post(
            BATCH,
            {
                "images": [
                    {"url": f"{image_server}/coffee.jpg", "user_uuid": "u"},
                    f"{image_server}/rocket.jpg",  # a bare URL: the top-level user_uuid
                    {"url": f"{image_server}/page.html", "user_uuid": "u"},
                    "http://169.254.169.254/latest/meta-data/",
                ],
                "user_uuid": "u",
                "max_concurrent": 2,
            },
            format="json",
        )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert set(body) == {"batch_id", "total_images", "processed", "max_concurrent", "results"}
    assert body["total_images"] == 4 and body["processed"] == 2 and body["max_concurrent"] == 2
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert results[0]["url"].endswith("/coffee.jpg") and results[0]["error"] is None
    assert results[1]["request_id"] and results[1]["decision"] == "review"  # still processing
    assert results[2]["error"]["code"] == "unsupported_format" and results[2]["decision"] is None
    assert results[3]["error"]["code"] == "refused_address"
    assert answer["Deprecation"] == "true"


def test_the_old_batch_limit_is_enforced_now(api, settings):
    many = [{"url": f"http://x.example/{i}.jpg", "user_uuid": "u"} for i in range(51)]
    answer = api.post(BATCH, {"images": many}, format="json")
    assert answer.status_code == 400 and "At most 50" in answer.json()["fields"]["images"][0]
    empty = api.post(BATCH, {"images": []}, format="json")
    assert empty.status_code == 400 and "images" in empty.json()["fields"]
    wrong = api.post(BATCH, {"images": [{"url": "x"}], "max_concurrent": 99}, format="json")
    assert wrong.status_code == 400 and "max_concurrent" in wrong.json()["fields"]


def test_a_key_is_required_and_errors_are_never_raw(db, api, api_client_row):
    assert (
        APIClient().post(IMAGE, {"url": "http://x.example/a.jpg"}, format="json").status_code == 401
    )
    bad = api.post(IMAGE, b"{oops", content_type="application/json")
    assert bad.status_code == 400 and set(bad.json()) <= {"code", "detail", "fields"}
    author = services.author_for(api_client_row, "bad")
    author.status = Author.Status.BANNED
    author.save()
    banned = api.post(IMAGE, {"url": "http://x.example/a.jpg", "user_uuid": "bad"}, format="json")
    assert banned.status_code == 403 and banned.json()["code"] == "author_banned"
    assert banned.json()["author_status"] == "banned"


def test_the_compatibility_endpoints_are_deprecated_in_the_schema(client, moderator):
    client.force_login(moderator)
    schema = client.get(
        reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json"
    ).json()
    assert schema["paths"]["/api/v1/analyse/image"]["post"]["deprecated"] is True
    assert schema["paths"]["/api/v1/analyse/images/batch"]["post"]["deprecated"] is True
    assert not schema["paths"]["/api/v1/analyses"]["post"].get("deprecated")
