"""Video intake: MP4, WebM and MOV recognised by their bytes, checked from the container
header against the policy's caps, and decoded in one bounded pass."""

import io

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from tests.videos import DOORKNOB, encode
from uploads import video
from uploads.intake import Submission, ingest_bytes, take
from uploads.kinds import get_kind, kind_for
from uploads.models import MediaItem
from uploads.validation import RefusedUpload
from uploads.video import container_of, decode_video


def bars(n: int, size=(64, 48)) -> list[np.ndarray]:
    """Frames with a bar that moves, so none is a copy of the next."""
    frames = []
    for i in range(n):
        a = np.full((size[1], size[0], 3), 40, np.uint8)
        a[:, (i * 3) % size[0] : (i * 3) % size[0] + 6] = (250, 200, 30)
        frames.append(a)
    return frames


def test_mp4_webm_and_mov_are_recognised_by_their_bytes_not_their_name(db):
    clips = {
        "mp4": encode(bars(10)),
        "webm": encode(bars(10), container="webm", codec="libvpx-vp9"),
        "mov": encode(bars(10), container="mov"),
    }
    for name, data in clips.items():
        assert container_of(data) == name
        assert kind_for(data).name == "video"
    accepted = get_kind("video").validate(clips["webm"], max_bytes=10**8, max_pixels=10**8)
    assert (accepted.mime, accepted.extension) == ("video/webm", ".webm")
    assert accepted.details["duration"] == pytest.approx(1.0, abs=0.15)
    assert get_kind("video").validate(clips["mov"], max_bytes=10**8, max_pixels=10**8).mime == (
        "video/quicktime"
    )


def test_pictures_in_iso_containers_and_other_files_are_not_taken_for_video(db):
    assert container_of(b"\x00\x00\x00\x1cftypavif" + b"\x00" * 40) is None
    assert container_of(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40) is None
    assert container_of(b"%PDF-1.7 " + b"\x00" * 40) is None


def test_a_real_clip_is_accepted_through_the_upload_page(
    client, uploader, django_capture_on_commit_callbacks
):
    client.force_login(uploader)
    with open(DOORKNOB, "rb") as fh, django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("uploads:submit"), {"files": fh}, HTTP_ACCEPT="application/json"
        )
    assert response.status_code == 200, response.content
    item = MediaItem.objects.get()
    assert (item.kind, item.mime, item.width, item.height) == ("video", "video/mp4", 320, 180)
    assert item.details["duration"] == pytest.approx(4.0, abs=0.1)
    assert item.details["video"]["frames_analyzed"] == 4


def test_a_video_over_the_policys_length_is_refused_from_the_header(uploader, policy):
    policy.video_max_seconds = 3
    policy.save()
    with pytest.raises(RefusedUpload) as refused:
        ingest_bytes(DOORKNOB.read_bytes(), source="web", uploader=uploader)
    assert refused.value.code == "too_long"
    assert refused.value.message == "The video lasts 4 s; the limit is 3 s."
    assert not MediaItem.objects.exists()


def test_a_video_over_the_policys_size_is_refused_and_images_keep_their_cap(
    uploader, policy, settings, jpeg
):
    policy.video_max_mb = 1
    policy.save()
    noise = np.random.default_rng(1).integers(0, 256, (30, 240, 320, 3), dtype=np.uint8)
    big = encode(list(noise))  # noise does not compress: several MB
    assert len(big) > 1024 * 1024
    result = take([Submission(name="big.mp4", data=big)], source="web", uploader=uploader)
    assert result.refused[0].code == "too_large"
    assert result.refused[0].detail.endswith("the limit is 1.0 MB.") or "1 MB" in (
        result.refused[0].detail
    ), result.refused[0].detail
    # An image as large as a video may be is still held to the image cap.
    settings.UPLOAD_MAX_BYTES = 1000
    result = take([Submission(name="a.jpg", data=jpeg())], source="web", uploader=uploader)
    assert result.refused[0].code == "too_large"


def test_the_web_server_makes_room_for_one_video_of_the_largest_size(settings):
    assert settings.REQUEST_MAX_BYTES >= settings.VIDEO_MAX_BYTES + 1024 * 1024
    assert settings.UPLOAD_MAX_BYTES == 20 * 1024 * 1024  # images keep their cap


def test_the_policy_cannot_raise_the_size_cap_past_the_servers(policy, settings):
    settings.VIDEO_MAX_BYTES = 5 * 1024 * 1024
    policy.video_max_mb = 500
    policy.save()
    assert video.limits().max_bytes == 5 * 1024 * 1024


@pytest.mark.parametrize(
    "data, code",
    [
        (b"\x00\x00\x00\x18ftypisom" + b"\x00" * 200, "corrupt_video"),
        (b"\x1a\x45\xdf\xa3" + b"\x93\x42\x82\x88matroska" + b"\x00" * 64, "unsupported_format"),
    ],
)
def test_broken_and_unsupported_containers_are_refused_with_a_sentence(uploader, data, code):
    with pytest.raises(RefusedUpload) as refused:
        ingest_bytes(data, source="web", uploader=uploader)
    assert refused.value.code == code
    assert refused.value.message.endswith(".")


def test_a_clip_of_sound_only_is_refused(uploader):
    import av

    out = io.BytesIO()
    target = av.open(out, "w", format="mp4")
    stream = target.add_stream("aac", rate=44100)
    frame = av.AudioFrame.from_ndarray(
        np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
    )
    frame.sample_rate = 44100
    for _ in range(20):
        for packet in stream.encode(frame):
            target.mux(packet)
    for packet in stream.encode():
        target.mux(packet)
    target.close()
    with pytest.raises(RefusedUpload) as refused:
        ingest_bytes(out.getvalue(), source="web", uploader=uploader)
    assert refused.value.code == "no_video"


def test_a_truncated_header_is_refused_without_a_500(client, uploader):
    client.force_login(uploader)
    data = DOORKNOB.read_bytes()[:3000]
    upload = io.BytesIO(data)
    upload.name = "cut.mp4"
    response = client.post(
        reverse("uploads:submit"), {"files": upload}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] in {"corrupt_video", "unknown_duration"}


# -- the decode -------------------------------------------------------------------------


def test_one_pass_samples_once_a_second_and_hashes_every_frame_for_a_reference():
    data = DOORKNOB.read_bytes()
    upload = decode_video(data, sample_fps=1.0)
    assert [h.timestamp for h in upload.hashes] == [0.0, 1.0, 2.0, 3.0]
    assert [t for t, _ in upload.sampled] == [0.0, 1.0, 2.0, 3.0]
    assert upload.decoded == 120 and len(upload.positions) == 5
    reference = decode_video(data, every_frame=True)
    assert len(reference.hashes) == 120
    # The sampled frames' hashes are the reference's frames at the same moments.
    by_time = {h.timestamp: h.pdq for h in reference.hashes}
    assert all(by_time[h.timestamp] == h.pdq for h in upload.hashes)


def test_variable_frame_rates_are_sampled_by_each_frames_own_time():
    times = [0.0, 0.1, 0.2, 1.9, 2.05, 2.1, 4.5, 4.6]
    data = encode(bars(len(times)), times=times)
    found = decode_video(data, sample_fps=1.0)
    # The first frame at or after each second; a gap (2.1 → 4.5) skips the missed seconds.
    assert [t for t, _ in found.sampled] == [0.0, 1.9, 2.05, 4.5]


def test_rotation_metadata_turns_the_frames_upright():
    wide = np.zeros((48, 96, 3), np.uint8)
    wide[:, :48] = 255  # white on the left half
    data = encode([wide] * 5, rotation=90)
    found = decode_video(data, sample_fps=1.0)
    picture = np.asarray(found.sampled[0][1])
    assert picture.shape[:2] == (96, 48)  # portrait, as a player shows it
    assert picture[:48].mean() < 60 and picture[48:].mean() > 200  # a quarter turn anticlockwise


def test_positions_past_the_last_frame_take_the_last_frame(monkeypatch):
    data = encode(bars(10))
    monkeypatch.setattr(video, "stream_duration", lambda container, stream: 30.0)  # overstated
    found = decode_video(data)
    assert len(found.positions) == 5
    assert found.positions[-1].tobytes() == found.positions[-2].tobytes()
    assert found.duration == 30.0


def test_the_decode_stops_at_its_frame_cap_and_time_limit():
    data = encode(bars(200), fps=50)
    with pytest.raises(video.VideoDecodeError, match="more than 100 frames"):
        decode_video(data, max_frames=100)
    with pytest.raises(video.VideoDecodeError, match="took more than"):
        decode_video(data, timeout_s=1e-9)


def test_the_public_rendition_is_the_video_re_encoded_without_its_metadata():
    import av

    source = av.open(io.BytesIO(encode(bars(10))), "r")
    del source
    buf = io.BytesIO()
    target = av.open(buf, "w", format="mp4", options={})
    target.metadata["title"] = "secret-location-51.5N"
    stream = target.add_stream("libx264", rate=10)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    for picture in bars(10):
        for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
            target.mux(packet)
    for packet in stream.encode():
        target.mux(packet)
    target.close()
    data = buf.getvalue()
    assert b"secret-location" in data
    public = get_kind("video").public_rendition(data, "video/mp4")
    assert b"secret-location" not in public
    clip = av.open(io.BytesIO(public))
    assert len(list(clip.decode(clip.streams.video[0]))) == 10
    assert Image.fromarray(bars(1)[0]).size == (64, 48)
