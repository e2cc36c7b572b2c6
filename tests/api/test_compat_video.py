"""Video through the public API: the analyses endpoint and the replaced API's
``POST analyse/video {url, user_uuid}`` with its fields, over real HTTP for the URLs."""

import pytest
from PIL import Image
from rest_framework.test import APIClient

from tests.api import test_analyses as shared
from tests.conftest import VENUS
from tests.videos import DOORKNOB, encode

conforms = shared.conforms
VIDEO = "/api/v1/analyse/video"
ANALYSES = "/api/v1/analyses"


@pytest.fixture
def clips(photo):
    innocent = [photo(n).resize((320, 240)) for n in ("chelsea", "coffee", "rocket")]
    venus = Image.open(VENUS).convert("RGB").resize((320, 240))
    pictures = [venus if 50 <= i < 65 else innocent[(i // 10) % 3] for i in range(120)]
    return {"/door.mp4": DOORKNOB.read_bytes(), "/party.mp4": encode(pictures, fps=10)}


@pytest.fixture
def video_server(serve, clips):
    return serve(clips)


@pytest.mark.django_db(transaction=True)
def test_the_old_video_body_gets_the_old_fields(
    api, video_server, loopback_allowed, client, moderator
):
    answer = api.post(VIDEO, {"url": f"{video_server}/door.mp4", "user_uuid": "u-1"}, format="json")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["decision"], body["reason"]) == ("pass", "clean")
    assert body["frames_analyzed"] == 4 and body["flagged_at_timestamp"] is None
    assert answer["Deprecation"] == "true"
    client.force_login(moderator)
    conforms(client, answer, VIDEO, "post")


@pytest.mark.django_db(transaction=True)
def test_a_clip_with_an_explicit_moment_is_flagged_at_that_moment(
    api, video_server, loopback_allowed
):
    answer = api.post(
        VIDEO, {"url": f"{video_server}/party.mp4", "user_uuid": "u-2"}, format="json"
    )
    body = answer.json()
    assert body["decision"] == "flagged", body
    assert body["reason"] == "explicit_flagged"
    assert 5.0 <= body["flagged_at_timestamp"] <= 6.0
    assert body["frames_analyzed"] == 12  # 12 s at 1 frame/s


@pytest.mark.django_db(transaction=True)
def test_a_video_goes_through_the_analyses_endpoint(api, video_server, loopback_allowed):
    answer = api.post(
        ANALYSES + "?wait=5", {"url": f"{video_server}/door.mp4", "user_uuid": "u-3"}, format="json"
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["kind"], body["decision"], body["mime"]) == ("video", "pass", "video/mp4")
    assert body["details"]["video"]["frames_analyzed"] == 4
    assert len(body["hashes"]["vpdq"]) == 4 and len(body["hashes"]["vphash"]) == 5


def test_the_video_endpoint_needs_a_key(db, video_server, loopback_allowed):
    answer = APIClient().post(
        VIDEO, {"url": f"{video_server}/door.mp4", "user_uuid": "u"}, format="json"
    )
    assert answer.status_code == 401
    assert set(answer.json()) >= {"code", "detail"}


def test_a_missing_url_is_a_400_in_the_error_shape(api):
    answer = api.post(VIDEO, {"user_uuid": "u"}, format="json")
    assert answer.status_code == 400
    assert answer.json()["fields"]["url"]
