"""Perceptual hash algorithms ("voters") behind one small interface.

Every hash is an unsigned Python int so that matching, storage and hex
formatting do not depend on imagehash/pdqhash object types. The image is
decoded and converted once (see ``open_for_hashing`` and ``fingerprint``)
because decoding dominates the cost of hashing a large upload.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import imagehash
import numpy as np
import pdqhash
from PIL import Image, ImageOps

MASK64 = (1 << 64) - 1
VOTERS = ("ahash", "dhash", "phash", "mhash", "pdq")
# JPEG draft decode target: a 1024x768 upload decodes at 512x384 (2x faster), still more
# than the classifier's 320 px input.
DEFAULT_DECODE_SIZE = (384, 384)
# Hashes are computed on a copy no larger than this. PDQ's reference tooling hashes
# images reduced to 512 px; it makes PDQ about 5x cheaper on a 1024x768 photo and moves
# the 64-bit hashes by at most a bit or two (measured; see docs/benchmarks.md).
HASH_MAX_SIDE = 512


def _bits_to_int(bits: np.ndarray) -> int:
    """Row-major, MSB-first: the same order imagehash's str() and PDQ's hex use."""
    packed = np.packbits(np.asarray(bits, dtype=bool).ravel())
    return int.from_bytes(packed.tobytes(), "big")


GREY_MAX_SIDE = 128


def grey_source(image: Image.Image) -> Image.Image:
    """The 64-bit hashes' input: greyscale, box-reduced to at most GREY_MAX_SIDE.

    imagehash resizes to 8-32 px itself; starting from 128 px instead of 512 makes the four
    hashes 7x cheaper and moved them by at most 2 bits (measured on scikit-image photos).
    """
    image = hash_source(image)
    grey = image if image.mode == "L" else image.convert("L")
    if max(grey.size) > GREY_MAX_SIDE:
        scale = GREY_MAX_SIDE / max(grey.size)
        size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
        grey = grey.resize(size, Image.Resampling.BOX)
    return grey


def hash_source(image: Image.Image) -> Image.Image:
    """The image every hash is computed from: flattened RGB (or L), at most HASH_MAX_SIDE."""
    if image.mode not in ("RGB", "L"):
        image = prepare(image)
    longest = max(image.size)
    if longest <= HASH_MAX_SIDE:
        return image
    scale = HASH_MAX_SIDE / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BOX)


class HashAlgorithm:
    """Interface shared by all voters; ``bits`` decides 64-bit vs 256-bit storage."""

    name: str = ""
    bits: int = 64

    def compute(self, image: Image.Image) -> int:
        raise NotImplementedError

    def compute_mirrored(self, image: Image.Image) -> int:
        return self.compute(ImageOps.mirror(image))

    def to_hex(self, value: int) -> str:
        return format(value, f"0{self.bits // 4}x")

    def from_hex(self, text: str) -> int:
        return _from_hex(text, self.bits)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.bits} bits>"


class ImageHash64(HashAlgorithm):
    """An 8x8 imagehash function; accepts a ready "L" image to skip its own conversion."""

    bits = 64

    def __init__(self, name: str, func: Callable[[Image.Image], imagehash.ImageHash]):
        self.name = name
        self._func = func

    def compute(self, image: Image.Image) -> int:
        return _bits_to_int(self._func(grey_source(image)).hash)

    def compute_mirrored(self, image: Image.Image) -> int:
        return self.compute(ImageOps.mirror(grey_source(image)))


class PDQHash(HashAlgorithm):
    """Meta's PDQ (256 bits) with its 0-100 quality score.

    The mirrored hash is computed on a flipped pixel array, not taken from
    ``pdqhash.compute_dihedral``: its flip is done in the DCT domain after the
    (asymmetric) Jarosz downscale and was measured up to 22 bits away from the hash
    of the actually mirrored image, which would eat most of a 31-bit threshold.
    """

    name = "pdq"
    bits = 256

    @staticmethod
    def _rgb_array(image: Image.Image) -> np.ndarray:
        image = hash_source(image)
        return np.asarray(image if image.mode == "RGB" else prepare(image))

    @staticmethod
    def _hash_array(rgb: np.ndarray) -> tuple[int, int]:
        vector, quality = pdqhash.compute(np.ascontiguousarray(rgb))
        return _bits_to_int(vector), int(quality)

    def compute_with_quality(self, image: Image.Image) -> tuple[int, int]:
        return self._hash_array(self._rgb_array(image))

    def compute(self, image: Image.Image) -> int:
        return self.compute_with_quality(image)[0]

    def compute_mirrored(self, image: Image.Image) -> int:
        return self._hash_array(self._rgb_array(image)[:, ::-1])[0]


ALGORITHMS: dict[str, HashAlgorithm] = {
    "ahash": ImageHash64("ahash", imagehash.average_hash),
    "dhash": ImageHash64("dhash", imagehash.dhash),
    # The old flagging system's "perceptual hash": row DCT, bit set if > mean.
    "phash": ImageHash64("phash", imagehash.phash_simple),
    # "Median-DCT hash": 2-D DCT low frequencies, bit set if > median.
    "mhash": ImageHash64("mhash", imagehash.phash),
    "pdq": PDQHash(),
}
HASH64_VOTERS = tuple(name for name in VOTERS if ALGORITHMS[name].bits == 64)


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


def fingerprint(image: Image.Image, mirrored: bool = True) -> dict:
    """All voters' hashes (and their mirrored variants) from one conversion.

    Returns {"ahash": int, ..., "pdq": int, "pdq_quality": int,
    "mirror": {"ahash": int, ..., "pdq": int}} (no "mirror" key if not mirrored).
    """
    rgb = hash_source(prepare(image))
    grey = grey_source(rgb)
    result: dict = {name: ALGORITHMS[name].compute(grey) for name in HASH64_VOTERS}
    pdq: PDQHash = ALGORITHMS["pdq"]  # type: ignore[assignment]
    rgb_array = np.asarray(rgb)
    result["pdq"], result["pdq_quality"] = pdq._hash_array(rgb_array)
    if mirrored:
        grey_mirror = ImageOps.mirror(grey)
        mirror = {name: ALGORITHMS[name].compute(grey_mirror) for name in HASH64_VOTERS}
        mirror["pdq"] = pdq._hash_array(rgb_array[:, ::-1])[0]
        result["mirror"] = mirror
    return result


def open_for_hashing(data: bytes, size: tuple[int, int] = DEFAULT_DECODE_SIZE) -> Image.Image:
    """Decode upload bytes once into an upright RGB image no smaller than ``size``.

    JPEG uses Pillow's draft mode (DCT-domain downscale by 1/2, 1/4 or 1/8), which
    is several times faster than a full decode and moves hashes by a bit or two.
    Other formats are box-reduced by an integer factor for the same reason. The
    result also feeds the classifier, so ``size`` should stay >= 320-640 px.
    Animated GIF/WebP: the first frame. Raises PIL errors on undecodable data.
    """
    image = Image.open(io.BytesIO(data))  # positioned on the first frame of GIF/WebP/APNG
    if image.format == "JPEG":
        image.draft("RGB", size)
    image = ImageOps.exif_transpose(image)
    image = prepare(image)
    factor = min(image.width // size[0], image.height // size[1])
    if factor >= 2:
        image = image.reduce(factor)
    return image


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def to_signed64(value: int) -> int:
    """Unsigned 64-bit hash -> value for a signed BIGINT column."""
    value &= MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def from_signed64(value: int) -> int:
    return value & MASK64


def _from_hex(text: str, bits: int) -> int:
    text = text.strip().lower()
    if len(text) != bits // 4:
        raise ValueError(f"expected {bits // 4} hex chars, got {len(text)}")
    return int(text, 16)


def hash_to_hex(value: int) -> str:
    return format(value & MASK64, "016x")


def hash_from_hex(text: str) -> int:
    return _from_hex(text, 64)


def pdq_to_hex(value: int) -> str:
    """64 lowercase hex chars, most significant first, as ThreatExchange/HMA write PDQ."""
    return format(value, "064x")


def pdq_from_hex(text: str) -> int:
    return _from_hex(text, 256)
