"""Admin: the queue with a release action; decisions and audit read-only and exportable."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from review import claims, decisions
from review.models import Decision, QueueEntry
from tests.review.review_factories import review_item


@pytest.fixture
def admin_client(client, policy_admin):
    # The policy admin sees the queue and the decisions in admin.
    policy_admin.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="review", codename__in=["view_queueentry", "view_decision"]
        )
    )
    client.force_login(policy_admin)
    return client


def test_the_queue_shows_who_holds_what_since_when_and_claims_can_be_released(
    admin_client, moderator
):
    held, waiting = review_item(explicit=0.9), review_item(explicit=0.1)
    claims.claim_items(moderator, 1)
    url = reverse("admin:review_queueentry_changelist")
    html = admin_client.get(url).content.decode()
    assert str(held.uuid)[:8] in html and str(waiting.uuid)[:8] in html
    assert "moderator" in html
    claimed_only = admin_client.get(url, {"state": "claimed"}).content.decode()
    assert str(held.uuid)[:8] in claimed_only and str(waiting.uuid)[:8] not in claimed_only
    response = admin_client.post(
        url,
        {
            "action": "release_claims",
            "_selected_action": [QueueEntry.objects.get(item=held).pk],
        },
    )
    assert response.status_code == 302
    assert not QueueEntry.objects.filter(claimed_by__isnull=False).exists()


def test_decisions_are_read_only_filterable_and_exported_as_csv(admin_client, moderator):
    item = review_item()
    claims.claim_items(moderator, 1)
    (decision,) = decisions.record_decision(moderator, item, "reject", "=HYPERLINK(evil)")
    url = reverse("admin:review_decision_changelist")
    assert admin_client.get(url, {"decision__exact": "reject"}).status_code == 200
    change = reverse("admin:review_decision_change", args=[decision.pk])
    page = admin_client.get(change).content.decode()
    assert "=HYPERLINK(evil)" in page and 'name="reason"' not in page  # shown, not editable
    response = admin_client.post(change, {"reason": "edited"})
    assert response.status_code == 403
    delete = reverse("admin:review_decision_delete", args=[decision.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    response = admin_client.post(
        url, {"action": "export_as_csv", "_selected_action": [decision.pk]}
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert rows[0]["decision"] == "reject" and rows[0]["item_id"] == str(item.pk)
    assert rows[0]["reason"] == "'=HYPERLINK(evil)"  # never a live formula in a spreadsheet
    assert Decision.objects.get(pk=decision.pk).reason == "=HYPERLINK(evil)"


def test_the_analysis_audit_is_exportable_too(admin_client):
    from review.models import Analysis

    item = review_item()
    analysis = Analysis.objects.create(
        item=item, source="web", outcome="review", reason="explicit_for_review", reason_text="x"
    )
    response = admin_client.post(
        reverse("admin:review_analysis_changelist"),
        {"action": "export_as_csv", "_selected_action": [analysis.pk]},
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["reason"] for r in rows] == ["explicit_for_review"]
