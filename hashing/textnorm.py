"""Text normalised for matching, with every character's place in the original.

What people type to get a word past a filter, and what this undoes, in order:

1. Unicode compatibility forms: NFKC (fullwidth ｆｕｃｋ, mathematical 𝐟𝐮𝐜𝐤, ligatures, circled
   letters), then case folding; format characters (zero-width spaces and joiners, soft
   hyphens) and combining marks (f̶u̶c̶k̶, Zalgo, accents: é → e) are dropped.
2. Confusables: Cyrillic and Greek letters that look Latin (раssword with a Cyrillic р),
   from ``CONFUSABLES`` (the Latin look-alikes of Unicode's confusables.txt for the scripts
   abusers use; the rest of that table maps symbols no one types for a letter).
3. Leetspeak: 0→o, 1/!/|→i, 3→e, 4/@→a, 5/$→s, 7/+→t, inside a run of letters and such
   symbols that has at least one letter (so "$5000" and "4 of 5" stay numbers, "sh!t" and
   "1d10t" become words; a ``!`` or ``|`` ending a run is punctuation: "idiot!").
4. Inserted spaces and punctuation: ``letters`` keeps letters and digits only ("f.u.c.k",
   "f u c k" → "fuck"), and ``boundaries`` says where words began and ended, so a match
   must start and end where words do (no "ass" inside "class").
5. Repeated letters: runs collapse to one letter in ``letters`` ("fuuuuck" → "fuck", and
   the same is done to terms: "kill" is matched as "kil").

``normalise`` gives the normalised text (words kept apart by single spaces, repeats and
spaced-out letters undone: what the text hashes read), and ``analyse`` the matching
stream (``Normalised``) with ``span`` from stream offsets back to offsets in the original
text (what a reviewer sees highlighted).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

LEET = {"0": "o", "1": "i", "!": "i", "|": "i", "3": "e", "4": "a", "@": "a", "5": "s"}
LEET |= {"$": "s", "7": "t", "+": "t"}
TRAILING_ONLY_PUNCTUATION = {"!", "|"}  # at the end of a run these are punctuation
# Latin look-alikes (lower case, after case folding) in Cyrillic, Greek and a few others.
CONFUSABLES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "з": "3", "и": "u", "і": "i", "ї": "i",
    "й": "u", "ј": "j", "к": "k", "л": "n", "м": "m", "н": "h", "о": "o", "п": "n",
    "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "ԁ": "d", "ԛ": "q",
    "ԝ": "w", "ӏ": "l", "ь": "b", "ы": "bi", "ɡ": "g", "һ": "h", "ү": "y", "ғ": "f",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v",
    "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ς": "c", "σ": "o",
    # Latin extensions and IPA that survive NFKC
    "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ŧ": "t", "ɑ": "a", "ɛ": "e",
    "ɩ": "i", "ɪ": "i", "ʏ": "y", "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e",
    "ɢ": "g", "ʜ": "h", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p",
    "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ᴢ": "z",
}  # fmt: skip


@lru_cache(maxsize=4096)
def _fold(char: str) -> str:
    """One original character as zero or more normalised characters (steps 1-2)."""
    out = []
    for c in unicodedata.normalize("NFKC", char).casefold():
        for d in unicodedata.normalize("NFKD", c):
            category = unicodedata.category(d)
            if category in ("Mn", "Me", "Cf"):
                continue
            out.append(CONFUSABLES.get(d, d))
    return "".join(out)


def _is_word(c: str) -> bool:
    return c.isalnum() or c in LEET


@dataclass(frozen=True)
class Normalised:
    """``letters``: letters and digits only, repeats collapsed; ``origin[i]``: where
    ``letters[i]`` came from in the original; ``starts``/``ends``: stream offsets where a
    word starts / where one ends (exclusive)."""

    original: str
    text: str
    letters: str
    origin: tuple[int, ...]
    starts: frozenset
    ends: frozenset

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Stream offsets [start, end) as offsets in the original text."""
        return self.origin[start], self.origin[end - 1] + 1


def _chars(text: str) -> list[tuple[str, int]]:
    """(normalised character, original index), steps 1-3."""
    folded = [(c, i) for i, ch in enumerate(text) for c in _fold(ch)]
    out = []
    run: list[tuple[str, int]] = []

    def flush():
        has_letter = any(c.isalpha() for c, _ in run)
        tail = len(run)  # "!!!" and "|" ending a run are punctuation: "home!!!"
        while tail and run[tail - 1][0] in TRAILING_ONLY_PUNCTUATION:
            tail -= 1
        for pos, (c, i) in enumerate(run):
            if has_letter and c in LEET and not c.isalpha():
                if c in TRAILING_ONLY_PUNCTUATION and pos >= tail:
                    out.append((c, i))
                    continue
                out.append((LEET[c], i))
            else:
                out.append((c, i))
        run.clear()

    for c, i in folded:
        if _is_word(c):
            run.append((c, i))
        else:
            flush()
            out.append((c, i))
    flush()
    return out


def analyse(text: str) -> Normalised:
    chars = _chars(text)
    words: list[str] = []
    current: list[str] = []
    letters: list[str] = []
    origin: list[int] = []
    starts, ends = set(), set()
    in_word = False
    for c, i in chars:
        if c.isalnum():
            if not in_word:
                starts.add(len(letters))
                in_word = True
            current.append(c)
            if letters and letters[-1] == c:  # a repeat, within a word or spaced ("u u")
                if len(letters) in starts:
                    starts.discard(len(letters))
                    starts.add(len(letters) - 1)
                continue
            letters.append(c)
            origin.append(i)
        else:
            if in_word:
                ends.add(len(letters))
                words.append("".join(current))
                current = []
            in_word = False
    if in_word:
        ends.add(len(letters))
        words.append("".join(current))
    return Normalised(
        text,
        " ".join(words),
        "".join(letters),
        tuple(origin),
        frozenset(starts),
        frozenset(ends),
    )


def normalise(text: str) -> str:
    """The words of the text, normalised (steps 1-3), single-spaced, each word's repeated
    letters collapsed ("fuuuck", "hooome" → "fuck", "home"; "good" becomes "god" on both
    sides of a comparison alike), and runs of three or more one-letter words joined
    ("e a r n" → "earn"): what the text hashes read."""
    words = []
    for word in analyse(text).text.split(" "):
        kept: list[str] = []
        for c in word:
            if not kept or kept[-1] != c:
                kept.append(c)
        if kept:
            words.append("".join(kept))
    out: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:
        if len(word) == 1 and word.isalpha():
            run.append(word)
            continue
        out.extend(["".join(run)] if len(run) >= 3 else run)
        run = []
        if word:
            out.append(word)
    return " ".join(out)


def squeeze(term: str) -> str:
    """A term as the matching stream holds it: normalised letters, repeats collapsed."""
    return analyse(term).letters
