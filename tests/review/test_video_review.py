"""A video on the review page: the strip of sampled frames (flagged first, blurred like
pictures), the player starting at the flagged moment, frames and byte ranges only to those
who may see the original, and the public copy re-encoded."""

import re

import pytest
from django.urls import reverse
from PIL import Image

from review import pipeline
from review.models import Policy
from tests.conftest import VENUS
from tests.videos import DOORKNOB, encode
from uploads.intake import ingest_bytes
from uploads.models import MediaItem
from uploads.services import make_public_copy


@pytest.fixture
def flagged_clip(uploader, photo):
    innocent = [photo(n).resize((320, 240)) for n in ("chelsea", "coffee", "rocket")]
    venus = Image.open(VENUS).convert("RGB").resize((320, 240))
    pictures = [venus if 70 <= i < 85 else innocent[(i // 10) % 3] for i in range(200)]
    item = ingest_bytes(encode(pictures, fps=10), name="party.mp4", source="web", uploader=uploader)
    pipeline.analyse_item(item.pk)
    item.refresh_from_db()
    return item


def test_the_strip_shows_flagged_frames_first_blurred_and_the_player_starts_there(
    client, moderator, flagged_clip
):
    strip = flagged_clip.details["video"]["strip"]
    assert strip[0]["flagged"] and strip[0]["timestamp"] in (7.0, 8.0)
    assert [s["flagged"] for s in strip] == sorted((s["flagged"] for s in strip), reverse=True)
    assert len(strip) == 12
    client.force_login(moderator)
    page = client.get(reverse("review:item", args=[flagged_clip.uuid])).content.decode()
    frames = re.findall(r'<button type="button" class="pic thumb-strip"', page)
    assert len(frames) == 12
    first = page.index('class="flagged"')
    assert first < page.index("play from 0.0 s")
    assert 'data-start="7.0"' in page
    assert f'src="/uploads/items/{flagged_clip.uuid}/original/"' in page
    # The strip's pictures are served to a moderator.
    picture = client.get(reverse("uploads:frame", args=[flagged_clip.uuid, strip[0]["frame"]]))
    assert picture.status_code == 200 and picture["Content-Type"] == "image/jpeg"


def test_frames_are_not_found_for_people_who_may_not_see_the_original(
    client, outsider, flagged_clip
):
    client.force_login(outsider)
    number = flagged_clip.details["video"]["strip"][0]["frame"]
    assert client.get(reverse("uploads:frame", args=[flagged_clip.uuid, number])).status_code == 404


def test_a_player_gets_byte_ranges(client, uploader):
    item = ingest_bytes(DOORKNOB.read_bytes(), name="door.mp4", source="web", uploader=uploader)
    client.force_login(uploader)
    url = reverse("uploads:original", args=[item.uuid])
    part = client.get(url, HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-199/{item.size}"
    assert b"".join(part.streaming_content) == DOORKNOB.read_bytes()[100:200]
    tail = client.get(url, HTTP_RANGE="bytes=-50")
    assert b"".join(tail.streaming_content) == DOORKNOB.read_bytes()[-50:]
    assert client.get(url, HTTP_RANGE=f"bytes={item.size + 10}-").status_code == 416
    whole = client.get(url)
    assert whole.status_code == 200


def test_others_get_the_re_encoded_copy_of_a_passed_video(client, uploader, outsider):
    import io

    import av

    item = ingest_bytes(DOORKNOB.read_bytes(), name="door.mp4", source="web", uploader=uploader)
    pipeline.analyse_item(item.pk)
    item.refresh_from_db()
    assert item.status == MediaItem.Status.PASSED
    make_public_copy(item)
    client.force_login(outsider)
    answer = client.get(reverse("uploads:original", args=[item.uuid]))
    assert answer.status_code == 200
    data = b"".join(answer.streaming_content)
    assert data != DOORKNOB.read_bytes()
    clip = av.open(io.BytesIO(data))
    assert clip.streams.video[0].codec_context.name == "h264"
    assert len(list(clip.decode(clip.streams.video[0]))) == 120


def test_the_video_caps_are_edited_in_admin(client, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("admin:review_policy_change", args=[Policy.current().pk]))
    assert b"video_max_mb" in page.content and b"video_sample_fps" in page.content


def test_progress_shows_on_the_item_page_and_the_status(client, uploader):
    item = ingest_bytes(DOORKNOB.read_bytes(), name="door.mp4", source="web", uploader=uploader)
    MediaItem.objects.filter(pk=item.pk).update(
        details={**item.details, "progress": {"done": 16, "total": 40}}
    )
    client.force_login(uploader)
    page = client.get(reverse("uploads:item", args=[item.uuid])).content.decode()
    assert "Analysing: 16 of 40 frames." in page
    assert "<video" in page and "thumb-strip" not in page  # the uploader: a plain player
    status = client.get(reverse("uploads:item_status", args=[item.uuid])).json()
    assert status["details"]["progress"] == {"done": 16, "total": 40}
