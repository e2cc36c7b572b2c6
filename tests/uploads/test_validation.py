"""validate_image on real photographs, generated images and hostile files."""

import hashlib
import io
import struct
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile
from skimage import data as skdata

from uploads.validation import ImageInfo, RefusedUpload, validate_image

VENUS = Path(__file__).resolve().parents[1] / "fixtures" / "venus-of-urbino-titian.jpg"
LIMITS = {"max_bytes": 20 * 1024 * 1024, "max_pixels": 50_000_000}


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def refused(data: bytes, **limits) -> RefusedUpload:
    with pytest.raises(RefusedUpload) as caught:
        validate_image(data, **{**LIMITS, **limits})
    return caught.value


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bilevel_png(width: int, height: int) -> bytes:
    """A valid one-colour 1-bit PNG, built row by row so that even huge ones stay small."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def cat() -> Image.Image:
    return Image.fromarray(skdata.chelsea())  # 451x300 RGB photograph


@pytest.fixture(scope="module")
def cat_jpeg(cat) -> bytes:
    return encode(cat, "JPEG", quality=90)


@pytest.fixture(scope="module")
def cat_png(cat) -> bytes:
    return encode(cat, "PNG")


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any image data is decoded."""

    def load(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


# Accepted images


@pytest.mark.parametrize(
    ("fmt", "options", "mime", "extension"),
    [
        ("JPEG", {"quality": 85}, "image/jpeg", ".jpg"),
        ("JPEG", {"quality": 85, "progressive": True}, "image/jpeg", ".jpg"),
        ("PNG", {}, "image/png", ".png"),
        ("GIF", {}, "image/gif", ".gif"),
        ("WEBP", {"quality": 80}, "image/webp", ".webp"),
        ("WEBP", {"lossless": True}, "image/webp", ".webp"),
    ],
)
def test_accepts_each_format(cat, fmt, options, mime, extension):
    data = encode(cat, fmt, **options)
    info = validate_image(data, **LIMITS)
    assert info == ImageInfo(
        format=fmt,
        mime=mime,
        extension=extension,
        width=451,
        height=300,
        size=len(data),
        sha256=info.sha256,
    )
    assert len(info.sha256) == 64


def test_accepts_real_photographs():
    venus = validate_image(VENUS.read_bytes(), **LIMITS)
    assert (venus.format, venus.width, venus.height) == ("JPEG", 380, 267)
    assert venus.sha256 == hashlib.sha256(VENUS.read_bytes()).hexdigest()
    for name in ("astronaut", "coffee", "rocket"):
        photo = Image.fromarray(getattr(skdata, name)())
        info = validate_image(encode(photo, "JPEG"), **LIMITS)
        assert (info.width, info.height) == photo.size


def test_accepts_greyscale_palette_and_transparency():
    camera = Image.fromarray(skdata.camera())
    assert validate_image(encode(camera, "PNG"), **LIMITS).format == "PNG"
    assert validate_image(encode(camera, "JPEG"), **LIMITS).format == "JPEG"
    rgba = Image.new("RGBA", (64, 32), (255, 0, 0, 128))
    assert validate_image(encode(rgba, "PNG"), **LIMITS).mime == "image/png"
    assert validate_image(encode(rgba, "WEBP"), **LIMITS).mime == "image/webp"
    assert validate_image(encode(rgba.convert("P"), "GIF"), **LIMITS).size > 0


def test_camera_style_jpeg_with_metadata_and_padding(cat):
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "Canon EOS 5D"  # Model
    exif[0x010E] = "A cat <b>on a rug</b> at http://example.com/index.html"
    xmp = (
        b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
        b'<?xpacket end="w"?>'
    )
    data = encode(cat, "JPEG", exif=exif, xmp=xmp, comment=b"Taken with love") + b"\x00" * 512
    info = validate_image(data, **LIMITS)
    assert (info.format, info.width) == ("JPEG", 451)


def test_multi_picture_jpeg_is_one_jpeg(cat):
    """Ultra HDR and stereo photos append a second JPEG declared in the MPF segment."""
    data = encode(cat, "MPO", save_all=True, append_images=[cat.rotate(90)])
    info = validate_image(data, max_bytes=LIMITS["max_bytes"], max_pixels=451 * 300)
    assert (info.format, info.mime, info.extension) == ("JPEG", "image/jpeg", ".jpg")
    assert refused(data + b"PK\x05\x06" + b"\x00" * 18).code == "polyglot"


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animations_count_every_frame(cat, fmt):
    frames = [cat.rotate(angle) for angle in (0, 90, 180, 270)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)
    info = validate_image(data, **LIMITS)
    assert (info.format, info.width, info.height) == (fmt, 451, 300)

    error = refused(data, max_pixels=451 * 300 * 3)
    assert error.code == "too_many_pixels"
    assert "4 frames" in error.message
    assert "the limit is 405,900 pixels" in error.message


def test_format_comes_from_content_not_name(tmp_path, cat_png):
    upload = tmp_path / "holiday.jpg"
    upload.write_bytes(cat_png)
    info = validate_image(upload.read_bytes(), **LIMITS)
    assert (info.format, info.mime, info.extension) == ("PNG", "image/png", ".png")


# Refused: format


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"Just some text, not an image.\n", id="text"),
        pytest.param(b"<!DOCTYPE html><html><body>hello</body></html>", id="html"),
        pytest.param(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n", id="pdf"),
        pytest.param(
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" '
            b'height="10"><script>alert(1)</script></svg>',
            id="svg",
        ),
        pytest.param(encode(Image.new("RGB", (20, 20), "blue"), "BMP"), id="bmp"),
        pytest.param(encode(Image.new("RGB", (20, 20), "blue"), "TIFF"), id="tiff"),
        pytest.param(encode(Image.new("RGB", (20, 20), "blue"), "ICO"), id="ico"),
        pytest.param(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 28, id="wav-riff"),
        pytest.param(b"\x00" * 64, id="zeros"),
    ],
)
def test_refuses_other_formats(data):
    error = refused(data)
    assert error.code == "unsupported_format"
    assert "JPEG, PNG, GIF or WebP" in error.message


def test_refuses_empty_file():
    assert refused(b"").code == "empty"


# Refused: limits


def test_refuses_too_large_before_decoding(monkeypatch, cat_jpeg):
    def open_(*args, **kwargs):
        raise AssertionError("Pillow was asked to open an oversized file")

    monkeypatch.setattr(Image, "open", open_)
    error = refused(cat_jpeg + b"\x00" * (21 * 1024 * 1024))
    assert error.code == "too_large"
    assert error.message.endswith("the limit is 20 MB.")
    assert "The file is 21" in error.message

    assert "the limit is 10 KB" in refused(cat_jpeg, max_bytes=10 * 1024).message
    # Rounding must not make the file look as big as the limit.
    assert refused(b"x" * 1025, max_bytes=1024).message == (
        "The file is 1,025 bytes; the limit is 1,024 bytes."
    )


def test_refuses_too_many_pixels_from_header(cat_png, no_decoding):
    error = refused(cat_png, max_pixels=100_000)
    assert error.code == "too_many_pixels"
    assert error.message == (
        "The image is 451×300 pixels (135,300 pixels); the limit is 100,000 pixels."
    )


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """20000x20000 pixels (400 MB once decoded) in a file of about 50 KB."""
    return bilevel_png(20_000, 20_000)


def test_refuses_decompression_bomb_without_decoding(bomb, no_decoding):
    assert len(bomb) < 100_000
    started = time.perf_counter()
    error = refused(bomb)
    assert time.perf_counter() - started < 0.5
    assert error.code == "too_many_pixels"
    assert "the limit is 50 megapixels" in error.message


def test_pillow_bomb_warning_is_a_refusal_too(no_decoding):
    """Within our own limit but over Pillow's: its warning must not pass silently."""
    data = bilevel_png(10_000, 10_000)  # 100 Mpx: Pillow warns above ~89 Mpx
    error = refused(data, max_pixels=150_000_000)
    assert error.code == "too_many_pixels"
    assert "megapixels" in error.message


# Refused: damaged files


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_refuses_truncated(cat, fmt, keep):
    data = encode(cat, fmt)
    error = refused(data[: int(len(data) * keep)])
    assert error.code == "truncated"
    assert "incomplete" in error.message


def test_truncation_is_caught_even_if_pillow_is_told_to_tolerate_it(monkeypatch, cat_jpeg, cat_png):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    assert refused(cat_jpeg[:-2000]).code == "truncated"
    assert refused(cat_png[:-2000]).code == "truncated"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_refuses_random_garbage_after_a_valid_header(cat, fmt):
    data = encode(cat, fmt)
    header = {"JPEG": 20, "PNG": 33, "GIF": 13, "WEBP": 30}[fmt]
    garbage = np.random.default_rng(7).bytes(len(data) - header)
    error = refused(data[:header] + garbage)
    assert error.code in {"corrupt", "truncated"}


def test_refuses_png_with_bad_checksum(cat_png):
    broken = bytearray(cat_png)
    broken[len(broken) // 2] ^= 0xFF
    assert refused(bytes(broken)).code == "corrupt"


# Refused: polyglots


def zip_archive() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_refuses_image_with_zip_appended(cat, fmt):
    data = encode(cat, fmt) + zip_archive()
    assert zipfile.is_zipfile(io.BytesIO(data))
    error = refused(data)
    assert error.code == "polyglot"
    assert "extra data after the end" in error.message


def test_refuses_gif_with_script_appended(cat):
    """A GIF that is also valid JavaScript: the trailer byte alone is not the end."""
    assert refused(encode(cat, "GIF") + b"=1;alert(document.domain);").code == "polyglot"


def test_refuses_html_before_jpeg(cat_jpeg):
    data = b"<html><body><script>fetch('/steal')</script></body></html>\n" + cat_jpeg
    error = refused(data)
    assert error.code == "polyglot"
    assert "text (such as a web page) before the image" in error.message


def test_refuses_webp_whose_riff_size_is_not_the_file_size(cat):
    data = encode(cat, "WEBP")
    assert refused(data + b"<?php system($_GET['c']); ?>").code == "polyglot"
    shorter = data[:4] + struct.pack("<I", len(data) - 8 - 100) + data[8:]
    assert refused(shorter).code in {"polyglot", "corrupt"}


def test_refuses_scripts_and_archives_hidden_in_metadata(cat, cat_png):
    jpeg = encode(cat, "JPEG", comment=b"<?php system($_GET['c']); ?>")
    assert refused(jpeg).code == "polyglot"

    text = png_chunk(b"tEXt", b"Comment\x00<SCRIPT src=//evil.example></SCRIPT>")
    png = cat_png[:33] + text + cat_png[33:]
    assert refused(png).code == "polyglot"

    gif = encode(cat, "GIF", comment=zip_archive())
    assert refused(gif).code == "polyglot"


def test_is_quick_for_a_large_photo():
    big = Image.fromarray(skdata.astronaut()).resize((3000, 3000))
    data = encode(big, "JPEG", quality=90)
    started = time.perf_counter()
    validate_image(data, **LIMITS)
    assert time.perf_counter() - started < 2.0
