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
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageCms

from .upright import BAND_PIXELS, orientation, upright_bands, upright_size

log = logging.getLogger(__name__)

PUBLIC_MAX_SIDE = 2048
# The filter of the last resize, after any integer reduction (Image.thumbnail's default).
RESAMPLE = Image.Resampling.BICUBIC
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
    image = shrink(image, turn=False).convert("RGBA" if alpha else "RGB")
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
        # convert() copies info, comments included; shrink() reduces a large frame in bands
        picture = shrink(image, size, turn=False, resample=Image.Resampling.BOX)
        picture = picture.convert("RGBA")
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
    icc = image.info.get("icc_profile")
    if image.format == "JPEG":  # DCT-domain downscale, never below the public size
        image.draft(image.mode, draft_size(image.size))
    reduced = reduce_upright(image)
    del image  # the decoded picture: only the reduced copy is resized
    image = resize_to(reduced)
    del reduced
    if icc:
        image = to_srgb(image, icc)
    image.info = {}  # Pillow writes some info keys (e.g. a JPEG comment) back when saving
    return _encode(image, mime, icc=srgb_profile() if icc else None)


# -- size ------------------------------------------------------------------------------------


def draft_size(size: tuple[int, int], side: int = PUBLIC_MAX_SIDE) -> tuple[int, int]:
    """The size to ask a JPEG's draft decode for: the picture scaled so that its longest
    side is ``side``. Pillow decodes at the strongest DCT reduction (1/2, 1/4 or 1/8) that
    leaves it no smaller in either dimension, so the longest side stays >= ``side`` (a
    square request kept an 8200 x 2000 picture at full size; now it decodes at 1/4).
    A 4000 x 3000 photo is decoded whole: at 1/2 it would be 2000 px, below the public
    size."""
    width, height = size
    longest = max(width, height, 1)
    if longest <= side:
        return size
    return max(1, -(-width * side // longest)), max(1, -(-height * side // longest))


def fit_size(width: int, height: int, side: int = PUBLIC_MAX_SIDE) -> tuple[int, int]:
    """Within ``side`` x ``side``, the proportions kept, rounded as Image.thumbnail does."""
    if width <= side and height <= side:
        return width, height
    aspect = width / height

    def rounded(number: float, error) -> int:
        return max(min(math.floor(number), math.ceil(number), key=error), 1)

    if aspect <= 1:
        return rounded(side * aspect, lambda n: abs(aspect - n / side)), side
    return side, rounded(side / aspect, lambda n: 0 if n == 0 else abs(aspect - side / n))


class Reduced(NamedTuple):
    """A picture reduced by ``reduce_upright``, and what ``resize_to`` makes of it."""

    picture: Image.Image  # upright, in a mode reduce() and resize() average correctly
    size: tuple[int, int]  # the size wanted
    box: tuple[float, float, float, float] | None  # the part of ``picture`` that maps to it
    mode: str  # the mode to hand back


def shrink(
    image: Image.Image,
    size: tuple[int, int] | None = None,
    *,
    turn: bool = True,
    resample: Image.Resampling = RESAMPLE,
) -> Image.Image:
    """The decoded picture upright (when ``turn``) at ``size`` (default: within the public
    size, proportions kept); the picture itself when there is nothing to change."""
    return resize_to(reduce_upright(image, size, turn=turn), resample)


def reduce_upright(
    image: Image.Image, size: tuple[int, int] | None = None, *, turn: bool = True
) -> Reduced:
    """The picture upright and, when it is at least twice ``size``, box-reduced by the
    largest integer factor that keeps it no smaller, a band of rows at a time
    (``uploads.upright``): the decoded picture is the only large thing held, and once the
    caller lets go of it only the reduced copy is resized. Whole, ``exif_transpose`` and
    ``thumbnail`` each copied the picture (RGBA twice: ``resize`` premultiplies it):
    +445 MB for a 7000 x 7000 RGBA upload (196 MB decoded), which took the process past
    500 MB.
    """
    image.load()
    method = orientation(image) if turn else None
    width, height = upright_size(image, method)
    size = size or fit_size(width, height)
    factor = max(1, min(width // size[0], height // size[1]))
    if factor < 2:
        picture = image.transpose(method) if method is not None else image
        return Reduced(picture, size, None, picture.mode)
    work, mode = _working_modes(image)
    rows = max(1, BAND_PIXELS // (width * factor)) * factor  # upright rows per band
    reduced = Image.new(work, (-(-width // factor), -(-height // factor)))
    for top, band in upright_bands(image, method, rows):
        reduced.paste(_in_mode(band, work).reduce(factor), (0, top // factor))
    return Reduced(reduced, size, (0, 0, width / factor, height / factor), mode)


def resize_to(reduced: Reduced, resample: Image.Resampling = RESAMPLE) -> Image.Image:
    """The reduced picture at its wanted size, in the mode to hand back."""
    picture, size, box, mode = reduced
    if picture.size != size:
        if box is None:  # not reduced: still in the decoded mode
            work, mode = _working_modes(picture)
            picture = _in_mode(picture, work)
        picture = picture.resize(size, resample, box=box)
    return picture if picture.mode == mode else picture.convert(mode)


def _working_modes(image: Image.Image) -> tuple[str, str]:
    """(the mode in which reduce() and resize() average the picture's pixels, the mode
    handed back). A palette's indexes cannot be averaged; alpha is premultiplied once,
    not at every step; 16-bit grey is averaged as 32-bit and handed back as 16-bit (a PNG
    cannot hold 32-bit grey)."""
    if image.mode.startswith("I;16"):
        return "I", "I;16"
    if image.mode == "1":
        return "L", "L"
    if "transparency" not in image.info and image.mode in ("L", "RGB", "CMYK", "I", "F"):
        return image.mode, image.mode
    if image.mode in ("LA", "La"):
        return "La", "LA"
    return ("RGBa", "RGBA") if _has_alpha(image) else ("RGB", "RGB")


def _in_mode(image: Image.Image, mode: str) -> Image.Image:
    if image.mode == mode:
        return image
    if mode in ("RGBa", "La") and image.mode != mode.upper():
        image = image.convert(mode.upper())  # Pillow premultiplies from RGBA and LA only
    return image.convert(mode)


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
