"""The public copy carries pixels and a clean colour profile: the upload's ICC bytes are
never copied; the pixels are converted from the parsed profile to sRGB and a standard sRGB
profile is embedded (issue 10)."""

import io

import pytest
from PIL import Image, ImageCms

from tests.conftest import encode
from uploads.renditions import render_public, srgb_profile

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
FORMATS = [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")]


def profile_of(data: bytes) -> bytes | None:
    return Image.open(io.BytesIO(data)).info.get("icc_profile")


@pytest.mark.parametrize("fmt,mime", FORMATS)
def test_a_profile_carrying_extra_data_is_replaced_by_a_parsed_standard_one(fmt, mime):
    uploaded = SRGB + b"\x00<tracking id=ab12cd34 owner=alice>"
    data = encode(Image.new("RGB", (40, 30), (10, 200, 30)), fmt, icc_profile=uploaded)
    assert profile_of(data) == uploaded
    out = render_public(data, mime)
    icc = profile_of(out)
    assert icc is not None and icc != uploaded and b"alice" not in out
    assert icc == srgb_profile()
    parsed = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    assert parsed.profile.xcolor_space.strip() == "RGB"
    pixel = Image.open(io.BytesIO(out)).convert("RGB").getpixel((5, 5))
    assert all(abs(a - b) <= 3 for a, b in zip(pixel, (10, 200, 30), strict=True))


@pytest.mark.parametrize("fmt,mime", FORMATS)
def test_a_profile_that_does_not_parse_is_dropped_for_the_standard_one(fmt, mime):
    data = encode(Image.new("RGB", (40, 30), (90, 60, 30)), fmt, icc_profile=b"junk" * 64)
    out = render_public(data, mime)
    assert profile_of(out) == srgb_profile() and b"junkjunk" not in out


def test_an_image_without_a_profile_gets_none():
    out = render_public(encode(Image.new("RGB", (40, 30)), "PNG"), "image/png")
    assert profile_of(out) is None


def test_the_standard_profile_is_the_same_in_every_process():
    assert srgb_profile()[24:36] == bytes(12)  # no creation date
    assert ImageCms.ImageCmsProfile(io.BytesIO(srgb_profile())).profile.profile_description


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "LA", "I;16"])
def test_every_pixel_mode_with_a_profile_renders(mode):
    image = Image.new("RGBA", (20, 10), (10, 20, 30, 128)).convert(mode)
    out = render_public(encode(image, "PNG", icc_profile=SRGB + b"extra"), "image/png")
    assert profile_of(out) == srgb_profile()
    assert Image.open(io.BytesIO(out)).size == (20, 10)
