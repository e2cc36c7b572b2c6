"""Check an uploaded image before anything is kept.

The format is decided from the bytes alone (never the file name or Content-Type), the
pixel count, sides and proportions are checked from the header and the frames counted from
the structure (``check_shape``, ``_decode``) before anything is decoded, the file's structure
is walked to its real end so that truncated files and polyglots (an image with another
file hidden before, inside or after it) are refused, and finally the image is decoded in
full so that corrupt data never reaches the rest of the platform.
"""

import hashlib
import io
import re
import warnings
import zlib
from dataclasses import dataclass

from django.conf import settings
from PIL import Image

from moderation_site.errors import DomainError


class RefusedUpload(DomainError):
    """An upload we will not keep; ``message`` (the detail) is meant for the person who sent
    it. 400, or 413 when the file is too large."""

    def __init__(self, code: str, message: str):
        super().__init__(message, code=code)
        self.message = message
        self.status = 413 if code == "too_large" else 400


@dataclass(frozen=True)
class ImageInfo:
    format: str
    mime: str
    extension: str
    width: int
    height: int
    size: int
    sha256: str
    frames: int = 1


_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
_EXTENSION = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp"}
_NAME = {"JPEG": "JPEG", "PNG": "PNG", "GIF": "GIF", "WEBP": "WebP"}
_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)
# Bytes some encoders and cameras leave after the image; they cannot carry a payload.
_PADDING = b"\x00 \t\r\n"
# Looked for in metadata only (never in compressed pixel data, where they occur by chance).
_SMUGGLED = (b"pk\x03\x04", b"pk\x05\x06", b"<script", b"<html", b"<?php")
# Image signatures, JPEG's with a plausible first marker so that chance matches are rare.
_LATE_START = re.compile(
    rb"\xff\xd8\xff[\xdb\xe0-\xef\xfe]|\x89PNG\r\n\x1a\n|GIF8[79]a|RIFF....WEBP", re.DOTALL
)
_TEXT = bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100)) + b"\t\n\r\f"
_UNSUPPORTED = "This file is not a JPEG, PNG, GIF or WebP image, which are the formats accepted."


def check_size(size: int, max_bytes: int) -> None:
    """The size cap alone: callers holding only a length (an upload's size) check it before
    reading the bytes."""
    if size > max_bytes:
        have, limit = _pair(size, max_bytes, _bytes, "bytes")
        raise RefusedUpload("too_large", f"The file is {have}; the limit is {limit}.")


def check_shape(width: int, height: int) -> None:
    """Sides and proportions within settings.UPLOAD_MAX_SIDE and UPLOAD_MAX_ASPECT_RATIO,
    read from the header like the pixel count; every decoded copy (the analysis's, the
    classifier's square input) is bounded by them as well as by the pixels."""
    longest, shortest = max(width, height), min(width, height)
    size = f"{width:,}×{height:,} pixels"
    if longest > settings.UPLOAD_MAX_SIDE:
        raise RefusedUpload(
            "too_long",
            f"The image is {size}; no side may be longer than "
            f"{settings.UPLOAD_MAX_SIDE:,} pixels. Scale it down or split it into parts.",
        )
    ratio = settings.UPLOAD_MAX_ASPECT_RATIO
    if longest > shortest * ratio:
        raise RefusedUpload(
            "too_narrow",
            f"The image is {size}, {longest / max(shortest, 1):,.0f} times as long as it is "
            f"wide; the limit is {ratio:g} to 1 (a long screenshot or a panorama fits). "
            "Crop it or split it into parts.",
        )


def validate_image(
    data: bytes, *, max_bytes: int, max_pixels: int, max_frames: int | None = None
) -> ImageInfo:
    """Return facts about ``data`` if it is an acceptable image, else raise RefusedUpload.

    `max_frames` (default settings.UPLOAD_MAX_FRAMES) caps an animation's frames: the
    analysis composes each sampled frame from those before it, so the count bounds its work.
    Sides and proportions are capped too (``check_shape``).
    """
    size = len(data)
    check_size(size, max_bytes)
    if not size:
        raise RefusedUpload("empty", "The file is empty.")
    fmt = _sniff(data)
    end, metadata, counted = _STRUCTURE[fmt](data)
    if data[end:].strip(_PADDING):
        raise RefusedUpload(
            "polyglot",
            f"The file has extra data after the end of the {_NAME[fmt]} image (for example "
            "a video or another file joined to it). Save or export it as a plain image.",
        )
    for blob in _metadata_contents(data, fmt, metadata):
        chunk = blob.lower()
        if any(marker in chunk for marker in _SMUGGLED):
            raise RefusedUpload(
                "polyglot",
                "The image's metadata hides an archive or a script. "
                "Save the image again without its metadata.",
            )
    if max_frames is None:
        max_frames = settings.UPLOAD_MAX_FRAMES
    width, height, frames = _decode(data, fmt, max_pixels, max_frames, counted)
    return ImageInfo(
        format=fmt,
        mime=_MIME[fmt],
        extension=_EXTENSION[fmt],
        width=width,
        height=height,
        size=size,
        sha256=hashlib.sha256(data).hexdigest(),
        frames=frames,
    )


def sniff_format(data: bytes) -> str | None:
    """The image format the bytes start with (JPEG, PNG, GIF, WEBP), or None."""
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def disguised_image(data: bytes) -> bool:
    """Text followed by an image: an image dressed up as another file (e.g. HTML)."""
    late = _LATE_START.search(data, 1, 1 << 16)
    return bool(late and not data[: late.start()].translate(None, _TEXT))


def _sniff(data: bytes) -> str:
    fmt = sniff_format(data)
    if fmt is not None:
        return fmt
    if disguised_image(data):
        raise RefusedUpload(
            "polyglot",
            "The file has text (such as a web page) before the image. "
            "Upload the image file on its own.",
        )
    raise RefusedUpload("unsupported_format", _UNSUPPORTED)


def _decode(
    data: bytes, fmt: str, max_pixels: int, max_frames: int, counted: int | None = None
) -> tuple[int, int, int]:
    """Check the pixel count and shape from the header, then decode every frame.

    ``counted``: the frames the structure walk found (GIF, whose header has no count:
    Pillow's ``n_frames`` walks every frame again, 1.2 s of CPU for the 1.3 million 1-pixel
    frames a 20 MB file can hold). Other formats declare their count (APNG's acTL, WebP's
    animation header), which Pillow reads at open.

    Pillow's decompression-bomb warning is turned into an error here, so that it can
    never pass as a mere warning; the warning filter is only changed within this call.
    """
    formats = ["JPEG", "MPO"] if fmt == "JPEG" else [fmt]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=formats) as im:
                width, height = im.size
                _check_pixels(width, height, 1, max_pixels)
                check_shape(width, height)
                # MPO's extra pictures (gain maps, stereo views) are not frames we show.
                frames = 1 if fmt == "JPEG" else counted or getattr(im, "n_frames", 1)
                if frames > max_frames:
                    raise RefusedUpload(
                        "too_many_frames",
                        f"The animation has {frames:,} frames; the limit is {max_frames:,}.",
                    )
                _check_pixels(width, height, frames, max_pixels)
                im.verify()
            # verify() leaves the file unusable, so reopen it to decode the pixels.
            with Image.open(io.BytesIO(data), formats=formats) as im:
                if fmt == "JPEG":
                    # DCT-scaled decoding still entropy-decodes the whole stream, so a
                    # truncated or corrupt file fails the same way, at a fraction of the
                    # cost of a full-size decode (about 5x on a 12 Mpx photo).
                    im.draft(im.mode, (max(1, width // 8), max(1, height // 8)))
                for frame in range(frames):
                    im.seek(frame)
                    im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        limit = _pixels(min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels))
        raise RefusedUpload(
            "too_many_pixels",
            f"The image has more pixels than can be processed safely; the limit is {limit}.",
        ) from None
    except RefusedUpload:
        raise
    except Exception as exc:  # Pillow raises many exception types on malformed input.
        raise RefusedUpload(
            "corrupt", f"The {_NAME[fmt]} image is damaged and cannot be read."
        ) from exc
    return width, height, frames


def _check_pixels(width: int, height: int, frames: int, max_pixels: int) -> None:
    total = width * height * frames
    if total <= max_pixels:
        return
    have, limit = _pair(total, max_pixels, _pixels, "pixels")
    if frames == 1:
        what = f"The image is {width}×{height} pixels ({have})"
    else:
        what = f"The animation has {frames} frames of {width}×{height} pixels ({have} in all)"
    raise RefusedUpload("too_many_pixels", f"{what}; the limit is {limit}.")


def _pair(value: int, limit: int, fmt, unit: str) -> tuple[str, str]:
    """Format a value and its limit, exactly if rounding would make them look equal."""
    have, most = fmt(value), fmt(limit)
    if have == most:
        return f"{value:,} {unit}", f"{limit:,} {unit}"
    return have, most


def _bytes(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f}".removesuffix(".0") + " MB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f}".removesuffix(".0") + " KB"
    return f"{n} bytes"


def _pixels(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}".removesuffix(".0") + " megapixels"
    return f"{n:,} pixels"


# Structure walkers: each returns the offset just past the image, the (start, stop) spans of
# its metadata and, where the header does not say (GIF), its frames; raising "truncated" if
# the file stops before the image does.
_Walk = tuple[int, list[tuple[int, int]], int | None]


def _truncated(fmt: str) -> RefusedUpload:
    return RefusedUpload(
        "truncated",
        f"The {_NAME[fmt]} file is incomplete; it may not have finished uploading. "
        "Try again with the whole file.",
    )


def _damaged(fmt: str) -> RefusedUpload:
    return RefusedUpload("corrupt", f"The {_NAME[fmt]} image is damaged and cannot be read.")


# The end of entropy-coded data: 0xFF followed by a marker (not stuffing, RSTn or fill).
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _jpeg_structure(data: bytes) -> _Walk:
    end, metadata = _jpeg_image(data, 0)
    # Multi-picture JPEGs (MPF: Ultra HDR gain maps, stereo pairs) append further JPEGs.
    if any(data.startswith(b"MPF\x00", start) for start, _ in metadata):
        while data.startswith(b"\xff\xd8\xff", end):
            end, more = _jpeg_image(data, end)
            metadata += more
    return end, metadata, None


def _jpeg_image(data: bytes, i: int) -> tuple[int, list[tuple[int, int]]]:
    n = len(data)
    i += 2
    metadata = []
    while True:
        if i >= n:
            raise _truncated("JPEG")
        if data[i] != 0xFF:
            raise _damaged("JPEG")
        while i < n and data[i] == 0xFF:
            i += 1
        if i >= n:
            raise _truncated("JPEG")
        marker = data[i]
        i += 1
        if marker == 0xD9:  # EOI
            return i, metadata
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            continue
        if i + 2 > n:
            raise _truncated("JPEG")
        length = int.from_bytes(data[i : i + 2], "big")
        if length < 2:
            raise _damaged("JPEG")
        if i + length > n:
            raise _truncated("JPEG")
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:  # APPn, COM
            metadata.append((i + 2, i + length))
        i += length
        if marker == 0xDA:  # SOS: compressed data runs until the next marker
            found = _JPEG_MARKER.search(data, i)
            if found is None:
                raise _truncated("JPEG")
            i = found.start()


def _png_structure(data: bytes) -> _Walk:
    n = len(data)
    i = 8
    metadata = []
    while True:
        if i + 12 > n:
            raise _truncated("PNG")
        length = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8]
        end = i + 12 + length
        if end > n:
            raise _truncated("PNG")
        if kind == b"IEND":
            return end, metadata, None
        if kind not in (b"IDAT", b"fdAT"):
            metadata.append((i + 8, i + 8 + length))
        i = end


def _gif_structure(data: bytes) -> _Walk:
    n = len(data)
    if n < 13:
        raise _truncated("GIF")
    i = 13 + _gif_colour_table(data[10])
    metadata = []
    frames = 0
    while True:
        if i >= n:
            raise _truncated("GIF")
        block = data[i]
        if block == 0x3B:  # trailer
            return i + 1, metadata, frames
        if block == 0x21:  # extension: label, then sub-blocks
            if i + 2 > n:
                raise _truncated("GIF")
            label, start = data[i + 1], i + 2
            i = _gif_sub_blocks(data, start)
            if label in (0xFE, 0xFF):  # comment, application
                metadata.append((start, i))
        elif block == 0x2C:  # image descriptor, colour table, LZW code size, sub-blocks
            frames += 1
            if i + 11 > n:
                raise _truncated("GIF")
            i = _gif_sub_blocks(data, i + 11 + _gif_colour_table(data[i + 9]))
        else:
            raise _damaged("GIF")


def _gif_colour_table(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _gif_sub_blocks(data: bytes, i: int) -> int:
    n = len(data)
    while True:
        if i >= n:
            raise _truncated("GIF")
        size = data[i]
        i += 1 + size
        if size == 0:
            return i


def _webp_structure(data: bytes) -> _Walk:
    end = 8 + int.from_bytes(data[4:8], "little")
    if end > len(data):
        raise _truncated("WEBP")
    i = 12
    metadata = []
    while i < end:
        if i + 8 > end:
            raise _damaged("WEBP")
        kind = data[i : i + 4]
        length = int.from_bytes(data[i + 4 : i + 8], "little")
        if i + 8 + length > end:
            raise _damaged("WEBP")
        if kind in (b"EXIF", b"XMP ", b"ICCP"):
            metadata.append((i + 8, i + 8 + length))
        i += 8 + length + (length & 1)
    return end, metadata, None


_STRUCTURE = {
    "JPEG": _jpeg_structure,
    "PNG": _png_structure,
    "GIF": _gif_structure,
    "WEBP": _webp_structure,
}


# What the metadata says once unpacked, scanned as well as its raw bytes: a PNG's
# compressed chunks (iCCP, zTXt, compressed iTXt) inflated, a GIF extension's sub-blocks
# joined (a length byte every 255 bytes could split a marker).
# Inflating is bounded as Pillow bounds it (1 MB a chunk, which Pillow refuses beyond) and
# in total, so a zlib bomb costs at most that much memory and time.
PNG_MAX_INFLATED_CHUNK = 1 << 20
PNG_MAX_INFLATED_TOTAL = 16 << 20
_INFLATE_STEP = 1 << 14  # compressed bytes fed at a time


def _metadata_contents(data: bytes, fmt: str, spans: list[tuple[int, int]]):
    """The metadata to scan: each span's raw bytes, then what it holds once unpacked."""
    for start, stop in spans:
        yield data[start:stop]
    if fmt == "PNG":
        yield from _png_unpacked(data, spans)
    elif fmt == "GIF":
        for start, stop in spans:
            yield _gif_joined(data, start, stop)


def _png_unpacked(data: bytes, spans: list[tuple[int, int]]):
    budget = PNG_MAX_INFLATED_TOTAL
    for start, stop in spans:
        compressed = _png_compressed(data[start - 4 : start], data[start:stop])
        if compressed is None:
            continue
        text = _inflate(compressed, min(PNG_MAX_INFLATED_CHUNK, budget))
        budget -= len(text)
        yield text


def _png_compressed(kind: bytes, body: bytes) -> bytes | None:
    """The zlib stream of an iCCP, zTXt or compressed iTXt chunk; None for other chunks."""
    if kind in (b"iCCP", b"zTXt"):  # keyword, NUL, method, stream
        nul = body.find(b"\0")
        return body[nul + 2 :] if nul >= 0 else None
    if kind == b"iTXt":  # keyword NUL flag method language NUL translated NUL text
        nul = body.find(b"\0")
        if nul < 0 or body[nul + 1 : nul + 2] != b"\x01":
            return None  # uncompressed text: its raw bytes are scanned already
        rest = body[nul + 3 :]
        language = rest.find(b"\0")
        translated = rest.find(b"\0", language + 1) if language >= 0 else -1
        return rest[translated + 1 :] if translated >= 0 else None
    return None


def _inflate(stream: bytes, limit: int) -> bytes:
    """The stream inflated, refused past `limit` bytes; a damaged stream gives what came
    out before the damage (Pillow ignores such a chunk)."""
    inflater = zlib.decompressobj()
    out = bytearray()
    for i in range(0, len(stream), _INFLATE_STEP):
        try:
            out += inflater.decompress(stream[i : i + _INFLATE_STEP], limit + 1 - len(out))
        except zlib.error:
            break
        if inflater.unconsumed_tail or len(out) > limit:
            raise RefusedUpload(
                "metadata_too_large",
                "The PNG image's metadata (text or colour profile) is too large once "
                "unpacked. Save the image again without its metadata.",
            )
        if inflater.eof:
            break
    return bytes(out)


def _gif_joined(data: bytes, start: int, stop: int) -> bytes:
    """An extension's sub-blocks without their length bytes."""
    parts, i = [], start
    while i < stop:
        size = data[i]
        parts.append(data[i + 1 : i + 1 + size])
        i += 1 + size
    return b"".join(parts)
