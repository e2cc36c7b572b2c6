"""Media kinds: what an item is, each described once behind one interface, one registry.

A kind says how it is recognised from the bytes (never the name or Content-Type), how it
is validated, what other people are shown of it (its public rendition), how it is decoded
for analysis and which analysis stages apply. Images are the kind today; video, animated
images and text are each a new class here plus the hashing algorithms and classifiers that
declare the kind (see docs/architecture.md).

A kind's ``sample`` gives the frames the analysis looks at: one for a still picture, a
spread across the whole animation for GIF, animated WebP and APNG (judging an animation by
its first frame let frames 4-8 of a nude painting reach the feed).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from PIL import Image, ImageOps

from moderation_site.registry import Registry

from .renditions import render_public
from .upright import BAND_PIXELS, orientation, upright_bands, upright_size
from .validation import RefusedUpload, disguised_image, sniff_format, validate_image

# JPEG draft decode target: a 1024x768 upload decodes at 512x384 (2x faster), still more
# than the classifier's 320 px input.
DEFAULT_DECODE_SIZE = (384, 384)
STAGES = ("fingerprint", "match", "classify")


@dataclass(frozen=True)
class Accepted:
    """What validation learnt of an acceptable file; the item's row is made from it."""

    kind: str
    mime: str
    extension: str
    size: int
    sha256: str
    width: int | None = None
    height: int | None = None
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Frame:
    """One decoded picture of an item and where it sits: ``number`` counts from 1;
    ``timestamp``, seconds from the start, for a video's frames."""

    subject: object
    number: int = 1
    timestamp: float | None = None


@dataclass(frozen=True)
class Frames:
    """The frames the analysis looks at, of the ``total`` the item has. ``signature``:
    what the kind's hash algorithms read for the whole item (a video's one pass,
    uploads.video), hashed once instead of frame by frame; None for pictures."""

    frames: tuple[Frame, ...]
    total: int = 1
    signature: object = None

    @property
    def animated(self) -> bool:
        return self.total > 1

    @property
    def subjects(self) -> list:
        return [f.subject for f in self.frames]

    def name(self, number: int) -> str:
        """How a reason names a frame: "frame 4 of 8"."""
        return f"frame {number} of {self.total}"


def sample_positions(total: int, count: int) -> list[int]:
    """Frame indexes (from 0) to look at: all of them up to `count`, else `count` evenly
    spaced from the first to the last, so no stretch of the animation goes unseen."""
    if total <= count:
        return list(range(total))
    if count <= 1:
        return [0]
    return sorted({round(i * (total - 1) / (count - 1)) for i in range(count)})


class MediaKind:
    """The interface of every kind. Instances are shared per process: keep them pure."""

    name: str = ""
    label: str = ""
    formats: str = ""  # as a person would name them: "a JPEG, PNG, GIF or WebP image"
    stages: tuple[str, ...] = STAGES
    # The kind whose classifiers and categories judge the frames (a video's are pictures).
    frame_kind: str = ""

    def recognises(self, data: bytes) -> bool:
        raise NotImplementedError

    def max_bytes(self) -> int:
        """The size cap of the kind's files (a video's comes from the policy)."""
        return settings.UPLOAD_MAX_BYTES

    def validate(self, data: bytes, *, max_bytes: int, max_pixels: int) -> Accepted:
        """Facts about an acceptable file, or RefusedUpload saying what is wrong."""
        raise NotImplementedError

    def decode(self, data: bytes):
        """The stored bytes as the kind's algorithms and classifiers read them."""
        raise NotImplementedError

    def sample(self, data: bytes) -> Frames:
        """The frames the analysis looks at; one, the decoded item, unless overridden."""
        return Frames((Frame(self.decode(data)),))

    def public_rendition(self, data: bytes, mime: str) -> bytes:
        """What people other than staff and the uploader are shown. Called once per item,
        in the worker after the analysis; the result is stored and served as it is."""
        return data


def open_for_hashing(data: bytes, size: tuple[int, int] = DEFAULT_DECODE_SIZE) -> Image.Image:
    """Decode image bytes once into an upright RGB image no smaller than ``size``.

    JPEG uses Pillow's draft mode (DCT-domain downscale by 1/2, 1/4 or 1/8), which
    is several times faster than a full decode and moves hashes by a bit or two.
    Other formats are box-reduced by an integer factor for the same reason. The
    result also feeds the classifier, so ``size`` should stay >= 320-640 px.
    Animated GIF/WebP/APNG: the first frame (``sample_frames`` reads the others).
    Raises PIL errors on undecodable data.
    """
    image = Image.open(io.BytesIO(data))  # positioned on the first frame of GIF/WebP/APNG
    if image.format == "JPEG":
        image.draft("RGB", size)
    return _for_analysis(image, size)


# The longest side of an analysis copy. The factor that keeps the short side at 384 px or
# more is 0 or 1 for a strip (a 20000 x 1 picture kept its 20,000 px); the hashes read
# 384 px and the classifier 320, so the long side is brought to 2048 px at most as well.
# Pictures up to about 5:1 are reduced as before.
ANALYSIS_MAX_SIDE = 2048
# Pixels flattened and reduced at a time (about 4 MB in RGBA), see _for_analysis.
STRIP_PIXELS = BAND_PIXELS


def reduction_factor(width: int, height: int, size: tuple[int, int]) -> int:
    """The box-reduction factor of an upright picture: the most that keeps it no smaller
    than ``size``, and at least what brings its longest side to ANALYSIS_MAX_SIDE."""
    keep = min(width // size[0], height // size[1])
    return max(keep, -(-max(width, height) // ANALYSIS_MAX_SIDE))


def _for_analysis(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Upright, flat RGB, box-reduced by ``reduction_factor``.

    The same pixels as ``prepare(exif_transpose(image)).reduce(factor)``, made a band of
    rows at a time: each band is cut from the decoded picture, turned upright, flattened
    and reduced on its own (flattening is per pixel, and bands of a multiple of the factor
    keep the reduction's blocks). Whole, a 50 Mpx RGBA picture took five copies of itself
    (+935 MB); in bands the decoded picture is the only large thing held.
    """
    image.load()
    method = orientation(image)
    width, height = upright_size(image, method)
    factor = reduction_factor(width, height, size)
    if factor < 2:  # at most 2048 x 767 pixels: whole
        return prepare(ImageOps.exif_transpose(image))
    rows = max(1, STRIP_PIXELS // (width * factor)) * factor  # upright rows per band
    out = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    for top, band in upright_bands(image, method, rows):
        out.paste(prepare(band).reduce(factor), (0, top // factor))
    return out


def frame_count(image: Image.Image) -> int:
    """Frames of an opened image; a JPEG's MPO extras (gain maps, stereo views) are not
    frames anyone is shown."""
    if image.format in ("JPEG", "MPO"):
        return 1
    return getattr(image, "n_frames", 1)


# A frame's delay as browsers play it: 10 ms or less (or none) is shown for 100 ms.
DEFAULT_DELAY_MS = 100
# Frames sampled by time at most (as a video's: 10 minutes at 1 frame/s).
MAX_TIMED_SAMPLES = 600


def sample_frames(
    data: bytes,
    count: int | None = None,
    size: tuple[int, int] = DEFAULT_DECODE_SIZE,
    fps: float = 1.0,
) -> Frames:
    """The frames a video of the animation would give (uploads.video): one a second, by
    each frame's start time (the delays before it), plus `count`
    (settings.ANIMATION_SAMPLE_FRAMES) spread evenly from first to last, so that a short
    animation is still seen in every stretch (8 frames of 120 ms last one second). Each is
    decoded like a still (``open_for_hashing``) and carries its timestamp; a still image
    gives one frame.

    Seeking composes each frame from the ones before it (GIF disposal, APNG blending), as
    a viewer shows it, so the frames are visited in order once. The frame count was
    checked against the cap at intake (settings.UPLOAD_MAX_FRAMES), which bounds the pass.
    """
    count = count or settings.ANIMATION_SAMPLE_FRAMES
    image = Image.open(io.BytesIO(data))
    total = frame_count(image)
    if total == 1:
        return Frames((Frame(open_for_hashing(data, size)),))
    spread = set(sample_positions(total, count))
    step = 1.0 / fps
    frames, elapsed_ms, next_sample, timed = [], 0, 0.0, 0
    for index in range(total):
        image.seek(index)
        at = elapsed_ms / 1000
        on_time = at >= next_sample - 1e-9 and timed < MAX_TIMED_SAMPLES
        if index in spread or on_time:
            frames.append(Frame(_for_analysis(image, size), index + 1, round(at, 3)))
        if on_time:
            timed += 1
            next_sample = (int(at / step + 1e-9) + 1) * step
        delay = image.info.get("duration") or 0
        elapsed_ms += delay if delay > 10 else DEFAULT_DELAY_MS
    return Frames(tuple(frames), total)


def prepare(image: Image.Image) -> Image.Image:
    """Return an RGB image; transparent areas are put on white.

    The colour hidden under transparent pixels is arbitrary (often black), so
    flattening on a fixed background keeps hashes of the same visible picture
    stable across encoders.
    """
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16"):  # 16-bit greyscale: convert() would clip it to white
        image = Image.fromarray((np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8))
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


class ImageKind(MediaKind):
    name = "image"
    label = "Image"
    formats = "a JPEG, PNG, GIF or WebP image"

    def recognises(self, data: bytes) -> bool:
        # A disguised image is still claimed here, so that validation names the problem.
        return sniff_format(data) is not None or disguised_image(data)

    def validate(self, data: bytes, *, max_bytes: int, max_pixels: int) -> Accepted:
        info = validate_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
        return Accepted(
            kind=self.name,
            mime=info.mime,
            extension=info.extension,
            size=info.size,
            sha256=info.sha256,
            width=info.width,
            height=info.height,
            details={"frames": info.frames} if info.frames > 1 else {},
        )

    def decode(self, data: bytes) -> Image.Image:
        return open_for_hashing(data)

    def sample(self, data: bytes) -> Frames:
        return sample_frames(data)

    def public_rendition(self, data: bytes, mime: str) -> bytes:
        """Pixels and at most a standard sRGB profile; an animation bounded in frames,
        pixels and duration; a still of the first frame if that fails (uploads.renditions).
        Made once in the worker (uploads.services.make_public_copy), never in a request."""
        return render_public(data, mime, max_frames=settings.UPLOAD_MAX_FRAMES)


# -- the registry ----------------------------------------------------------------------------

KINDS: Registry[MediaKind] = Registry()
register, unregister, registered = KINDS.register, KINDS.unregister, KINDS.registered


def get_kind(name: str) -> MediaKind:
    return KINDS[name]


def largest_upload_bytes() -> int:
    """The largest file any kind takes: what intake allows before it knows the kind."""
    return max(kind.max_bytes() for kind in KINDS.values())


def kind_for(data: bytes) -> MediaKind:
    """The first registered kind that recognises the bytes, or RefusedUpload."""
    for kind in KINDS.values():
        if kind.recognises(data):
            return kind
    formats = " or ".join(k.formats for k in KINDS.values())
    raise RefusedUpload(
        "unsupported_format", f"This file is not {formats}, which are the formats accepted."
    )


register(ImageKind())
