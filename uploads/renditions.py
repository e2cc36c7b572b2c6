"""What other people see of an image: re-encoded pixels and, at most, a standard sRGB colour
profile. No EXIF (GPS, camera serials), XMP, comments, text chunks or embedded profile of
the upload reaches them. The original stays byte-exact for moderators and evidence.

A rendition is made once, in the worker, with the analysis (``uploads.services
.make_public_copy``), never in a web request. Its work is bounded: an animation keeps at
most ``max_frames`` frames and ``ANIMATION_MAX_PIXELS`` pixels over all of them, and its
total duration is clamped so that Pillow's GIF writer (which merges identical frames and
writes each delay as a 16-bit count of 1/100 s, 655.35 s at most) cannot overflow. If a
rendition still fails (an OverflowError, a decoder error), the public copy is a still of the
first frame.

Colour: an embedded ICC profile is never copied. The profile is parsed (littleCMS) and the
pixels are converted from it to sRGB, and the copy carries a standard sRGB profile made
here. A profile that does not parse, or does not fit the pixels, is dropped and the pixels
are taken as sRGB. (Re-serialising a parsed profile is not enough: littleCMS copies the
tags it did not read verbatim, and a private tag can hold anything.)
"""

from __future__ import annotations

import io
import logging
import math
from functools import cache

import numpy as np
from PIL import Image, ImageCms, ImageOps

log = logging.getLogger(__name__)

PUBLIC_MAX_SIDE = 2048
# Pixels over all the frames of an animation's public copy (RGBA in memory: 4 bytes each).
ANIMATION_MAX_PIXELS = 24_000_000
# The longest an animation's loop may last in its public copy; longer ones are sped up.
# Below Pillow's GIF limit of 655.35 s for one delay, which identical frames summed reach.
MAX_LOOP_MS = 600_000
DEFAULT_FRAME_MS = 100
MAX_LOOPS = 0xFFFF  # the NETSCAPE2.0 loop count is 16 bits


def public_name(item) -> str:
    """Where the public copy is stored: the originals' private storage, under ``public-v2``
    (the ``public/`` copies of earlier versions carried the upload's ICC profile verbatim
    and are no longer served)."""
    ext = {"image/png": "png", "image/gif": "gif", "image/webp": "webp"}.get(item.mime, "jpg")
    return f"public-v2/{item.uuid.hex[:2]}/{item.uuid.hex}.{ext}"


def render_public(data: bytes, mime: str, *, max_frames: int = 1000) -> bytes:
    """The public copy of an image; a still of its first frame when the full rendition
    fails. Raises only if even the still cannot be made (undecodable data)."""
    try:
        if mime == "image/gif":
            return _animation(data, max_frames)
        return _still(data, mime)
    except Exception as exc:  # OverflowError, decoder and encoder errors, MemoryError...
        log.warning("public rendition failed (%s: %s): a still instead", type(exc).__name__, exc)
        return first_frame_still(data, mime)


def first_frame_still(data: bytes, mime: str) -> bytes:
    """The fallback: the first frame alone, no profile, in the item's format."""
    image = Image.open(io.BytesIO(data))
    image.seek(0)
    alpha = _has_alpha(image)
    image = image.convert("RGBA" if alpha else "RGB")
    image.thumbnail((PUBLIC_MAX_SIDE, PUBLIC_MAX_SIDE))
    image.info = {}
    return _encode(image, mime, icc=None)


def _animation(data: bytes, max_frames: int) -> bytes:
    image = Image.open(io.BytesIO(data))
    total = max(1, min(getattr(image, "n_frames", 1), max_frames))
    size = _animation_size(image.size, total)
    loop = image.info.get("loop", 0)
    durations, pictures = [], []
    # Fresh frames carry no info, so no comment or application block is written back.
    for index in range(total):
        image.seek(index)  # composes the frame from those before it, as a viewer does
        durations.append(image.info.get("duration", DEFAULT_FRAME_MS))
        picture = image.convert("RGBA")  # convert() copies info, comments included
        if picture.size != size:
            picture = picture.resize(size, Image.Resampling.BOX)
        picture.info = {}
        pictures.append(picture)
    first, *rest = pictures
    out = io.BytesIO()
    first.save(
        out,
        "GIF",
        save_all=True,
        append_images=rest,
        duration=clamp_durations(durations),
        loop=min(max(int(loop or 0), 0), MAX_LOOPS),
        disposal=2,
    )
    return out.getvalue()


def _animation_size(size: tuple[int, int], frames: int) -> tuple[int, int]:
    """The frame size that keeps the longest side and all frames' pixels within bounds."""
    width, height = size
    scale = min(
        1.0,
        PUBLIC_MAX_SIDE / max(width, height, 1),
        math.sqrt(ANIMATION_MAX_PIXELS / max(width * height * frames, 1)),
    )
    if scale >= 1.0:
        return size
    return max(1, int(width * scale)), max(1, int(height * scale))


def clamp_durations(durations: list) -> list[int]:
    """Frame delays in ms the GIF writer can write: whole, not negative, and together no
    longer than MAX_LOOP_MS (then each is shortened in proportion), so that no run of
    identical frames, which the writer merges into one delay, passes 655.35 s."""
    clean = []
    for value in durations:
        try:
            ms = int(value)
        except (TypeError, ValueError, OverflowError):
            ms = DEFAULT_FRAME_MS
        clean.append(max(ms, 0))
    total = sum(clean)
    if total <= MAX_LOOP_MS:
        return clean
    return [ms * MAX_LOOP_MS // total for ms in clean]


def _still(data: bytes, mime: str) -> bytes:
    image = Image.open(io.BytesIO(data))
    if image.format == "JPEG":  # DCT-domain downscale, never below the public size
        image.draft(image.mode, (PUBLIC_MAX_SIDE, PUBLIC_MAX_SIDE))
    image = ImageOps.exif_transpose(image)  # keep the orientation the EXIF tag gave
    image.thumbnail((PUBLIC_MAX_SIDE, PUBLIC_MAX_SIDE))
    icc = image.info.get("icc_profile")
    if icc:
        image = to_srgb(image, icc)
    image.info = {}  # Pillow writes some info keys (e.g. a JPEG comment) back when saving
    return _encode(image, mime, icc=srgb_profile() if icc else None)


def _encode(image: Image.Image, mime: str, *, icc: bytes | None) -> bytes:
    out = io.BytesIO()
    profile = {"icc_profile": icc} if icc else {}
    if mime == "image/png":
        image.save(out, "PNG", **profile)
    elif mime == "image/webp":
        image.save(out, "WEBP", quality=90, **profile)
    elif mime == "image/gif":
        image.save(out, "GIF")
    else:
        image.convert("RGB").save(out, "JPEG", quality=90, **profile)
    return out.getvalue()


# -- colour ----------------------------------------------------------------------------------


@cache
def srgb_profile() -> bytes:
    """A standard sRGB profile (littleCMS's built-in), the same bytes in every process: its
    creation date is zeroed."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    data[24:36] = bytes(12)  # dateTimeNumber: when this process made it
    return bytes(data)


@cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(io.BytesIO(srgb_profile()))


def parse_profile(icc: bytes) -> ImageCms.ImageCmsProfile | None:
    """The parsed profile, or None when littleCMS cannot read it."""
    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError):
        return None


def to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    """The pixels converted from the embedded profile to sRGB (RGB, or RGBA with alpha).
    A profile that does not parse or does not fit the pixels' colour space is ignored."""
    if image.mode.startswith("I"):  # 16- or 32-bit grey: keep the high byte of 16 bits
        grey = np.clip(np.asarray(image, dtype=np.int64), 0, 0xFFFF) >> 8
        image = Image.fromarray(grey.astype(np.uint8))
    if _has_alpha(image):
        image = image.convert("RGBA")
    elif image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    out_mode = "RGBA" if image.mode == "RGBA" else "RGB"
    source = parse_profile(icc)
    if source is not None:
        try:
            return ImageCms.profileToProfile(image, source, _srgb(), outputMode=out_mode)
        except (ImageCms.PyCMSError, OSError, ValueError):
            log.info("embedded ICC profile does not fit the pixels: dropped")
    return image.convert(out_mode)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
