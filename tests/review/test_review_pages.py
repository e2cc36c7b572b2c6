"""The review page and its form endpoints (the script uses the same ones with JSON)."""

import uuid

import pytest
from django.urls import reverse

from accounts.services import add_strike, author_for_user
from review import claims, decisions
from review.models import Decision, QueueEntry
from tests.review.review_factories import review_item
from uploads.models import MediaItem

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def mod_client(client, moderator):
    client.force_login(moderator)
    return client


def test_the_page_lists_the_moderators_claims_with_everything_needed_to_decide(
    mod_client, moderator, uploader
):
    author = author_for_user(uploader)
    add_strike(author, source="policy", reason="Earlier automatic flag", strikes_to_ban=3)
    earlier = review_item(uploader, explicit=0.2)
    QueueEntry.objects.filter(item=earlier).delete()
    MediaItem.objects.filter(pk=earlier.pk).update(status=MediaItem.Status.REJECTED)
    earlier.refresh_from_db()
    item = review_item(uploader, explicit=0.45, duplicates=[earlier])
    mod_client.post(reverse("review:claim"), {"count": 5})
    response = mod_client.get(reverse("review:queue"))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-id="{item.uuid}"' in html
    assert reverse("uploads:original", args=[item.uuid]) in html
    assert reverse("uploads:original", args=[earlier.uuid]) in html  # the match, side by side
    assert "distance 3 · rejected" in html
    assert "explicit 45%" in html and "Possibly explicit" in html
    assert "uploader" in html and "1 strike" in html and "Earlier automatic flag" in html
    assert "Explicit nudity" in html  # the policy's reasons in the pick-list
    assert 'class="blur"' in html and "js/review.js" in html
    for key in ("approve", "reject", "next item", "previous item", "select", "reveal", "release"):
        assert key in html.lower()
    assert 'href="/review/"' in html  # the nav link for moderators


def test_the_pages_claim_answers_its_items_in_working_order_in_the_same_reads_for_any_count(
    mod_client, django_assert_max_num_queries
):
    items = [review_item(explicit=score) for score in (0.3, 0.9, 0.5, 0.7, 0.4, 0.8)]
    with django_assert_max_num_queries(12) as two:
        first = mod_client.post(reverse("review:claim"), {"count": 2}, **JSON).json()["items"]
    with django_assert_max_num_queries(len(two.captured_queries)):
        rest = mod_client.post(reverse("review:claim"), {"count": 4}, **JSON).json()["items"]
    by_severity = [str(i.uuid) for i in sorted(items, key=lambda i: -i.scores["explicit"])]
    assert first + rest == by_severity


def test_the_counts_on_the_page_are_pending_claimed_by_others_and_the_oldest_age(
    mod_client, policy_admin
):
    for _ in range(5):
        review_item()
    claims.claim_items(policy_admin, 2)
    html = mod_client.get(reverse("review:queue")).content.decode()
    assert '<span id="pending-count" class="big">3</span>' in html
    assert '<span id="claimed-others" class="big">2</span>' in html
    assert 'id="oldest-age"' in html and 'data-since="20' in html


def test_fetch_claims_the_number_asked_and_fetch_more_adds_to_it(mod_client, moderator):
    for _ in range(6):
        review_item()
    response = mod_client.post(reverse("review:claim"), {"count": 2})
    assert response.status_code == 302
    assert QueueEntry.objects.filter(claimed_by=moderator).count() == 2
    response = mod_client.post(reverse("review:claim"), {"count": 3}, **JSON)
    assert response.status_code == 200 and len(response.json()["items"]) == 3
    assert QueueEntry.objects.filter(claimed_by=moderator).count() == 5


@pytest.mark.parametrize("count", ["0", "51", "abc", "-1", "1.5"])
def test_a_bad_count_is_a_400_with_a_message_on_the_page(mod_client, count):
    review_item()
    response = mod_client.post(reverse("review:claim"), {"count": count})
    assert response.status_code == 400
    assert "whole number" in response.content.decode() or "between 1 and 50" in (
        response.content.decode()
    )
    response = mod_client.post(reverse("review:claim"), {"count": count}, **JSON)
    assert response.status_code == 400 and response.json()["detail"]


def test_one_item_is_decided_with_a_reason_from_the_pick_list_and_free_text(mod_client):
    item = review_item()
    mod_client.post(reverse("review:claim"), {"count": 1})
    response = mod_client.post(
        reverse("review:decide_one", args=[item.uuid]),
        {"decision": "reject", "reason_choice": "Spam", "reason": "same link as yesterday"},
        **JSON,
    )
    assert response.status_code == 200 and response.json()["decided"] == [str(item.uuid)]
    assert Decision.objects.get(item=item).reason == "Spam — same link as yesterday"


def test_a_rejection_without_a_reason_is_a_400_and_nothing_changes(mod_client):
    item = review_item()
    mod_client.post(reverse("review:claim"), {"count": 1})
    url = reverse("review:decide_one", args=[item.uuid])
    response = mod_client.post(url, {"decision": "reject"}, **JSON)
    assert response.status_code == 400 and "needs a reason" in response.json()["detail"]
    response = mod_client.post(url, {"decision": "reject", "reason": "y" * 501})
    assert response.status_code == 400 and "at most 500" in response.content.decode()
    response = mod_client.post(url, {"decision": "explode"}, **JSON)
    assert response.status_code == 400
    assert MediaItem.objects.get(pk=item.pk).status == "review"


def test_several_items_are_decided_at_once_and_conflicts_are_reported(
    mod_client, moderator, policy_admin
):
    a, b = review_item(explicit=0.5), review_item(explicit=0.4)
    foreign = review_item(explicit=0.1)
    mod_client.post(reverse("review:claim"), {"count": 2})
    claims.claim_items(policy_admin, 1)
    response = mod_client.post(
        reverse("review:decide"),
        {"items": [a.uuid, b.uuid, foreign.uuid], "decision": "approve"},
        **JSON,
    )
    body = response.json()
    assert response.status_code == 200
    assert set(body["decided"]) == {str(a.uuid), str(b.uuid)}
    (conflict,) = body["conflicts"]
    assert conflict["id"] == str(foreign.uuid)
    assert "Another moderator holds" in conflict["detail"]
    assert MediaItem.objects.get(pk=foreign.pk).status == "review"


def test_without_javascript_a_decision_redirects_back_with_a_message(mod_client):
    item = review_item()
    mod_client.post(reverse("review:claim"), {"count": 1})
    response = mod_client.post(
        reverse("review:decide_one", args=[item.uuid]), {"decision": "approve"}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("review:queue")
    assert "Approved 1 item(s)." in response.content.decode()


def test_deciding_an_item_that_was_taken_after_the_lease_is_409(mod_client, policy_admin):
    item = review_item()
    response = mod_client.post(
        reverse("review:decide_one", args=[item.uuid]), {"decision": "approve"}, **JSON
    )
    assert response.status_code == 409 and "do not hold" in response.json()["detail"]
    claims.claim_items(policy_admin, 1)
    response = mod_client.post(
        reverse("review:decide_one", args=[item.uuid]), {"decision": "approve"}
    )
    assert response.status_code == 409
    assert "Another moderator holds this item" in response.content.decode()


def test_release_hands_back_everything_undecided(mod_client, moderator):
    for _ in range(3):
        review_item()
    mod_client.post(reverse("review:claim"), {"count": 3})
    response = mod_client.post(reverse("review:release"), **JSON)
    assert response.json() == {"released": 3}
    assert not QueueEntry.objects.filter(claimed_by__isnull=False).exists()


def test_heartbeat_extends_the_lease_and_says_what_is_still_held(mod_client, moderator):
    item = review_item()
    mod_client.post(reverse("review:claim"), {"count": 1})
    body = mod_client.post(reverse("review:heartbeat"), **JSON).json()
    assert body["held"] == [str(item.uuid)] and body["lease_expires_at"]


def test_an_unknown_item_is_404(mod_client):
    response = mod_client.post(
        reverse("review:decide_one", args=[uuid.uuid4()]), {"decision": "approve"}, **JSON
    )
    assert response.status_code == 404
    assert mod_client.get(reverse("review:item", args=[uuid.uuid4()])).status_code == 404


def review_urls(item) -> list[tuple[str, str]]:
    return [
        ("get", reverse("review:queue")),
        ("post", reverse("review:claim")),
        ("post", reverse("review:release")),
        ("post", reverse("review:heartbeat")),
        ("get", reverse("review:stats")),
        ("post", reverse("review:decide")),
        ("get", reverse("review:item", args=[item.uuid])),
        ("post", reverse("review:decide_one", args=[item.uuid])),
        ("post", reverse("review:override", args=[item.uuid])),
    ]


@pytest.mark.parametrize("persona", ["uploader", "outsider"])
def test_non_moderators_get_403_from_every_review_page(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    item = review_item()
    for method, url in review_urls(item):
        data = {"decision": "approve", "items": [item.uuid], "count": 1}
        assert getattr(client, method)(url, data).status_code == 403, url
        assert getattr(client, method)(url, data, **JSON).status_code == 403, url
    assert 'href="/review/"' not in client.get(reverse("uploads:upload")).content.decode()
    assert not QueueEntry.objects.filter(claimed_by__isnull=False).exists()


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    item = review_item()
    for method, url in review_urls(item):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and reverse("login") in response.url
        assert getattr(client, method)(url, **JSON).status_code == 403


def test_the_item_history_shows_every_decision_and_a_reversal_form_for_admins(
    client, moderator, policy_admin, uploader
):
    item = review_item(uploader)
    claims.claim_items(moderator, 1)
    decisions.record_decision(moderator, item, "reject", "Harassment")
    client.force_login(moderator)
    html = client.get(reverse("review:item", args=[item.uuid])).content.decode()
    assert "Harassment" in html and "moderator" in html and "Reverse the outcome" not in html
    client.force_login(policy_admin)
    url = reverse("review:item", args=[item.uuid])
    assert "Reverse the outcome" in client.get(url).content.decode()
    response = client.post(
        reverse("review:override", args=[item.uuid]),
        {"decision": "approve", "reason_choice": "", "reason": "Satire, allowed"},
        follow=True,
    )
    html = response.content.decode()
    assert "Satire, allowed" in html and "Harassment" in html and "reversal of #" in html
    assert MediaItem.objects.get(pk=item.pk).status == "approved"
    response = client.post(reverse("review:override", args=[item.uuid]), {"decision": "reject"})
    assert response.status_code == 400 and "needs a reason" in response.content.decode()


@pytest.mark.parametrize("debug", [False, True])  # make run has DEBUG on
def test_a_post_to_a_page_address_without_its_slash_is_a_404_naming_it_and_claims_nothing(
    mod_client, settings, debug
):
    settings.DEBUG = debug
    review_item()
    answer = mod_client.post("/review/claim", {"count": 1}, **JSON)
    assert answer.status_code == 404
    body = answer.json()
    assert body["code"] == "not_found" and body["detail"].endswith("/review/claim/")
    page = mod_client.post("/review/claim", {"count": 1})  # a plain form post: the page
    assert page.status_code == 404 and "/review/claim/" in page.content.decode()
    assert not QueueEntry.objects.filter(claimed_by__isnull=False).exists()
    assert mod_client.get("/review").url == "/review/"  # a GET is still sent on
