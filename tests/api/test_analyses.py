"""POST/GET analyses and the batch: URL intake over real HTTP (a loopback server through the
test allowance), files, the wait, the evidence in the answer, bad input, other clients."""

import threading
import time
import uuid

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections
from django.urls import reverse
from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7
from rest_framework.test import APIClient

from accounts.models import Author
from api import analyses, services
from api.models import Submission
from hashing import services as banks
from review.claims import claim_items
from review.classifiers import Classifier, ClassifierError, registry
from review.decisions import record_decision
from review.models import Analysis, Policy, QueueEntry
from review.policy import add_policy
from tests.api.conftest import key_client
from tests.conftest import encode
from tests.factories import MediaItemFactory
from uploads.models import MediaItem

ANALYSES = "/api/v1/analyses"


@pytest.fixture
def post(api, django_capture_on_commit_callbacks):
    """POST with the analysis run after the commit (the test's transaction holds it back:
    the answer is then 202), as a worker would."""

    def send(body, path=ANALYSES, fmt="json", client=None, **extra):
        with django_capture_on_commit_callbacks(execute=True):
            return (client or api).post(path, body, format=fmt, **extra)

    return send


# -- one item -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_url_is_fetched_analysed_and_answered_within_the_wait(
    api, api_client_row, image_server, loopback_allowed
):
    url = f"{image_server}/coffee.jpg"
    answer = api.post(
        f"{ANALYSES}?wait=5",
        {"url": url, "user_uuid": "u-1", "metadata": {"post": 7}},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["decision"] == "pass" and body["status"] == "passed"
    assert body["user_uuid"] == "u-1" and body["metadata"] == {"post": 7}
    assert body["author_status"] == "ok" and body["source"] == "api"
    assert body["id"] == body["analysis_id"]
    assert body["status_url"] == reverse("api:analysis", args=[body["id"]])
    # The evidence: every hash, the labels, model versions and timings.
    assert {"pdq", "phash", "dhash", "ahash"} <= set(body["hashes"])
    assert len(body["hashes"]["pdq"]) == 64
    assert isinstance(body["labels"], list) and body["bank_matches"] == []
    assert body["model_versions"]["nudenet"].startswith("nudenet ")
    assert body["timings"]["total"] > 0 and body["request_id"]
    item = MediaItem.objects.get(uuid=body["id"])
    assert item.source == MediaItem.Source.API and item.source_url == url
    assert item.uploader == api_client_row.user
    assert item.author.kind == Author.Kind.API
    assert item.author.external_id == f"{api_client_row.pk}:u-1"
    assert Submission.objects.get().item == item


def test_without_wait_202_with_the_status_url_then_the_verdict(
    api, post, image_server, loopback_allowed
):
    answer = post({"url": f"{image_server}/rocket.jpg", "user_uuid": "u-1"})
    assert answer.status_code == 202, answer.content
    body = answer.json()
    assert body["status"] == "processing" and body["decision"] is None
    assert answer["Location"] == body["status_url"]
    later = api.get(body["status_url"])
    assert later.status_code == 200
    assert later.json()["decision"] == "pass" and later.json()["hashes"]


def test_a_file_in_multipart_with_metadata_as_json(api, post, jpeg):
    answer = post(
        {
            "file": SimpleUploadedFile("a.jpg", jpeg("astronaut")),
            "user_uuid": "u-2",
            "metadata": '{"album": "x"}',
        },
        fmt="multipart",
    )
    assert answer.status_code == 202, answer.content
    item = MediaItem.objects.get()
    assert item.original_name == "a.jpg" and item.source == MediaItem.Source.API
    body = api.get(answer.json()["status_url"]).json()
    assert body["metadata"] == {"album": "x"} and body["decision"] == "pass"


def test_a_bank_match_answers_the_bank_the_content_the_distances_and_the_hashes(
    api, post, admin_user, photo, image_server, loopback_allowed
):
    bank = banks.create_bank("known bad", actor=admin_user)
    banks.add_images(
        bank, [("chelsea.jpg", encode(photo("chelsea"), quality=95))], external_id="ref-9"
    )
    answer = post({"url": f"{image_server}/chelsea.jpg", "user_uuid": "u-3"})
    body = api.get(answer.json()["status_url"]).json()
    assert body["decision"] == "flagged" and body["reason"] == "bank_match"
    assert body["bank_verdict"]["blocked"] and body["bank_verdict"]["bank"] == "known bad"
    counted = [m for m in body["bank_matches"] if m["counted"]]
    assert counted and {m["bank"] for m in counted} == {"known bad"}
    assert {m["external_id"] for m in counted} == {"ref-9"}
    assert all(isinstance(m["distance"], int) and m["content_id"] for m in counted)
    assert body["hashes"]["pdq"] and body["author_status"] == "warned"  # one strike
    assert Author.objects.get(external_id__endswith=":u-3").strikes == 1


def test_a_banned_author_is_refused_with_a_clear_code_and_nothing_is_fetched(
    api, api_client_row, image_server, loopback_allowed
):
    author = services.author_for(api_client_row, "bad")
    author.status = Author.Status.BANNED
    author.save()
    answer = api.post(
        ANALYSES, {"url": f"{image_server}/coffee.jpg", "user_uuid": "bad"}, format="json"
    )
    assert answer.status_code == 403
    assert answer.json() == {
        "code": "author_banned",
        "detail": answer.json()["detail"],
        "author_status": "banned",
    }
    assert MediaItem.objects.count() == 0
    # The same user id of another client is another person.
    _, other = key_client("other")
    fine = other.post(
        ANALYSES, {"url": f"{image_server}/coffee.jpg", "user_uuid": "bad"}, format="json"
    )
    assert fine.status_code in (200, 202)


class Broken(Classifier):
    name = "broken"

    def classify(self, image):
        raise ClassifierError("model exploded at /secret/path")


@pytest.fixture
def broken_provider(monkeypatch, policy):
    """Every analysis fails its classifier: the item goes to review."""
    monkeypatch.setitem(registry.PROVIDERS, "broken", f"{__name__}.Broken")
    registry._instances.pop("broken", None)
    policy.providers = "broken"
    policy.save()


def test_a_moderators_later_decision_shows_in_the_analysis(
    api, post, jpeg, moderator, broken_provider
):
    answer = post(
        {"file": SimpleUploadedFile("x.jpg", jpeg("coffee")), "user_uuid": "u"}, fmt="multipart"
    )
    url = answer.json()["status_url"]
    held = api.get(url).json()
    assert held["decision"] == "review" and held["classifier_errors"] == ["broken"]
    assert held["review"] is None and "secret" not in str(held)
    item = MediaItem.objects.get()
    assert QueueEntry.objects.filter(item=item).exists()  # in the review queue like others
    assert [e.item_id for e in claim_items(moderator, 5)] == [item.pk]
    record_decision(moderator, item, "reject", "Spam")
    decided = api.get(url).json()
    assert decided["decision"] == "rejected" and decided["status"] == "rejected"
    assert decided["review"]["decision"] == "reject" and decided["review"]["reason"] == "Spam"
    assert decided["review"]["reversal"] is False
    assert "Spam" in decided["reason_text"]
    assert "moderator" not in decided["review"]  # who decided is not the client's business


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_uuid": "u"}, "url"),
        ({"url": "not a url", "user_uuid": "u"}, "url"),
        ({"url": "http://example.org/a.jpg"}, "user_uuid"),
        ({"url": "http://example.org/a.jpg", "user_uuid": ""}, "user_uuid"),
        ({"url": "http://example.org/a.jpg", "user_uuid": "u", "metadata": [1]}, "metadata"),
        ({"url": "http://example.org/a.jpg", "user_uuid": "u", "metadata": "x"}, "metadata"),
    ],
)
def test_bad_fields_answer_400_with_the_fields_message(api, body, field):
    answer = api.post(ANALYSES, body, format="json")
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["fields"]
    assert MediaItem.objects.count() == 0


def test_bad_json_is_a_400_in_the_one_shape(api):
    answer = api.post(ANALYSES, b"{not json", content_type="application/json")
    assert answer.status_code == 400
    assert answer.json()["code"] == "parse_error"


def test_a_json_list_is_not_an_analysis(api):
    answer = api.post(ANALYSES, [1, 2], format="json")
    assert answer.status_code == 400 and answer.json()["code"] == "invalid"


@pytest.mark.parametrize("path", ["/page.html", "/to-metadata", "/missing.jpg"])
def test_urls_refused_by_content_or_address_say_why_under_url(
    api, image_server, loopback_allowed, path
):
    answer = api.post(ANALYSES, {"url": f"{image_server}{path}", "user_uuid": "u"}, format="json")
    assert answer.status_code == 400, answer.content
    body = answer.json()
    assert body["code"] in {"unsupported_format", "refused_address", "http_error"}
    assert body["fields"]["url"] == [body["detail"]]
    assert MediaItem.objects.count() == 0


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/x.jpg", "http://169.254.169.254/", "file:///etc/passwd"]
)
def test_internal_addresses_are_refused_without_the_test_allowance(api, url):
    answer = api.post(ANALYSES, {"url": url, "user_uuid": "u"}, format="json")
    assert answer.status_code == 400
    assert answer.json()["code"] in {"refused_address", "scheme", "bad_url", "invalid"}
    assert "url" in answer.json()["fields"]


def test_a_file_that_is_not_an_image_and_one_too_large(api, settings, jpeg):
    junk = api.post(
        ANALYSES,
        {"file": SimpleUploadedFile("a.jpg", b"MZ\x90\x00 not an image" * 10), "user_uuid": "u"},
        format="multipart",
    )
    assert junk.status_code == 400 and junk.json()["code"] == "unsupported_format"
    assert "file" in junk.json()["fields"]
    settings.UPLOAD_MAX_BYTES = 1000
    big = api.post(
        ANALYSES,
        {"file": SimpleUploadedFile("a.jpg", jpeg("coffee")), "user_uuid": "u"},
        format="multipart",
    )
    assert big.status_code == 413 and big.json()["code"] == "too_large"


@pytest.mark.parametrize("wait", ["-1", "soon", "nan", "inf"])
def test_a_bad_wait_is_a_400(api, wait):
    answer = api.post(
        f"{ANALYSES}?wait={wait}",
        {"url": "http://x.example/a.jpg", "user_uuid": "u"},
        format="json",
    )
    assert answer.status_code == 400 and "wait" in answer.json()["fields"]


def test_keys_and_scopes(db, api_client_row):
    assert APIClient().post(ANALYSES, {}, format="json").status_code == 401
    _, lookup_only = key_client("lookup-only", scopes=("lookup",))
    answer = lookup_only.post(ANALYSES, {}, format="json")
    assert answer.status_code == 403 and "analyse" in answer.json()["detail"]
    assert lookup_only.get(ANALYSES).status_code == 403


# -- reading ------------------------------------------------------------------------------------


def test_another_clients_analysis_is_a_404_like_one_that_does_not_exist(api, post, jpeg):
    _, other = key_client("other")
    mine = post(
        {"file": SimpleUploadedFile("a.jpg", jpeg("coffee")), "user_uuid": "u"}, fmt="multipart"
    )
    url = mine.json()["status_url"]
    theirs = other.get(url)
    nothing = other.get(reverse("api:analysis", args=[uuid.uuid4()]))
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.json() == nothing.json()
    assert other.get(ANALYSES).json()["results"] == []


def test_near_duplicates_are_the_clients_own_items_only(api, api_client_row, post, jpeg):
    # Another client posts the picture first, then ours twice.
    _, other = key_client("other")
    data = jpeg("coffee")
    for client in (other, api, api):
        post(
            {"file": SimpleUploadedFile("a.jpg", data), "user_uuid": "u"},
            fmt="multipart",
            client=client,
        )
    mine = Submission.objects.filter(client=api_client_row).order_by("pk")
    first, second = [s.item for s in mine]
    body = api.get(reverse("api:analysis", args=[second.uuid])).json()
    ids = {d["id"] for d in body["near_duplicates"]}
    assert ids == {str(first.uuid)}
    assert body["near_duplicates"][0]["exact"] is True
    theirs = Submission.objects.exclude(client=api_client_row).get().item
    assert str(theirs.uuid) not in str(body)


def test_the_log_is_filtered_and_paged(api, post, jpeg, photo):
    for i, name in enumerate(["coffee", "rocket", "astronaut"]):
        post(
            {"file": SimpleUploadedFile(f"{i}.jpg", jpeg(name)), "user_uuid": f"u{i % 2}"},
            fmt="multipart",
        )
    everything = api.get(ANALYSES).json()
    assert len(everything["results"]) == 3 and everything["next"] is None
    assert [r["name"] for r in everything["results"]] == ["2.jpg", "1.jpg", "0.jpg"]
    assert all(r["author_status"] == "ok" for r in everything["results"])
    assert len(api.get(ANALYSES, {"user_uuid": "u0"}).json()["results"]) == 2
    assert len(api.get(ANALYSES, {"decision": "pass"}).json()["results"]) == 3
    assert api.get(ANALYSES, {"decision": "flagged"}).json()["results"] == []
    assert api.get(ANALYSES, {"reason": "bank_match"}).json()["results"] == []
    assert api.get(ANALYSES, {"created_after": "2100-01-01T00:00:00Z"}).json()["results"] == []
    first = api.get(ANALYSES, {"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    rest = api.get(first["next"]).json()
    assert [r["name"] for r in rest["results"]] == ["0.jpg"]
    bad = api.get(ANALYSES, {"decision": "maybe", "created_after": "yesterday"})
    assert bad.status_code == 400 and {"decision", "created_after"} <= set(bad.json()["fields"])


# -- batches ------------------------------------------------------------------------------------


def test_a_batch_answers_in_input_order_each_on_its_own_and_copies_once(
    api, post, image_server, loopback_allowed
):
    items = [
        {"url": f"{image_server}/coffee.jpg", "user_uuid": "u"},
        {"url": f"{image_server}/page.html", "user_uuid": "u"},
        {"url": f"{image_server}/rocket.jpg", "user_uuid": "u"},
        {"url": f"{image_server}/coffee-again.jpg", "user_uuid": "u"},  # the same bytes
        {"url": f"{image_server}/coffee.jpg", "user_uuid": "someone else"},
        {"user_uuid": "u"},
        "not an object",
    ]
    answer = post({"items": items, "max_concurrent": 3}, path=f"{ANALYSES}/batch")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["total"] == 7 and body["accepted"] == 4 and body["refused"] == 3
    assert body["max_concurrent"] == 3
    results = body["results"]
    assert [r["index"] for r in results] == list(range(7))
    assert results[1]["error"]["code"] == "unsupported_format" and results[1]["status"] == 400
    assert "url" in results[1]["error"]["fields"]
    assert results[5]["error"]["fields"]["url"] and results[6]["status"] == 400
    assert results[3]["same_as"] == 0
    assert results[3]["analysis"]["id"] == results[0]["analysis"]["id"]
    assert results[4]["same_as"] is None  # another user: their own item
    assert results[4]["analysis"]["id"] != results[0]["analysis"]["id"]
    # Analysed once: three items, three analyses, for five accepted positions.
    assert MediaItem.objects.count() == 3 and Analysis.objects.count() == 3
    listed = api.get(ANALYSES, {"batch": body["batch_id"]}).json()["results"]
    assert {r["position"] for r in listed} == {0, 2, 4}
    assert all(r["decision"] == "pass" for r in listed)


def test_a_batch_over_the_limit_and_a_bad_max_concurrent_are_400(api, policy):
    policy.batch_max_items = 3  # the site's policy; a client's own policy has its own cap
    policy.save()
    items = [{"url": f"http://x.example/{i}.jpg", "user_uuid": "u"} for i in range(4)]
    over = api.post(f"{ANALYSES}/batch", {"items": items}, format="json")
    assert over.status_code == 400 and "At most 3" in over.json()["fields"]["items"][0]
    row, own = key_client("own policy")
    row.policy = add_policy(Policy(batch_max_items=2))
    row.save()
    over = own.post(f"{ANALYSES}/batch", {"items": items[:3]}, format="json")
    assert over.status_code == 400 and "At most 2" in over.json()["fields"]["items"][0]
    for bad in (0, 11, "x"):
        answer = api.post(
            f"{ANALYSES}/batch", {"items": items[:1], "max_concurrent": bad}, format="json"
        )
        assert answer.status_code == 400 and "max_concurrent" in answer.json()["fields"]
    empty = api.post(f"{ANALYSES}/batch", {"items": []}, format="json")
    assert empty.status_code == 400 and "items" in empty.json()["fields"]
    assert MediaItem.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batchs_fetch_threads_give_their_pooled_connections_back(
    api, image_server, loopback_allowed
):
    """Each process pools its PostgreSQL connections (settings: DATABASE_POOL): a thread
    that kept one would take it from every later request, and as many as the pool holds
    stop the process."""
    names = ("coffee.jpg", "rocket.jpg", "astronaut.jpg")
    items = [{"url": f"{image_server}/{name}", "user_uuid": "u"} for name in names]
    for _ in range(5):  # 15 fetch threads, more than the pool has connections
        answer = api.post(f"{ANALYSES}/batch", {"items": items, "max_concurrent": 3}, format="json")
        assert answer.status_code == 200, answer.content
    stats = connections["default"].pool.get_stats()
    assert stats["pool_size"] - stats.get("pool_available", 0) <= 1  # this thread's, at most


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_waits_for_a_verdict_hold_no_pooled_connection_while_they_sleep():
    """``?wait=`` polls until the verdict (a batch up to 30 s); as many waits as the pool
    has connections still leave one for the process's next request (it waited for a wait
    to end when each kept its connection between polls)."""
    item = MediaItemFactory(status=MediaItem.Status.PROCESSING)
    connection.close()  # this thread's, back to the pool
    size = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
    ended = []

    def waiting():
        analyses.wait_for([item.pk], 4.0)
        ended.append(time.monotonic())
        connection.close()  # as at the end of its request

    waits = [threading.Thread(target=waiting) for _ in range(size)]
    for thread in waits:
        thread.start()
    time.sleep(0.3)  # every wait has polled and sleeps between polls
    took = []

    def next_request():
        started = time.monotonic()
        assert MediaItem.objects.filter(pk=item.pk).exists()
        took.append(time.monotonic() - started)
        connection.close()

    probe = threading.Thread(target=next_request)
    probe.start()
    probe.join(timeout=20)
    assert took and took[0] < 1.0, took
    assert not ended  # the waits are still waiting
    MediaItem.objects.filter(pk=item.pk).update(status=MediaItem.Status.PASSED)
    for thread in waits:
        thread.join(timeout=20)
    assert len(ended) == size  # and each saw the verdict
    connection.close()


def test_a_batch_refuses_a_banned_users_items_and_takes_the_rest(
    api, api_client_row, post, image_server, loopback_allowed
):
    author = services.author_for(api_client_row, "bad")
    author.status = Author.Status.BANNED
    author.save()
    body = post(
        {
            "items": [
                {"url": f"{image_server}/coffee.jpg", "user_uuid": "bad"},
                {"url": f"{image_server}/rocket.jpg", "user_uuid": "good"},
            ]
        },
        path=f"{ANALYSES}/batch",
    ).json()
    first, second = body["results"]
    assert first["status"] == 403 and first["error"]["code"] == "author_banned"
    assert second["status"] in (200, 202) and second["analysis"]["author_status"] == "ok"


def test_admins_export_the_log_as_csv(api, post, jpeg, admin_client):
    post(
        {"file": SimpleUploadedFile("a.jpg", jpeg("coffee")), "user_uuid": "=cmd()"},
        fmt="multipart",
    )
    answer = admin_client.post(
        reverse("admin:api_submission_changelist"),
        {"action": "export_log", "_selected_action": [Submission.objects.get().pk]},
    )
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    lines = b"".join(answer.streaming_content).decode().splitlines()
    assert lines[0].startswith("created_at,analysis_id,client,user_uuid")
    assert ",partner,'=cmd(),ok,pass," in lines[1]
    assert admin_client.get(reverse("admin:api_submission_changelist")).status_code == 200


# -- the answers are what the schema says ------------------------------------------------------


def _nullable(node):
    """OpenAPI 3.0's ``nullable`` as JSON Schema (what jsonschema validates)."""
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable(v) for k, v in node.items()}
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


def conforms(client, answer, path: str, method: str = "get"):
    """Validate an answer's body against the OpenAPI schema of that operation and status."""
    document = client.get(
        reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json"
    ).json()
    document = _nullable(document)
    responses = document["paths"][path][method]["responses"]
    schema = responses[str(answer.status_code)]["content"]["application/json"]["schema"]
    registry = Registry().with_resource("urn:api", DRAFT7.create_resource(document))
    schema = {"$ref": "urn:api" + schema["$ref"]}
    errors = list(Draft7Validator(schema, registry=registry).iter_errors(answer.json()))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


def test_every_answer_matches_the_schema(
    api, post, admin_user, photo, jpeg, image_server, loopback_allowed, moderator, client
):
    client.force_login(moderator)
    bank = banks.create_bank("known bad", actor=admin_user)
    banks.add_images(bank, [("chelsea.jpg", encode(photo("chelsea"), quality=95))])
    processing = post({"url": f"{image_server}/chelsea.jpg", "user_uuid": "u"})
    conforms(client, processing, "/api/v1/analyses", "post")
    for name in ("coffee", "coffee"):  # the second is an exact copy of the first
        post({"file": SimpleUploadedFile("a.jpg", jpeg(name)), "user_uuid": "u"}, fmt="multipart")
    for submission in Submission.objects.all():
        answer = api.get(reverse("api:analysis", args=[submission.item.uuid]))
        conforms(client, answer, "/api/v1/analyses/{analysis_id}")
    conforms(client, api.get(ANALYSES), "/api/v1/analyses")
    batch = post(
        {"items": [{"url": f"{image_server}/rocket.jpg", "user_uuid": "u"}, {"url": "x"}]},
        path=f"{ANALYSES}/batch",
    )
    conforms(client, batch, "/api/v1/analyses/batch", "post")
    with_copies = post(
        {"url": f"{image_server}/coffee-again.jpg", "user_uuid": "u"}, path="/api/v1/analyse/image"
    )
    conforms(client, with_copies, "/api/v1/analyse/image", "post")
    old_batch = post(
        {"images": [f"{image_server}/rocket.jpg", "nope"], "user_uuid": "u"},
        path="/api/v1/analyse/images/batch",
    )
    conforms(client, old_batch, "/api/v1/analyse/images/batch", "post")
