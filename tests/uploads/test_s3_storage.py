"""Originals in S3 (moto's server on loopback): private objects, streamed through the view."""

import boto3
import pytest
from django.urls import reverse

from review import pipeline
from tests.services import free_port
from uploads.intake import ingest_bytes
from uploads.models import MediaItem

BUCKET = "moderation-originals"


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(settings, s3_endpoint, monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "location": "originals",
                "default_acl": "private",
                "file_overwrite": False,
            },
        },
    }
    yield client
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])


def test_an_upload_is_stored_privately_in_s3_and_analysed_from_there(s3, client, uploader, jpeg):
    data = jpeg("coffee")
    item = ingest_bytes(data, name="c.jpg", source="web", uploader=uploader)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [f"originals/{item.file.name}"]
    assert s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read() == data
    grants = s3.get_object_acl(Bucket=BUCKET, Key=keys[0])["Grants"]
    assert all("AllUsers" not in str(g.get("Grantee", {})) for g in grants)

    pipeline.analyse_item(item.pk)
    item.refresh_from_db()
    assert item.status == MediaItem.Status.PASSED

    client.force_login(uploader)
    response = client.get(reverse("uploads:original", args=[item.uuid]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data


def test_a_failed_row_write_removes_the_s3_object(s3, uploader, jpeg, monkeypatch):
    def broken_save(self, *args, **kwargs):
        raise RuntimeError("db down")

    monkeypatch.setattr(MediaItem, "save", broken_save)
    with pytest.raises(RuntimeError):
        ingest_bytes(jpeg("coffee"), name="c.jpg", source="web", uploader=uploader)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
