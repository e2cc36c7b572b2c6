"""Idempotency-Key on POST analyses: a retry answers the first request's analysis, another
body under the same key is a 409, and N concurrent identical posts (real HTTP, threads,
PostgreSQL) make one item and one analysis."""

import threading
from pathlib import Path

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from api import analyses, services
from api.models import Submission
from review.models import Analysis
from uploads.models import MediaItem

ANALYSES = "/api/v1/analyses"


def send(api, data: bytes, key: str | None, user="u", **extra):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.post(
        ANALYSES,
        {"file": SimpleUploadedFile("a.jpg", data), "user_uuid": user, **extra},
        format="multipart",
        **headers,
    )


def test_the_same_key_and_body_answer_the_first_analysis(api, jpeg):
    data = jpeg("coffee")
    first = send(api, data, "k-1")
    again = send(api, data, "k-1")
    assert first.status_code in (200, 202) and again.status_code in (200, 202)
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert MediaItem.objects.count() == Submission.objects.count() == 1


def test_the_same_key_with_another_body_is_a_409(api, jpeg):
    send(api, jpeg("coffee"), "k-1")
    for other in (
        send(api, jpeg("rocket"), "k-1"),
        send(api, jpeg("coffee"), "k-1", user="someone else"),
        send(api, jpeg("coffee"), "k-1", metadata='{"a": 1}'),
        api.post(
            ANALYSES,
            {"url": "http://x.example/a.jpg", "user_uuid": "u"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="k-1",
        ),
    ):
        assert other.status_code == 409, other.content
        assert other.json()["code"] == "idempotency_conflict"
    assert MediaItem.objects.count() == 1


def test_keys_are_per_client_and_a_refused_request_does_not_use_its_key(api, jpeg):
    other = services.create_client("other", scopes=["analyse"])
    theirs = APIClient()
    theirs.credentials(HTTP_X_API_KEY=services.issue_key(other)[1])
    refused = send(api, b"not an image at all", "k-1")
    assert refused.status_code == 400
    mine = send(api, jpeg("coffee"), "k-1")
    assert mine.status_code in (200, 202) and "Idempotent-Replayed" not in mine
    assert send(theirs, jpeg("coffee"), "k-1").json()["id"] != mine.json()["id"]


def test_a_key_over_255_characters_is_a_400(api, jpeg):
    answer = send(api, jpeg("coffee"), "k" * 256)
    assert answer.status_code == 400 and "Idempotency-Key" in answer.json()["fields"]


def test_the_constraint_catches_a_race_the_lock_did_not_see(api, jpeg, monkeypatch):
    """Where there is no row lock (SQLite), two requests can both find the key free; the
    unique constraint refuses the second insert, whose file is removed, and it answers the
    first's analysis."""
    data = jpeg("coffee")
    first = send(api, data, "k-1").json()["id"]
    real = analyses._replay
    calls = []

    def blind(client, key, digest):  # the two checks before the insert see nothing
        calls.append(key)
        return None if len(calls) <= 2 else real(client, key, digest)

    monkeypatch.setattr(analyses, "_replay", blind)
    again = send(api, data, "k-1")
    assert again.status_code in (200, 202), again.content
    assert again.json()["id"] == first and again["Idempotent-Replayed"] == "true"
    assert MediaItem.objects.count() == 1
    stored = [
        p for p in Path(MediaItem.objects.get().file.storage.location).rglob("*") if p.is_file()
    ]
    assert len(stored) == 1  # the loser's file went with its row


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_posts_make_one_analysis(live_server, api_key, jpeg):
    data = jpeg("coffee")
    n = 8
    barrier = threading.Barrier(n)
    answers = [None] * n

    def post(i):
        barrier.wait()
        answers[i] = requests.post(
            f"{live_server.url}{ANALYSES}?wait=5",
            files={"file": ("a.jpg", data, "image/jpeg")},
            data={"user_uuid": "u"},
            headers={"Authorization": f"Api-Key {api_key}", "Idempotency-Key": "same"},
            timeout=60,
        )

    threads = [threading.Thread(target=post, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a is not None and a.status_code in (200, 202) for a in answers), [
        (a.status_code, a.text[:200]) for a in answers if a is not None
    ]
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == n - 1
    assert Submission.objects.count() == MediaItem.objects.count() == 1
    assert Analysis.objects.count() == 1
    item = MediaItem.objects.get()
    files = [p for p in Path(item.file.storage.location).rglob("*") if p.is_file()]
    # The original (and its public copy): no file of a request that lost the race is left.
    assert all(item.uuid.hex in p.name for p in files)
    assert [p.name for p in files if not p.parent.parent.name.startswith("public")] == [
        Path(item.file.name).name
    ]
