"""Does a hash list's label say what its hashes are? Checked at import (hashing.services).

A 64-bit hash is 16 hex characters whichever function made it, so a list of
imagehash.phash_simple hashes labelled ``phash`` imports cleanly and never matches. Two
checks tell, as far as they can:

- Without pictures, by balance. imagehash.phash and PDQ set a bit where a DCT coefficient
  is above the median of its block, so a hash has exactly half its bits set: measured on
  288 scikit-image photos and crops, 97 % of phash hashes had 32 of 64 (the rest fewer,
  from ties on flat crops) and 99 % of PDQ hashes 128 of 256 (the rest 124-127).
  average_hash, dhash and phash_simple threshold at a mean or at a neighbour: 5-9 % of
  theirs had exactly 32. A list (at least 8 hashes of one label) is called balanced when
  at least half its hashes are: random lists of 8 of the unbalanced kinds were called so
  0.05-0.4 % of the time, lists of phash always. Bit patterns do not tell average_hash,
  dhash and phash_simple apart well enough to warn on: neighbouring bits agree across and
  down 70/72 %, 52/65 % and 52/80 % of the time, and a guess by the nearest of these
  profiles was right for 80-91 % of lists of 20 hashes.
- With sample pictures known to be in the list: each is hashed as an upload is, by every
  algorithm, and the label's hashes are compared with every same-length algorithm's
  hashes of them. A label under which no sample is found while another algorithm finds
  some is wrong, and says which it looks like.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .algorithms import ALGORITHMS, HashAlgorithm

MIN_HASHES = 8  # fewer than this: the balance of a list says too little (see above)
BALANCED_SHARE = 0.5


def is_balanced(value: int, bits: int) -> bool:
    return value.bit_count() * 2 == bits


def balanced_share(values: Sequence[int], bits: int) -> float:
    """The share of hashes with exactly half their bits set."""
    return sum(is_balanced(v, bits) for v in values) / len(values) if values else 0.0


def _percent(share: float) -> str:
    return f"{round(100 * share)} %"


def balance_warning(label: str, values: Sequence[int]) -> str | None:
    """A sentence when the balance of the hashes labelled `label` contradicts the label."""
    algorithm = ALGORITHMS[label]
    if len(values) < MIN_HASHES:
        return None
    half = algorithm.bits // 2
    share = balanced_share(values, algorithm.bits)
    rows = f"the {len(values)} rows labelled {label}"
    if algorithm.balanced and share < BALANCED_SHARE:
        others = ", ".join(a.name for a in _same_length(algorithm) if not a.balanced)
        maybe = f"perhaps {others}" if others else "perhaps another hash or a checksum"
        return (
            f"Only {_percent(share)} of {rows} have {half} of {algorithm.bits} bits set; "
            f"every {label} hash has (97-99 % of photos, the rest a few bits short): these "
            f"are not {label} hashes ({maybe}). Check the list's source, or import it "
            "with sample pictures to tell which."
        )
    if not algorithm.balanced and share >= BALANCED_SHARE:
        looks = [a.name for a in _same_length(algorithm) if a.balanced]
        if looks:
            return (
                f"{_percent(share).capitalize()} of {rows} have exactly {half} of "
                f"{algorithm.bits} bits set, as {looks[0]} hashes do (97 % of photos; "
                f"{label} 5-9 %): they look like {looks[0]} hashes, not {label}."
            )
    return None


def balance_warnings(by_label: Mapping[str, Sequence[int]]) -> list[str]:
    return [w for label, values in by_label.items() if (w := balance_warning(label, values))]


def _same_length(algorithm: HashAlgorithm) -> list[HashAlgorithm]:
    return [
        a
        for a in ALGORITHMS.values()
        if a.bits == algorithm.bits and a.media_kind == algorithm.media_kind
    ]


@dataclass(frozen=True, slots=True)
class SampleFit:
    """How the hashes of one label fit the samples read as `algorithm`'s hashes."""

    algorithm: str
    found: int  # samples with a listed hash within the algorithm's default threshold
    nearest: int | None  # the smallest distance between a listed hash and a sample's


def sample_fits(values: Iterable[int], label: str, samples: Sequence[dict]) -> list[SampleFit]:
    """Per same-length algorithm, the label's first; `samples` are fingerprints."""
    values = list(values)
    candidates = sorted(_same_length(ALGORITHMS[label]), key=lambda a: a.name != label)
    fits = []
    for algorithm in candidates:
        nearest_per_sample = [
            min(algorithm.distance(v, fp[algorithm.name]) for v in values)
            for fp in samples
            if fp.get(algorithm.name) is not None and values
        ]
        found = sum(d <= algorithm.default_threshold for d in nearest_per_sample)
        nearest = min(nearest_per_sample, default=None)
        fits.append(SampleFit(algorithm.name, found, nearest))
    return fits


@dataclass(frozen=True)
class SampleVerdict:
    label: str
    fits: tuple[SampleFit, ...]
    samples: int

    @property
    def own(self) -> SampleFit:
        return self.fits[0]

    @property
    def best(self) -> SampleFit:
        """The algorithm finding the most samples, nearest first; the label wins ties."""
        return min(self.fits, key=lambda f: (-f.found, f.nearest is None, f.nearest or 0))

    @property
    def mislabelled(self) -> bool:
        """No sample found under the label, some under another algorithm."""
        return self.own.found == 0 and self.best.found > 0

    def sentence(self) -> str:
        own, best, n = self.own, self.best, self.samples
        if self.mislabelled:
            return (
                f"The rows labelled {self.label} look like {best.algorithm} hashes, not "
                f"{self.label}: {best.found} of {n} sample picture(s) are within "
                f"{best.algorithm}'s threshold read as {best.algorithm} (nearest "
                f"{best.nearest}), none as {self.label} (nearest {own.nearest}). Relabel "
                f"them {best.algorithm} if that is what made them."
            )
        if own.found:
            return (
                f"{own.found} of {n} sample picture(s) found among the rows labelled "
                f"{self.label} (nearest distance {own.nearest})."
            )
        return (
            f"None of the {n} sample picture(s) is near a row labelled {self.label} under any "
            f"algorithm (nearest {own.nearest}): the samples may not be in the list."
        )


def sample_verdicts(
    by_label: Mapping[str, Sequence[int]], samples: Sequence[dict]
) -> list[SampleVerdict]:
    """One verdict per label; empty without samples."""
    if not samples:
        return []
    return [
        SampleVerdict(label, tuple(sample_fits(values, label, samples)), len(samples))
        for label, values in by_label.items()
    ]
