"""Of the URL an item was fetched from, people other than staff and moderators see the host
only: a pasted pre-signed URL's query string is a key (issue 10)."""

import pytest
from django.urls import reverse

from uploads.intake import ingest_bytes
from uploads.models import MediaItem
from uploads.serializers import item_payload, staff_payload

SIGNED = (
    "https://reader:hunter2@bucket.s3.example.com:8443/private/holiday.jpg"
    "?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=0123deadbeef&token=s3cr3t"
)
SECRETS = ("hunter2", "reader", "AKIAEXAMPLE", "deadbeef", "s3cr3t", "holiday", "8443")


@pytest.fixture
def fetched(uploader, jpeg):
    item = ingest_bytes(
        jpeg("coffee"), name="holiday.jpg", source="web", uploader=uploader, source_url=SIGNED
    )
    MediaItem.objects.filter(pk=item.pk).update(status=MediaItem.Status.PASSED)
    item.refresh_from_db()
    return item


def page(client, item) -> str:
    response = client.get(reverse("uploads:item", args=[item.uuid]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("who", ["outsider", "uploader"])
def test_others_and_the_uploader_see_the_host_only(client, fetched, who, request):
    client.force_login(request.getfixturevalue(who))
    html = page(client, fetched)
    # The file name is also the item's own name (its title): look at the source line.
    source_line = html[html.index("<dt>Source</dt>") :].split("</dd>")[0]
    assert "bucket.s3.example.com" in source_line
    assert not any(secret in source_line for secret in SECRETS), source_line
    status = client.get(reverse("uploads:item_status", args=[fetched.uuid])).json()
    assert status["source_host"] == "bucket.s3.example.com"
    assert not any(secret in str(status.get("source_url", "")) for secret in SECRETS)
    assert "source_url" not in status


@pytest.mark.parametrize("who", ["policy_admin", "moderator"])
def test_staff_and_moderators_see_the_url_in_full(client, fetched, who, request):
    client.force_login(request.getfixturevalue(who))
    source_line = page(client, fetched).split("<dt>Source</dt>")[1].split("</dd>")[0]
    assert "X-Amz-Signature=0123deadbeef" in source_line


def test_the_payloads():
    item = MediaItem(source_url=SIGNED, size=1, mime="image/jpeg")
    assert item_payload(item)["source_host"] == "bucket.s3.example.com"
    assert "source_url" not in item_payload(item)
    assert staff_payload(item)["source_url"] == SIGNED
    assert MediaItem(source_url="").source_host == ""
    assert MediaItem(source_url="http://[::1]:99/x?y").source_host == "::1"
