"""Animated images are judged on every stretch of the animation, not on the first frame.

The reported case first: an 8-frame 320×240 GIF whose frames 4-8 show a nude painting
that NudeNet flags on its own passed as clean and reached the feed.
"""

import io
import re

import pytest
from django.urls import reverse
from PIL import Image

from accounts.models import Strike
from hashing import services
from review import pipeline
from review.frames import FrameFindings, frame_of, name_frame, worst_of
from review.models import Analysis, Policy
from review.outcomes import FLAGGED, Outcome
from tests.conftest import VENUS, encode
from uploads.intake import ingest_bytes
from uploads.kinds import get_kind, sample_positions
from uploads.models import MediaItem
from uploads.validation import RefusedUpload, validate_image

SIZE = (320, 240)


def ingest(data: bytes, user, name: str) -> MediaItem:
    item = ingest_bytes(data, name=name, source="web", uploader=user)
    pipeline.analyse_item(item.pk)
    item.refresh_from_db()
    return item


@pytest.fixture
def venus() -> Image.Image:
    return Image.open(VENUS).convert("RGB").resize(SIZE)


@pytest.fixture
def innocent(photo):
    """Frames of photographs nobody flags (a cat, a coffee cup, a rocket)."""
    return [photo(name).resize(SIZE) for name in ("chelsea", "coffee", "rocket")]


def animation(frames: list[Image.Image], fmt: str = "GIF") -> bytes:
    """Each frame gets a progress dot, so that encoders keep repeated pictures as frames
    of their own (Pillow merges identical consecutive GIF frames)."""
    frames = [_dotted(frame, i) for i, frame in enumerate(frames)]
    buf = io.BytesIO()
    options = {"loop": 0, "duration": 120}
    if fmt == "WEBP":
        options["lossless"] = True
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], **options)
    return buf.getvalue()


def named_frame(text: str, of: int) -> int:
    found = re.search(rf"in frame (\d+) of {of}, at (\d+\.\d) s\.", text)
    assert found, text
    number = int(found.group(1))
    assert float(found.group(2)) == round(0.12 * (number - 1), 1)  # 120 ms a frame
    return number


def policy_rules():
    return Policy.current().category_rules("image")


def _dotted(frame: Image.Image, i: int) -> Image.Image:
    frame = frame.copy()
    frame.paste((255, 0, 0), (4 * i, 0, 4 * i + 3, 3))
    return frame


def test_a_gif_whose_later_frames_are_explicit_is_flagged_naming_the_frame(
    uploader, venus, innocent
):
    """The reported animation: frames 1-3 innocent, 4-8 the painting."""
    data = animation([*innocent, *[venus] * 5])
    item = ingest(data, uploader, "party.gif")
    assert item.details["frames"] == 8 and set(item.details) == {"frames", "animation"}
    assert (item.status, item.reason) == (MediaItem.Status.FLAGGED, "explicit_flagged")
    # The worst frame is named: one of the painting's (GIF palettes make their scores differ).
    assert 4 <= named_frame(item.reason_text, of=8) <= 8
    explicit = next(r for r in policy_rules() if r.name == "explicit")
    assert item.category == "explicit" and item.confidence >= explicit.flag_at
    analysis = Analysis.objects.get(item=item)
    assert sorted(analysis.hashes["frames"]) == [str(n) for n in range(1, 9)]
    assert [f["frame"] for f in analysis.raw["nudenet"]] == list(range(1, 9))
    # A model's guess alone never strikes.
    assert not Strike.objects.exists()


def test_the_review_strip_shows_an_animations_flagged_frames_first(
    client, uploader, moderator, outsider, venus, innocent
):
    item = ingest(animation([*innocent, *[venus] * 5]), uploader, "party.gif")
    found = item.details["animation"]
    strip = found["strip"]
    assert [s["frame"] for s in strip if not s["flagged"]] == [1, 2, 3]  # the innocent ones
    assert strip[0]["flagged"] and strip[0]["frame"] >= 4
    assert [s["flagged"] for s in strip] == sorted((s["flagged"] for s in strip), reverse=True)
    assert found["frames_sampled"] == 8 and len(strip) == 8
    flagged = [s for s in strip if s["flagged"]]
    assert found["flagged_at_timestamp"] == min(s["timestamp"] for s in flagged)
    assert found["top_frames"][0]["frame"] >= 4
    client.force_login(moderator)
    page = client.get(reverse("uploads:item", args=[item.uuid])).content.decode()
    assert len(re.findall(r'<button type="button" class="pic thumb-strip"', page)) == 8
    assert page.index('class="flagged"') < page.index("frame 1, at 0.0 s")
    picture = client.get(reverse("uploads:frame", args=[item.uuid, strip[0]["frame"]]))
    assert picture.status_code == 200 and picture["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(b"".join(picture.streaming_content))).size[0] <= 320
    # Nobody else sees its frames; a still picture has none.
    client.force_login(outsider)
    assert client.get(reverse("uploads:frame", args=[item.uuid, 4])).status_code == 404
    still = ingest(encode(innocent[0], quality=90), uploader, "cup.jpg")
    client.force_login(moderator)
    assert "animation" not in still.details
    assert client.get(reverse("uploads:frame", args=[still.uuid, 1])).status_code == 404


def test_the_first_frame_alone_would_have_passed(uploader, venus, innocent):
    """Guards the test above: the same innocent frames make a clean animation."""
    item = ingest(animation([*innocent, innocent[0]]), uploader, "clean.gif")
    assert (item.status, item.reason) == (MediaItem.Status.PASSED, "clean")


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_animated_webp_and_apng_are_sampled_too(uploader, venus, innocent, fmt):
    data = animation([*innocent, venus], fmt)
    kind = get_kind("image")
    assert kind.sample(data).total == 4
    item = ingest(data, uploader, f"party.{fmt.lower()}")
    assert item.status == MediaItem.Status.FLAGGED
    assert "in frame 4 of 4, at 0.4 s." in item.reason_text  # after three 120 ms frames


def test_a_long_animation_is_sampled_from_first_to_last_frame(uploader, venus, innocent):
    """40 frames, the painting only in frames 21-25: eight evenly spaced samples reach it."""
    frames = [innocent[i % 3] for i in range(40)]
    frames[20:25] = [venus] * 5
    item = ingest(animation(frames), uploader, "long.gif")
    assert item.status == MediaItem.Status.FLAGGED
    assert named_frame(item.reason_text, of=40) == 23  # the one sample in 21-25
    sampled = Analysis.objects.get(item=item).hashes["frames"]
    spread = [1, 7, 12, 18, 23, 29, 34, 40]
    # Plus one a second, as a video is sampled: frames of 120 ms start at 0, 1.08 (frame
    # 10), 2.04 (18), 3.0 (26) and 4.08 s (35).
    assert sorted(map(int, sampled)) == sorted({*spread, 10, 18, 26, 35})


def test_animation_frames_carry_their_timestamps_from_the_frame_delays(innocent):
    frames = [innocent[i % 3] for i in range(40)]
    sampled = get_kind("image").sample(animation(frames))
    stamps = {f.number: f.timestamp for f in sampled.frames}
    assert stamps[1] == 0.0 and stamps[10] == 1.08 and stamps[40] == 4.68


def test_a_bank_picture_in_a_later_frame_blocks_with_a_strike(uploader, photo):
    camera = photo("astronaut").resize(SIZE)
    bank = services.create_bank("known bad")
    services.add_images(bank, [("astronaut.jpg", encode(camera, quality=95))])
    frames = [photo("coffee").resize(SIZE), photo("rocket").resize(SIZE), camera]
    item = ingest(animation(frames), uploader, "spliced.gif")
    assert (item.status, item.reason) == (MediaItem.Status.FLAGGED, "bank_match")
    assert item.reason_text.split(" Warning:")[0].endswith("in frame 3 of 3, at 0.2 s.")
    assert item.matches["bank"]["frame"] == 3
    assert Strike.objects.filter(item=item).count() == 1


def test_a_still_picture_of_a_rejected_animations_frame_is_a_near_copy(uploader, photo):
    """Duplicates are looked up for every sampled frame, not only the first."""
    cat = photo("chelsea").resize(SIZE)
    first = ingest(encode(cat, quality=90), uploader, "cat.jpg")
    MediaItem.objects.filter(pk=first.pk).update(status=MediaItem.Status.REJECTED)
    frames = [photo("coffee").resize(SIZE), photo("rocket").resize(SIZE), cat]
    item = ingest(animation(frames), uploader, "cat.gif")
    assert (item.status, item.reason) == (MediaItem.Status.REVIEW, "near_copy_of_rejected")
    assert item.reason_text.endswith("in frame 3 of 3, at 0.2 s.")
    assert item.duplicate_of == first


def test_an_animation_over_the_frame_cap_is_refused(settings, innocent):
    settings.UPLOAD_MAX_FRAMES = 5
    data = animation([innocent[i % 3] for i in range(6)])
    with pytest.raises(RefusedUpload) as refused:
        validate_image(data, max_bytes=10**7, max_pixels=10**8)
    assert refused.value.code == "too_many_frames"
    assert "6 frames; the limit is 5" in str(refused.value)
    assert validate_image(data[:], max_bytes=10**7, max_pixels=10**8, max_frames=6).frames == 6


@pytest.mark.parametrize(
    ("total", "count", "expected"),
    [
        (1, 8, [0]),
        (8, 8, list(range(8))),
        (9, 8, [0, 1, 2, 3, 5, 6, 7, 8]),
        (100, 5, [0, 25, 50, 74, 99]),
        (3, 1, [0]),
    ],
)
def test_sample_positions_take_all_then_spread_evenly(total, count, expected):
    assert sample_positions(total, count) == expected


def test_the_worst_frame_wins_per_category_and_the_strongest_bank_vote():
    frames = [
        FrameFindings(1, scores={"explicit": 0.2, "suggestive": 0.7}),
        FrameFindings(2, scores={"explicit": 0.9}, bank={"blocked": False, "votes": 2}),
        FrameFindings(3, scores={"explicit": 0.9}, bank={"blocked": True, "votes": 3}),
    ]
    worst = worst_of(frames)
    assert worst.scores == {"explicit": 0.9, "suggestive": 0.7}
    assert worst.score_frames == {"explicit": 2, "suggestive": 1}  # earliest of equals
    assert worst.bank_frame == 3 and worst.bank["frame"] == 3
    flagged = Outcome(FLAGGED, "explicit_flagged", "Explicit.", {"category": "explicit"})
    assert frame_of(flagged, worst) == 2
    assert name_frame(flagged, worst, total=3).text == "Explicit in frame 2 of 3."
    assert name_frame(flagged, worst, total=1) == flagged  # a still: nothing to name
    timed = name_frame(flagged, worst, total=3, stamps={1: 0.0, 2: 1.25, 3: 2.5})
    assert timed.text == "Explicit in frame 2 of 3, at 1.2 s."
    assert timed.details["timestamp"] == 1.25
