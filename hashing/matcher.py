"""The per-process bank matcher and the quorum vote of the hash voters.

Every process keeps one in-memory MatchIndex over the enabled entries of active banks.
Before each vote it reads BankVersion's token (one primary-key query, reused for 50 ms
outside a transaction: BankVersion.read); when a bank change has committed since, the
state is brought up to date under a lock and swapped in one assignment, so concurrent
votes see the old or the new state, never a mix. Entries added, enabled or disabled are
applied from the change's journal row (BankJournal: a few milliseconds, whatever the
bank's size, so a new entry is matchable within 50 ms in every process); anything
else rebuilds the index.

Votes are counted per content: a reference image gives one entry per algorithm, and the
upload is blocked when some block content gets its quorum of votes. Voters agreeing on
the same picture is what makes a match; voters each matching a different picture is
noise. The quorum of a content counts only the voters that can vote on it (enabled in
the policy, produced an informative hash, and the content has an entry of theirs): a
majority of their weight, or the policy's N capped at their weight. So a reference image
needs a weight of 4 by default (DEFAULT_QUORUM: any two of aHash, dHash, pHash and PDQ,
which weigh 2; phash_simple weighs 1), while a PDQ-only hash list, as ThreatExchange and
HMA share them, blocks on its one voter.

The strict rule: a content with fewer voters able to vote than a full set's quorum needs
(a hash list without its content column makes one hash per content; a flat upload leaves
few voters) cannot lean on agreement, so each of its votes must be close on its own:
within the algorithm's ``strict_threshold`` (at most the voter's threshold) and on a
query hash of full quality (``strict_informative``); voters without a strict threshold
(aHash) neither vote nor count there. Before it, one aHash or phash_simple within 8 bits
blocked a radial gradient as "1 of 1 hash voters agreed"; PDQ alone keeps its 31 and its
quality 50, as ThreatExchange and HMA use it. The numbers are in hashing.algorithms.

The policy is read through a small contract (``quorum``, ``mirror_aware`` and
``voter_settings() -> {algorithm: VoterSetting}``), so this module does not depend on the
review app that keeps the policy.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np
from django.db import connections
from django.db.models import Q

from .algorithms import ALGORITHMS, Signal, informative
from .index import MatchIndex, hashes_from_hex
from .models import Bank, BankEntry, BankJournal, BankVersion

log = logging.getLogger(__name__)

BLOCK, ALLOW = "block", "allow"
# A new policy's quorum (review.Policy.quorum): a vote weight of 4, any two of the four
# voters that weigh 2 (bench/detection.py measured it; hashing.algorithms gives the numbers).
DEFAULT_QUORUM = 4


@dataclass(frozen=True, slots=True)
class VoterSetting:
    """One voter's say: its distance threshold and the weight of its vote."""

    threshold: int
    weight: int = 1


@dataclass(frozen=True)
class VotingRules:
    """The policy's matching settings read once, for the several votes of one analysis
    (banks and past items); satisfies the same contract as the policy."""

    voters: dict[str, VoterSetting]
    quorum: int = 0
    mirror_aware: bool = True

    def voter_settings(self) -> dict[str, VoterSetting]:
        return self.voters


@dataclass(frozen=True)
class MatcherState:
    """One immutable build: the index plus, per entry id, its content, bank and kind; and
    the bank changes applied since the build without reindexing it (``apply_journal``):
    entries added or enabled since (``extra``, in a small index of their own) and built
    entries disabled since (``dead``)."""

    version: object
    index: MatchIndex
    entry_ids: np.ndarray  # sorted
    content_ids: np.ndarray
    bank_ids: np.ndarray
    is_block: np.ndarray
    contents: np.ndarray  # sorted content ids ...
    content_voters: np.ndarray  # ... and a bit per index in `algorithms` that has an entry
    algorithms: tuple[str, ...] = ()
    banks: dict[int, str] = field(default_factory=dict)
    built_ms: float = 0.0
    counter: int = 0  # BankVersion.counter at `version`
    entry_bits: np.ndarray | None = None  # per built entry, its algorithm's bit
    # Since the build: {entry id: (content, bank, is_block, algorithm, hex)} ...
    extra: dict[int, tuple] = field(default_factory=dict)
    extra_index: MatchIndex | None = None
    dead: frozenset = frozenset()  # ... built entries no longer live
    voter_masks: dict[int, int] = field(default_factory=dict)  # contents changed since
    caught_up_ms: float = 0.0

    def __len__(self) -> int:
        return len(self.entry_ids) - len(self.dead) + len(self.extra)

    @property
    def pending(self) -> int:
        """Changes held beside the build; a rebuild folds them in (``BankMatcher``)."""
        return len(self.extra) + len(self.dead)

    def built(self, entry_id: int) -> bool:
        pos = int(np.searchsorted(self.entry_ids, entry_id))
        return pos < len(self.entry_ids) and int(self.entry_ids[pos]) == entry_id

    def lookup(self, entry_id: int) -> tuple[int, int, str]:
        """(content id, bank id, kind) of a live entry in this state."""
        added = self.extra.get(entry_id)
        if added is not None:
            return added[0], added[1], BLOCK if added[2] else ALLOW
        pos = int(np.searchsorted(self.entry_ids, entry_id))
        kind = BLOCK if self.is_block[pos] else ALLOW
        return int(self.content_ids[pos]), int(self.bank_ids[pos]), kind

    def voters_of(self, content_id: int) -> set[str]:
        """Algorithms that have an enabled entry for this content."""
        mask = self.voter_masks.get(content_id)
        if mask is None:
            pos = int(np.searchsorted(self.contents, content_id))
            found = pos < len(self.contents) and self.contents[pos] == content_id
            mask = int(self.content_voters[pos]) if found else 0
        return {name for bit, name in enumerate(self.algorithms) if mask >> bit & 1}

    def query(self, fp: dict, thresholds: dict, mirrored: bool = True) -> dict:
        """The index's hits (MatchIndex.query) over the live entries: the build's without
        those disabled since, and the entries added since."""
        hits = self.index.query(fp, thresholds, mirrored=mirrored) if len(self.entry_ids) else {}
        if self.dead:
            dead = self.dead
            hits = {n: [h for h in found if h[0] not in dead] for n, found in hits.items()}
        if self.extra_index is not None:
            for name, found in self.extra_index.query(fp, thresholds, mirrored=mirrored).items():
                if found:
                    merged = hits.get(name, []) + found
                    hits[name] = sorted(merged, key=lambda t: (t[1], t[0]))
        return hits


def _empty_state(version=None, counter=0) -> MatcherState:
    empty = np.zeros(0, dtype=np.int64)
    no = np.zeros(0, dtype=bool)
    return MatcherState(
        version,
        MatchIndex(),
        empty,
        empty,
        empty,
        no,
        empty,
        empty,
        counter=counter,
        algorithms=tuple(ALGORITHMS),
        entry_bits=empty,
    )


def build_state(version, counter: int = 0) -> MatcherState:
    """Load enabled entries of active banks and index them. Read `version` first.

    Entries of algorithms no longer registered are left out (they cannot be compared).
    """
    started = time.perf_counter()
    live = BankEntry.objects.filter(enabled=True, bank__active=True)
    algorithms = tuple(ALGORITHMS)
    if len(algorithms) > 62:
        raise ValueError("the voter bit mask holds at most 62 algorithms")
    index_rows, parts = {}, []
    for bit, name in enumerate(algorithms):
        rows = list(
            live.filter(algorithm=name).values_list(
                "pk", "value", "content_id", "bank_id", "bank__kind"
            )
        )
        if not rows:
            continue
        ids, values, contents, bank_ids, kinds = zip(*rows)
        ids = np.array(ids, dtype=np.int64)
        index_rows[name] = (ids, hashes_from_hex(values, ALGORITHMS[name].bits))
        parts.append(
            (
                ids,
                np.array(contents, dtype=np.int64),
                np.array(bank_ids, dtype=np.int64),
                np.array(kinds) == BLOCK,
                np.full(len(ids), 1 << bit, dtype=np.int64),
            )
        )
    if not parts:
        return _empty_state(version, counter)
    entry_ids, content_ids, bank_ids, is_block, bits = (np.concatenate(p) for p in zip(*parts))
    by_entry = np.argsort(entry_ids)
    by_content = np.argsort(content_ids, kind="stable")
    contents, starts = np.unique(content_ids[by_content], return_index=True)
    names = Bank.objects.filter(pk__in=np.unique(bank_ids).tolist()).values_list("pk", "name")
    return MatcherState(
        version=version,
        index=MatchIndex().build(index_rows, version=version),
        entry_ids=entry_ids[by_entry],
        content_ids=content_ids[by_entry],
        bank_ids=bank_ids[by_entry],
        is_block=is_block[by_entry],
        contents=contents,
        content_voters=np.bitwise_or.reduceat(bits[by_content], starts),
        algorithms=algorithms,
        banks=dict(names),
        built_ms=round((time.perf_counter() - started) * 1000, 2),
        counter=counter,
        entry_bits=bits[by_entry],
    )


# Journal runs read per query (each run is a BETWEEN); more runs than MAX_RUNS in one
# catch-up (scattered ids) are cheaper to rebuild from than to read run by run.
RUNS_PER_QUERY = 200
MAX_RUNS = 5_000


def _entry_rows(runs: list[list[int]]):
    """Current rows of the entries in these [first, last] id runs, whatever their state."""
    fields = ("pk", "algorithm", "value", "content_id", "bank_id", "enabled")
    for start in range(0, len(runs), RUNS_PER_QUERY):
        where = Q()
        for first, last in runs[start : start + RUNS_PER_QUERY]:
            where |= Q(pk__gte=first, pk__lte=last) if first != last else Q(pk=first)
        yield from BankEntry.objects.filter(where).values_list(
            *fields, "bank__active", "bank__kind"
        )


def _merged(runs) -> list[list[int]]:
    """[first, last] runs as sorted, disjoint runs."""
    out: list[list[int]] = []
    for first, last in sorted(runs):
        if out and first <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], last)
        else:
            out.append([first, last])
    return out


def apply_journal(state: MatcherState, journal, version, counter: int) -> MatcherState | None:
    """`state` with the entries the journal rows name as they are now, or None when only
    a rebuild will do (an algorithm registered since the build).

    Idempotent (each entry is set to its current state, not toggled), so a build that
    already saw some of these changes applies them again harmlessly.
    """
    started = time.perf_counter()
    runs = _merged(run for row in journal for run in (*row.added, *row.changed))
    extra, dead = dict(state.extra), set(state.dead)
    bit_of = {name: bit for bit, name in enumerate(state.algorithms)}
    seen: set[int] = set()
    new_banks: set[int] = set()
    rows = list(_entry_rows(runs))
    pks = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    at = np.minimum(np.searchsorted(state.entry_ids, pks), max(len(state.entry_ids) - 1, 0))
    built = (state.entry_ids[at] == pks).tolist() if len(state.entry_ids) else [False] * len(rows)
    for (pk, algorithm, value, content, bank, enabled, active, kind), in_build in zip(rows, built):
        if algorithm not in bit_of:
            if algorithm in ALGORITHMS:
                return None  # registered after the build: no bit for it
            continue
        seen.add(pk)
        live = enabled and active
        if in_build:
            (dead.discard if live else dead.add)(pk)
        elif live:
            extra[pk] = (content, bank, kind == BLOCK, algorithm, value)
            if bank not in state.banks:
                new_banks.add(bank)
        else:
            extra.pop(pk, None)
    # Entries named but not found (deleted since) are no longer live either.
    seen_ids = np.array(sorted(seen), dtype=np.int64)
    firsts = [first for first, _ in runs]
    for first, last in runs:
        lo, hi = np.searchsorted(state.entry_ids, [first, last + 1])
        if hi > lo:
            dead.update(np.setdiff1d(state.entry_ids[lo:hi], seen_ids).tolist())
    for pk in [pk for pk in extra if pk not in seen]:
        at = bisect.bisect_right(firsts, pk) - 1
        if at >= 0 and pk <= runs[at][1]:
            del extra[pk]
    banks = state.banks
    if new_banks:
        banks = {**banks, **dict(Bank.objects.filter(pk__in=new_banks).values_list("pk", "name"))}
    return replace(
        state,
        version=version,
        counter=counter,
        extra=extra,
        extra_index=_extra_index(extra),
        dead=frozenset(dead),
        voter_masks=_voter_masks(state, extra, dead, bit_of),
        banks=banks,
        caught_up_ms=round((time.perf_counter() - started) * 1000, 2),
    )


def _extra_index(extra: dict) -> MatchIndex | None:
    if not extra:
        return None
    by_algorithm: dict[str, tuple[list, list]] = {}
    for pk, (_, _, _, algorithm, value) in extra.items():
        ids, values = by_algorithm.setdefault(algorithm, ([], []))
        ids.append(pk)
        values.append(value)
    rows = {
        name: (np.array(ids, dtype=np.int64), hashes_from_hex(values, ALGORITHMS[name].bits))
        for name, (ids, values) in by_algorithm.items()
    }
    return MatchIndex().build(rows)


def _voter_masks(state: MatcherState, extra: dict, dead: set, bit_of: dict) -> dict[int, int]:
    """Voter bits of every content with an entry added or disabled since the build."""
    masks: dict[int, int] = {}
    if dead:
        ids = np.fromiter(dead, dtype=np.int64, count=len(dead))
        pos = np.searchsorted(state.entry_ids, ids)
        contents = state.content_ids[pos].tolist()
        gone = state.entry_bits[pos].tolist()
        for content, bit in zip(contents, gone):
            if content not in masks:
                where = int(np.searchsorted(state.contents, content))
                masks[content] = int(state.content_voters[where])
            masks[content] &= ~bit
    for content, _, _, algorithm, _ in extra.values():
        if content not in masks:
            where = int(np.searchsorted(state.contents, content))
            found = where < len(state.contents) and state.contents[where] == content
            masks[content] = int(state.content_voters[where]) if found else 0
        masks[content] |= 1 << bit_of[algorithm]
    return masks


class BankMatcher:
    """The process's matcher. `state()` is cheap when nothing changed.

    A bank change names the entries it made or switched (hashing.models.BankJournal): the
    next vote applies just those (milliseconds, even over millions of entries), so a new
    or disabled entry is live at the next vote of every process. Other changes (a bank's
    kind or activity) rebuild. Changes held beside the build are folded into a new build
    once they pass ``compact_at`` (in a thread when the build is large: votes go on over
    the current state meanwhile).
    """

    # Changes held beside a build before it is rebuilt, or this share of its entries,
    # whichever is more: the entries added since are searched in an index of their own
    # (as fast as the build's up to a few hundred thousand), and a rebuild of millions
    # takes seconds of the process's CPU.
    COMPACT_MIN = 50_000
    COMPACT_SHARE = 0.25
    BACKGROUND_FROM = 200_000  # builds at least this large are rebuilt in a thread

    def __init__(self):
        self._lock = threading.Lock()
        self._state: MatcherState | None = None
        self._compacting = False

    def state(self) -> MatcherState:
        version, counter = BankVersion.read()
        state = self._state
        if state is not None and state.version == version:
            return state
        with self._lock:
            state = self._state
            if state is None or state.version != version:
                state = self._advance(state, version, counter)
                self._state = state
        if state.pending > self.compact_at(state):
            self._compact(state)
            state = self._state or state  # the new build, unless it is made in a thread
        return state

    def _advance(self, state, version, counter) -> MatcherState:
        """`state` brought to `version`: through the journal when its chain from the
        state's own version is unbroken, else rebuilt."""
        if state is not None and state.version is not None and counter > state.counter:
            journal = list(
                BankJournal.objects.filter(counter__gt=state.counter, counter__lte=counter)
            )
            chained = len(journal) == counter - state.counter and all(
                row.previous == (journal[i - 1].token if i else state.version)
                for i, row in enumerate(journal)
            )
            if chained and journal[-1].token == version and not any(r.rebuild for r in journal):
                if not self._rather_rebuild(state, journal):
                    advanced = apply_journal(state, journal, version, counter)
                    if advanced is not None:
                        return advanced
        return build_state(version, counter)

    def _rather_rebuild(self, state: MatcherState, journal) -> bool:
        """A small build that the changes would push past ``compact_at`` is rebuilt at
        once (applying them first would read them twice); so is a scatter of ids."""
        runs = [run for row in journal for run in (*row.added, *row.changed)]
        if len(runs) > MAX_RUNS:
            return True
        named = sum(last - first + 1 for first, last in runs)
        small = len(state.entry_ids) < self.BACKGROUND_FROM
        return small and state.pending + named > self.compact_at(state)

    def compact_at(self, state: MatcherState) -> int:
        return max(self.COMPACT_MIN, int(len(state.entry_ids) * self.COMPACT_SHARE))

    def _compact(self, state: MatcherState) -> None:
        if len(state.entry_ids) < self.BACKGROUND_FROM:
            self.rebuild()
            return
        with self._lock:
            if self._compacting:
                return
            self._compacting = True
        threading.Thread(target=self._rebuild_in_thread, daemon=True).start()

    def rebuild(self) -> MatcherState:
        """A new build of the current version (the changes held beside it folded in)."""
        version, counter = BankVersion.read(fresh=True)
        fresh = build_state(version, counter)
        with self._lock:
            current = self._state
            if current is not None and current.counter > fresh.counter:
                # Changes committed meanwhile: bring the new build up to them.
                version, counter = BankVersion.read(fresh=True)
                fresh = self._advance(fresh, version, counter)
            self._state = fresh
        return fresh

    def _rebuild_in_thread(self) -> None:
        try:
            self.rebuild()
        except Exception:  # the next vote carries on over the current state
            log.exception("rebuilding the bank matcher failed")
        finally:
            self._compacting = False
            connections.close_all()  # this thread's connections only

    def reset(self) -> None:
        with self._lock:
            self._state = None


matcher = BankMatcher()


def quorum_for(policy, weight: int) -> int:
    """Vote weight needed among voters of total `weight` able to vote: the policy's N (at
    most all of it), or, when the policy says 0, a majority."""
    if policy.quorum:
        return max(1, min(policy.quorum, weight))
    return weight // 2 + 1


def producing_voters(fp: dict, policy) -> dict[str, VoterSetting]:
    """Enabled voters that produced an informative hash for this fingerprint.

    A voter whose hash is too featureless (PDQ below quality 50) abstains: it does not
    count among the voters that could have voted.
    """
    return {
        name: setting
        for name, setting in policy.voter_settings().items()
        if name in ALGORITHMS and informative(fp, name)
    }


def full_quorum(fp: dict, policy) -> int:
    """The quorum of a content with a hash of every enabled voter of the fingerprint's kind
    (whether or not this query's hashes are informative): 4 of 9 by default."""
    weight = sum(
        setting.weight
        for name, setting in policy.voter_settings().items()
        if name in ALGORITHMS and fp.get(name) is not None
    )
    return quorum_for(policy, weight) if weight else 1


def strict_limit(name: str, setting: VoterSetting) -> int | None:
    """The largest distance at which a voter counts under the strict rule (None: never)."""
    strict = ALGORITHMS[name].strict_threshold
    return None if strict is None else min(setting.threshold, strict)


def strict_limits(fp: dict, voters: dict[str, VoterSetting]) -> dict[str, int]:
    """{voter: largest distance} for votes under the strict rule: voters with a strict
    threshold whose query hash is of full quality."""
    quality = fp.get("quality") or {}
    limits = {}
    for name, setting in voters.items():
        limit = strict_limit(name, setting)
        signal = Signal(fp[name], quality.get(name))
        if limit is not None and ALGORITHMS[name].strict_informative(signal):
            limits[name] = limit
    return limits


def default_rules() -> VotingRules:
    """The rules of a policy nobody has edited: every algorithm at its default threshold
    and weight, DEFAULT_QUORUM (what an import describes; the policy lives in review)."""
    return VotingRules(
        {n: VoterSetting(a.default_threshold, a.default_weight) for n, a in ALGORITHMS.items()},
        DEFAULT_QUORUM,
    )


@dataclass(frozen=True)
class ContentRule:
    """How a content holding hashes of `algorithms` is voted on (every query hash
    informative): which voters count, each within which distance, and the weight needed
    among them (0: it can never block). `full`: the quorum of a complete reference."""

    algorithms: tuple[str, ...]
    full: int
    strict: bool
    limits: dict[str, int]
    weight: int
    needed: int


def content_rule(algorithms, rules) -> ContentRule:
    """The rule ``vote`` applies to a content of these algorithms, as a value to show."""
    settings = rules.voter_settings()
    known = [n for n in algorithms if n in ALGORITHMS]
    kinds = {ALGORITHMS[n].media_kind for n in known}
    kind_weight = sum(
        s.weight
        for n, s in settings.items()
        if n in ALGORITHMS and ALGORITHMS[n].media_kind in kinds
    )
    full = quorum_for(rules, kind_weight) if kind_weight else 1
    able = [n for n in known if n in settings]
    strict = sum(settings[n].weight for n in able) < full
    if strict:
        limits = {n: t for n in able if (t := strict_limit(n, settings[n])) is not None}
    else:
        limits = {n: settings[n].threshold for n in able}
    weight = sum(settings[n].weight for n in limits)
    needed = quorum_for(rules, weight) if weight else 0
    return ContentRule(tuple(algorithms), full, strict, limits, weight, needed)


@dataclass
class Tally:
    """Votes for one content: {voter: (entry, distance, mirrored)} and what it needs.

    `weight`, `eligible` and `quorum` are vote weights (each voter's weight is 1 unless
    the policy says otherwise, so they are usually counts of voters). `strict`: the content
    was short of voters, so only votes within the strict limits count."""

    content: int
    bank: int
    votes: dict
    weight: int
    eligible: int
    quorum: int
    strict: bool = False

    @property
    def reached(self) -> bool:
        return self.weight >= self.quorum

    def rank(self):
        """Reached first, then most votes, then nearest."""
        distance = sum(v[1] for v in self.votes.values())
        return (not self.reached, -self.weight, distance, self.content)


def _tally(hits: dict, state: MatcherState, kind: str, voters: dict, policy, rule) -> Tally | None:
    """The deciding content of banks of `kind`: one that reached its quorum, else the
    one closest to it (for the record). `rule`: (full quorum, strict limits)."""
    full, strict = rule
    by_content: dict[int, dict] = {}
    banks: dict[int, int] = {}
    for name, found in hits.items():
        for entry_id, distance, mirrored in found:  # nearest first
            content_id, bank_id, entry_kind = state.lookup(entry_id)
            if entry_kind != kind:
                continue
            votes = by_content.setdefault(content_id, {})
            banks[content_id] = bank_id
            if name not in votes:
                votes[name] = (entry_id, int(distance), bool(mirrored))
    tallies = []
    for content_id, votes in by_content.items():
        able = state.voters_of(content_id) & voters.keys()
        short = sum(voters[n].weight for n in able) < full
        if short:
            able &= strict.keys()
            votes = {n: v for n, v in votes.items() if n in able and v[1] <= strict[n]}
        eligible = sum(voters[n].weight for n in able)
        weight = sum(voters[n].weight for n in votes)
        quorum = quorum_for(policy, eligible)
        tally = Tally(content_id, banks[content_id], votes, weight, eligible, quorum, short)
        tallies.append(tally)
    return min(tallies, key=Tally.rank, default=None)


def _per_voter(voters: dict, chosen: Tally | None, hits: dict, state, kind) -> dict:
    """Each voter's vote for the chosen content; else its nearest entry of that kind."""
    out = {}
    chosen_votes = chosen.votes if chosen else {}
    for name in voters:
        if name in chosen_votes:
            entry, distance, mirrored = chosen_votes[name]
            out[name] = {"vote": True, "entry": entry, "distance": distance, "mirrored": mirrored}
            continue
        nearest = next((h for h in hits.get(name, []) if state.lookup(h[0])[2] == kind), None)
        out[name] = {
            "vote": False,
            "entry": nearest[0] if nearest else None,
            "distance": int(nearest[1]) if nearest else None,
            "mirrored": bool(nearest[2]) if nearest else False,
        }
    return out


def vote(fp: dict, policy) -> dict:
    """The voters' verdict on a fingerprint against the active banks.

    Returns {"blocked", "allowed", "votes", "voters", "eligible", "quorum", "bank",
    "allow_bank", "content", "allow_votes", "allow_content", "per_voter", "thresholds",
    "strict", "full_quorum", "strict_thresholds", "version"}. "voters": enabled voters that
    produced a hash; "eligible", "votes", "quorum": of the deciding block content (without
    one, quorum is that of all voters); vote weights, which are counts while every voter
    weighs 1. "strict": the deciding block content was judged by the strict rule (fewer
    voters able to vote on it than "full_quorum"), so only voters in "strict_thresholds"
    ({voter: largest distance}) counted, each within its distance there.
    `per_voter` (block side): {name: {"vote", "entry", "distance", "mirrored"}}; a voter
    that matched only another content shows that entry with vote False. Allow contents
    are tallied by the same rule; "allowed" means one of them reached its quorum.
    """
    return _vote(fp, policy)[0]


def lookup(fp: dict, policy) -> tuple[dict, list[dict]]:
    """``vote``'s verdict and every live entry within its voter's threshold, nearest
    first: [{"entry", "content", "bank_id", "bank", "kind", "algorithm", "distance",
    "mirrored"}] (from the same state as the verdict)."""
    result, hits, state = _vote(fp, policy)
    matches = []
    for name, found in hits.items():
        for entry_id, distance, mirrored in found:
            content, bank, kind = state.lookup(entry_id)
            matches.append(
                {
                    "entry": int(entry_id),
                    "content": content,
                    "bank_id": bank,
                    "bank": state.banks.get(bank, ""),
                    "kind": kind,
                    "algorithm": name,
                    "distance": int(distance),
                    "mirrored": bool(mirrored),
                }
            )
    matches.sort(key=lambda m: (m["distance"], m["entry"]))
    return result, matches


def _vote(fp: dict, policy) -> tuple[dict, dict, MatcherState]:
    if not isinstance(policy, VotingRules):  # the voter rows are read once per vote
        policy = VotingRules(policy.voter_settings(), policy.quorum, policy.mirror_aware)
    voters = producing_voters(fp, policy)
    thresholds = {name: setting.threshold for name, setting in voters.items()}
    total = sum(setting.weight for setting in voters.values())
    state = matcher.state()
    hits = state.query(fp, thresholds, mirrored=policy.mirror_aware) if len(state) else {}
    rule = (full_quorum(fp, policy), strict_limits(fp, voters))
    block = _tally(hits, state, BLOCK, voters, policy, rule)
    allow = _tally(hits, state, ALLOW, voters, policy, rule)
    result = {
        "blocked": bool(block and block.reached),
        "allowed": bool(allow and allow.reached),
        "votes": block.weight if block else 0,
        "voters": total,
        "eligible": block.eligible if block else total,
        "quorum": block.quorum if block else quorum_for(policy, total),
        "bank": state.banks.get(block.bank, "") if block else "",
        "allow_bank": state.banks.get(allow.bank, "") if allow else "",
        "content": block.content if block else None,
        "allow_votes": allow.weight if allow else 0,
        "allow_content": allow.content if allow else None,
        "per_voter": _per_voter(voters, block, hits, state, BLOCK),
        "thresholds": thresholds,
        "strict": bool(block and block.strict),
        "full_quorum": rule[0],
        "strict_thresholds": rule[1],
        "version": str(state.version) if state.version else None,
    }
    return result, hits, state
