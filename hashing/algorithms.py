"""Hash algorithms ("voters", ThreatExchange's signal types): one class each, one registry.

An algorithm says which media kind it hashes, how many bits it makes, its default and
largest distance threshold, how to compute and compare its hash, and when a hash carries
too little information to count. Adding one is a class here (or anywhere) passed to
``register`` plus a voter row in the policy; storage, the bank index, the vote and the
audit take it from the registry.

Every hash is an unsigned Python int, so that matching, storage and hex formatting do not
depend on imagehash/pdqhash object types. An image is decoded and converted once per
fingerprint (``ImageSource`` keeps the shared copies) because decoding and resizing
dominate the cost of hashing a large upload.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import imagehash
import numpy as np
import pdqhash
from PIL import Image, ImageOps

from moderation_site.registry import Registry
from uploads.kinds import prepare

# Hashes are computed on a copy no larger than this. pdqhash costs 4.2 ms on a 512 px side
# and 1.0-1.4 ms at 384-400 (measured on a 1024x768 photo, 2 cores), twice per upload with
# the mirror; against the PDQ of the full-size picture (what a shared list holds) 384 px
# moved 10 scikit-image photos by 0-14 bits (0-12 at 512), well inside the threshold of 31.
# The 64-bit hashes start from a 128 px grey copy of it either way.
HASH_MAX_SIDE = 384
GREY_MAX_SIDE = 128


class UnknownAlgorithm(KeyError):
    """No registered algorithm has this name (or alias)."""


@dataclass(frozen=True, slots=True)
class Signal:
    """One computed hash; ``quality`` where the algorithm rates its own input (PDQ 0-100)."""

    value: int
    quality: int | None = None


class HashAlgorithm:
    """The interface of every algorithm. Instances are shared per process: keep them pure."""

    name: str = ""
    label: str = ""
    media_kind: str = "image"
    bits: int = 64
    default_threshold: int = 8
    max_threshold: int = 12
    # The weight of its vote in a new policy: 2 for the voters that stay close on copies and
    # far on other pictures, 1 for a weaker one (see the registrations below).
    default_weight: int = 1
    aliases: tuple[str, ...] = ()  # names other hash lists use for it
    mirrorable: bool = True  # a mirrored variant is meaningful (images, not text)
    # The largest distance at which this hash may vote for a content that has fewer voters
    # able to vote than the quorum needs (a hash list without its content column); None:
    # it never counts there (hashing.matcher, "the strict rule"). Measure before setting.
    strict_threshold: int | None = None
    # Thresholded at the median: every hash has exactly half its bits set (how a list's
    # label is checked without pictures, hashing.labels).
    balanced: bool = False

    def signal(self, source) -> Signal:
        """Hash a prepared source (see ``make_source``)."""
        raise NotImplementedError

    def compute(self, subject) -> int:
        return self.signal(make_source(self.media_kind, subject)).value

    def compute_mirrored(self, subject) -> int:
        return self.signal(make_source(self.media_kind, subject).mirrored()).value

    def distance(self, a: int, b: int) -> int:
        return (a ^ b).bit_count()

    def informative(self, signal: Signal) -> bool:
        """False when the hash is too featureless to match on: the voter abstains."""
        return True

    def strict_informative(self, signal: Signal) -> bool:
        """Whether the hash says enough to vote under the strict rule (see strict_threshold)."""
        return self.informative(signal)

    def to_hex(self, value: int) -> str:
        return format(value, f"0{self.bits // 4}x")

    def from_hex(self, text: str) -> int:
        """Lowercase or uppercase hex of exactly bits/4 characters, or ValueError."""
        text = text.strip().lower()
        if len(text) != self.bits // 4:
            raise ValueError(f"expected {self.bits // 4} hex chars, got {len(text)}")
        return int(text, 16)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.bits} bits>"


# -- sources: an item's decoded content, with the conversions its algorithms share -----------
# (``prepare`` and ``open_for_hashing`` are the image kind's decoding, in uploads.kinds.)


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


class ImageSource:
    """A decoded picture and the copies its algorithms share, each made once on demand."""

    def __init__(self, image: Image.Image):
        self.image = image

    @cached_property
    def rgb(self) -> Image.Image:
        return hash_source(prepare(self.image))

    @cached_property
    def grey(self) -> Image.Image:
        return grey_source(self.rgb)

    @cached_property
    def rgb_array(self) -> np.ndarray:
        return np.asarray(self.rgb)

    @cached_property
    def grey_deviation(self) -> float:
        """How far the picture is from flat: the grey copy's standard deviation (0-255)."""
        return float(np.asarray(self.grey, dtype=np.float32).std())

    def mirrored(self) -> MirroredImageSource:
        return MirroredImageSource(self)


class MirroredImageSource:
    """The mirror of an ImageSource, flipped from its small copies rather than re-made."""

    def __init__(self, original: ImageSource):
        self.original = original

    @cached_property
    def grey(self) -> Image.Image:
        return ImageOps.mirror(self.original.grey)

    @cached_property
    def rgb_array(self) -> np.ndarray:
        return self.original.rgb_array[:, ::-1]

    @property
    def grey_deviation(self) -> float:
        return self.original.grey_deviation


SOURCES: dict[str, Callable] = {"image": ImageSource}


def make_source(media_kind: str, subject):
    """What a kind's algorithms read: an ImageSource for images, else the subject itself."""
    if isinstance(subject, ImageSource | MirroredImageSource):
        return subject
    make = SOURCES.get(media_kind)
    return make(subject) if make else subject


# -- the image algorithms ----------------------------------------------------------------


def _bits_to_int(bits: np.ndarray) -> int:
    """Row-major, MSB-first: the same order imagehash's str() and PDQ's hex use."""
    packed = np.packbits(np.asarray(bits, dtype=bool).ravel())
    return int.from_bytes(packed.tobytes(), "big")


class ImageHash64(HashAlgorithm):
    """An 8x8 imagehash function over the shared small greyscale copy.

    Its quality (0-100, like PDQ's) rates how much the hash can say: flat pictures (grey
    standard deviation below 8 of 255 at 128 px: blank pages, dark windows, solid colours,
    "loading" screens) and hashes with fewer than 10 bits of one value (gradients give
    dhash 0, phash_simple 0-8, phash 1) score below 50 and abstain, as PDQ does. Measured on
    14 scikit-image photos: deviation 11.5-112, balance 13-32 for every hash but dHash of a
    printed page (0, which abstains while the other voters still vote).

    Under the strict rule (a hash voting for a content short of the quorum) only a quality
    of 100 counts: a radial gradient's phash_simple (quality 80) was 2 bits from the clock
    photo's, while no low-detail picture's phash_simple of quality 100 came within 13 bits
    of a photo's (44 generated gradients, vignettes, shapes, pages and screenshots against
    24 scikit-image photos; the registrations below give each algorithm's numbers).
    """

    bits = 64
    max_threshold = 12
    MIN_DEVIATION = 16  # quality 50 at a deviation of 8
    MIN_BALANCE = 20  # quality 50 at 10 bits of the rarer value

    def __init__(
        self,
        name,
        label,
        func,
        *,
        threshold,
        aliases=(),
        strict_threshold=None,
        balanced=False,
        weight=1,
    ):
        self.name, self.label, self._func = name, label, func
        self.default_threshold, self.default_weight = threshold, weight
        self.aliases = aliases
        self.strict_threshold, self.balanced = strict_threshold, balanced

    def signal(self, source) -> Signal:
        value = _bits_to_int(self._func(source.grey).hash)
        ones = value.bit_count()
        balance = min(ones, self.bits - ones)
        rating = min(source.grey_deviation / self.MIN_DEVIATION, balance / self.MIN_BALANCE)
        return Signal(value, min(100, round(100 * rating)))

    def informative(self, signal: Signal) -> bool:
        return signal.quality is None or signal.quality >= 50

    def strict_informative(self, signal: Signal) -> bool:
        return signal.quality is None or signal.quality >= 100


class PDQHash(HashAlgorithm):
    """Meta's PDQ (256 bits) with its 0-100 quality score.

    The mirrored hash is computed on a flipped pixel array, not taken from
    ``pdqhash.compute_dihedral``: its flip is done in the DCT domain after the
    (asymmetric) Jarosz downscale and was measured up to 22 bits away from the hash
    of the actually mirrored image, which would eat most of a 31-bit threshold.
    """

    name = "pdq"
    label = "PDQ"
    bits = 256
    default_threshold = 31
    max_threshold = 31
    aliases = ("pdq_hash", "hash_pdq", "pdqhash")
    # Meta's PDQ guidance: below this quality a hash is too featureless to match on.
    MIN_QUALITY = 50
    # Alone (PDQ-only lists, as ThreatExchange and HMA share them) PDQ keeps the industry's
    # 31 and its quality 50: no generated low-detail picture came within 100 bits of a
    # scikit-image photo's PDQ, nor any photo within 106 of another's.
    strict_threshold = 31
    default_weight = 2
    balanced = True  # 128 of 256 bits set: 99 % of 288 photo crops, the rest 124-127

    def signal(self, source) -> Signal:
        vector, quality = pdqhash.compute(np.ascontiguousarray(source.rgb_array))
        return Signal(_bits_to_int(vector), int(quality))

    def compute_with_quality(self, image) -> tuple[int, int]:
        found = self.signal(make_source(self.media_kind, image))
        return found.value, found.quality

    def informative(self, signal: Signal) -> bool:
        return signal.quality is None or signal.quality >= self.MIN_QUALITY


# -- the registry ---------------------------------------------------------------------------


class _Algorithms(Registry[HashAlgorithm]):
    def register(self, algorithm: HashAlgorithm) -> HashAlgorithm:
        if algorithm.bits % 64:
            raise ValueError(f"{algorithm.name}: hashes are stored in 64-bit words")
        return super().register(algorithm)


ALGORITHMS = _Algorithms()
register, unregister, registered = ALGORITHMS.register, ALGORITHMS.unregister, ALGORITHMS.registered


def get_algorithm(name: str) -> HashAlgorithm:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise UnknownAlgorithm(name) from None


def algorithm_named(text: str) -> HashAlgorithm:
    """By name or by an alias other hash lists use (case-insensitive)."""
    wanted = text.strip().lower()
    for algorithm in ALGORITHMS.values():
        if wanted == algorithm.name or wanted in algorithm.aliases:
            return algorithm
    raise UnknownAlgorithm(text)


def algorithms_for(media_kind: str) -> list[HashAlgorithm]:
    return [a for a in ALGORITHMS.values() if a.media_kind == media_kind]


def names(media_kind: str | None = None) -> tuple[str, ...]:
    return tuple(n for n, a in ALGORITHMS.items() if media_kind in (None, a.media_kind))


# Names are imagehash's (``average_hash``, ``dhash``, ``phash``, ``phash_simple``), so a list
# written with imagehash means what it says. Strict thresholds (a hash voting for a content
# short of the quorum, hashing.matcher) were measured with 44 generated low-detail pictures
# (gradients, vignettes, shapes, pages, screenshots) and 24 scikit-image photos against
# those photos' hashes as imagehash computes them: a lone aHash came within 1 bit (a linear
# gradient and the scanned page) and 4 (a radial gradient and the rocket) at quality 100, so
# it never counts alone; dHash within 6 (radial gradients and the colour wheel), so 4;
# phash_simple 13 at quality 100, so 4; phash never nearer than 16, so 6 (half its 12).
# Default weights: aHash, dHash, pHash and PDQ 2, phash_simple 1, with the policy's quorum
# of 4, so any two of the four agree to block. Over bench/detection.py's set (8 photos x 20
# copies incl. rotations, 43 negatives) with rotated references this caught 159 of 160
# copies against 157 for 3-of-5 equal votes, with no false match and the nearest negative
# 11 bits from blocking; phash_simple gets 1 since off it would leave imported
# phash_simple lists unmatched, and at 2 its 4-bit margins to innocent pictures decided.
register(
    ImageHash64(
        "ahash",
        "aHash",
        imagehash.average_hash,
        threshold=8,
        aliases=("average_hash",),
        weight=2,
    )
)
register(
    ImageHash64(
        "dhash",
        "dHash",
        imagehash.dhash,
        threshold=10,
        aliases=("difference_hash",),
        strict_threshold=4,
        weight=2,
    )
)
# imagehash.phash_simple: a DCT along the rows of the 32 px copy (its top 8 rows), a bit set
# above the mean. This product called it "phash" until the lists issue (#9): lists written
# with imagehash.phash then never matched.
register(
    ImageHash64(
        "phash_simple", "pHash (simple)", imagehash.phash_simple, threshold=8, strict_threshold=4
    )
)
# imagehash.phash: the 2-D DCT's 8x8 low frequencies, a bit set above their median, so 32
# of 64 bits are set. "mhash" (and "median_hash") is this product's former name for it:
# no other list uses it for a 64-bit hash.
register(
    ImageHash64(
        "phash",
        "pHash",
        imagehash.phash,
        threshold=12,
        aliases=("mhash", "median_hash"),
        strict_threshold=6,
        balanced=True,
        weight=2,
    )
)
register(PDQHash())


# -- fingerprints ---------------------------------------------------------------------------


def fingerprint(subject, media_kind: str = "image", mirrored: bool = True) -> dict:
    """Every algorithm of the kind (and their mirrored variants) from one shared source.

    Returns {name: int, ..., "quality": {name: int}, "mirror": {name: int}} ("mirror" only
    when asked for and the kind has mirrors; "quality" for algorithms that rate themselves),
    and for a video whose frames had black bars "uncut": the hashes of its frames whole
    (uploads.video: the bars are cut before hashing, and a copy matches by either reading).
    """
    source = make_source(media_kind, subject)
    algorithms = algorithms_for(media_kind)
    result: dict = {}
    quality: dict[str, int] = {}
    for algorithm in algorithms:
        found = algorithm.signal(source)
        result[algorithm.name] = found.value
        if found.quality is not None:
            quality[algorithm.name] = found.quality
    result["quality"] = quality
    mirror_of = getattr(source, "mirrored", None)
    if mirrored and mirror_of is not None:
        flipped = mirror_of()
        result["mirror"] = {a.name: a.signal(flipped).value for a in algorithms if a.mirrorable}
    uncut_of = getattr(source, "uncut", None)  # a video whose frames had black bars
    whole = uncut_of() if uncut_of is not None else None
    if whole is not None:
        result["uncut"] = {a.name: a.signal(whole).value for a in algorithms}
    return result


def informative(fp: dict, name: str) -> bool:
    """Whether the fingerprint's hash of `name` exists and carries enough to vote."""
    if fp.get(name) is None:
        return False
    quality = (fp.get("quality") or {}).get(name)
    return get_algorithm(name).informative(Signal(fp[name], quality))


def fingerprint_hex(fp: dict | None) -> dict:
    """The fingerprint as hex strings, the audit's and the API's shape."""
    if not fp:
        return {}
    out: dict = {n: ALGORITHMS[n].to_hex(v) for n, v in fp.items() if n in ALGORITHMS}
    out["quality"] = dict(fp.get("quality") or {})
    if fp.get("mirror"):
        out["mirror"] = {n: ALGORITHMS[n].to_hex(v) for n, v in fp["mirror"].items()}
    return out
