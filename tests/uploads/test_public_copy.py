"""The public copy is made once, in the worker with the analysis, stored next to the
original and only streamed by the view; an animation that Pillow's GIF writer cannot write
(identical frames over 655 s) falls back to a still, never a 500 (issue 10)."""

import io
import struct

import pytest
from django.urls import reverse
from PIL import Image, ImageCms

from tests.conftest import encode
from uploads import renditions, tasks
from uploads.intake import ingest_bytes
from uploads.kinds import ImageKind
from uploads.models import MediaItem
from uploads.renditions import public_name, srgb_profile


def long_gif(frames: int = 3, delay_cs: int = 30000, size=(24, 24)) -> bytes:
    """`frames` identical frames of `delay_cs` hundredths of a second each (3 x 300 s: more
    than the 655.35 s one GIF delay holds once Pillow merges them). Written by hand:
    Pillow's own writer refuses to make such a file."""
    buf = io.BytesIO()
    Image.new("RGB", size, (70, 140, 210)).save(buf, "GIF")
    one = buf.getvalue()
    flags = one[10]
    table = 3 << ((flags & 7) + 1) if flags & 0x80 else 0
    head, i = one[: 13 + table], 13 + table
    while one[i] == 0x21:  # skip the single frame's extensions
        j = i + 2
        while one[j]:
            j += 1 + one[j]
        i = j + 1
    picture = one[i:-1]  # image descriptor and data, without the trailer
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    delay = b"\x21\xf9\x04\x00" + struct.pack("<H", delay_cs) + b"\x00\x00"
    return head + loop + (delay + picture) * frames + b"\x3b"


@pytest.fixture
def analysed(uploader, django_capture_on_commit_callbacks):
    """An item taken and analysed as an upload is (the task runs in-process), then passed."""

    def make(data: bytes, name: str) -> MediaItem:
        with django_capture_on_commit_callbacks(execute=True):
            item = ingest_bytes(data, name=name, source="web", uploader=uploader)
        item.refresh_from_db()
        assert item.status != MediaItem.Status.PROCESSING, item.reason_text
        MediaItem.objects.filter(pk=item.pk).update(status=MediaItem.Status.PASSED)
        item.refresh_from_db()
        return item

    return make


def fetch(client, item):
    return client.get(reverse("uploads:original", args=[item.uuid]))


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_the_analysis_stores_the_copy_and_the_view_only_streams_it(
    client, outsider, analysed, jpeg, monkeypatch
):
    item = analysed(jpeg("coffee"), "coffee.jpg")
    storage = item.file.storage
    name = public_name(item)
    assert storage.exists(name), "the worker's analysis did not make the public copy"
    stored = storage.open(name).read()
    assert stored != item.file.open().read()
    assert "public_copy" in item.analyses.get().timings

    def no_decoding(*args, **kwargs):
        raise AssertionError("the web request decoded the image")

    monkeypatch.setattr(ImageKind, "public_rendition", no_decoding)
    monkeypatch.setattr(renditions, "render_public", no_decoding)
    monkeypatch.setattr(renditions.Image, "open", no_decoding)
    client.force_login(outsider)
    response = fetch(client, item)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert body(response) == stored


def test_a_gif_of_655_seconds_of_identical_frames_is_served_not_a_500(client, outsider, analysed):
    item = analysed(long_gif(), "long.gif")
    client.force_login(outsider)
    response = fetch(client, item)
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    shown = Image.open(io.BytesIO(body(response)))
    assert shown.format == "GIF" and shown.size == (24, 24)
    assert shown.info.get("duration", 0) <= renditions.MAX_LOOP_MS
    assert fetch(client, item).status_code == 200  # and again, from storage


def test_a_rendition_that_fails_falls_back_to_a_still_of_the_first_frame(monkeypatch):
    """Without the duration clamp Pillow's writer raises OverflowError on this GIF: the copy
    is then the first frame alone, not an error."""
    monkeypatch.setattr(renditions, "clamp_durations", lambda durations: durations)
    with pytest.raises(OverflowError):
        renditions._animation(long_gif(), max_frames=1000)
    out = Image.open(io.BytesIO(renditions.render_public(long_gif(), "image/gif")))
    assert out.format == "GIF" and getattr(out, "n_frames", 1) == 1
    assert out.convert("RGB").getpixel((5, 5)) == (70, 140, 210)


def test_long_animations_are_clamped_and_frames_capped():
    assert renditions.clamp_durations([300_000] * 3) == [200_000] * 3
    assert renditions.clamp_durations([None, -5, "x", 40]) == [100, 0, 100, 40]
    frames = [Image.new("RGB", (8, 8), (i * 20, 0, 0)) for i in range(6)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    out = Image.open(io.BytesIO(renditions.render_public(data, "image/gif", max_frames=4)))
    assert out.n_frames == 4


def test_an_animation_is_scaled_to_the_pixel_budget(monkeypatch):
    monkeypatch.setattr(renditions, "ANIMATION_MAX_PIXELS", 4 * 100 * 100)
    frames = [Image.new("RGB", (400, 200), (0, i * 40, 0)) for i in range(4)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    out = Image.open(io.BytesIO(renditions.render_public(data, "image/gif")))
    assert out.n_frames == 4 and out.width * out.height <= 100 * 100


def test_before_the_copy_exists_the_view_asks_a_worker_once_and_says_not_ready(
    client, uploader, outsider, jpeg, monkeypatch
):
    asked = []
    monkeypatch.setattr(tasks.make_public_copy, "delay", lambda pk: asked.append(pk))
    item = ingest_bytes(jpeg("coffee"), name="c.jpg", source="web", uploader=uploader)
    MediaItem.objects.filter(pk=item.pk).update(status=MediaItem.Status.PASSED)
    client.force_login(outsider)
    for _ in range(2):
        response = fetch(client, item)
        assert response.status_code == 404 and response.json()["code"] == "not_ready"
    assert asked == [item.pk]  # once, not at every view
    assert not item.file.storage.exists(public_name(item))
    client.force_login(uploader)
    assert fetch(client, item).status_code == 200  # the uploader's own original


def test_the_copy_task_makes_it_for_an_item_that_has_none(uploader, jpeg):
    item = ingest_bytes(jpeg("coffee"), name="c.jpg", source="web", uploader=uploader)
    assert tasks.make_public_copy(item.pk) == public_name(item)
    assert Image.open(item.file.storage.open(public_name(item))).format == "JPEG"


def test_a_png_profile_reaches_others_parsed_and_standard_not_as_uploaded(
    client, outsider, analysed
):
    uploaded = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    uploaded += b"owner: alice@example.org, card 4111 1111 1111 1111"
    data = encode(Image.new("RGB", (64, 48), (200, 120, 40)), "PNG", icc_profile=uploaded)
    assert Image.open(io.BytesIO(data)).info["icc_profile"] == uploaded
    item = analysed(data, "tagged.png")
    client.force_login(outsider)
    shown = body(fetch(client, item))
    assert b"alice" not in shown and b"4111" not in shown
    icc = Image.open(io.BytesIO(shown)).info["icc_profile"]
    assert icc != uploaded and icc == srgb_profile()
    assert ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile.xcolor_space.strip() == "RGB"


def test_the_command_makes_the_missing_copies(uploader, jpeg):
    from django.core.management import call_command

    item = ingest_bytes(jpeg("coffee"), name="c.jpg", source="web", uploader=uploader)
    MediaItem.objects.filter(pk=item.pk).update(status=MediaItem.Status.PASSED)
    out = io.StringIO()
    call_command("make_public_copies", stdout=out)
    assert "1 item(s) have a public copy; 0 could not" in out.getvalue()
    assert item.file.storage.exists(public_name(item))
