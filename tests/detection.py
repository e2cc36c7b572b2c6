"""The detection test set of issue 9, and the measure of a voting configuration on it.

The set: bank pictures (real photographs shipped with scikit-image), the copies re-posters
make of each (``VARIANTS``), and innocent pictures that must never match (``negatives``):
flat and low-detail uploads (solid colours, gradients, blank pages, screenshots, dark
frames, a "loading..." screen) and other photographs and graphics. Everything is made here
from packaged data or generated, so the set is the same on every machine.

The measure goes the product's way: the bank is made with ``hashing.services.add_images``
from the reference bytes; each copy is hashed as an upload is
(``uploads.kinds.open_for_hashing`` then ``hashing.algorithms.fingerprint``) and voted on
with ``hashing.matcher.vote``; near duplicates among the negatives are found by
``hashing.duplicates.find_duplicates`` on stored items. ``evaluate`` reports recall per
variant, false matches, copies blocked as the wrong picture, each voter's margin on the
nearest negative (its distance minus its limit) and how many bits the nearest negative's
hashes were from being blocked.

``offline_vote`` is the same rule computed from the hashes in memory; it lets
``bench/detection.py`` try rules the product does not have (two strong voters carrying a
match, a rotation-tolerant experimental hash), and a test checks it agrees with the
product's vote wherever the product can express the rule.

Rotated copies: ``rotate_+3`` etc. are rotated about the centre with the canvas kept
(``expand=False``) and the uncovered corners filled black, as a naive editor does;
``rotate_+3_cropped`` etc. are the same rotation cropped to the largest centred rectangle of
the original aspect ratio with no filled corner, as a phone's "straighten" does.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

from hashing import matcher, services
from hashing.algorithms import ALGORITHMS, Signal, fingerprint, fingerprint_hex
from hashing.duplicates import find_duplicates, item_index
from hashing.matcher import full_quorum, quorum_for, strict_limits
from hashing.models import BankContent, BankEntry, BankVersion
from hashing.references import rotate_cropped, rotate_filled
from review.pipeline import store_fingerprint
from tests.conftest import VENUS
from tests.images import low_detail as basic_low_detail
from uploads.kinds import open_for_hashing
from uploads.models import MediaItem

# Bank pictures: real photographs (not scans, drawings or micrographs of flat fields).
BANK_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "immunohistochemistry",
    "hubble_deep_field",
    "motorcycle",
)
# Other packaged pictures, never in the bank. (skimage's "cat" is "chelsea" again, and the
# right half of the motorcycle stereo pair is the same scene: both are left out.)
OTHER_PHOTOS = (
    "retina",
    "coins",
    "moon",
    "brick",
    "grass",
    "gravel",
    "clock",
    "cell",
    "text",
    "page",
    "horse",
    "colorwheel",
    "logo",
    "checkerboard",
    "shepp_logan_phantom",
    "microaneurysms",
)

ROTATIONS = (3, -3, 5, -5)
REFERENCE_QUALITY = 95  # the bank's copy, as an admin adds it
UPLOAD_QUALITY = 85  # a re-encoded copy, unless the variant is about quality


# -- pictures --------------------------------------------------------------------------


def encode(image: Image.Image, quality: int = UPLOAD_QUALITY) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def encode_png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _as_rgb(array) -> Image.Image:
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        low, high = float(array.min()), float(array.max())
        array = ((array - low) / ((high - low) or 1) * 255).round().astype(np.uint8)
    image = Image.fromarray(array)
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


@cache
def photo(name: str) -> Image.Image:
    """A packaged picture as RGB (scikit-image's data; "motorcycle" is the stereo pair's
    left view). Small ones are enlarged to upload size. Callers must not modify it."""
    from skimage import data

    if name == "motorcycle":
        image = _as_rgb(data.stereo_motorcycle()[0])
    else:
        image = _as_rgb(getattr(data, name)())
    if max(image.size) < 256:
        scale = 384 / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)))
    return image


def crop_fraction(image: Image.Image, fraction: float) -> Image.Image:
    """Keep the middle (1 - fraction) of width and height (fraction / 2 off each side)."""
    w, h = image.size
    dx, dy = round(w * fraction / 2), round(h * fraction / 2)
    return image.crop((dx, dy, w - dx, h - dy))


def brighter(image: Image.Image, factor: float) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(factor)


def watermark(image: Image.Image) -> Image.Image:
    """A re-poster's mark: a half-opaque logo badge in a corner and a caption line."""
    w, h = image.size
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    unit = max(12, w // 16)
    draw.ellipse((unit // 2, unit // 2, unit * 5 // 2, unit * 5 // 2), fill=(255, 255, 255, 150))
    font = ImageFont.load_default(size=unit)
    draw.text((unit, unit), "R", fill=(200, 0, 0, 200), font=font)
    caption = ImageFont.load_default(size=max(10, unit * 2 // 3))
    draw.text(
        (unit, h - unit * 3 // 2),
        "@reposter · follow for more",
        fill=(255, 255, 255, 170),
        font=caption,
    )
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def combined(image: Image.Image) -> Image.Image:
    """Crop 5 %, rotate 3° (black corners), 20 % brighter; encoded at JPEG q40 below."""
    return brighter(rotate_filled(crop_fraction(image, 0.05), 3), 1.2)


def _variants() -> dict[str, Callable[[Image.Image], bytes]]:
    out: dict[str, Callable[[Image.Image], bytes]] = {
        "exact": lambda img: encode(img, REFERENCE_QUALITY),  # the bank's own bytes
        "jpeg_q30": lambda img: encode(img, 30),
        "jpeg_q40": lambda img: encode(img, 40),
        "half_size": lambda img: encode(img.resize((img.width // 2, img.height // 2))),
        "greyscale": lambda img: encode(img.convert("L")),
        "brighter_20pc": lambda img: encode(brighter(img, 1.2)),
        "brighter_30pc": lambda img: encode(brighter(img, 1.3)),
        "watermark": lambda img: encode(watermark(img)),
        "crop_5pc": lambda img: encode(crop_fraction(img, 0.05)),
        "crop_10pc": lambda img: encode(crop_fraction(img, 0.10)),
        "mirrored": lambda img: encode(ImageOps.mirror(img)),
    }
    for degrees in ROTATIONS:
        out[f"rotate_{degrees:+d}"] = lambda img, d=degrees: encode(rotate_filled(img, d))
    for degrees in ROTATIONS:
        out[f"rotate_{degrees:+d}_cropped"] = lambda img, d=degrees: encode(rotate_cropped(img, d))
    out["combined"] = lambda img: encode(combined(img), 40)
    return out


VARIANTS = _variants()
ROTATION_VARIANTS = tuple(v for v in VARIANTS if v.startswith("rotate_") or v == "combined")


# -- negatives -------------------------------------------------------------------------


def _ramp(width: int, height: int) -> np.ndarray:
    return np.tile(np.linspace(0, 1, width), (height, 1))


def _text_lines(draw, x, y, lines, fill, size=14, step=22):
    font = ImageFont.load_default(size=size)
    for k, line in enumerate(lines):
        draw.text((x, y + k * step), line, fill=fill, font=font)


def more_low_detail() -> dict[str, Image.Image]:
    """Low-detail uploads beyond tests.images': more flat colours, gradients, screenshots."""
    out = {
        "red": Image.new("RGB", (640, 480), (200, 30, 30)),
        "mid grey": Image.new("RGB", (640, 480), (128, 128, 128)),
    }
    yy, xx = np.mgrid[0:480, 0:640]
    radial = np.hypot(xx - 320, yy - 240) / math.hypot(320, 240)
    out["radial gradient"] = _as_rgb((255 * (1 - radial)).astype(np.uint8))
    diagonal = (xx + yy) / (640 + 480)
    out["diagonal colour gradient"] = _as_rgb(
        np.stack([255 * diagonal, 80 + 100 * (1 - diagonal), 255 * (1 - diagonal)], axis=-1)
        .round()
        .astype(np.uint8)
    )
    rng = np.random.default_rng(7)
    dark = 12 + 8 * (1 - radial) + rng.normal(0, 1.5, radial.shape)
    out["dark video frame"] = _as_rgb(np.clip(dark, 0, 255).astype(np.uint8))

    chat = Image.new("RGB", (720, 1280), "white")
    draw = ImageDraw.Draw(chat)
    draw.rectangle((0, 0, 720, 90), fill=(240, 240, 240))
    _text_lines(draw, 40, 35, ["Alex"], "black", size=24)
    for k, text in enumerate(
        [
            "hey, are we still on for tonight?",
            "yes! 8pm at the usual place",
            "great, see you there",
            "bring the charger pls",
        ]
    ):
        left = k % 2 == 0
        top = 140 + k * 110
        box = (30, top, 430, top + 70) if left else (290, top, 690, top + 70)
        draw.rounded_rectangle(box, 20, fill=(230, 230, 235) if left else (0, 132, 255))
        _text_lines(draw, box[0] + 20, top + 22, [text], "black" if left else "white", size=20)
    out["chat screenshot"] = chat

    code = Image.new("RGB", (1024, 640), (30, 30, 36))
    draw = ImageDraw.Draw(code)
    source = [
        "def vote(fp, policy):",
        "    voters = producing_voters(fp, policy)",
        "    state = matcher.state()",
        "    return tally(state, voters)",
        "",
        "# TODO: weights",
        "class Bank:",
        "    pass",
    ]
    _text_lines(draw, 60, 40, source, (200, 200, 170), size=16, step=26)
    out["code editor screenshot"] = code

    settings_page = Image.new("RGB", (750, 1334), (242, 242, 247))
    draw = ImageDraw.Draw(settings_page)
    for k, label in enumerate(
        [
            "Wi-Fi",
            "Bluetooth",
            "Notifications",
            "Sounds",
            "Focus",
            "Screen Time",
            "General",
            "Display",
        ]
    ):
        top = 200 + k * 88
        draw.rectangle((0, top, 750, top + 86), fill="white")
        _text_lines(draw, 40, top + 30, [label], "black", size=24)
    out["settings screenshot"] = settings_page
    return out


def generated_graphics() -> dict[str, Image.Image]:
    """Synthetic pictures with detail: charts, patterns, textures, a fractal."""
    out = {}
    yy, xx = np.mgrid[0:480, 0:640]
    angle = (np.arctan2(yy - 240, xx - 320) + np.pi) / (2 * np.pi)
    radius = np.hypot(xx - 320, yy - 240) / 240
    hsv = np.stack([angle * 255, np.clip(radius, 0, 1) * 255, np.full_like(angle, 255)], -1)
    wheel = Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB")
    mask = Image.fromarray(((radius <= 1) * 255).astype(np.uint8))
    out["hue wheel"] = Image.composite(wheel, Image.new("RGB", wheel.size, "white"), mask)

    chart = Image.new("RGB", (800, 600), "white")
    draw = ImageDraw.Draw(chart)
    draw.line((80, 40, 80, 540, 760, 540), fill="black", width=3)
    for k, value in enumerate([320, 180, 410, 260, 120, 360]):
        draw.rectangle((110 + k * 105, 540 - value, 180 + k * 105, 540), fill=(66, 133, 244))
    out["bar chart"] = chart

    pie = Image.new("RGB", (600, 600), "white")
    draw = ImageDraw.Draw(pie)
    start = 0.0
    for share, colour in zip((0.4, 0.25, 0.2, 0.15), ("#e74c3c", "#3498db", "#2ecc71", "#f1c40f")):
        draw.pieslice((60, 60, 540, 540), start, start + 360 * share, fill=colour)
        start += 360 * share
    out["pie chart"] = pie

    line = Image.new("RGB", (800, 500), "white")
    draw = ImageDraw.Draw(line)
    rng = np.random.default_rng(3)
    points = np.cumsum(rng.normal(0, 18, 40)) + 250
    draw.line(list(zip(np.linspace(40, 760, 40), points)), fill=(220, 50, 50), width=4)
    for y in range(50, 500, 75):
        draw.line((40, y, 760, y), fill=(220, 220, 220))
    out["line chart"] = line

    out["concentric rings"] = _as_rgb((127 + 127 * np.sin(radius * 30)).astype(np.uint8))
    out["diagonal stripes"] = _as_rgb(((xx + yy) // 40 % 2 * 200 + 30).astype(np.uint8))

    rng = np.random.default_rng(11)
    coarse = rng.random((12, 16, 3))
    noise = Image.fromarray((coarse * 255).astype(np.uint8)).resize(
        (640, 480), Image.Resampling.BICUBIC
    )
    out["smooth noise texture"] = noise

    c = (xx / 640 * 3.0 - 2.2) + 1j * (yy / 480 * 2.4 - 1.2)
    z = np.zeros_like(c)
    count = np.zeros(c.shape, dtype=np.int32)
    for _ in range(40):
        z = np.where(np.abs(z) <= 2, z * z + c, z)
        count += np.abs(z) <= 2
    out["mandelbrot"] = _as_rgb((count * 6 % 256).astype(np.uint8))

    circles = Image.new("RGB", (640, 480), (250, 245, 235))
    draw = ImageDraw.Draw(circles)
    rng = np.random.default_rng(5)
    for x, y, r, hue in zip(*(rng.integers(0, n, 40) for n in (640, 480, 60, 255))):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(int(hue), 255 - int(hue), 128))
    out["random circles"] = circles

    tiles = np.kron(np.random.default_rng(9).integers(0, 255, (4, 6, 3)), np.ones((120, 107, 1)))
    out["colour tiles"] = _as_rgb(tiles.astype(np.uint8))
    return out


def negative_pictures() -> tuple[dict[str, Image.Image], frozenset[str]]:
    """{name: picture} and the names of the low-detail ones."""
    flat = {**basic_low_detail(), **more_low_detail()}
    others = {name: photo(name) for name in OTHER_PHOTOS}
    others["venus"] = Image.open(VENUS).convert("RGB")  # a painting, in tests/fixtures
    others.update(generated_graphics())
    return {**flat, **others}, frozenset(flat)


# -- the set ---------------------------------------------------------------------------


def hash_upload(data: bytes) -> dict:
    """An upload's fingerprint, the pipeline's way (with the mirrored hashes)."""
    return fingerprint(open_for_hashing(data), mirrored=True)


@dataclass
class DetectionSet:
    references: dict[str, bytes]  # bank picture -> the bytes added to the bank
    variants: dict[tuple[str, str], bytes]  # (bank picture, variant) -> uploaded bytes
    negatives: dict[str, bytes]
    low_detail: frozenset[str]
    variant_fps: dict[tuple[str, str], dict] = field(default_factory=dict)
    negative_fps: dict[str, dict] = field(default_factory=dict)
    hash_ms: list[float] = field(default_factory=list)  # one upload's fingerprint, each

    @property
    def variant_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v for _, v in self.variants))

    def summary(self) -> str:
        return (
            f"{len(self.references)} bank pictures × {len(self.variant_names)} variants = "
            f"{len(self.variants)} copies; {len(self.negatives)} negatives, "
            f"{len(self.low_detail)} of them low-detail"
        )


def build_set(photos: Sequence[str] = BANK_PHOTOS, variants: Sequence[str] | None = None):
    """The set with every upload's fingerprint computed (a few seconds on 2 cores)."""
    chosen = {v: VARIANTS[v] for v in (variants or VARIANTS)}
    references = {name: encode(photo(name), REFERENCE_QUALITY) for name in photos}
    copies = {(name, v): make(photo(name)) for name in photos for v, make in chosen.items()}
    pictures, flat = negative_pictures()
    negatives = {
        # Flat pictures are PNGs, as screenshots and generated images are; photos JPEGs.
        name: encode_png(image) if name in flat else encode(image)
        for name, image in pictures.items()
    }
    found = DetectionSet(references, copies, negatives, flat)
    for key, data in copies.items():
        found.variant_fps[key] = _timed_hash(data, found.hash_ms)
    for key, data in negatives.items():
        found.negative_fps[key] = _timed_hash(data, found.hash_ms)
    return found


def _timed_hash(data: bytes, into: list[float]) -> dict:
    start = time.perf_counter()
    fp = hash_upload(data)
    into.append((time.perf_counter() - start) * 1000)
    return fp


# -- the bank --------------------------------------------------------------------------

# Extra reference versions (bench/detection.py tries them): suffix -> how a reference
# picture is transformed before it is added as a content of its own.
Versions = Mapping[str, Callable[[Image.Image], Image.Image]]


@dataclass
class BankSet:
    """The set's bank as stored: content id -> bank picture, and each content's entries
    (a picture has one content, or several when extra versions of it were added)."""

    names: dict[int, str]
    entries: dict[int, dict[str, int]]  # content id -> {algorithm: hash}
    row: object = None  # the hashing.models.Bank

    def name_of(self, content_id) -> str | None:
        return self.names.get(content_id)

    def contents_of(self, picture: str) -> list[int]:
        return [c for c, name in self.names.items() if name == picture]


def make_bank(
    ds: DetectionSet,
    name: str = "detection set",
    versions: Versions | None = None,
    *,
    rotated: bool = True,
) -> BankSet:
    """The bank pictures added as an admin adds them, with ``services.add_images`` (needs
    the database); each of `versions` adds the transformed picture as one more content.
    `rotated` False drops the rotated versions add_images banks (hashing.references), to
    measure the bank as it was before them."""
    versions = versions or {}
    bank = services.create_bank(name)
    files, picture_of = [], {}
    for picture, data in ds.references.items():
        files.append((f"{picture}.jpg", data))
        picture_of[f"{picture}.jpg"] = picture
        for suffix, transform in versions.items():
            image = transform(open_for_hashing(data))
            files.append((f"{picture} {suffix}.jpg", encode(image, REFERENCE_QUALITY)))
            picture_of[f"{picture} {suffix}.jpg"] = picture
    services.add_images(bank, files)
    contents = BankContent.objects.filter(bank=bank)
    if not rotated:
        contents.exclude(variant_of=None).delete()
        BankVersion.bump()
    names = {
        pk: picture_of[name]
        for pk, name in contents.filter(variant_of=None).values_list("pk", "name")
        if name in picture_of
    }
    # The rotated versions add_images banks with each picture count as that picture.
    for pk, parent in contents.exclude(variant_of=None).values_list("pk", "variant_of"):
        if parent in names:
            names[pk] = names[parent]
    entries: dict[int, dict[str, int]] = {c: {} for c in names}
    rows = BankEntry.objects.filter(content_id__in=list(names)).values_list(
        "content_id", "algorithm", "value"
    )
    for content_id, algorithm, value in rows:
        entries[content_id][algorithm] = int(value, 16)
    return BankSet(names, entries, bank)


# -- votes -----------------------------------------------------------------------------

# A vote takes the query's fingerprints (the upload's, then any extra ones a rule asks for)
# and returns (blocked, bank picture or None).
Vote = Callable[[Sequence[dict], object, BankSet], tuple[bool, str | None]]


def product_vote(fps: Sequence[dict], rules, bank: BankSet) -> tuple[bool, str | None]:
    """``hashing.matcher.vote`` on each fingerprint; the first that blocks decides."""
    for fp in fps:
        result = matcher.vote(fp, rules)
        if result["blocked"]:
            return True, bank.name_of(result["content"])
    return False, None


@dataclass(frozen=True)
class StrongPair:
    """A rule the product does not have: `needed` voters each within their (tight)
    distance of a fully hashed content block it, whatever the quorum says."""

    thresholds: Mapping[str, int]
    needed: int = 2


def _algorithm(name: str, algorithms: Mapping):
    return algorithms.get(name) or ALGORITHMS[name]


def _known(name: str, algorithms: Mapping) -> bool:
    return name in algorithms or name in ALGORITHMS


def _usable(fp: dict, name: str, algorithms: Mapping) -> bool:
    if fp.get(name) is None:
        return False
    quality = (fp.get("quality") or {}).get(name)
    return _algorithm(name, algorithms).informative(Signal(fp[name], quality))


def distances(fp: dict, reference: Mapping[str, int], rules, algorithms: Mapping = {}) -> dict:
    """{voter: distance} for each enabled voter with an informative hash in the query and an
    entry in the reference; the mirror's distance counts when the rules are mirror-aware."""
    out = {}
    mirror = (fp.get("mirror") or {}) if rules.mirror_aware else {}
    for name in rules.voter_settings():
        if name not in reference or not _known(name, algorithms):
            continue
        if not _usable(fp, name, algorithms):
            continue
        algorithm = _algorithm(name, algorithms)
        found = algorithm.distance(fp[name], reference[name])
        if mirror.get(name) is not None:
            found = min(found, algorithm.distance(mirror[name], reference[name]))
        out[name] = found
    return out


@dataclass(frozen=True)
class Judged:
    """One query against one content: blocked, how many bits short of blocking it was,
    each counting voter's distance beyond (positive) or within (≤ 0) its limit, and the
    weight and summed distance of the votes (how ``matcher.vote`` ranks contents)."""

    blocked: bool
    bits: int
    gaps: dict[str, int]
    weight: int = 0
    distance: int = 0


NEVER = 10**6


def judge(
    fp: dict,
    reference: Mapping[str, int],
    rules,
    *,
    strong: StrongPair | None = None,
    algorithms: Mapping = {},
) -> Judged:
    """The product's rule (``hashing.matcher.vote`` for one content) from hashes in memory.

    Voters count when enabled, informative on the query and present in the content; a
    content with less of their weight than a complete one's quorum (``full_quorum``) is
    judged by the strict rule: only voters with a strict limit, on a query hash of full
    quality, each within that limit. The weight needed is ``quorum_for`` theirs. "Bits"
    is the fewest bits the query's hashes would have to move for it to be blocked (0 when
    it is), over every group of voters heavy enough. `strong`: the optional extra rule.
    """
    settings = rules.voter_settings()
    found = distances(fp, reference, rules, algorithms)
    full_weight = sum(
        s.weight for n, s in settings.items() if _known(n, algorithms) and fp.get(n) is not None
    )
    full = quorum_for(rules, full_weight) if full_weight else 1
    limits = {n: settings[n].threshold for n in found}
    short = sum(settings[n].weight for n in limits) < full
    if short:
        quality = fp.get("quality") or {}
        strict = {}
        for n in limits:
            algorithm = _algorithm(n, algorithms)
            limit = getattr(algorithm, "strict_threshold", None)
            if limit is not None and algorithm.strict_informative(Signal(fp[n], quality.get(n))):
                strict[n] = min(limits[n], limit)
        limits = strict
    gaps = {n: found[n] - limit for n, limit in limits.items()}
    quorum = quorum_for(rules, sum(settings[n].weight for n in limits))
    best = NEVER
    for size in range(1, len(limits) + 1):
        for group in itertools.combinations(limits, size):
            if sum(settings[n].weight for n in group) >= quorum:
                best = min(best, sum(max(0, gaps[n]) for n in group))
    if strong is not None and not short:
        close = [n for n in found if n in strong.thresholds]
        for group in itertools.combinations(close, strong.needed):
            best = min(best, sum(max(0, found[n] - strong.thresholds[n]) for n in group))
    votes = [n for n, gap in gaps.items() if gap <= 0]
    weight = sum(settings[n].weight for n in votes)
    return Judged(best == 0, best, gaps, weight, sum(found[n] for n in votes))


def offline_vote(
    fps: Sequence[dict],
    rules,
    bank: BankSet,
    *,
    strong: StrongPair | None = None,
    algorithms: Mapping = {},
) -> tuple[bool, str | None]:
    """``product_vote`` computed by ``judge``: of the blocking contents, the one with the
    most vote weight, then the nearest, decides (``matcher.Tally.rank``)."""
    for fp in fps:
        blocking = []
        for content, reference in bank.entries.items():
            judged = judge(fp, reference, rules, strong=strong, algorithms=algorithms)
            if judged.blocked:
                blocking.append((-judged.weight, judged.distance, content))
        if blocking:
            return True, bank.name_of(min(blocking)[2])
    return False, None


# -- near duplicates among the negatives ---------------------------------------------------


def product_duplicate_pairs(ds: DetectionSet, rules, names: Sequence[str]) -> list[tuple]:
    """Pairs of `names` (negatives) the product calls near copies: each stored as a decided
    item with its fingerprint rows, then ``find_duplicates`` for each (needs the database).
    Returns [(a, b, {voter: distance})]."""
    item_index.reset()
    items = {}
    for name in names:
        data = ds.negatives[name]
        item = MediaItem.objects.create(
            kind="image",
            file=f"detection/{hashlib.sha256(name.encode()).hexdigest()[:16]}.img",
            original_name=name,
            sha256=hashlib.sha256(data).hexdigest(),
            mime="image/png",
            size=len(data),
            source=MediaItem.Source.WEB,
            status=MediaItem.Status.APPROVED,
        )
        store_fingerprint(item, fingerprint_hex(ds.negative_fps[name]))
        items[item.pk] = (name, item)
    pairs = {}
    try:
        for name, item in items.values():
            for found in find_duplicates(item, ds.negative_fps[name], rules, limit=len(items)):
                if found["pk"] in items:  # not an item of the database's own
                    other = items[found["pk"]][0]
                    pairs.setdefault(tuple(sorted((name, other))), found["voters"])
    finally:
        MediaItem.objects.filter(pk__in=list(items)).delete()
        item_index.reset()
    return [(a, b, voters) for (a, b), voters in sorted(pairs.items())]


def offline_duplicate_pairs(
    ds: DetectionSet, rules, names: Sequence[str], *, strong=None, algorithms: Mapping = {}
) -> list[tuple]:
    """The same pairs by ``hashing.duplicates``' rule from hashes in memory: voters
    informative on both sides count, a quorum of their weight (1 when none), found by at
    least one 64-bit voter within its threshold; plus `strong` when given."""
    settings = rules.voter_settings()
    pairs = set()
    for a, b in itertools.permutations(names, 2):
        fa, fb = ds.negative_fps[a], ds.negative_fps[b]
        stored = {
            n: fb[n] for n in settings if _known(n, algorithms) and _usable(fb, n, algorithms)
        }
        found = distances(fa, stored, rules, algorithms)
        searched = [n for n, d in found.items() if d <= settings[n].threshold]
        if not any(_algorithm(n, algorithms).bits == 64 for n in searched):
            continue  # no candidate: the duplicate index searches 64-bit hashes only
        limits = {n: settings[n].threshold for n in found}
        known = {n: s for n, s in settings.items() if n in ALGORITHMS}
        if not algorithms and sum(settings[n].weight for n in found) < full_quorum(fa, rules):
            # the strict rule of a pair short of voters (hashing.duplicates)
            strict = strict_limits(fa, {n: known[n] for n in known if fa.get(n) is not None})
            quality = fb.get("quality") or {}
            limits = {
                n: strict[n]
                for n in found
                if n in strict and ALGORITHMS[n].strict_informative(Signal(fb[n], quality.get(n)))
            }
            found = {n: d for n, d in found.items() if n in limits}
        votes = [n for n, d in found.items() if d <= limits[n]]
        eligible = sum(settings[n].weight for n in found)
        quorum = quorum_for(rules, eligible) if eligible else 1
        reached = sum(settings[n].weight for n in votes) >= quorum
        if strong is not None:
            close = [n for n in found if found[n] <= strong.thresholds.get(n, -1)]
            reached = reached or len(close) >= strong.needed
        if reached:
            pairs.add((min(a, b), max(a, b)))
    return [(a, b, {}) for a, b in sorted(pairs)]


# -- the measure -----------------------------------------------------------------------


@dataclass
class Evaluation:
    label: str
    recall: dict[str, tuple[int, int]]  # variant -> (blocked as its own picture, copies)
    misses: list[tuple[str, str, dict]]  # (picture, variant, {voter: distance})
    wrong: list[tuple[str, str, str]]  # (picture, variant, the other bank picture it hit)
    false_matches: list[tuple[str, str]]  # (negative, bank picture)
    # voter -> (the least distance minus the voter's limit over negatives and contents, and
    # where); None when the voter never counted (its limit is its threshold, or its strict
    # limit against a content short of voters).
    voter_margin: dict[str, tuple[int | None, str]]
    margin: tuple[int, str]  # bits the nearest negative was from blocking, and which one
    duplicate_pairs: list[tuple]  # among the low-detail negatives
    # The fewest bits a copy would have to move to be blocked as another bank picture.
    wrong_margin: tuple[int, str] = (NEVER, "")
    other_pairs: list[tuple] | None = None  # among all the negatives, when asked for
    vote_ms: list[float] = field(default_factory=list)
    extra_hash_ms: float = 0.0  # what the rule's extra query fingerprints cost per upload

    @property
    def hits(self) -> int:
        return sum(h for h, _ in self.recall.values())

    @property
    def copies(self) -> int:
        return sum(n for _, n in self.recall.values())

    @property
    def overall_recall(self) -> float:
        return self.hits / self.copies if self.copies else 0.0

    def recall_of(self, variants: Sequence[str]) -> float:
        hit = sum(self.recall[v][0] for v in variants if v in self.recall)
        total = sum(self.recall[v][1] for v in variants if v in self.recall)
        return hit / total if total else 0.0

    def vote_p50(self) -> float:
        return statistics.median(self.vote_ms) if self.vote_ms else float("nan")

    def vote_p99(self) -> float:
        return float(np.percentile(self.vote_ms, 99)) if self.vote_ms else float("nan")

    def meets_aim(self) -> bool:
        return (
            self.overall_recall >= 0.98
            and not self.false_matches
            and not self.wrong
            and not self.duplicate_pairs
        )


def evaluate(
    ds: DetectionSet,
    rules,
    bank: BankSet,
    *,
    label: str = "",
    vote: Vote = product_vote,
    duplicates: Callable | None = None,
    extra: Callable[[str, object], list[dict]] | None = None,
    extra_hash_ms: float = 0.0,
    strong: StrongPair | None = None,
    algorithms: Mapping = {},
    all_pairs: bool = False,
) -> Evaluation:
    """Recall per variant, false matches, margins and near-duplicate pairs of one rule.

    `vote` decides each upload (default: the product's ``matcher.vote``); `duplicates`
    finds the pairs among the low-detail negatives (default: the product's
    ``find_duplicates``); `extra(kind, key)` gives extra query fingerprints for an upload
    (kind "variant" or "negative"); `strong` and `algorithms` are what the rule uses
    beyond the product's, for the margins; `all_pairs` also counts near-duplicate pairs
    among all the negatives.
    """
    recall: dict[str, list[int]] = {v: [0, 0] for v in ds.variant_names}
    misses, wrong, false_matches, vote_ms = [], [], [], []
    wrong_margin: tuple[int, str] = (NEVER, "")

    def queries(kind, key, fp):
        return [fp, *(extra(kind, key) if extra else [])]

    for (name, variant), fp in ds.variant_fps.items():
        fps = queries("variant", (name, variant), fp)
        start = time.perf_counter()
        blocked, hit = vote(fps, rules, bank)
        vote_ms.append((time.perf_counter() - start) * 1000)
        recall[variant][1] += 1
        if blocked and hit == name:
            recall[variant][0] += 1
        elif blocked:
            wrong.append((name, variant, hit))
        else:
            nearest = min(
                (distances(fp, bank.entries[c], rules, algorithms) for c in bank.contents_of(name)),
                key=lambda found: sum(found.values()),
            )
            misses.append((name, variant, nearest))
        for one in fps:
            for content, reference in bank.entries.items():
                if bank.name_of(content) == name:
                    continue
                judged = judge(one, reference, rules, strong=strong, algorithms=algorithms)
                if judged.bits < wrong_margin[0]:
                    wrong_margin = (judged.bits, f"{name}/{variant} ~ {bank.name_of(content)}")

    settings = rules.voter_settings()
    voter_margin: dict[str, tuple[int | None, str]] = {n: (None, "") for n in settings}
    margin: tuple[int, str] = (NEVER, "")
    for key, fp in ds.negative_fps.items():
        fps = queries("negative", key, fp)
        start = time.perf_counter()
        blocked, hit = vote(fps, rules, bank)
        vote_ms.append((time.perf_counter() - start) * 1000)
        if blocked:
            false_matches.append((key, hit))
        for one in fps:
            for content, reference in bank.entries.items():
                judged = judge(one, reference, rules, strong=strong, algorithms=algorithms)
                where = f"{key} ~ {bank.name_of(content)}"
                if judged.bits < margin[0]:
                    margin = (judged.bits, where)
                for voter, gap in judged.gaps.items():
                    if voter_margin[voter][0] is None or gap < voter_margin[voter][0]:
                        voter_margin[voter] = (gap, where)

    find_pairs = duplicates or product_duplicate_pairs
    pairs = find_pairs(ds, rules, sorted(ds.low_detail))
    other_pairs = find_pairs(ds, rules, sorted(ds.negatives)) if all_pairs else None
    return Evaluation(
        label=label,
        recall={v: (h, n) for v, (h, n) in recall.items()},
        misses=misses,
        wrong=wrong,
        false_matches=false_matches,
        voter_margin=voter_margin,
        margin=margin,
        duplicate_pairs=pairs,
        wrong_margin=wrong_margin,
        other_pairs=other_pairs,
        vote_ms=vote_ms,
        extra_hash_ms=extra_hash_ms,
    )
