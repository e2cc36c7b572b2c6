"""The text kind's hash algorithms: the same message, and nearly the same message.

Both read the text normalised (hashing.textnorm: confusables, leetspeak, case, accents,
punctuation and spacing undone), so "Buy ch3ap p!lls" is "buy cheap pills":

- ``text_exact``: 64 bits of BLAKE2b of the normalised text. Equal or not (threshold 0).
- ``text_minhash``: 64 one-bit MinHashes of the character 4-grams of the normalised text
  (words kept apart by one space): the Hamming distance estimates the shingles' Jaccard
  distance (twice the share of bits that differ). Charikar's SimHash over the same
  shingles was measured first and dropped: on short texts each changed shingle moves many
  bit votes (replacing the last word of a 12-word message moved it 13 bits; one-word edits
  of Davidson tweets 6 bits median, 11 at the 90th percentile, while 1 % of tweets had
  another within 12), so it could not separate a near copy from another message.

Each weighs 4 with the policy's quorum of 4: either one alone blocks (a text has no second
view to agree with; the exact hash is the strict one, the MinHash the tolerant one). Bank
entries of known bad messages are made from texts by ``text_hexes`` (hashing.services and
the API take hashes by name).
"""

from __future__ import annotations

import hashlib

import numpy as np

from .algorithms import HashAlgorithm, Signal, register
from .models import Bank
from .services import add_hash_contents
from .textnorm import normalise

SHINGLE = 4


def _text(subject) -> str:
    return normalise(getattr(subject, "text", subject))


def _h64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


# 64 hash functions x -> a·x + b (mod 2^64, a odd) over 64-bit shingle hashes, and per
# function a mask whose parity with the chosen shingle's hash is the bit. Fixed, so that
# hashes made anywhere (a bank's import, another process) compare. ((a·x + b) mod p over
# 32-bit x was tried first: it barely wraps, so every function chose the smallest x and
# unrelated tweets sharing one 4-gram got equal hashes.)
_RNG = np.random.default_rng(20261202)
_A = _RNG.integers(0, 1 << 63, size=64, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_B = _RNG.integers(0, 1 << 63, size=64, dtype=np.uint64)
_M = _RNG.integers(0, 1 << 63, size=64, dtype=np.uint64) | np.uint64(1 << 63)


def shingles(text: str, size: int = SHINGLE) -> set[str]:
    return {text[i : i + size] for i in range(max(1, len(text) - size + 1))}


def minhash(text: str, size: int = SHINGLE) -> int:
    """64 one-bit MinHashes of the text's character ``size``-grams: bit i is the lowest bit
    of the i-th hash function's minimum. Two texts differ in a bit with probability
    (1 - J) / 2, J the Jaccard similarity of their shingles: unrelated texts about 32 bits
    apart, a tweet and itself with one word changed 3 (median)."""
    grams = shingles(text, size)
    h = np.array([_h64(g.encode("utf-8")) for g in grams], dtype=np.uint64)
    chosen = h[(_A[:, None] * h[None, :] + _B[:, None]).argmin(axis=1)]
    value = 0
    for bit in (np.bitwise_count(chosen & _M) & np.uint8(1)).tolist():
        value = (value << 1) | int(bit)
    return value


class TextExact(HashAlgorithm):
    name = "text_exact"
    label = "Text (normalised, exact)"
    media_kind = "text"
    mirrorable = False
    default_threshold = 0
    max_threshold = 0
    default_weight = 4
    strict_threshold = 0

    def signal(self, source) -> Signal:
        return Signal(_h64(_text(source).encode("utf-8")))


class TextMinHash(HashAlgorithm):
    name = "text_minhash"
    label = "Text MinHash"
    media_kind = "text"
    mirrorable = False
    # Measured on the Davidson test split (bench/text.py, "near copies"): a word inserted or
    # deleted, or the case and punctuation changed, moved a tweet 3 bits (median; 90 %
    # within 8, 99 % within 13); the nearest other tweet was 12 or more bits away for 99 %
    # of tweets (the nearest of all, 3, a retweet of the same text). 8 takes 90 % of
    # one-word edits with 4 bits to spare.
    default_threshold = 8
    max_threshold = 16
    default_weight = 4
    strict_threshold = 8
    MIN_CHARACTERS = 12  # shorter texts ("lol", "you too") are too common to match on

    def signal(self, source) -> Signal:
        text = _text(source)
        quality = min(100, round(100 * len(text) / (2 * self.MIN_CHARACTERS)))
        return Signal(minhash(text), quality)

    def informative(self, signal: Signal) -> bool:
        return signal.quality is None or signal.quality >= 50


def text_hexes(text: str) -> dict[str, str]:
    """{algorithm: hex} of a text, for a bank entry of a known bad message."""
    return {
        algorithm.name: algorithm.to_hex(algorithm.signal(text).value)
        for algorithm in (EXACT, MINHASH)
    }


def add_texts(
    bank: Bank, texts, *, actor=None, note: str = "", external_id: str = "", name: str = ""
) -> list:
    """Known bad messages as contents of a bank (one content per text, both hashes),
    audited like any content; (content, created) per text. The note is the text's first
    200 characters unless one is given."""
    items = [
        {"hashes": text_hexes(t), "note": note or t[:200], "external_id": external_id}
        for t in texts
    ]
    return add_hash_contents(bank, items, actor=actor, name=name)


EXACT = register(TextExact())
MINHASH = register(TextMinHash())
