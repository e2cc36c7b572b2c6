"""Text through the public API: POST analyses with ``text``, and the replaced API's
``analyse/text``; a key required, bad text a 4xx in the one error shape."""

import pytest
from rest_framework.test import APIClient

from api.models import Submission
from tests.api.test_analyses import conforms
from uploads.models import MediaItem

ANALYSES = "/api/v1/analyses"
OLD = "/api/v1/analyse/text"


@pytest.mark.django_db(transaction=True)
def test_a_text_is_analysed_with_its_thread_context(api):
    answer = api.post(
        f"{ANALYSES}?wait=5",
        {
            "text": "you too",
            "thread_context": [{"text": "shut up you stupid worthless idiot", "author": "b"}],
            "user_uuid": "u-1",
            "metadata": {"post": 7},
        },
        format="json",
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["kind"], body["decision"]) == ("text", "review")
    # The insult returned: Davidson's head reads that insult as hate speech as well.
    assert body["reason"] in ("harassment_for_review", "hate_for_review")
    assert body["metadata"] == {"post": 7}
    assert {"text_exact", "text_minhash"} <= set(body["hashes"])
    conforms(api, answer, "/api/v1/analyses", "post")
    item = MediaItem.objects.get()
    assert item.analyses.get().raw["textmodel"]["context"]["insult"] > 0.5

    alone = api.post(f"{ANALYSES}?wait=5", {"text": "you too", "user_uuid": "u-1"}, format="json")
    assert alone.json()["decision"] == "pass"  # the same words, without the insult


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"text": "", "user_uuid": "u"}, "empty", "text"),
        ({"text": "a\x1bb", "user_uuid": "u"}, "control_characters", "text"),
        ({"text": "x" * 10_001, "user_uuid": "u"}, "too_long", "text"),
        ({"text": "hi", "user_uuid": "u", "thread_context": "no"}, None, "thread_context"),
        ({"text": "hi", "user_uuid": "u", "thread_context": [""]}, "empty", "text"),
        ({"text": 5, "thread_context": [], "user_uuid": "u"}, None, None),
    ],
)
def test_bad_text_is_a_400_in_the_error_shape_and_nothing_is_kept(api, body, code, field):
    answer = api.post(ANALYSES, body, format="json")
    if code is None and field is None:  # DRF reads the number 5 as the text "5": taken
        assert answer.status_code in (200, 202)
        return
    assert answer.status_code == 400, answer.content
    error = answer.json()
    assert set(error) >= {"code", "detail"}
    if code:
        assert error["code"] == code
    assert field in error.get("fields", {}), error
    assert not MediaItem.objects.exists()
    assert not Submission.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_old_text_endpoint_answers_in_the_old_shape(api):
    answer = api.post(
        OLD,
        {"text": "I am going to stab you tonight, watch your back", "user_uuid": "u-2"},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    assert answer["Deprecation"] == "true"
    body = answer.json()
    assert body["decision"] == "flagged"
    assert body["reason"] == "violence_flagged"
    assert body["review_details"]["scores"]["violence"] >= 0.85
    assert set(body) >= {"request_id", "decision", "reason", "review_details", "author_status"}
    conforms(api, answer, OLD, "post")

    missing = api.post(OLD, {"user_uuid": "u-2"}, format="json")
    assert missing.status_code == 400
    assert "text" in missing.json()["fields"]


@pytest.mark.django_db
def test_a_key_is_required():
    anonymous = APIClient()
    for path in (OLD, ANALYSES):
        answer = anonymous.post(path, {"text": "hello", "user_uuid": "u"}, format="json")
        assert answer.status_code == 401
        assert answer.json()["code"]
    assert not MediaItem.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_batch_takes_text_items_beside_url_items(api, image_server, loopback_allowed):
    items = [
        {"text": "have a lovely day", "user_uuid": "u"},
        {"url": f"{image_server}/coffee.jpg", "user_uuid": "u"},
        {"text": "", "user_uuid": "u"},  # refused alone, naming the text
        {"text": "have a lovely day", "user_uuid": "u"},  # the same text: analysed once
        {
            "text": "you too",
            "thread_context": [{"text": "shut up you stupid worthless idiot", "author": "b"}],
            "user_uuid": "u",
        },
    ]
    answer = api.post(f"{ANALYSES}/batch?wait=10", {"items": items}, format="json")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    conforms(api, answer, "/api/v1/analyses/batch", "post")
    results = body["results"]
    assert (body["accepted"], body["refused"]) == (4, 1)
    assert results[2]["status"] == 400 and results[2]["error"]["code"] == "empty"
    assert "text" in results[2]["error"]["fields"]
    assert results[3]["same_as"] == 0
    assert results[3]["analysis"]["id"] == results[0]["analysis"]["id"]
    kinds = sorted(MediaItem.objects.values_list("kind", flat=True))
    assert kinds == ["image", "text", "text"]
    decisions = [results[i]["analysis"]["decision"] for i in (0, 1, 4)]
    assert decisions == ["pass", "pass", "review"]  # "you too" answers an insult
