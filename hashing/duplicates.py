"""Near duplicates among past items: the bank vote's rule, applied to past items.

A past item is a near copy when a quorum of the policy's voters agree on it, exactly as a
bank content is matched (hashing.matcher): each voter within its own threshold, plain or
mirrored, and only voters whose hashes say something on both sides count (a flat or
gradient picture's hashes abstain); with fewer of them than a full quorum, the strict rule
(a horizontal gradient was a "near copy" of a scanned page on aHash alone, distance 1).
One hash alone never makes a copy: a single 64-bit hash made every blank, dark or
gradient upload a "distance 0" copy of every other.

Candidates come from in-memory indexes of the 64-bit voters' plain hashes, one per
algorithm, kept per process. Each is append-only: a lookup first loads the fingerprints
stored since the last one (with a look-back window so rows committed out of order are not
missed). The candidates' stored hashes are then read for the vote, and item statuses for
the few that reach it, so decisions never make them stale.
"""

import threading
from datetime import timedelta

import numpy as np
from django.utils import timezone

from uploads.models import MediaItem

from .algorithms import ALGORITHMS, Signal
from .matcher import full_quorum, producing_voters, quorum_for, strict_limits
from .models import Fingerprint

# Candidates checked by the vote at most, those found by the most voters first (30: what the
# single-hash check looked at before, so a popular picture costs no more than it did).
MAX_CANDIDATES = 30

LOOKBACK = timedelta(minutes=2)


class PastItems:
    """The plain (not mirrored) 64-bit hashes of all past items, an array per algorithm.

    One query per lookup loads what was stored since the last one, for every algorithm at
    once; hashes too featureless to vote are left out.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            self._known: set[int] = set()  # Fingerprint row ids already indexed
            self._loaded_until = None

    def refresh(self, algorithms: list[str]):
        with self._lock:
            now = timezone.now()
            rows = Fingerprint.objects.filter(algorithm__in=algorithms, mirrored=False)
            if self._loaded_until is not None:
                rows = rows.filter(created_at__gte=self._loaded_until - LOOKBACK)
            new: dict[str, tuple[list, list]] = {}
            for pk, item_id, name, text, quality in rows.values_list(
                "pk", "item_id", "algorithm", "value", "quality"
            ):
                if pk in self._known:
                    continue
                self._known.add(pk)
                value = int(text, 16)
                if ALGORITHMS[name].informative(Signal(value, quality)):
                    ids, values = new.setdefault(name, ([], []))
                    ids.append(item_id)
                    values.append(value)
            for name, (ids, values) in new.items():
                old_ids, old_values = self._arrays.get(
                    name, (np.empty(0, np.int64), np.empty(0, np.uint64))
                )
                self._arrays[name] = (
                    np.concatenate([old_ids, np.fromiter(ids, np.int64, len(ids))]),
                    np.concatenate([old_values, np.fromiter(values, np.uint64, len(values))]),
                )
            self._loaded_until = now

    def search(self, name: str, queries: list[int], max_distance: int) -> set[int]:
        """Ids of past items within `max_distance` of any query (call ``refresh`` first)."""
        if name not in self._arrays:
            return set()
        ids, hashes = self._arrays[name]
        found: set[int] = set()
        for q in queries:
            hits = np.nonzero(np.bitwise_count(hashes ^ np.uint64(q)) <= max_distance)[0]
            found.update(ids[hits].tolist())
        return found


item_index = PastItems()


def decided_others(item):
    """The items a copy of ``item`` may be found among: every other one already analysed."""
    return MediaItem.objects.exclude(pk=item.pk).exclude(status=MediaItem.Status.PROCESSING)


def exact_copies(item, limit: int = 10) -> dict[int, dict]:
    """Decided items with the same bytes (sha256) as ``item``, by pk, in find_duplicates'
    shape: the first part of every kind's duplicate search."""
    decided = decided_others(item)
    return {
        other.pk: {
            "id": str(other.uuid),
            "pk": other.pk,
            "exact": True,
            "status": other.status,
            "votes": None,
            "quorum": None,
            "eligible": None,
            "distance": 0,
            "voters": {},
        }
        for other in decided.filter(sha256=item.sha256).only("pk", "uuid", "status")[:limit]
    }


def find_duplicates(item, fp: dict, policy, limit: int = 10) -> list[dict]:
    """Earlier items that are exact (sha256) or near copies of `item`, strongest first.

    Each: {"id", "pk", "exact", "status", "votes", "quorum", "eligible", "distance",
    "voters": {algorithm: distance}}; "distance" is the nearest voter's (0 when exact).
    `policy`: the matcher's contract (voter settings, quorum, mirror_aware).
    """
    decided = decided_others(item)
    found = exact_copies(item, limit)
    for pk, tally in _near(item, fp, policy).items():
        if pk in found:
            continue
        found[pk] = {"pk": pk, "exact": False, **tally}
    near = [pk for pk, d in found.items() if not d["exact"]]
    known = {
        pk: (uuid, status)
        for pk, uuid, status in decided.filter(pk__in=near).values_list("pk", "uuid", "status")
    }
    for pk in near:
        if pk not in known:
            del found[pk]  # still processing, or gone
            continue
        found[pk].update(id=str(known[pk][0]), status=known[pk][1])
    return sorted(found.values(), key=strength)[:limit]


_HUMAN = {"rejected": 0, "approved": 1}


def strength(duplicate: dict) -> tuple:
    """Sort key, strongest first: exact, then most votes, then nearest; human decisions
    first among equals."""
    return (
        not duplicate["exact"],
        -(duplicate["votes"] or 0),
        sum(duplicate["voters"].values()),
        _HUMAN.get(duplicate["status"], 2),
    )


def _near(item, fp: dict, policy) -> dict[int, dict]:
    """Past items a quorum of voters agree on: {pk: tally}."""
    voters = producing_voters(fp, policy)
    mirror = (fp.get("mirror") or {}) if policy.mirror_aware else {}
    # 256-bit PDQ votes from stored rows, below, but finds no candidates itself.
    searched = [
        n for n in voters if ALGORITHMS[n].bits == 64 and ALGORITHMS[n].media_kind == item.kind
    ]
    if searched:
        item_index.refresh(searched)
    hits: dict[int, int] = {}
    for name in searched:
        queries = [fp[name]] + ([mirror[name]] if mirror.get(name) is not None else [])
        for pk in item_index.search(name, queries, voters[name].threshold):
            hits[pk] = hits.get(pk, 0) + 1
    hits.pop(item.pk, None)
    if not hits:
        return {}
    candidates = sorted(hits, key=lambda pk: -hits[pk])[:MAX_CANDIDATES]
    stored: dict[int, dict] = {}
    rows = Fingerprint.objects.filter(
        item_id__in=candidates, algorithm__in=list(voters), mirrored=False
    ).values_list("item_id", "algorithm", "value", "quality")
    for pk, name, value, quality in rows:
        stored.setdefault(pk, {})[name] = (int(value, 16), quality)
    full, strict = full_quorum(fp, policy), strict_limits(fp, voters)
    out = {}
    for pk, hashes in stored.items():
        able = {
            name: (value, quality)
            for name, (value, quality) in hashes.items()
            # the past item's hash says nothing: no vote either way
            if ALGORITHMS[name].informative(Signal(value, quality))
        }
        limits = {name: voters[name].threshold for name in able}
        if sum(voters[name].weight for name in able) < full:
            # Too few voters for agreement (the bank's strict rule, hashing.matcher): each
            # vote must be close alone, on hashes of full quality on both sides.
            limits = {
                name: strict[name]
                for name, (value, quality) in able.items()
                if name in strict and ALGORITHMS[name].strict_informative(Signal(value, quality))
            }
        votes, eligible = {}, sum(voters[name].weight for name in limits)
        for name, limit in limits.items():
            algorithm, value = ALGORITHMS[name], able[name][0]
            distance = algorithm.distance(fp[name], value)
            if mirror.get(name) is not None:
                distance = min(distance, algorithm.distance(mirror[name], value))
            if distance <= limit:
                votes[name] = distance
        weight = sum(voters[name].weight for name in votes)
        quorum = quorum_for(policy, eligible) if eligible else 1
        if votes and weight >= quorum:
            out[pk] = {
                "votes": weight,
                "quorum": quorum,
                "eligible": eligible,
                "distance": min(votes.values()),
                "voters": votes,
            }
    return out
