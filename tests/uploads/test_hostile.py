"""Hostile input bounded by what is decoded: extreme proportions, many-frame GIFs, pictures
at the pixel cap and request bodies over the cap (the real server in a subprocess).

Memory is measured as the growth of this process's (or the server's) peak RSS: VmHWM after
resetting it through /proc/<pid>/clear_refs (Linux; the tests skip elsewhere).
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import GifImagePlugin, Image

from hashing.algorithms import fingerprint
from hashing.services import BankError, hash_reference
from review.classifiers import get_classifier
from review.classifiers import nudenet as nn
from uploads import intake, kinds, renditions
from uploads.models import MediaItem
from uploads.validation import RefusedUpload, validate_image

REPO = Path(__file__).resolve().parents[2]
MB = 1 << 20


def _status_mb(pid: int | str, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def _reset_peak(pid: int | str = "self") -> None:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError as exc:
        pytest.skip(f"cannot reset the peak RSS through /proc ({exc})")


class Peak:
    """Growth of the peak RSS (MB) and CPU seconds of this process within the block."""

    def __enter__(self):
        _reset_peak()
        self.before = _status_mb("self", "VmRSS")
        self.cpu = time.process_time()
        return self

    def __exit__(self, *exc):
        self.growth = _status_mb("self", "VmHWM") - self.before
        self.cpu = time.process_time() - self.cpu


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def flat_png(width: int, height: int, colour_type: int = 2) -> bytes:
    """A one-colour 8-bit PNG, built row by row (never held decoded)."""
    channels = {0: 1, 2: 3, 6: 4}[colour_type]
    row = b"\x00" + b"\x7f" * (width * channels)
    compressor = zlib.compressobj(6)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def many_frames_gif(frames: int) -> bytes:
    """`frames` frames of one pixel, 15 bytes each: 1.3 million fit in 20 MB."""
    header = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return header + loop + frame * frames + b"\x3b"


# -- extreme proportions ---------------------------------------------------------------------


def test_a_one_pixel_strip_is_refused_at_intake_from_its_header(uploader):
    strip = flat_png(20_000, 1)
    assert len(strip) < 200
    result = intake.take(
        [intake.Submission(name="strip.png", data=strip)], source="web", uploader=uploader
    )
    assert not result.accepted and not MediaItem.objects.exists()
    refusal = result.refused[0]
    assert refusal.code == "too_narrow"
    assert "20,000×1 pixels" in refusal.detail and "25 to 1" in refusal.detail


@pytest.mark.parametrize(
    ("size", "code"),
    [
        ((1_080, 24_000), None),  # a long screenshot, 1:22
        ((12_000, 1_200), None),  # a panorama, 10:1
        ((1_000, 25_001), "too_narrow"),
        ((30_001, 1_500), "too_long"),
    ],
)
def test_sides_and_proportions_are_capped(size, code):
    data = flat_png(*size, colour_type=0)
    if code is None:
        assert validate_image(data, max_bytes=20 * MB, max_pixels=50_000_000).width == size[0]
    else:
        with pytest.raises(RefusedUpload) as refused:
            validate_image(data, max_bytes=20 * MB, max_pixels=50_000_000)
        assert refused.value.code == code


@pytest.fixture(scope="module")
def warm_classifier():
    classifier = get_classifier("nudenet")
    classifier.classify(Image.new("RGB", (64, 48)))  # the model is loaded before measuring
    return classifier


def test_a_strip_is_analysed_in_bounded_memory_and_time(warm_classifier):
    """20000x1 pixels in 141 bytes: the classifier's square input was 20000² (1.2 GB, 3 s of
    CPU) and the hashes' copy kept its 20000 px side (reduction factor 0)."""
    strip = flat_png(20_000, 1)
    with Peak() as peak:
        frames = kinds.get_kind("image").sample(strip)
        subject = frames.frames[0].subject
        fingerprint(subject, mirrored=True)
        warm_classifier.classify(subject)
    assert max(subject.size) <= kinds.ANALYSIS_MAX_SIDE
    assert peak.growth < 60, f"+{peak.growth:.0f} MB"
    assert peak.cpu < 1.0, f"{peak.cpu:.2f} s of CPU"


def test_a_strip_through_intake_and_analysis_when_the_limit_is_lifted(
    settings, uploader, warm_classifier, django_capture_on_commit_callbacks
):
    settings.UPLOAD_MAX_ASPECT_RATIO = 1_000_000
    settings.UPLOAD_MAX_SIDE = 1_000_000
    strip = flat_png(20_000, 1)
    with Peak() as peak, django_capture_on_commit_callbacks(execute=True):
        result = intake.take(
            [intake.Submission(name="strip.png", data=strip)], source="web", uploader=uploader
        )
    assert result.accepted, result.refused
    item = MediaItem.objects.get()
    assert item.status != MediaItem.Status.PROCESSING and item.width == 20_000
    assert peak.growth < 100, f"+{peak.growth:.0f} MB"
    assert peak.cpu < 2.0, f"{peak.cpu:.2f} s of CPU"


def test_bank_references_have_the_same_bounds():
    with pytest.raises(BankError) as refused:
        hash_reference(flat_png(20_000, 1), "strip.png")
    assert "“strip.png”: The image is 20,000×1 pixels" in str(refused.value)
    assert "25 to 1" in str(refused.value)


def test_the_classifier_input_is_nudenets_padded_square_without_making_it():
    rng = np.random.default_rng(3)
    for width, height in [(640, 480), (480, 640), (640, 640), (3000, 1), (1, 700), (321, 7)]:
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        rgb = np.asarray(image)
        side = max(width, height)
        square = np.zeros((side, side, 3), dtype=np.uint8)
        square[:height, :width] = rgb
        expected = cv2.dnn.blobFromImage(
            cv2.resize(square, (320, 320), interpolation=cv2.INTER_LINEAR), 1 / 255.0, swapRB=True
        )
        blob, w, h = nn.preprocess(image)
        np.testing.assert_array_equal(blob, expected)
        assert (w, h) == (width, height)


# -- pictures at the pixel cap ---------------------------------------------------------------


def test_an_rgba_picture_at_the_pixel_cap_is_sampled_holding_little_beyond_its_decode():
    """7000x7000 RGBA (196 MB decoded): flattening and reducing it whole took five copies
    (+935 MB); a band at a time, the decoded picture is the only large thing held."""
    data = flat_png(7_000, 7_000, colour_type=6)
    decoded = 7_000 * 7_000 * 4 / MB
    with Peak() as peak:
        frames = kinds.get_kind("image").sample(data)
    assert frames.frames[0].subject.size == (389, 389)
    assert peak.growth < decoded + 60, f"+{peak.growth:.0f} MB for {decoded:.0f} MB decoded"


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "LA", "I;16"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_bands_give_the_same_pixels_as_the_whole_picture(monkeypatch, mode, orientation):
    from PIL import ImageOps

    rng = np.random.default_rng(orientation)
    width, height = 1_001, 803
    rgba = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(rng.random((height, width)) < 0.3, 0, rgba[..., 3])
    if mode == "P":
        image = Image.fromarray(rgba[..., :3]).quantize(64)
        extra = {"transparency": 3}
    elif mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65_535, (height, width), dtype=np.uint16))
        extra = {}
    else:
        image = Image.fromarray(rgba, "RGBA").convert(mode)
        extra = {}
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    image.save(buf, "PNG", exif=exif.tobytes(), **extra)
    data = buf.getvalue()

    whole = kinds.prepare(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    factor = kinds.reduction_factor(whole.width, whole.height, (384, 384))
    whole = whole.reduce(factor)
    monkeypatch.setattr(kinds, "STRIP_PIXELS", 7_000)  # many bands
    banded = kinds.open_for_hashing(data)
    assert banded.size == whole.size
    np.testing.assert_array_equal(np.asarray(banded), np.asarray(whole))


# -- the public copy of a picture at the caps ------------------------------------------------


@pytest.mark.parametrize(
    ("size", "colour_type"),
    [((7_000, 7_000), 6), ((1_200, 30_000), 2)],
    ids=["49 Mpx RGBA", "1:25 screenshot"],
)
def test_the_public_copy_holds_little_beyond_the_decoded_picture(size, colour_type):
    """Whole, exif_transpose and thumbnail each copied the picture (RGBA twice, premultiplied
    for the resize): +445 MB for 7000x7000 RGBA (187 MB decoded) and +275 MB for the
    screenshot (137 MB), taking the web process or worker past 500 MB. Reduced a band at a
    time, only the reduced copy (at most 4096 px) is resized."""
    data = flat_png(*size, colour_type=colour_type)
    decoded = size[0] * size[1] * 4 / MB  # Pillow keeps RGB in 4 bytes a pixel too
    with Peak() as peak:
        out = renditions.render_public(data, "image/png")
    copy = Image.open(io.BytesIO(out))
    assert copy.size == renditions.fit_size(*size) and max(copy.size) == 2048
    pixels = np.asarray(copy.convert("RGB"))
    assert 0x7E <= pixels.min() <= pixels.max() <= 0x7F  # the picture's grey, all over
    assert peak.growth < decoded + 45, f"+{peak.growth:.0f} MB for {decoded:.0f} MB decoded"


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "LA", "L", "I;16"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_public_copy_in_bands_is_the_whole_picture_reduced(monkeypatch, mode, orientation):
    """The same pixels as turning the whole picture upright, reducing and resizing it."""
    from PIL import ImageOps

    rng = np.random.default_rng(orientation)
    width, height = 1_001, 803
    rgba = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(rng.random((height, width)) < 0.3, 0, rgba[..., 3])
    extra = {}
    if mode == "P":
        image = Image.fromarray(rgba[..., :3]).quantize(64)
        extra = {"transparency": 3}
    elif mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65_535, (height, width), dtype=np.uint16))
    else:
        image = Image.fromarray(rgba, "RGBA").convert(mode)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    image.save(buf, "PNG", exif=exif.tobytes(), **extra)
    data = buf.getvalue()

    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    size = renditions.fit_size(*upright.size, side=300)
    factor = min(upright.width // size[0], upright.height // size[1])
    assert factor == 3
    work = {"P": "RGBa", "RGBA": "RGBa", "LA": "La", "I;16": "I"}.get(mode, mode)
    working = upright.convert("RGBA") if mode == "P" else upright
    reduced = working.convert(work).reduce(factor)
    box = (0, 0, upright.width / factor, upright.height / factor)
    whole = reduced.resize(size, renditions.RESAMPLE, box=box)
    whole = whole.convert({"RGBa": "RGBA", "La": "LA", "I": "I;16"}.get(work, work))

    monkeypatch.setattr(renditions, "BAND_PIXELS", 7_000)  # many bands
    banded = renditions.shrink(Image.open(io.BytesIO(data)), size)
    assert (banded.mode, banded.size) == (whole.mode, whole.size)
    np.testing.assert_array_equal(np.asarray(banded), np.asarray(whole))


def test_a_large_palette_picture_is_averaged_not_sampled():
    """Palette indexes cannot be averaged, and resizing a palette picture picks the nearest
    pixel: a fine black and white check came out all black or all white. Its copy is the
    grey a viewer sees from afar."""
    check = (np.indices((4_200, 4_200)).sum(axis=0) % 2 * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(check).convert("P").save(buf, "PNG")
    copy = Image.open(io.BytesIO(renditions.render_public(buf.getvalue(), "image/png")))
    grey = np.asarray(copy.convert("L"), dtype=float)
    assert copy.size == (2048, 2048)
    assert abs(grey.mean() - 127.5) < 2 and grey.std() < 8


def test_a_wide_jpeg_is_decoded_at_a_reduced_scale_and_still_fills_the_public_size():
    """A square draft request kept an 8200x2000 JPEG at full size (2000 // 2048 = 0); asked
    for its own proportions, the decoder works at a quarter scale (2050x500)."""
    assert renditions.draft_size((8_200, 2_000)) == (2048, 500)
    image = Image.new("RGB", (8_200, 2_000), (200, 40, 40))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    opened = Image.open(io.BytesIO(buf.getvalue()))
    opened.draft(opened.mode, renditions.draft_size(opened.size))
    assert opened.size == (2_050, 500)
    copy = Image.open(io.BytesIO(renditions.render_public(buf.getvalue(), "image/jpeg")))
    assert copy.size == (2048, 500)


# -- many-frame GIFs -------------------------------------------------------------------------


def test_a_gif_of_a_million_frames_is_refused_without_pillow_walking_them(monkeypatch):
    """1.3 million 1-pixel frames in 19.5 MB: Pillow's n_frames walks every frame (1.2 s of
    CPU); the structure walk, which runs anyway, counts them."""
    data = many_frames_gif(1_300_000)
    assert len(data) < 20 * MB

    def walked(self):
        raise AssertionError("Pillow was asked to walk every frame")

    monkeypatch.setattr(GifImagePlugin.GifImageFile, "n_frames", property(walked))
    started = time.process_time()
    with pytest.raises(RefusedUpload) as refused:
        validate_image(data, max_bytes=20 * MB, max_pixels=50_000_000)
    assert time.process_time() - started < 1.0
    assert refused.value.code == "too_many_frames"
    assert "1,300,000 frames; the limit is 1,000" in refused.value.message


def test_a_gif_within_the_frame_cap_is_counted_as_pillow_counts_it():
    data = many_frames_gif(999)
    assert validate_image(data, max_bytes=20 * MB, max_pixels=50_000_000).frames == 999
    assert Image.open(io.BytesIO(data)).n_frames == 999


# -- request bodies: the real server ---------------------------------------------------------

CAP = 2 * MB


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """python -m moderation_site.server on a free loopback port, request cap 2 MB."""
    tmp = tmp_path_factory.mktemp("server")
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "PRIVATE_MEDIA_ROOT": str(tmp / "private"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "REQUEST_MAX_BYTES": str(CAP),
        "LOG_LEVEL": "WARNING",
    }
    log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moderation_site.server", "-b", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp / "server.log").read_text()[-3000:]) from None
                time.sleep(0.1)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _head(path: str, *lines: str) -> bytes:
    return ("\r\n".join([f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *lines]) + "\r\n\r\n").encode()


def _answer(sock: socket.socket) -> tuple[int, dict, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        got = sock.recv(65536)
        assert got, f"connection closed without an answer: {data!r}"
        data += got
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split(b" ")[1]), json.loads(body), head


def test_a_body_over_the_cap_is_refused_from_content_length_before_it_is_sent(server):
    port, pid = server
    _reset_peak(pid)
    before = _status_mb(pid, "VmRSS")
    multipart = "Content-Type: multipart/form-data; boundary=x"
    for path in ("/nope/", "/uploads/submit/", "/api/v1/review/"):
        sock = _connect(port)
        sock.sendall(_head(path, multipart, f"Content-Length: {100 * MB}"))  # no body at all
        status, body, head = _answer(sock)
        assert status == 413, (path, body)
        assert body == {
            "code": "too_large",
            "detail": "The request body is 100 MB; the limit is 2 MB.",
        }
        assert b"content-type: application/json" in head.lower()
        assert b"connection: close" in head.lower()
        sock.close()
    assert _status_mb(pid, "VmHWM") - before < 20


def test_expect_100_continue_gets_the_refusal_instead_of_the_go_ahead(server):
    port, _ = server
    sock = _connect(port)
    sock.sendall(_head("/nope/", "Expect: 100-continue", f"Content-Length: {10 * MB}"))
    status, body, head = _answer(sock)
    assert status == 413 and b"100 Continue" not in head
    sock.close()


def test_a_chunked_body_is_refused_once_it_passes_the_cap_and_nothing_is_kept(server):
    port, pid = server
    _reset_peak(pid)
    before = _status_mb(pid, "VmRSS")
    sock = _connect(port)
    sock.sendall(
        _head(
            "/nope/", "Transfer-Encoding: chunked", "Content-Type: multipart/form-data; boundary=x"
        )
    )
    block = b"\0" * (256 * 1024)
    sent = 0
    answer = b""
    # Whole chunks only (a partial non-blocking send would break the chunked framing and
    # earn a second answer, 400); the answer is looked for between chunks.
    try:
        while sent < 50 * MB and not answer:
            sock.sendall(b"%x\r\n" % len(block) + block + b"\r\n")
            sent += len(block)
            if select.select([sock], [], [], 0)[0]:
                answer = sock.recv(65536)
    except (BrokenPipeError, ConnectionResetError):
        pass
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 413")
    assert CAP <= sent < CAP + 16 * MB  # answered as soon as it passed the cap
    assert json.loads(body[:length])["code"] == "too_large"
    sock.close()
    assert _status_mb(pid, "VmHWM") - before < 20


def test_a_body_within_the_cap_reaches_the_application(server):
    port, _ = server
    sock = _connect(port)
    body = b"x" * (CAP - 1000)
    sock.sendall(_head("/nope/", "Accept: application/json", f"Content-Length: {len(body)}") + body)
    status, answer, _ = _answer(sock)
    assert status == 404 and answer["code"] == "not_found"
    sock.close()


# -- the body queue, without a server --------------------------------------------------------


async def test_the_application_reads_the_body_from_the_file_as_it_asks():
    # Imported here: importing daphne.server installs Twisted's asyncio reactor.
    from moderation_site.server import BODY_CHUNK, BodyQueue

    class Request:
        content = io.BytesIO(bytes(range(256)) * (BODY_CHUNK // 64 + 3))

    body = Request.content.getvalue()
    queue = BodyQueue(Request)
    Request.content.seek(0)
    while True:  # what daphne's WebRequest.process does with the queue
        chunk = Request.content.read(8192)
        more = len(chunk) == 8192
        queue.put_nowait({"type": "http.request", "body": chunk, "more_body": more})
        if not more:
            break
    assert queue.qsize() == 0  # nothing of the body was queued
    got = []
    while True:
        message = await queue.get()
        got.append(message["body"])
        assert len(message["body"]) <= BODY_CHUNK
        if not message["more_body"]:
            break
    assert b"".join(got) == body and len(got) > 1
    queue.put_nowait({"type": "http.disconnect"})
    assert (await queue.get())["type"] == "http.disconnect"
