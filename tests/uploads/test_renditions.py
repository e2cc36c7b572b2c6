"""Public renditions keep the picture and drop the metadata, in every accepted format."""

import io

import pytest
from PIL import Image

from uploads.renditions import render_public
from uploads.validation import validate_image


def frames(n, size=(64, 48)):
    return [Image.new("RGB", size, (40 * i % 255, 90, 160)) for i in range(n)]


@pytest.mark.parametrize(
    "fmt,mime",
    [("PNG", "image/png"), ("WEBP", "image/webp"), ("JPEG", "image/jpeg"), ("GIF", "image/gif")],
)
def test_each_format_renders_to_a_valid_image_of_the_same_size(fmt, mime):
    buf = io.BytesIO()
    frames(1)[0].save(buf, fmt)
    out = render_public(buf.getvalue(), mime)
    info = validate_image(out, max_bytes=10**7, max_pixels=10**7)
    assert info.mime == mime and (info.width, info.height) == (64, 48)


def test_an_animated_gif_keeps_its_frames_and_loses_its_comment():
    buf = io.BytesIO()
    first, *rest = frames(3)
    first.save(
        buf,
        "GIF",
        save_all=True,
        append_images=rest,
        duration=80,
        loop=0,
        comment=b"owner: alice@example.org",
    )
    out = Image.open(io.BytesIO(render_public(buf.getvalue(), "image/gif")))
    assert out.n_frames == 3
    assert "comment" not in out.info


def test_a_huge_photo_is_scaled_down_for_other_viewers():
    buf = io.BytesIO()
    Image.new("RGB", (4000, 3000), (10, 20, 30)).save(buf, "JPEG")
    out = Image.open(io.BytesIO(render_public(buf.getvalue(), "image/jpeg")))
    assert max(out.size) == 2048


@pytest.mark.parametrize(
    "fmt,mime", [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
)
def test_comments_exif_and_xmp_are_dropped(fmt, mime):
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    extra = {"comment": b"owner: alice"} if fmt == "JPEG" else {}
    if fmt == "WEBP":
        extra["xmp"] = b"<x:xmpmeta>alice</x:xmpmeta>"
    frames(1)[0].save(buf, fmt, exif=exif, **extra)
    out = render_public(buf.getvalue(), mime)
    assert b"SecretCam" not in out and b"alice" not in out
    assert not Image.open(io.BytesIO(out)).getexif()


@pytest.mark.parametrize("size", [(64, 48), (4000, 3000)], ids=["small", "reduced"])
def test_the_exif_orientation_is_applied_and_dropped(size):
    """A camera's portrait photo (landscape pixels, orientation 6) is shown upright, and the
    copy carries no orientation left to apply twice."""
    import numpy as np
    from PIL import ImageOps

    picture = Image.new("RGB", size, (0, 0, 200))
    picture.paste((250, 0, 0), (0, 0, size[0] // 4, size[1] // 4))  # a red top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    picture.save(buf, "PNG", exif=exif.tobytes())
    out = Image.open(io.BytesIO(render_public(buf.getvalue(), "image/png")))
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue())))
    expected.thumbnail((2048, 2048))
    assert out.size == expected.size == (min(size[1], 1536), min(size[0], 2048))
    assert not out.getexif()
    diff = np.abs(np.asarray(out, dtype=int) - np.asarray(expected.convert("RGB"), dtype=int))
    assert diff.mean() < 1  # the same picture: the red corner is now top right
    assert tuple(np.asarray(out)[2, -3]) == (250, 0, 0)
