"""A video's sampled frames through the image classifier: the moment it is flagged, an
early stop that still finishes the fingerprint, and what the result carries."""

import re

import pytest
from PIL import Image

from review import pipeline
from review.models import Analysis
from tests.conftest import VENUS
from tests.videos import encode
from uploads.intake import ingest_bytes
from uploads.models import MediaItem

SIZE = (320, 240)
FPS = 10


@pytest.fixture
def innocent(photo):
    return [photo(name).resize(SIZE) for name in ("chelsea", "coffee", "rocket")]


@pytest.fixture
def venus():
    return Image.open(VENUS).convert("RGB").resize(SIZE)


def clip(innocent, venus, seconds: int, shown: tuple[float, float] | None) -> bytes:
    """`seconds` of innocent photographs (a new one every second), the painting shown
    from shown[0] to shown[1]."""
    pictures = []
    for i in range(seconds * FPS):
        t = i / FPS
        if shown and shown[0] <= t < shown[1]:
            pictures.append(venus)
        else:
            pictures.append(innocent[int(t) % len(innocent)])
    return encode(pictures, fps=FPS)


def analysed(data: bytes, user) -> MediaItem:
    item = ingest_bytes(data, name="clip.mp4", source="web", uploader=user)
    pipeline.analyse_item(item.pk)
    item.refresh_from_db()
    return item


def test_a_picture_shown_at_a_known_time_is_flagged_within_one_sampling_step(
    uploader, innocent, venus
):
    item = analysed(clip(innocent, venus, 30, (12.0, 13.5)), uploader)
    assert item.status == MediaItem.Status.FLAGGED, item.reason_text
    assert item.reason == "explicit_flagged"
    found = item.details["video"]
    assert 12.0 <= found["flagged_at_timestamp"] <= 12.0 + 1.0
    assert re.search(r"at 0:1[23]\.", item.reason_text), item.reason_text
    # Both frames sampled in the painting's 1.5 s are the top two.
    assert {f["timestamp"] for f in found["top_frames"][:2]} == {12.0, 13.0}
    assert found["top_frames"][0]["category"] == "explicit"


def test_classification_stops_early_on_a_confident_flag_but_the_fingerprint_is_whole(
    uploader, innocent, venus
):
    item = analysed(clip(innocent, venus, 40, (3.0, 4.5)), uploader)
    found = item.details["video"]
    assert found["frames_sampled"] == 40
    assert found["frames_analyzed"] == 16  # the first batch held the flag
    assert found["frames_hashed"] == 40
    analysis = Analysis.objects.get(item=item)
    assert len(analysis.hashes["vpdq"]) == 40
    assert len(analysis.raw["timeline"]["frames"]) == 16
    assert [f["timestamp"] for f in analysis.raw["timeline"]["frames"][:3]] == [0.0, 1.0, 2.0]


def test_a_clean_clip_is_classified_to_its_end_and_passes(uploader, innocent):
    item = analysed(clip(innocent, None, 20, None), uploader)
    assert item.status == MediaItem.Status.PASSED, item.reason_text
    found = item.details["video"]
    assert found["frames_analyzed"] == found["frames_sampled"] == 20
    assert found["flagged_at_timestamp"] is None
    assert "progress" not in item.details


def test_progress_is_recorded_per_batch(uploader, innocent, monkeypatch):
    from review import video

    seen = []
    real = video.report_progress
    monkeypatch.setattr(
        pipeline, "report_progress", lambda item, d, t: (seen.append((d, t)), real(item, d, t))
    )
    analysed(clip(innocent, None, 20, None), uploader)
    assert seen == [(16, 20), (20, 20)]
