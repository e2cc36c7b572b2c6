"""/metrics: closed unless configured, a token or an allowed address, and the figures read
from real rows (queue, decisions, outcomes, deliveries, banks) and real analyses (stage
histograms, classifier errors), parsed with prometheus-client's own parser."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from api import services as api_services
from api.models import Delivery, DeliveryAttempt
from hashing import services as bank_services
from moderation_site.metrics import SLACK_API_ERRORS
from review import claims, decisions, pipeline
from review.classifiers import Classifier, ClassifierError, registry
from tests.review.review_factories import review_item
from uploads.intake import ingest_bytes

TOKEN = "metrics-test-token-0123456789"

pytestmark = pytest.mark.django_db


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def get(**headers) -> dict:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/plain")
        samples = {}
        for family in text_string_to_metric_families(response.content.decode()):
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return samples

    return get


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def test_without_a_token_or_networks_the_endpoint_does_not_exist(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", []
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN])
def test_a_missing_or_wrong_token_is_refused_in_the_error_shape(client, settings, header):
    settings.METRICS_TOKEN = TOKEN
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/metrics", **extra)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden" and TOKEN not in response.content.decode()


def test_an_allowed_network_scrapes_without_a_token_and_others_are_refused(db, client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_queue_figures_come_from_the_rows(scrape, moderator):
    review_item(age=timedelta(minutes=30))
    review_item()
    review_item()
    claimed = claims.claim_items(moderator, 1)
    samples = scrape()
    pending = value(
        samples,
        "moderation_queue_pending_items",
        kind="image",
        reason="explicit_for_review",
        purpose="review",
    )
    assert pending == 2
    assert value(samples, "moderation_queue_claimed_items") == 1
    # The oldest item (30 minutes) was claimed first (oldest of equal severity): 2 remain.
    age = value(samples, "moderation_queue_oldest_pending_age_seconds")
    assert 0 <= age < 60

    item = claimed[0].item
    decisions.record_decision(moderator, item, "reject", "explicit")
    samples = scrape()
    assert value(samples, "moderation_decisions_total", decision="reject", reversal="false") == 1
    assert value(samples, "moderation_queue_claimed_items") == 0


def test_oldest_pending_age_reads_the_oldest_unclaimed_item(scrape):
    review_item(age=timedelta(hours=2))
    age = value(scrape(), "moderation_queue_oldest_pending_age_seconds")
    assert 2 * 3600 - 5 <= age <= 2 * 3600 + 60


class Broken(Classifier):
    name = "broken"

    def classify(self, image):
        raise ClassifierError("model exploded")


@pytest.fixture
def broken_provider(monkeypatch, policy):
    monkeypatch.setitem(registry.PROVIDERS, "broken", f"{__name__}.Broken")
    registry._instances.pop("broken", None)
    policy.providers = "broken"
    policy.save()


def test_an_analysis_feeds_the_stage_histograms_outcomes_and_classifier_errors(
    scrape, uploader, jpeg, broken_provider
):
    before = scrape()
    errors_before = value(before, "moderation_classifier_errors_total", provider="broken") or 0
    count_before = (
        value(before, "moderation_analysis_stage_seconds_count", stage="decode_hash") or 0
    )
    item = ingest_bytes(jpeg("coffee"), name="x.jpg", source="web", uploader=uploader)
    pipeline.analyse_item(item.pk)
    samples = scrape()
    assert value(samples, "moderation_classifier_errors_total", provider="broken") == (
        errors_before + 1
    )
    stage_count = value(samples, "moderation_analysis_stage_seconds_count", stage="decode_hash")
    assert stage_count == count_before + 1
    assert value(samples, "moderation_analysis_stage_seconds_sum", stage="total") > 0
    assert (
        value(
            samples,
            "moderation_automatic_outcomes_total",
            outcome="review",
            reason="classifier_error",
        )
        == 1
    )


def test_webhook_failures_bank_size_and_slack_errors_are_exported(scrape):
    client = api_services.create_client("partner", scopes=["analyse"])
    item = review_item()
    now = timezone.now()
    failed = Delivery.objects.create(
        event_id="00000000-0000-0000-0000-000000000001",
        event="analysis.decided",
        client=client,
        item=item,
        body="{}",
        status=Delivery.Status.FAILED,
        attempts=2,
    )
    DeliveryAttempt.objects.create(delivery=failed, number=1, started_at=now, status_code=500)
    DeliveryAttempt.objects.create(delivery=failed, number=2, started_at=now, error="refused")
    ok = Delivery.objects.create(
        event_id="00000000-0000-0000-0000-000000000002",
        event="analysis.decided",
        client=client,
        item=item,
        body="{}",
        status=Delivery.Status.DELIVERED,
    )
    DeliveryAttempt.objects.create(delivery=ok, number=1, started_at=now, status_code=204)

    bank = bank_services.create_bank("known bad")
    bank_services.add_hashes(bank, {"phash": "d1c4b4f0e3a3c2b1"})
    version_before = value(scrape(), "moderation_bank_version")
    bank_services.add_hashes(bank, {"phash": "0f0f0f0f0f0f0f0f"})

    slack_before = value(scrape(), "moderation_slack_api_errors_total", method="chat.update") or 0
    SLACK_API_ERRORS.labels(method="chat.update").inc()

    samples = scrape()
    assert value(samples, "moderation_webhook_delivery_failures_total") == 2
    assert value(samples, "moderation_webhook_deliveries", status="failed") == 1
    assert value(samples, "moderation_webhook_deliveries", status="delivered") == 1
    assert (
        value(samples, "moderation_bank_index_entries", bank_kind="block", algorithm="phash") == 2
    )
    assert value(samples, "moderation_bank_version") > version_before
    assert value(samples, "moderation_slack_api_errors_total", method="chat.update") == (
        slack_before + 1
    )
