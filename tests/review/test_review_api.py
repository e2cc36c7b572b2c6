"""The review API for tools: claim, decide, release; session or token; moderators only."""

import uuid

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from review.models import Decision, QueueEntry
from tests.review.review_factories import review_item
from uploads.models import MediaItem

CLAIM = "/api/v1/review/claim"
RELEASE = "/api/v1/review/release"
STATS = "/api/v1/review/stats"
HEARTBEAT = "/api/v1/review/heartbeat"


def decision_url(item) -> str:
    return f"/api/v1/review/items/{item.uuid}/decision"


@pytest.fixture
def api(moderator):
    client = APIClient()
    client.force_authenticate(moderator)
    return client


def test_a_moderator_claims_decides_and_releases_through_the_api(api, moderator, uploader):
    severe = review_item(uploader, explicit=0.55)
    other = review_item(uploader, explicit=0.35)
    third = review_item(uploader, explicit=0.32)
    response = api.post(CLAIM, {"count": 2}, format="json")
    assert response.status_code == 200
    items = response.json()["items"]
    assert [i["id"] for i in items] == [str(severe.uuid), str(other.uuid)]
    first = items[0]
    assert first["scores"] == {"explicit": 0.55, "suggestive": 0.1}
    assert first["author"]["name"] == "uploader" and first["author"]["strikes"] == 0
    assert first["original_url"] == f"/uploads/items/{severe.uuid}/original/"
    assert first["lease_expires_at"] and first["source"] == "web"

    response = api.post(
        decision_url(severe), {"decision": "reject", "reason": "Explicit nudity"}, format="json"
    )
    assert response.status_code == 200
    (record,) = response.json()["decisions"]
    assert record["item"] == str(severe.uuid) and record["moderator"] == "moderator"
    assert record["decision"] == "reject" and record["seconds_to_decide"] >= 0
    assert MediaItem.objects.get(pk=severe.pk).status == "rejected"

    assert api.post(RELEASE, {}, format="json").json() == {"released": 1}
    assert QueueEntry.objects.filter(claimed_by__isnull=True).count() == 2
    stats = api.get(STATS).json()
    assert stats["pending"] == 2 and stats["claimed_by_me"] == 0
    assert {third.pk, other.pk} == set(QueueEntry.objects.values_list("item", flat=True))


def test_the_default_count_comes_from_the_policy(api, policy):
    for _ in range(policy.claim_batch_default + 2):
        review_item()
    response = api.post(CLAIM, {}, format="json")
    assert response.status_code == 200
    assert len(response.json()["items"]) == policy.claim_batch_default


@pytest.mark.parametrize("count", [0, -3, 51, "many", 2.5, True, [2], {"n": 1}])
def test_bad_counts_are_400_with_a_message(api, count):
    review_item()
    response = api.post(CLAIM, {"count": count}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()
    assert not QueueEntry.objects.filter(claimed_by__isnull=False).exists()


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"decision": "maybe"}, "approve"),
        ({}, "required"),
        ({"decision": "reject"}, "needs a reason"),
        ({"decision": "reject", "reason": "   "}, "needs a reason"),
        ({"decision": "approve", "reason": "x" * 501}, "500"),
        ({"decision": ["approve"]}, "approve"),
    ],
)
def test_bad_decisions_are_400_with_a_message(api, moderator, body, fragment):
    item = review_item()
    api.post(CLAIM, {"count": 1}, format="json")
    response = api.post(decision_url(item), body, format="json")
    assert response.status_code == 400
    assert fragment in response.content.decode()
    assert not Decision.objects.exists()


def test_malformed_json_is_a_400_not_a_500(api):
    response = api.generic("POST", CLAIM, "{not json", content_type="application/json")
    assert response.status_code == 400


def test_deciding_an_item_someone_else_holds_is_409(api, policy_admin):
    item = review_item()
    other = APIClient()
    other.force_authenticate(policy_admin)
    other.post(CLAIM, {"count": 1}, format="json")
    response = api.post(decision_url(item), {"decision": "approve"}, format="json")
    assert response.status_code == 409
    assert "Another moderator holds this item" in response.json()["detail"]
    assert MediaItem.objects.get(pk=item.pk).status == "review"


def test_an_unknown_item_is_404(api):
    response = api.post(
        f"/api/v1/review/items/{uuid.uuid4()}/decision", {"decision": "approve"}, format="json"
    )
    assert response.status_code == 404


def test_heartbeat_lists_what_the_moderator_still_holds(api):
    item = review_item()
    api.post(CLAIM, {"count": 1}, format="json")
    (held,) = api.post(HEARTBEAT).json()["items"]
    assert held["id"] == str(item.uuid)


def test_token_authentication_works_and_session_authentication_works(moderator, client):
    item = review_item()
    token = Token.objects.create(user=moderator)
    with_token = APIClient()
    response = with_token.post(
        CLAIM, {"count": 1}, format="json", HTTP_AUTHORIZATION=f"Token {token.key}"
    )
    assert response.status_code == 200 and response.json()["items"][0]["id"] == str(item.uuid)
    client.force_login(moderator)
    response = client.post(
        decision_url(item), {"decision": "approve"}, content_type="application/json"
    )
    assert response.status_code == 200


def test_session_posts_without_a_csrf_token_are_refused(moderator):
    review_item()
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(moderator)
    assert client.post(CLAIM, {"count": 1}, format="json").status_code == 403


@pytest.mark.parametrize("persona", ["uploader", "outsider"])
def test_non_moderators_get_403_from_every_endpoint(request, persona):
    user = request.getfixturevalue(persona)
    item = review_item()
    client = APIClient()
    client.force_authenticate(user)
    for method, url in [
        ("post", CLAIM),
        ("post", RELEASE),
        ("post", HEARTBEAT),
        ("get", STATS),
        ("post", decision_url(item)),
        ("post", f"/api/v1/review/items/{item.uuid}/override"),
    ]:
        response = getattr(client, method)(url, {"decision": "approve"}, format="json")
        assert response.status_code == 403, (url, response.status_code)
    assert not QueueEntry.objects.filter(claimed_by__isnull=False).exists()


def test_anonymous_callers_must_authenticate(db):
    response = APIClient().post(CLAIM, {"count": 1}, format="json")
    assert response.status_code == 401


def test_a_reversal_through_the_api_needs_the_override_permission(api, policy_admin):
    item = review_item()
    api.post(CLAIM, {"count": 1}, format="json")
    api.post(decision_url(item), {"decision": "reject", "reason": "Spam"}, format="json")
    url = f"/api/v1/review/items/{item.uuid}/override"
    assert api.post(url, {"decision": "approve", "reason": "ok"}, format="json").status_code == 403
    admin = APIClient()
    admin.force_authenticate(policy_admin)
    response = admin.post(url, {"decision": "approve", "reason": "Not spam"}, format="json")
    assert response.status_code == 201
    assert response.json()["decision"]["is_override"] is True
    assert Decision.objects.filter(item=item).count() == 2
