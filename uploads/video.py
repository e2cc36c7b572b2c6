"""The video kind: MP4, WebM and MOV, recognised by content, checked from the container
header alone, and decoded for analysis in one sequential pass.

Intake reads only the header (PyAV ``av.open`` on the bytes: streams, duration, sizes; no
frame is decoded) and refuses what is over the policy's caps (200 MB and 10 minutes by
default, Admin → Policy) with a sentence a person can act on.

The analysis decodes once, from the first frame to the last, and converts only the frames
it needs: one a second for the classifier and the uploads' fingerprint (the policy's
rate), every frame for a bank reference, and the frames at 10/30/50/70/90 % for the pHash
voter. Measured on the real clips in tests/fixtures/videos, seeking to N timestamps is
cheaper only with short GOPs; on long-GOP files N seeks cost more than one pass, and one
pass is also bounded by the file (every frame is decoded once). Converting a 720p frame to
RGB costs 7 ms against 2 ms to decode it, so frames that are not needed are never
converted. Frames are converted at most VIDEO_HASH_MAX_SIDE on their longest side, turned
upright by the stream's display matrix (phones record portrait video as landscape frames
with a rotation), and their PDQ is computed during the pass, so that no more than the
sampled pictures (at most SAMPLE_MAX_SIDE each) are held. Timestamps come from each
frame's own presentation time, so variable frame rates sample at the right moments; a
position past the last frame (a header whose duration counts a longer audio track) takes
the last frame. Audio is never decoded.

The decode is bounded by ``VIDEO_MAX_FRAMES`` decoded frames and ``VIDEO_DECODE_TIMEOUT_S``
seconds; over either it raises VideoDecodeError, and the analysis sends the item to a
person (never a silent pass on half a video).
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pdqhash
from django.conf import settings
from django.core.files.base import ContentFile
from PIL import Image, ImageOps

from .kinds import Accepted, Frame, Frames, MediaKind, register
from .validation import RefusedUpload, check_shape, check_size

log = logging.getLogger(__name__)

# PDQ of a 720p frame costs 32 ms at full size and about 4 ms at 512 px (2 cores): every
# frame of a 30 frame/s bank reference at full size would take as long as the clip lasts.
# Uploads and references are hashed the same way, so the copies compared agree.
VIDEO_HASH_MAX_SIDE = 512
# The pictures kept for the classifier (its input is 320 px) and the review strip.
SAMPLE_MAX_SIDE = 384
# The frames whose 64-bit pHash is the second voter: 10, 30, 50, 70 and 90 % of the clip.
POSITIONS = (0.1, 0.3, 0.5, 0.7, 0.9)
# Sampled frames at most (10 minutes at 1 frame/s); a higher policy rate is lowered to fit.
MAX_SAMPLES = 600
# Black bars (letterbox, pillarbox) are cut off before a frame is hashed, on both sides: a
# row or column is a bar when fewer than BAR_CONTENT of its pixels are brighter than
# BAR_LEVEL in their brightest channel (H.264's black at CRF 34 stays below 3; the
# fixture clips' own dark edges are bars too, and are cut from every copy alike). A bar
# thinner than BAR_MIN of its side is left (a row or two of edge noise), and a frame whose
# content would keep less than KEEP_MIN of a side is hashed whole (a dark or fading frame,
# whose PDQ quality keeps it out of the vote anyway). A frame that had bars is hashed
# whole as well (``VideoSample.uncut``), and a copy matches by either reading: PDQ of a
# fine pattern moves 6-10 bits when its cut shifts by one pixel, so a resized copy of a
# clip with bars of its own can match whole and not cut. Measured (bench/video_copies.py):
# the fixture clips letterboxed into 16:9 with bars of 1/8 and 1/4 of the width matched 0
# of their frames before the cut.
BAR_LEVEL = 40
BAR_CONTENT = 0.02
BAR_MIN = 0.03
KEEP_MIN = 0.3

# Container brands of ISO base media files that are pictures, not video (the image kind
# or nobody takes them): HEIF/HEIC stills and sequences, AVIF.
_PICTURE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"mif1", b"msf1", b"avif", b"avis"}
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_EBML = b"\x1a\x45\xdf\xa3"


class VideoDecodeError(Exception):
    """The decode went over its bounds (frames, seconds) or the stream is undecodable."""


# -- the policy's caps, through a hook (the policy lives in review, above this app) ----------


@dataclass(frozen=True)
class VideoLimits:
    max_bytes: int
    max_seconds: float
    sample_fps: float


def _default_limits() -> VideoLimits:
    return VideoLimits(settings.VIDEO_MAX_BYTES, 600.0, 1.0)


_limits_hook: Callable[[], VideoLimits] | None = None


def set_limits_hook(hook: Callable[[], VideoLimits]) -> None:
    """The review app names the policy's caps and sampling rate here (review.apps)."""
    global _limits_hook
    _limits_hook = hook


def limits() -> VideoLimits:
    found = _limits_hook() if _limits_hook is not None else _default_limits()
    # The policy may lower the size cap, never raise it past what the server reads.
    return VideoLimits(
        min(found.max_bytes, settings.VIDEO_MAX_BYTES), found.max_seconds, found.sample_fps
    )


# -- recognising and checking -------------------------------------------------------------


def container_of(data: bytes) -> str | None:
    """ "mp4", "mov" or "webm" from the first bytes (ftyp box, QuickTime atom, EBML)."""
    head = data[:64]
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _PICTURE_BRANDS:
            return None
        return "mov" if brand == b"qt  " else "mp4"
    if head[4:8] in _QUICKTIME_ATOMS and int.from_bytes(head[:4], "big") >= 8:
        return "mov"
    if head[:4] == _EBML:
        # The EBML header names its DocType near the start: "webm" or "matroska".
        return "webm" if b"webm" in data[:64] else "matroska"
    return None


_MIME = {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm"}
_EXTENSION = {"mp4": ".mp4", "mov": ".mov", "webm": ".webm"}


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def _open(data: bytes):
    import av  # PyAV: its wheels carry FFmpeg

    try:
        return av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise RefusedUpload(
            "corrupt_video", "This video could not be read; it may be damaged or incomplete."
        ) from exc


def stream_duration(container, stream) -> float | None:
    """Seconds, from the video stream's header if it says, else the container's."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


@dataclass(frozen=True)
class VideoInfo:
    container: str
    codec: str
    width: int
    height: int
    duration: float
    fps: float | None
    frames: int | None
    audio: bool


def read_header(data: bytes, max_bytes: int, max_seconds: float) -> VideoInfo:
    """What the container header says, or RefusedUpload. Decodes no frame."""
    check_size(len(data), max_bytes)
    name = container_of(data)
    if name not in _MIME:
        raise RefusedUpload(
            "unsupported_format",
            "This video is not MP4, WebM or MOV, which are the video formats accepted.",
        )
    container = _open(data)
    try:
        if not container.streams.video:
            raise RefusedUpload("no_video", "This file has no video picture (only sound?).")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise RefusedUpload("corrupt_video", "This video does not say its picture size.")
        check_shape(width, height)
        if width * height > settings.UPLOAD_MAX_PIXELS:
            raise RefusedUpload(
                "too_many_pixels",
                f"The video is {width:,}×{height:,} pixels; the limit is "
                f"{settings.UPLOAD_MAX_PIXELS // 1_000_000} million pixels a frame.",
            )
        duration = stream_duration(container, stream)
        if duration is None or not math.isfinite(duration) or duration <= 0:
            raise RefusedUpload(
                "unknown_duration",
                "This video does not say how long it is; save it again as MP4 (or remux it, "
                "e.g. ffmpeg -i in.webm -c copy out.webm) and send it again.",
            )
        if duration > max_seconds:
            raise RefusedUpload(
                "too_long",
                f"The video lasts {_minutes(duration)}; the limit is {_minutes(max_seconds)}.",
            )
        rate = stream.average_rate or stream.guessed_rate
        return VideoInfo(
            container=name,
            codec=stream.codec_context.name,
            width=width,
            height=height,
            duration=round(duration, 3),
            fps=round(float(rate), 3) if rate else None,
            frames=stream.frames or None,
            audio=bool(container.streams.audio),
        )
    finally:
        container.close()


# -- decoding ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameHash:
    """One frame's PDQ, as vPDQ lists it: hash, quality (0-100), timestamp in seconds; and
    the PDQ of the frame mirrored (uploads only: a bank reference is never flipped)."""

    pdq: int
    quality: int
    timestamp: float
    mirrored: int | None = None


@dataclass
class VideoSample:
    """What one pass over a clip gives the analysis: the PDQ of the hashed frames (one a
    second for an upload, every frame for a bank reference), the sampled pictures with
    their timestamps (classifier and review strip), the pictures at POSITIONS (pHash)."""

    hashes: list[FrameHash] = field(default_factory=list)
    sampled: list[tuple[float, Image.Image]] = field(default_factory=list)
    positions: list[Image.Image] = field(default_factory=list)
    duration: float = 0.0
    decoded: int = 0  # frames decoded
    rotation: int = 0
    every_frame: bool = False
    bars: int = 0  # hashed frames whose black bars were cut off
    # The same frames hashed whole, where bars were cut (kept only when some were).
    whole_hashes: list[FrameHash] = field(default_factory=list)
    whole_positions: list[Image.Image] = field(default_factory=list)

    def mirrored(self) -> VideoSample:
        """The same pass mirrored, for the fingerprint's "mirror" (hashing.algorithms):
        the frames' mirrored PDQ (none for a reference) and the flipped pHash pictures."""
        flipped = [FrameHash(h.mirrored, h.quality, h.timestamp) for h in self.hashes]
        return self._reading(
            [h for h in flipped if h.pdq is not None],
            [ImageOps.mirror(p) for p in self.positions],
        )

    def uncut(self) -> VideoSample | None:
        """The pass read with the frames whole (bars and all), when any frame had bars:
        the fingerprint's "uncut" (hashing.algorithms), a second reading of the clip."""
        return self._reading(self.whole_hashes, self.whole_positions) if self.bars else None

    def _reading(self, hashes: list[FrameHash], positions: list[Image.Image]) -> VideoSample:
        return replace(
            self, hashes=hashes, positions=positions, bars=0, whole_hashes=[], whole_positions=[]
        )


def content_box(picture: np.ndarray) -> tuple[slice, slice]:
    """The rows and columns of `picture` inside its black bars (see BAR_LEVEL). 0.35 ms at
    512x288 (``max(axis=2)`` over the channels took 3.6 ms, most of a frame's PDQ)."""
    brightest = np.maximum(np.maximum(picture[..., 0], picture[..., 1]), picture[..., 2])
    lit = brightest > BAR_LEVEL
    height, width = lit.shape
    rows = np.flatnonzero(lit.mean(axis=1) > BAR_CONTENT)
    cols = np.flatnonzero(lit.mean(axis=0) > BAR_CONTENT)
    if not len(rows) or not len(cols):
        return slice(0, height), slice(0, width)
    return _inside(rows, height), _inside(cols, width)


def _inside(lit: np.ndarray, side: int) -> slice:
    first, last = int(lit[0]), int(lit[-1]) + 1
    if last - first < KEEP_MIN * side:
        return slice(0, side)
    first = first if first >= BAR_MIN * side else 0
    last = last if side - last >= BAR_MIN * side else side
    return slice(first, last)


def _bits_to_int(bits: np.ndarray) -> int:
    return int.from_bytes(np.packbits(np.asarray(bits, dtype=bool).ravel()).tobytes(), "big")


def _bounded(width: int, height: int, longest: int) -> tuple[int, int]:
    scale = min(1.0, longest / max(width, height))
    return max(2, round(width * scale) // 2 * 2), max(2, round(height * scale) // 2 * 2)


def _picture(frame, size: tuple[int, int], turns: int) -> np.ndarray:
    array = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
    return np.ascontiguousarray(np.rot90(array, turns)) if turns else array


def _frame_hash(picture: np.ndarray, timestamp: float, mirrored: bool = False) -> FrameHash:
    vector, quality = pdqhash.compute(picture)
    flipped = None
    if mirrored:
        flipped = _bits_to_int(pdqhash.compute(np.ascontiguousarray(picture[:, ::-1]))[0])
    return FrameHash(_bits_to_int(vector), int(quality), timestamp, flipped)


def _small(array: np.ndarray, longest: int) -> Image.Image:
    image = Image.fromarray(array)
    if max(image.size) > longest:
        image = image.resize(_bounded(*image.size, longest), Image.Resampling.BILINEAR)
    return image


def decode_video(
    data: bytes,
    *,
    sample_fps: float = 1.0,
    every_frame: bool = False,
    max_frames: int | None = None,
    timeout_s: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VideoSample:
    """One sequential pass (see the module docstring). `progress(done, total)` is called
    now and then with decoded frames against the header's frame count (or its estimate).
    Hashed frames are cut to their content (``content_box``); an upload's (not
    `every_frame`) are also hashed mirrored, one PDQ more a second of video."""
    import av

    max_frames = max_frames or settings.VIDEO_MAX_FRAMES
    timeout_s = timeout_s or settings.VIDEO_DECODE_TIMEOUT_S
    container = _open(data)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads: the pass uses both cores
        duration = stream_duration(container, stream) or 0.0
        rate = float(stream.average_rate or stream.guessed_rate or 30)
        expected = stream.frames or max(1, round(duration * rate))
        step = 1.0 / max(sample_fps, duration / MAX_SAMPLES if duration else 0.0, 1e-3)
        start = None
        out = VideoSample(duration=duration, every_frame=every_frame)
        positions = [duration * p for p in POSITIONS]
        filled: list[Image.Image | None] = [None] * len(POSITIONS)
        whole: list[Image.Image | None] = [None] * len(POSITIONS)
        next_sample = 0.0
        deadline = time.monotonic() + timeout_s
        size = turns = None
        last = None
        for frame in container.decode(stream):
            out.decoded += 1
            if out.decoded > max_frames:
                raise VideoDecodeError(f"more than {max_frames} frames")
            if out.decoded % 64 == 0:
                if time.monotonic() > deadline:
                    raise VideoDecodeError(f"decoding took more than {timeout_s:g} s")
                if progress is not None:
                    progress(out.decoded, max(expected, out.decoded))
            if frame.time is None:
                t = out.decoded / rate
            else:
                start = frame.time if start is None else start
                t = max(0.0, frame.time - start)
            if size is None:
                turns = round((frame.rotation or 0) / 90) % 4
                out.rotation = turns
                size = _bounded(frame.width, frame.height, VIDEO_HASH_MAX_SIDE)
            sample = t >= next_sample - 1e-6
            wanted = [i for i, p in enumerate(positions) if filled[i] is None and t >= p - 1e-6]
            last = (frame, t)
            if not (sample or wanted or every_frame):
                continue
            picture = _picture(frame, size, turns)
            rows, cols = content_box(picture)
            content = np.ascontiguousarray(picture[rows, cols])
            cut = content.shape != picture.shape
            out.bars += cut
            if sample or every_frame:
                hashed = _frame_hash(content, round(t, 3), mirrored=not every_frame)
                out.hashes.append(hashed)
                out.whole_hashes.append(_frame_hash(picture, hashed.timestamp) if cut else hashed)
            if sample:
                out.sampled.append((round(t, 3), _small(picture, SAMPLE_MAX_SIDE)))
                # The next moment to sample; a gap (variable frame rate) skips the missed.
                next_sample = (math.floor(t / step + 1e-6) + 1) * step
            for i in wanted:
                filled[i] = _small(content, SAMPLE_MAX_SIDE)
                whole[i] = _small(picture, SAMPLE_MAX_SIDE) if cut else filled[i]
        if last is None:
            raise VideoDecodeError("no frame could be decoded")
        if any(p is None for p in filled):  # positions past the last frame
            picture = _picture(last[0], size, turns)
            content = _small(np.ascontiguousarray(picture[content_box(picture)]), SAMPLE_MAX_SIDE)
            whole = [p if p is not None else _small(picture, SAMPLE_MAX_SIDE) for p in whole]
            filled = [p if p is not None else content for p in filled]
        out.positions = list(filled)
        out.whole_positions = list(whole) if out.bars else []
        if not out.bars:
            out.whole_hashes = []
        out.duration = max(duration, last[1])
        if progress is not None:
            progress(out.decoded, out.decoded)
        return out
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        container.close()


# -- the kind ----------------------------------------------------------------------------------


def format_timestamp(seconds: float) -> str:
    """How a reason names a moment: "0:07", "12:03"."""
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


class VideoKind(MediaKind):
    name = "video"
    label = "Video"
    formats = "an MP4, WebM or MOV video"
    # Sampled frames are pictures: the image classifiers and categories judge them.
    frame_kind = "image"

    def recognises(self, data: bytes) -> bool:
        return container_of(data) is not None

    def max_bytes(self) -> int:
        return limits().max_bytes

    def validate(self, data: bytes, *, max_bytes: int, max_pixels: int) -> Accepted:
        cap = limits()
        info = read_header(data, min(max_bytes, cap.max_bytes), cap.max_seconds)
        return Accepted(
            kind=self.name,
            mime=_MIME[info.container],
            extension=_EXTENSION[info.container],
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            width=info.width,
            height=info.height,
            details={
                "duration": info.duration,
                "fps": info.fps,
                "frames": info.frames,
                "codec": info.codec,
                "audio": info.audio,
            },
        )

    def decode(self, data: bytes) -> VideoSample:
        return decode_video(data, sample_fps=limits().sample_fps)

    def sample(self, data: bytes, progress=None) -> Frames:
        """The sampled frames (timestamps in ``Frame.timestamp``) and, as the fingerprint's
        subject, the whole pass (``Frames.signature``)."""
        found = decode_video(data, sample_fps=limits().sample_fps, progress=progress)
        frames = tuple(
            Frame(image, number, timestamp)
            for number, (timestamp, image) in enumerate(found.sampled, 1)
        )
        return Frames(frames, len(frames), signature=found)

    def reference(self, data: bytes) -> VideoSample:
        """A bank reference: every frame hashed (the uploads are hashed once a second)."""
        return decode_video(data, every_frame=True)

    def public_rendition(self, data: bytes, mime: str) -> bytes:
        return render_public_video(data, mime)


# -- the public rendition -----------------------------------------------------------------------

# The public copy: pictures only (no metadata, no audio, no subtitle or data streams), at most
# 1280 px, H.264 (VP9 for WebM) at a constant quality.
PUBLIC_MAX_SIDE = 1280


def render_public_video(data: bytes, mime: str) -> bytes:
    """The clip re-encoded from its decoded pictures into a new container of the same
    format, so nothing of the upload's metadata (GPS, device, titles) or other streams is
    copied; frames are turned upright instead of carrying a rotation."""
    import av

    name = {"video/webm": "webm", "video/quicktime": "mov"}.get(mime, "mp4")
    source = _open(data)
    out = io.BytesIO()
    try:
        stream = source.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or 30
        target = av.open(out, mode="w", format=name)
        codec = "libvpx-vp9" if name == "webm" else "libx264"
        encoder = None
        count = 0
        for frame in source.decode(stream):
            count += 1
            if count > settings.VIDEO_MAX_FRAMES:
                break
            if encoder is None:
                turns = round((frame.rotation or 0) / 90) % 4
                size = _bounded(frame.width, frame.height, PUBLIC_MAX_SIDE)
                encoder = target.add_stream(codec, rate=rate)
                width, height = size if turns % 2 == 0 else size[::-1]
                encoder.width, encoder.height = width, height
                encoder.pix_fmt = "yuv420p"
                encoder.options = {"crf": "28"} if codec == "libx264" else {"crf": "36", "b": "0"}
                if codec == "libx264":
                    encoder.options["preset"] = "veryfast"
            picture = _picture(frame, size, turns)
            new = av.VideoFrame.from_ndarray(picture, format="rgb24")
            new.pts, new.time_base = frame.pts, frame.time_base
            for packet in encoder.encode(new):
                target.mux(packet)
        if encoder is not None:
            for packet in encoder.encode():
                target.mux(packet)
        target.close()
    finally:
        source.close()
    return out.getvalue()


# -- the review strip ---------------------------------------------------------------------------

STRIP_SIDE = 240


def strip_name(item, number: int) -> str:
    """Where a strip frame is stored: the originals' private storage, next to the public copy."""
    return f"frames-v1/{item.uuid.hex[:2]}/{item.uuid.hex}/{int(number)}.jpg"


def save_strip(item, pictures) -> int:
    """Store the review strip's frames (JPEG, at most STRIP_SIDE px), made in the worker
    with the analysis: the sampled pictures are not kept anywhere else. Never raises."""
    storage = item.file.storage
    saved = 0
    for number, picture in pictures:
        try:
            small = picture.copy()
            small.thumbnail((STRIP_SIDE, STRIP_SIDE))
            out = io.BytesIO()
            small.convert("RGB").save(out, "JPEG", quality=80)
            name = strip_name(item, number)
            if storage.exists(name):
                storage.delete(name)
            storage.save(name, ContentFile(out.getvalue()))
            saved += 1
        except Exception:  # storage down: the page shows the player without the strip
            log.exception("could not store strip frame %s of item %s", number, item.pk)
    return saved


def strip_file(item, number: int):
    """A stored strip frame, opened; None when there is none."""
    storage = item.file.storage
    name = strip_name(item, number)
    return storage.open(name, "rb") if storage.exists(name) else None


def get_video_kind() -> VideoKind:
    return VIDEO


VIDEO = VideoKind()
register(VIDEO)
