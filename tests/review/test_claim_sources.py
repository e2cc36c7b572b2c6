"""Each claim knows which credential made it, and each refusal says what really happened.

Logging out of one browser releases what that browser claimed, not what the same moderator
holds through an API token or another browser; a decision on an item no longer held is told
whether you released it, another moderator holds it, or your claim expired."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from review import claims, decisions
from review.models import QueueEntry
from tests.review.review_factories import review_item

JSON = {"HTTP_ACCEPT": "application/json"}
CLAIM_API = "/api/v1/review/claim"


def decision_api(item) -> str:
    return f"/api/v1/review/items/{item.uuid}/decision"


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def claim_in_browser(client, count=1) -> set[str]:
    response = client.post(reverse("review:claim"), {"count": count}, **JSON)
    assert response.status_code == 200
    return set(response.json()["items"])


def claim_with_token(client, count=1) -> set[str]:
    response = client.post(CLAIM_API, {"count": count}, format="json")
    assert response.status_code == 200
    return {i["id"] for i in response.json()["items"]}


def held(moderator) -> set[str]:
    uuids = QueueEntry.objects.filter(claimed_by=moderator).values_list("item__uuid", flat=True)
    return {str(u) for u in uuids}


def test_logging_out_of_one_browser_leaves_the_tokens_and_the_other_browsers_claims(moderator):
    for _ in range(6):
        review_item()
    first, second, tool = browser(moderator), browser(moderator), token_client(moderator)
    by_first = claim_in_browser(first, 2)
    by_second = claim_in_browser(second, 2)
    by_token = claim_with_token(tool, 1)
    assert held(moderator) == by_first | by_second | by_token

    first.post(reverse("logout"))
    assert held(moderator) == by_second | by_token
    sources = set(QueueEntry.objects.filter(claimed_by=moderator).values_list("claim_source"))
    assert len(sources) == 2 and all(s[0].startswith(("session:", "token:")) for s in sources)

    # The token's next decision goes through: its claim did not "run out".
    (mine,) = by_token
    response = tool.post(
        f"/api/v1/review/items/{mine}/decision", {"decision": "approve"}, format="json"
    )
    assert response.status_code == 200, response.json()
    # The other browser still decides its own.
    some = sorted(by_second)[0]
    decide = reverse("review:decide_one", args=[some])
    response = second.post(decide, {"decision": "approve"}, **JSON)
    assert response.status_code == 200

    second.post(reverse("logout"))
    assert held(moderator) == set()


def test_claim_records_name_neither_the_session_key_nor_the_token(moderator):
    review_item()
    review_item()
    page, tool = browser(moderator), token_client(moderator)
    claim_in_browser(page)
    claim_with_token(tool)
    key = page.session.session_key
    token = Token.objects.get(user=moderator).key
    for (source,) in QueueEntry.objects.values_list("claim_source"):
        assert source and key not in source and token not in source


def item_of(uuid):
    return QueueEntry.objects.select_related("item").get(item__uuid=uuid).item


def refusal(client, item) -> str:
    response = client.post(
        reverse("review:decide_one", args=[item.uuid]), {"decision": "approve"}, **JSON
    )
    assert response.status_code == 409
    return response.json()["detail"]


@pytest.fixture
def page(moderator):
    return browser(moderator)


def test_the_409_says_you_released_it(page, moderator):
    review_item()
    item = item_of(next(iter(claim_in_browser(page))))
    page.post(reverse("review:release"), **JSON)
    assert refusal(page, item).startswith("You released it")


def test_the_409_says_you_released_it_at_log_out(moderator):
    review_item()
    page, tool = browser(moderator), token_client(moderator)
    item = item_of(next(iter(claim_in_browser(page))))
    page.post(reverse("logout"))
    response = tool.post(decision_api(item), {"decision": "approve"}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"].startswith("You released it when you logged out")


def test_the_409_says_your_claim_expired(page, moderator):
    review_item()
    item = item_of(next(iter(claim_in_browser(page))))
    QueueEntry.objects.filter(item=item).update(
        lease_expires_at=timezone.now() - timedelta(seconds=5)
    )
    assert claims.release_expired() == 1
    detail = refusal(page, item)
    assert detail.startswith("Your claim expired") and "fetch it again" in detail


def test_the_409_says_another_moderator_holds_it_and_how_yours_ended(page, moderator, policy_admin):
    review_item()
    item = item_of(next(iter(claim_in_browser(page))))
    QueueEntry.objects.filter(item=item).update(
        lease_expires_at=timezone.now() - timedelta(seconds=5)
    )
    assert [e.item_id for e in claims.claim_items(policy_admin, 1)] == [item.pk]
    detail = refusal(page, item)
    assert detail.startswith("Another moderator holds this item now: your claim expired")


def test_the_409_says_another_moderator_holds_it_when_it_was_never_yours(
    page, moderator, policy_admin
):
    item = review_item()
    claims.claim_items(policy_admin, 1)
    assert refusal(page, item) == "Another moderator holds this item now."


def test_the_409_says_an_admin_released_it(page, moderator):
    review_item()
    item = item_of(next(iter(claim_in_browser(page))))
    claims.release_entries(QueueEntry.objects.filter(item=item).values_list("pk", flat=True))
    assert refusal(page, item).startswith("An admin released your claim")


def test_the_409_for_an_item_never_fetched_says_so(page, moderator):
    item = review_item()
    assert refusal(page, item) == (
        "You do not hold this item: it is waiting in the queue; fetch it first."
    )


def test_after_another_moderator_took_and_released_it_you_are_not_told_you_released_it(
    page, moderator, policy_admin
):
    """Expired, taken by another, released by them: the entry now tells of their release, so
    this moderator is not told "you released it"."""
    review_item()
    item = item_of(next(iter(claim_in_browser(page))))
    QueueEntry.objects.filter(item=item).update(
        lease_expires_at=timezone.now() - timedelta(seconds=5)
    )
    claims.claim_items(policy_admin, 1)
    claims.release_claims(policy_admin)
    with pytest.raises(claims.ClaimConflict) as refused:
        decisions.record_decision(moderator, item, "approve")
    assert "You released" not in str(refused.value)
    assert str(refused.value).startswith("You do not hold this item")


def test_the_release_button_of_one_browser_leaves_the_other_browsers_and_the_tokens_claims(
    moderator,
):
    for _ in range(6):
        review_item()
    first, second, tool = browser(moderator), browser(moderator), token_client(moderator)
    by_first = claim_in_browser(first, 2)
    by_second = claim_in_browser(second, 2)
    by_token = claim_with_token(tool, 1)

    response = first.post(reverse("review:release"), **JSON)
    assert response.json() == {"released": 2}
    assert held(moderator) == by_second | by_token
    released = QueueEntry.objects.filter(item__uuid__in=by_first)
    assert {e.release_cause for e in released} == {QueueEntry.ReleaseCause.RELEASED}

    # The API's release is the token's own too.
    response = tool.post("/api/v1/review/release", {}, format="json")
    assert response.status_code == 200 and response.json() == {"released": 1}
    assert held(moderator) == by_second

    # Naming an item releases it whichever credential claimed it: the moderator chose it.
    named = sorted(by_second)[0]
    response = first.post(reverse("review:release"), {"items": [named]}, **JSON)
    assert response.json() == {"released": 1}
    assert held(moderator) == by_second - {named}
