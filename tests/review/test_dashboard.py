"""The queue-health dashboard: who may open it, and its figures from real rows made through
the queue and the decisions (claims, record_decision, override_decision)."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Author
from review import claims, decisions, health
from review.models import Analysis, Decision, QueueEntry
from tests.review.review_factories import review_item
from uploads.models import MediaItem

URL = reverse("review:dashboard")


def page(client, user, **params):
    client.force_login(user)
    response = client.get(URL, params)
    assert response.status_code == 200
    return response.content.decode()


def cell(html, element_id) -> str:
    """The text of the element with this id, tags and spacing squeezed."""
    match = re.search(rf'<(\w+)[^>]*id="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, element_id
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(2)).split())


def decide(moderator, verdict="approve", seconds=None, days_ago=0):
    (entry,) = claims.claim_items(moderator, 1)
    (made, *_) = decisions.record_decision(moderator, entry.item, verdict, "explicit")
    changes = {}
    if seconds is not None:
        changes["seconds_to_decide"] = seconds
    if days_ago:
        changes["decided_at"] = timezone.now() - timedelta(days=days_ago)
    if changes:
        Decision.objects.filter(pk=made.pk).update(**changes)
    return made


def test_only_moderators_and_policy_admins_open_it(
    client, uploader, outsider, moderator, policy_admin
):
    assert client.get(URL).status_code == 302  # anonymous: to the log-in page
    for person in (uploader, outsider):
        client.force_login(person)
        assert client.get(URL).status_code == 403
    for person in (moderator, policy_admin):
        client.force_login(person)
        assert client.get(URL).status_code == 200


def test_it_shows_pending_items_and_the_oldest_age(client, moderator):
    review_item(age=timedelta(minutes=10))
    review_item()
    html = page(client, moderator)
    assert cell(html, "pending-total") == "2"
    assert re.fullmatch(r"6\d\d s", cell(html, "oldest-age"))
    assert "explicit_for_review" in cell(html, "pending") and ">2<" in html


def test_decisions_and_time_to_decide_count_the_range_only(client, moderator):
    for _ in range(4):
        review_item()
    decide(moderator, seconds=10)
    decide(moderator, seconds=20)
    decide(moderator, seconds=90)
    decide(moderator, seconds=500, days_ago=3)  # in the week, not the day
    html = page(client, moderator, range="day")
    assert cell(html, "decided") == "3"
    assert cell(html, "ttd-p50") == "20 s" and cell(html, "ttd-p90") == "90 s"
    week = page(client, moderator, range="week")
    assert cell(week, "decided") == "4"
    assert cell(week, "ttd-p90") == "500 s"


def test_an_unknown_range_is_a_400(client, moderator):
    client.force_login(moderator)
    response = client.get(URL, {"range": "year"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400 and "hour, day, week" in response.json()["detail"]


def test_overturn_rates_of_automatic_flags_and_of_decisions(client, moderator, policy_admin):
    flagged = [review_item() for _ in range(3)]
    MediaItem.objects.filter(pk__in=[i.pk for i in flagged]).update(
        status=MediaItem.Status.FLAGGED, category="explicit"
    )
    QueueEntry.objects.filter(item__in=flagged).update(purpose=QueueEntry.Purpose.CONFIRM)
    restored = decide(moderator, "approve")  # the person restores one flag
    decide(moderator, "reject")
    decide(moderator, "reject")
    decisions.override_decision(policy_admin, restored.item, "reject", "explicit after all")

    html = page(client, moderator)
    assert cell(html, "flag-overturn") == "33 % (1 of 3)"
    assert cell(html, "decision-overturn") == "33 % (1 of 3)"
    assert "1 of 1 confirmed" not in html  # rates are shown as percent (x of y)
    explicit = next(
        r for r in health.confirmation_rates(health.since("day")) if r["category"] == "explicit"
    )
    assert (explicit["rate"].part, explicit["rate"].whole) == (2, 3)


def test_automatic_outcomes_strikes_and_bans(client, moderator, uploader):
    item = review_item()
    for reason in ("classifier_error", "classifier_error", "bank_match"):
        Analysis.objects.create(
            item=item, source="web", outcome="review", reason=reason, reason_text="."
        )
    author = Author.objects.create(kind=Author.Kind.API, external_id="x-1")
    Author.objects.filter(pk=author.pk).update(
        status=Author.Status.BANNED, banned_at=timezone.now()
    )
    html = page(client, moderator)
    outcomes = cell(html, "outcomes")
    assert "review classifier_error 2" in outcomes and "review bank_match 1" in outcomes
    assert "authors banned 1" in cell(html, "strikes")


def test_the_per_moderator_table_is_for_policy_admins_only(client, moderator, policy_admin):
    review_item()
    review_item()
    decide(moderator)
    decide(policy_admin, "reject")
    assert 'id="moderators"' not in page(client, moderator)
    html = page(client, policy_admin)
    table = cell(html, "moderators")
    assert f"{moderator.username} 1 0 0" in table and f"{policy_admin.username} 1 1 0" in table


@pytest.mark.parametrize("values, p50, p90", [([], None, None), ([5], 5, 5), ([1, 2, 3, 4], 2, 4)])
def test_percentiles_are_nearest_rank(values, p50, p90):
    assert health.percentile(values, 50) == p50 and health.percentile(values, 90) == p90
