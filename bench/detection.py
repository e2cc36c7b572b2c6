"""Detection of banned pictures' copies (issue 9 §2): the product's vote against the former
defaults and the alternatives measured before choosing it.

    .venv/bin/python bench/detection.py [--save] [--database URL]

Builds the detection set of tests/detection.py (bank photos from scikit-image, 20 copies of
each, 43 negatives of which 16 are low-detail), puts the bank pictures in a bank with
``hashing.services.add_images``, and measures in one run each voting configuration below:
recall per variant, false matches, copies blocked as the wrong picture, near-duplicate pairs
among the low-detail negatives, each voter's margin on the nearest negative, how many bits
the nearest negative was from being blocked, and the cost of the vote. Configurations the
product can express (thresholds, weights, quorum, extra reference pictures) are voted by
``hashing.matcher.vote`` itself; the others (the strong-pair rule, the log-polar hash) by
the same rule computed in memory (``tests.detection.judge``), whose agreement with the
product is printed (and tested in tests/hashing/test_detection.py). Row "p" is the product
as configured now (rotated references, weights 2 and quorum 4: what "j" measured).

Experiments that live only here (nothing is registered in the product):
- rotated queries: the upload's 128 px grey copy rotated ±4° (black corners) and hashed by
  the 64-bit voters, each rotated fingerprint voted on like the upload's own;
- rotated references (adopted: hashing.references, banked by add_images): each bank picture
  also added rotated ±4°, once cropped to its content and once with black corners (four
  more contents per picture); the "plain" bank drops them to measure the former state;
- a log-polar ring hash: the inscribed disc sampled on a log-polar grid, the magnitude of
  its angular FFT (rotation- and mirror-invariant), a DCT along the log radius, 64 bits
  set above their median.

A private SQLite database in a temporary folder unless --database is given (never the
DATABASE_URL of the environment: the bench creates banks and items). Runs in about 10 s.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(ROOT))

ANGLES = (4, -4)  # the experiments' rotations: between the set's 3° and 5°, never equal
RING_THRESHOLD = 14


def setup_django(database: str | None) -> None:
    tmp = tempfile.mkdtemp(prefix="bench-detection-")
    os.environ["DATABASE_URL"] = database or f"sqlite:///{tmp}/bench.sqlite3"
    os.environ["PRIVATE_MEDIA_ROOT"] = f"{tmp}/private"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation_site.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-throwaway-key")  # DEBUG off needs one
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


# -- the experiments -------------------------------------------------------------------


class _Grey:
    """The part of an ImageSource the 64-bit hashes read."""

    def __init__(self, grey, deviation: float):
        self.grey, self.grey_deviation = grey, deviation


def rotated_queries(data: bytes, algorithms) -> list[dict]:
    """Fingerprints of the upload's grey copy rotated by each of ANGLES (64-bit voters,
    with their mirrors): what a lookup would add to find rotated copies."""
    from PIL import Image, ImageOps

    from hashing.algorithms import ImageSource
    from uploads.kinds import open_for_hashing

    source = ImageSource(open_for_hashing(data))
    out = []
    for angle in ANGLES:
        turned = source.grey.rotate(angle, Image.Resampling.BICUBIC, expand=False, fillcolor=0)
        plain = _Grey(turned, source.grey_deviation)
        mirror = _Grey(ImageOps.mirror(turned), source.grey_deviation)
        fp, quality = {}, {}
        for algorithm in algorithms:
            found = algorithm.signal(plain)
            fp[algorithm.name], quality[algorithm.name] = found.value, found.quality
        fp["quality"] = quality
        fp["mirror"] = {a.name: a.signal(mirror).value for a in algorithms}
        out.append(fp)
    return out


class LogPolarHash:
    """The experimental rotation-tolerant voter (see the module docstring). Quality as the
    64-bit hashes rate flat pictures: the grey copy's deviation, 50 at 8 of 255."""

    name, label, media_kind, bits = "ring", "log-polar ring hash", "image", 64
    default_threshold = max_threshold = RING_THRESHOLD
    strict_threshold = None  # never alone
    RADII, ANGLES = 32, 64

    def signal(self, source):
        import numpy as np
        from scipy.fft import dct
        from scipy.ndimage import map_coordinates

        from hashing.algorithms import Signal

        grey = np.asarray(source.grey, dtype=np.float64)
        h, w = grey.shape
        radius = min(h, w) / 2 * 0.92
        r = radius * np.exp(np.linspace(math.log(0.08), 0, self.RADII))
        t = np.arange(self.ANGLES) / self.ANGLES * 2 * np.pi
        ys = (h - 1) / 2 + r[:, None] * np.sin(t)[None, :]
        xs = (w - 1) / 2 + r[:, None] * np.cos(t)[None, :]
        rings = map_coordinates(grey, [ys, xs], order=1)
        spectrum = np.log1p(np.abs(np.fft.rfft(rings, axis=1))[:, :8])
        coefficients = dct(spectrum, axis=0, norm="ortho")[:8].ravel()
        bits = np.packbits(coefficients > np.median(coefficients))
        quality = min(100, round(100 * source.grey_deviation / 16))
        return Signal(int.from_bytes(bits.tobytes(), "big"), quality)

    def informative(self, signal) -> bool:
        return signal.quality is None or signal.quality >= 50

    def strict_informative(self, signal) -> bool:
        return False

    def distance(self, a: int, b: int) -> int:
        return (a ^ b).bit_count()


# -- configurations --------------------------------------------------------------------


@dataclass
class Config:
    key: str
    label: str
    rules: object
    bank: str = "plain"  # or "rotated": with the rotated reference versions
    product: bool = True  # voted by hashing.matcher.vote (else tests.detection.judge)
    rotated_queries: bool = False
    strong: object = None
    ring: bool = False
    note: str = ""
    result: object = field(default=None, repr=False)


def by_function(func) -> str:
    """The registered name of the 64-bit voter computed by `func` (names are being renamed
    to imagehash's: never hard-code them)."""
    from hashing.algorithms import algorithms_for

    for algorithm in algorithms_for("image"):
        if getattr(algorithm, "_func", None) is func:
            return algorithm.name
    raise LookupError(func)


def pdq_name() -> str:
    from hashing.algorithms import algorithms_for

    return next(a.name for a in algorithms_for("image") if a.bits == 256)


def configurations(base, product) -> list[Config]:
    import imagehash

    from hashing.matcher import VoterSetting, VotingRules
    from tests.detection import StrongPair

    a, d = by_function(imagehash.average_hash), by_function(imagehash.dhash)
    median, row = by_function(imagehash.phash), by_function(imagehash.phash_simple)
    pdq = pdq_name()
    voters = dict(base.voter_settings())

    def rules(changes=None, quorum=None, drop=(), only=None):
        out = {n: s for n, s in voters.items() if n not in drop and (only is None or n in only)}
        for name, (threshold, weight) in (changes or {}).items():
            setting = out.get(name, VoterSetting(0))
            out[name] = VoterSetting(
                setting.threshold if threshold is None else threshold,
                setting.weight if weight is None else weight,
            )
        return VotingRules(out, base.quorum if quorum is None else quorum, base.mirror_aware)

    thresholds = {a: (10, None), d: (12, None), median: (16, None)}
    strong = StrongPair({n: voters[n].threshold for n in (a, d, median) if n in voters})
    heavy = {n: (None, 3) for n in (a, d, median)}
    with_ring = VotingRules(
        {**voters, "ring": VoterSetting(RING_THRESHOLD)}, base.quorum, base.mirror_aware
    )
    return [
        Config("a", "a. former defaults (3 of 5, no rotated references)", base),
        Config(
            "b",
            f"b. weights: {a}, {d}, {median} ×3",
            rules(heavy),
            note="two of the three robust voters carry a majority of 11",
        ),
        Config(
            "c",
            f"c. thresholds {a} 10, {d} 12, {median} 16",
            rules(thresholds),
            note=f"{median} 16 is above its max_threshold",
        ),
        Config(
            "c1",
            f"c'. {median} alone at 16 with mirror",
            rules({median: (16, None)}, only={median}),
            note="the issue's single-hash run: one hash decides alone",
        ),
        Config(
            "d",
            f"d. two strong: any 2 of {a}/{d}/{median} within threshold",
            base,
            product=False,
            strong=strong,
            note="not in the product: judged in memory",
        ),
        Config(
            "d1",
            f"d'. quorum 2, {row} off",
            rules(quorum=2, drop={row}),
            note="the product's nearest form of d",
        ),
        Config(
            "e1",
            "e1. defaults + rotated queries ±4°",
            base,
            rotated_queries=True,
            note="2 more fingerprints and votes per upload",
        ),
        Config(
            "e2",
            "e2. defaults + rotated references ±4°",
            base,
            bank="rotated",
            note="4 more contents per bank picture",
        ),
        Config(
            "e3",
            f"e3. defaults + log-polar ring hash ({RING_THRESHOLD})",
            with_ring,
            product=False,
            ring=True,
            note="a sixth voter: 4 of 6 needed; judged in memory",
        ),
        Config(
            "f",
            f"f. rotated references + two strong ({a}/{d}/{median})",
            base,
            bank="rotated",
            product=False,
            strong=strong,
            note="e2 with d",
        ),
        Config(
            "g",
            f"g. rotated references + quorum 2, {row} off",
            rules(quorum=2, drop={row}),
            bank="rotated",
            note="e2 with d'",
        ),
        Config(
            "h",
            f"h. rotated references + {a}, {d}, {median} ×3",
            rules(heavy),
            bank="rotated",
            note="e2 with b",
        ),
        Config(
            "i",
            f"i. rotated references + quorum 2, {row} on",
            rules(quorum=2),
            bank="rotated",
        ),
        Config(
            "j0",
            f"j0. {a}, {d}, {median}, {pdq} ×2, quorum 4",
            rules({n: (None, 2) for n in (a, d, median, pdq)}, quorum=4),
            note="j without the rotated references",
        ),
        Config(
            "j",
            f"j. rotated references + {a}, {d}, {median}, {pdq} ×2, quorum 4",
            rules({n: (None, 2) for n in (a, d, median, pdq)}, quorum=4),
            bank="rotated",
            note=f"any two of the four strong voters; {row} counts half",
        ),
        Config(
            "p",
            "p. the product's defaults now (Policy.current())",
            product,
            bank="rotated",
            note="must equal j",
        ),
    ]


# -- running ---------------------------------------------------------------------------


def former_defaults(product):
    """The voting rules before issue 9 §2: every voter weighing 1, a majority quorum."""
    from hashing.matcher import VoterSetting, VotingRules

    voters = {n: VoterSetting(s.threshold) for n, s in product.voter_settings().items()}
    return VotingRules(voters, 0, product.mirror_aware)


def with_ring(fp: dict, value) -> dict:
    out = dict(fp)
    out["ring"] = value.value
    out["quality"] = {**(fp.get("quality") or {}), "ring": value.quality}
    return out


def run() -> dict:
    from hashing import services
    from hashing.algorithms import ImageSource, algorithms_for
    from review.models import Policy
    from tests import detection
    from uploads.kinds import open_for_hashing

    started = time.perf_counter()
    ds = detection.build_set()
    built = time.perf_counter() - started
    product = Policy.current().voting_rules()
    base = former_defaults(product)
    banks = {
        "plain": detection.make_bank(ds, "detection: references", rotated=False),
        "rotated": detection.make_bank(ds, "detection: rotated"),
    }

    def activate(key):
        for name, bank in banks.items():
            if bank.row.active != (name == key):
                bank.row.active = name == key
                services.save_bank(bank.row)

    # Experiments' extra hashes.
    sixty_four = [a for a in algorithms_for("image") if a.bits == 64]
    extra_fps, extra_ms = {}, []
    for kind, items in (("variant", ds.variants), ("negative", ds.negatives)):
        for key, data in items.items():
            start = time.perf_counter()
            extra_fps[kind, key] = rotated_queries(data, sixty_four)
            extra_ms.append((time.perf_counter() - start) * 1000)
    ring = LogPolarHash()
    ring_ms = []

    def ring_of(data):
        start = time.perf_counter()
        found = ring.signal(ImageSource(open_for_hashing(data)))
        ring_ms.append((time.perf_counter() - start) * 1000)
        return found

    ring_ds = detection.DetectionSet(
        ds.references,
        ds.variants,
        ds.negatives,
        ds.low_detail,
        {k: with_ring(fp, ring_of(ds.variants[k])) for k, fp in ds.variant_fps.items()},
        {k: with_ring(fp, ring_of(ds.negatives[k])) for k, fp in ds.negative_fps.items()},
    )
    plain = banks["plain"]
    ring_bank = detection.BankSet(
        plain.names,
        {
            content: {**hashes, "ring": ring_of(ds.references[plain.name_of(content)]).value}
            for content, hashes in plain.entries.items()
        },
        plain.row,
    )

    configs = configurations(base, product)
    for config in configs:
        activate(config.bank)
        bank = banks[config.bank]
        kwargs = {"label": config.label, "all_pairs": True}
        if config.rotated_queries:
            kwargs["extra"] = lambda kind, key: extra_fps[kind, key]
            kwargs["extra_hash_ms"] = statistics.median(extra_ms)
        if not config.product:
            strong = config.strong
            algorithms = {"ring": ring} if config.ring else {}
            kwargs["vote"] = lambda fps, rules, bank, s=strong, al=algorithms: (
                detection.offline_vote(fps, rules, bank, strong=s, algorithms=al)
            )
            kwargs["duplicates"] = lambda ds_, rules, names, s=strong, al=algorithms: (
                detection.offline_duplicate_pairs(ds_, rules, names, strong=s, algorithms=al)
            )
            kwargs["strong"], kwargs["algorithms"] = strong, algorithms
        if config.ring:  # the plain bank, with the ring hash of each picture
            bank = ring_bank
            kwargs["extra_hash_ms"] = statistics.median(ring_ms)
        config.result = detection.evaluate(
            ring_ds if config.ring else ds, config.rules, bank, **kwargs
        )

    # The in-memory rule against the product's, on the product's defaults.
    activate("rotated")
    agree = total = 0
    for fps in [[fp] for fp in ds.variant_fps.values()] + [[fp] for fp in ds.negative_fps.values()]:
        total += 1
        agree += detection.offline_vote(fps, product, banks["rotated"]) == detection.product_vote(
            fps, product, banks["rotated"]
        )
    return {
        "ds": ds,
        "configs": configs,
        "built": built,
        "agree": (agree, total),
        "ring_ms": statistics.median(ring_ms),
        "elapsed": time.perf_counter() - started,
        "base": product,
    }


# -- the report ------------------------------------------------------------------------


def _pct(value: float) -> str:
    return f"{value:.3f}"


def _bits(margin) -> str:
    bits, where = margin
    return "never" if bits >= 10**6 else f"{bits} ({where})"


def _margins(result) -> str:
    return ", ".join(
        f"{voter} —" if gap is None else f"{voter} {gap:+d}"
        for voter, (gap, _) in result.voter_margin.items()
    )


# The configuration this bench was written to choose (issue 9 §2), and why: rotated
# references alone (e2) meet the aim at its edge (157 of 160); weights that let any two of
# the four strong voters carry a match (j) take it to 159 with the same zero false matches,
# keep PDQ's say (h silences it) and keep phash_simple voting at half weight (g turns it
# off, so lists of it would never match; i keeps it whole and halves the margins).
RECOMMENDED = "j"


def recommendation(configs) -> list[str]:
    chosen = next(c for c in configs if c.key == RECOMMENDED)
    r = chosen.result
    others = [c.key for c in configs if c.result.meets_aim() and c is not chosen]
    lines = [
        f"Recommended: **{chosen.label}** — recall {r.hits}/{r.copies} "
        f"({_pct(r.overall_recall)}), rotations {_pct(r.recall_of(_rotations()))}, "
        f"{len(r.false_matches)} false matches, {len(r.wrong)} wrong pictures, "
        f"{len(r.duplicate_pairs)} low-detail pairs; nearest negative {_bits(r.margin)}; "
        f"vote p50 {r.vote_p50():.2f} ms.",
        f"Also meeting the aim: {', '.join(others) or 'none'}.",
    ]
    if not r.meets_aim():
        lines.insert(0, "**The recommended configuration no longer meets the aim: re-choose.**")
    return lines


def _rotations():
    from tests.detection import ROTATION_VARIANTS

    return ROTATION_VARIANTS


def report(found: dict) -> None:
    from tests.detection import ROTATION_VARIANTS

    ds, configs = found["ds"], found["configs"]
    load = os.getloadavg()
    print(f"# Detection benchmark ({time.strftime('%Y-%m-%d %H:%M')})")
    print()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}. "
        f"{ds.summary()}. Set built and hashed in {found['built']:.1f} s "
        f"(fingerprint p50 {statistics.median(ds.hash_ms):.1f} ms per upload, with mirrors)."
    )
    agree, total = found["agree"]
    print(
        f"In-memory rule (tests.detection.judge) = hashing.matcher.vote on {agree}/{total} "
        "uploads under the product's defaults."
    )
    rules = found["base"]
    defaults = ", ".join(
        f"{n} {s.threshold}" + (f"×{s.weight}" if s.weight != 1 else "")
        for n, s in rules.voter_settings().items()
    )
    quorum = "majority" if not rules.quorum else f"{rules.quorum}"
    print(
        f"The product's defaults: {defaults}; quorum {quorum}; mirror-aware "
        f"{rules.mirror_aware}; rotated references ±4°."
    )
    print()
    print("## Configurations")
    print()
    print("| key | configuration | voted by | note |")
    print("|---|---|---|---|")
    for c in configs:
        by = "matcher.vote" if c.product else "in memory"
        print(f"| {c.key} | {c.label} | {by} | {c.note} |")
    print()
    print("## Recall per variant (copies blocked as their own picture, of 8)")
    print()
    print("| variant | " + " | ".join(c.key for c in configs) + " |")
    print("|---|" + "---:|" * len(configs))
    for variant in ds.variant_names:
        cells = [str(c.result.recall[variant][0]) for c in configs]
        print(f"| {variant} | " + " | ".join(cells) + " |")
    others = [v for v in ds.variant_names if v not in ROTATION_VARIANTS]
    rows = (
        ("**all**", lambda r: r.overall_recall),
        ("rotations + combined", lambda r: r.recall_of(ROTATION_VARIANTS)),
        ("the others", lambda r: r.recall_of(others)),
    )
    for label, value in rows:
        print(f"| {label} | " + " | ".join(_pct(value(c.result)) for c in configs) + " |")
    print()
    print("## Errors, margins and cost")
    print()
    print(
        "| key | recall | false matches | wrong picture | low-detail pairs | all-negative "
        "pairs | nearest negative (bits to block) | nearest wrong picture (bits) | voter "
        "margins (distance − limit) | vote p50 ms | p99 | extra hash ms | aim |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---|---|---:|---:|---:|---|")
    for c in configs:
        r = c.result
        print(
            f"| {c.key} | {_pct(r.overall_recall)} | {len(r.false_matches)} | {len(r.wrong)} "
            f"| {len(r.duplicate_pairs)} | {len(r.other_pairs or [])} | {_bits(r.margin)} "
            f"| {_bits(r.wrong_margin)} | {_margins(r)} | {r.vote_p50():.2f} "
            f"| {r.vote_p99():.2f} | {r.extra_hash_ms:.1f} | "
            f"{'**met**' if r.meets_aim() else 'no'} |"
        )
    print()
    print(
        "Aim: recall ≥ 0.98 over all variants, 0 false matches, 0 copies blocked as the wrong "
        "picture, 0 near-duplicate pairs among the low-detail negatives. A voter margin is "
        "the least (distance − the voter's limit) over every negative and bank content, "
        "counting the voter only where it counts (its strict limit on a content short of "
        "voters); ≤ 0 means it voted for a negative. Nearest negative: the fewest bits the "
        "hashes of a negative would have to move for it to be blocked. Vote ms: per upload, "
        "all of its fingerprints (the bank here is 8 or 40 contents: index cost at scale is "
        "bench/matching.py's). Extra hash ms: per upload, beyond the fingerprint."
    )
    print()
    for c in configs:
        r = c.result
        details = []
        if r.misses:
            details.append(
                "missed: "
                + "; ".join(
                    f"{p}/{v} ({', '.join(f'{n} {d}' for n, d in found_.items())})"
                    for p, v, found_ in r.misses
                )
            )
        if r.false_matches:
            details.append("false: " + "; ".join(f"{n} ~ {p}" for n, p in r.false_matches))
        if r.wrong:
            details.append("wrong: " + "; ".join(f"{p}/{v} ~ {o}" for p, v, o in r.wrong))
        if r.other_pairs:
            details.append("pairs: " + "; ".join(f"{a} ~ {b}" for a, b, _ in r.other_pairs))
        if details and len(r.misses) <= 12:
            print(f"- {c.key}: " + " | ".join(details))
        elif details:
            print(f"- {c.key}: {len(r.misses)} missed" + "".join(f" | {d}" for d in details[1:]))
    print()
    print("## Recommendation")
    print()
    for line in recommendation(configs):
        print(line)
    chosen = next(c for c in configs if c.key == RECOMMENDED)
    print()
    print("| voter | threshold | weight | margin on the nearest negative | where |")
    print("|---|---:|---:|---:|---|")
    for voter, setting in chosen.rules.voter_settings().items():
        gap, where = chosen.result.voter_margin[voter]
        shown = "—" if gap is None else f"{gap:+d}"
        print(f"| {voter} | {setting.threshold} | {setting.weight} | {shown} | {where} |")
    quorum = chosen.rules.quorum or "majority"
    print(f"Quorum {quorum}; nearest negative overall {_bits(chosen.result.margin)}.")
    print()
    print(f"Ring hash: {found['ring_ms']:.1f} ms per picture. Run took {found['elapsed']:.0f} s.")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", action="store_true", help="also write bench/results/detection.md")
    parser.add_argument("--database", help="a database URL (default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    setup_django(args.database)
    found = run()
    buf = io.StringIO()
    with redirect_stdout(buf):
        report(found)
    print(buf.getvalue(), end="")
    if args.save:
        out = ROOT / "bench" / "results" / "detection.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(buf.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
