"""Compressed PNG chunks (iCCP, zTXt, compressed iTXt) are scanned once inflated, with a
bound, as JPEG APP2 and WebP ICCP are scanned raw; a GIF comment is scanned with its
sub-blocks joined (issue 10)."""

import io
import random
import struct
import tracemalloc
import zipfile
import zlib

import pytest
from django.urls import reverse
from PIL import Image, ImageCms

from tests.conftest import encode
from uploads.models import MediaItem
from uploads.validation import (
    PNG_MAX_INFLATED_CHUNK,
    PNG_MAX_INFLATED_TOTAL,
    RefusedUpload,
    validate_image,
)

LIMITS = {"max_bytes": 20 * 1024 * 1024, "max_pixels": 50_000_000}
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def with_chunks(*chunks: bytes) -> bytes:
    """A small valid PNG with `chunks` after IHDR."""
    png = encode(Image.new("RGB", (32, 24), (120, 80, 40)), "PNG")
    return png[:33] + b"".join(chunks) + png[33:]


def iccp(profile: bytes) -> bytes:
    return chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(profile))


def ztxt(text: bytes) -> bytes:
    return chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(text))


def itxt_compressed(text: bytes) -> bytes:
    return chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x01\x00en\x00\x00" + zlib.compress(text))


def zip_archive() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("payload.html", "<script>alert(document.cookie)</script>")
    return buf.getvalue()


def refused(data: bytes) -> RefusedUpload:
    with pytest.raises(RefusedUpload) as caught:
        validate_image(data, **LIMITS)
    return caught.value


def test_a_zip_and_a_script_inside_a_compressed_icc_profile_are_refused():
    polyglot = with_chunks(iccp(SRGB + zip_archive()))
    assert Image.open(io.BytesIO(polyglot)).info["icc_profile"].startswith(SRGB)  # it decodes
    error = refused(polyglot)
    assert error.code == "polyglot" and "archive or a script" in error.message
    assert refused(with_chunks(iccp(SRGB + b"<html><script>x()</script>"))).code == "polyglot"


@pytest.mark.parametrize("make", [ztxt, itxt_compressed])
def test_scripts_in_compressed_text_chunks_are_refused(make):
    assert refused(with_chunks(make(b"hello <SCRIPT src=//evil.example>"))).code == "polyglot"
    assert refused(with_chunks(make(b"<?php system($_GET['c']); ?>"))).code == "polyglot"


def test_the_iccp_polyglot_is_refused_by_the_upload_page(client, uploader):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(uploader)
    response = client.post(
        reverse("uploads:submit"),
        {"files": [SimpleUploadedFile("p.png", with_chunks(iccp(SRGB + zip_archive())))]},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 400 and response.json()["code"] == "polyglot"
    assert not MediaItem.objects.exists()


def test_ordinary_compressed_metadata_is_accepted():
    data = with_chunks(
        iccp(SRGB), ztxt(b"Taken on a sunny day"), itxt_compressed(b"<x:xmpmeta>ok</x:xmpmeta>")
    )
    assert validate_image(data, **LIMITS).mime == "image/png"


def _bomb(size: int) -> bytes:
    """A zTXt chunk whose text is `size` zeros, compressed a MB at a time."""
    squeeze = zlib.compressobj(9)
    parts = [squeeze.compress(bytes(min(1 << 20, size - i))) for i in range(0, size, 1 << 20)]
    stream = b"".join(parts) + squeeze.flush()
    return chunk(b"zTXt", b"Comment\x00\x00" + stream)


def test_a_zlib_bomb_in_a_text_chunk_is_refused_without_inflating_it():
    bomb = with_chunks(_bomb(256 << 20))  # 256 MB of zeros in about 250 KB
    assert len(bomb) < 400_000
    tracemalloc.start()
    try:
        error = refused(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.code == "metadata_too_large"
    assert peak < 4 * PNG_MAX_INFLATED_CHUNK + (2 << 20), peak


def test_many_chunks_each_under_the_limit_are_refused_past_the_total():
    size = PNG_MAX_INFLATED_CHUNK - 1024
    many = with_chunks(*[_bomb(size)] * (PNG_MAX_INFLATED_TOTAL // size + 1))
    assert refused(many).code == "metadata_too_large"


def test_a_damaged_compressed_chunk_is_scanned_as_far_as_it_inflates():
    noise = random.Random(0).randbytes(5000)  # stays long once compressed
    stream = zlib.compress(b"A" * 5000 + b"<script>steal()</script>" + noise)
    damaged = stream[:-30] + b"\xff" * 30  # the tail no longer inflates
    data = with_chunks(chunk(b"zTXt", b"Comment\x00\x00" + damaged))
    assert refused(data).code == "polyglot"


def test_a_gif_comment_split_across_sub_blocks_is_refused():
    comment = b"a" * 252 + b"<script>alert(1)</script>"  # "<script" straddles byte 255
    data = encode(Image.new("RGB", (16, 16)), "GIF", comment=comment)
    assert b"<script" not in data.lower()  # a sub-block length byte splits it
    assert refused(data).code == "polyglot"
