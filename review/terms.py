"""Term banks: a category's block and allow terms (``Term`` rows), matched in normalised text.

Matching runs on hashing.textnorm's stream (letters and digits, confusables, leetspeak and
repeats undone) and keeps to words: a term must start where a word starts and end where
one ends (or before a plural "s"; anywhere with a trailing ``*``), across inserted spaces
and punctuation ("k.i.l.l y o u r s e l f"). Each match carries its span in the original
text, for the reviewer's highlight.

Quoting and allow terms, where a model fails (it reads "calling people xxx is hateful"
as hate): a block term inside quotation marks ("he called me a 'xxx'") counts 0.6, not
1.0: someone reporting or discussing a word is not using it, so a person looks but the
term alone never flags it. An allow term of the category anywhere in the text
(counter-speech: "is hateful", "no place in") caps that category's block terms at 0.6 too
and tempers its model scores (x 0.3, review.classifiers.textmodel); a block term inside an
allow term's own span (a reclaimed word: "proud dyke", "dyke march") counts nothing.

The compiled banks of a policy are kept per process and compiled again when its rows
change (``terms_for``).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from django.db import transaction

from hashing.textnorm import analyse, squeeze

from .models import PolicyChange, Term

QUOTED_SCORE = 0.6  # quoted, or countered by an allow term elsewhere in the text
ALLOWED_SCORE = 0.0  # inside an allow term's span
# Straight and typographic double quotes, guillemets, and single quotes that open after a
# space or start and close before a space, punctuation or end (not the apostrophe in it's).
QUOTES = re.compile(
    r"\"[^\"\n]{1,300}\"|“[^”\n]{1,300}”|„[^“”\n]{1,300}[“”]|«[^»\n]{1,300}»|"
    r"(?:(?<=\s)|^)'[^'\n]{1,300}'(?=[\s.,;:!?)]|$)|‘[^’\n]{1,300}’"
)


@dataclass(frozen=True)
class CompiledTerm:
    text: str
    stream: str
    category: str
    kind: str
    prefix: bool


@dataclass(frozen=True)
class Match:
    term: str
    category: str
    kind: str
    start: int  # offsets in the original text
    end: int
    quoted: bool = False
    allowed: bool = False
    countered: bool = False

    @property
    def score(self) -> float:
        if self.allowed:
            return ALLOWED_SCORE
        return QUOTED_SCORE if self.quoted or self.countered else 1.0

    def as_dict(self, text: str) -> dict:
        return {
            "term": self.term,
            "category": self.category,
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "matched": text[self.start : self.end],
            "quoted": self.quoted,
            "allowed": self.allowed,
            "countered": self.countered,
            "score": self.score if self.kind == Term.Kind.BLOCK else None,
        }


@dataclass
class Matches:
    text: str
    found: list[Match] = field(default_factory=list)

    @property
    def allowed_categories(self) -> set[str]:
        return {m.category for m in self.found if m.kind == Term.Kind.ALLOW}

    def block_scores(self) -> dict[str, float]:
        scores: dict[str, float] = {}
        for m in self.found:
            if m.kind == Term.Kind.BLOCK:
                scores[m.category] = max(scores.get(m.category, 0.0), m.score)
        return scores

    def as_list(self) -> list[dict]:
        return [m.as_dict(self.text) for m in sorted(self.found, key=lambda m: m.start)]


def compile_term(text: str, category: str, kind: str) -> CompiledTerm | None:
    prefix = text.rstrip().endswith("*")
    stream = squeeze(text.rstrip().rstrip("*"))
    if len(stream) < 2:
        return None
    return CompiledTerm(text, stream, category, kind, prefix)


def _quoted_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in QUOTES.finditer(text)]


@dataclass(frozen=True)
class TermSet:
    terms: tuple[CompiledTerm, ...] = ()

    def match(self, text: str) -> Matches:
        norm = analyse(text)
        letters, starts, ends = norm.letters, norm.starts, norm.ends
        raw: list[Match] = []
        for term in self.terms:
            at = letters.find(term.stream)
            while at != -1:
                stop = at + len(term.stream)
                end = None
                if at in starts:
                    if term.prefix:
                        end = stop
                    elif stop in ends:
                        end = stop
                    elif stop < len(letters) and letters[stop] == "s" and stop + 1 in ends:
                        end = stop + 1
                if end is not None:
                    start_o, end_o = norm.span(at, end)
                    raw.append(Match(term.text, term.category, term.kind, start_o, end_o))
                at = letters.find(term.stream, at + 1)
        quotes = _quoted_spans(text)
        allows = [m for m in raw if m.kind == Term.Kind.ALLOW]
        found = []
        for m in raw:
            if m.kind == Term.Kind.BLOCK:
                quoted = any(a <= m.start and m.end <= b for a, b in quotes)
                same = [a for a in allows if a.category == m.category]
                allowed = any(a.start <= m.start and m.end <= a.end for a in same)
                m = Match(m.term, m.category, m.kind, m.start, m.end, quoted, allowed, bool(same))
            found.append(m)
        return Matches(text, found)


_cache: dict[int, tuple[tuple, TermSet]] = {}
_lock = threading.Lock()


def terms_for(policy) -> TermSet:
    """The policy's enabled terms, compiled; compiled again only when they differ from the
    last read (one query of the rows' three columns: ~1 ms for 1,000 terms, and an edit by
    any means, admin or a bulk update, is seen at the next analysis)."""
    rows = tuple(
        Term.objects.filter(policy=policy, enabled=True)
        .order_by("pk")
        .values_list("text", "category__name", "kind")
    )
    cached = _cache.get(policy.pk)
    if cached is not None and cached[0] == rows:
        return cached[1]
    compiled = (compile_term(text, category, kind) for text, category, kind in rows)
    made = TermSet(tuple(t for t in compiled if t is not None))
    with _lock:
        _cache[policy.pk] = (rows, made)
    return made


def save_term(term: Term, changed: list[str], user) -> Term:
    """Save a term (its policy is its category's) and record the edit as a policy change:
    "term <kind> <category>:<text> <field>": old → new, or "added"."""
    term.policy_id = term.category.policy_id
    with transaction.atomic():
        old = Term.objects.select_for_update().filter(pk=term.pk).first() if term.pk else None
        term.save()
        label = f"term {term.kind} {term.category.name}:{term.text}"
        if old is None:
            rows = [PolicyChange(policy_id=term.policy_id, field=label[:64], new_value="added")]
        else:
            rows = [
                PolicyChange(
                    policy_id=term.policy_id,
                    field=f"{label} {name}"[:64],
                    old_value=str(getattr(old, name)),
                    new_value=str(getattr(term, name)),
                )
                for name in changed
            ]
        for row in rows:
            row.changed_by = user
        PolicyChange.objects.bulk_create(rows)
    return term
