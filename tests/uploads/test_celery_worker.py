"""End to end on a real Celery worker consuming from Redis (skipped without REDIS_URL)."""

import time

import pytest
from django.urls import reverse

from uploads.models import MediaItem

pytestmark = pytest.mark.redis


@pytest.fixture
def worker(transactional_db):
    from celery.contrib.testing.worker import start_worker

    from moderation_site.celery import app

    app.conf.task_always_eager = False
    with start_worker(
        app, pool="threads", concurrency=1, perform_ping_check=False, shutdown_timeout=30
    ):
        yield app


def test_an_upload_is_analysed_by_a_real_worker_from_redis(
    worker, client, uploader, jpeg, venus_bytes
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(uploader)
    response = client.post(
        reverse("uploads:submit"),
        {
            "files": [
                SimpleUploadedFile("v.jpg", venus_bytes),
                SimpleUploadedFile("c.jpg", jpeg("coffee")),
            ]
        },
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200
    assert {i["status"] for i in response.json()["items"]} == {"processing"}
    deadline = time.monotonic() + 90
    while MediaItem.objects.filter(status=MediaItem.Status.PROCESSING).exists():
        assert time.monotonic() < deadline, "the worker did not analyse the items in time"
        time.sleep(0.2)
    statuses = dict(MediaItem.objects.values_list("original_name", "status"))
    assert statuses == {"v.jpg": "flagged", "c.jpg": "passed"}
    from django_celery_results.models import TaskResult

    assert TaskResult.objects.filter(task_name="review.analyse_item", status="SUCCESS").count() == 2
