"""Near duplicates among past items, from in-memory indexes kept per process.

One index per algorithm that finds near duplicates (``finds_near_duplicates``; pHash for
images). Each is append-only: a lookup first loads the fingerprints stored since the last
one (with a look-back window so rows committed out of order are not missed). Item statuses
are read from the database for the few candidates only, so decisions never make it stale.
"""

import threading
from datetime import timedelta

import numpy as np
from django.utils import timezone

from uploads.models import MediaItem

from .algorithms import algorithms_for
from .models import Fingerprint

LOOKBACK = timedelta(minutes=2)


class ItemHashIndex:
    """The plain (not mirrored) hashes of one 64-bit algorithm over all past items."""

    def __init__(self, algorithm: str):
        self.algorithm = algorithm
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        self._ids = np.empty(0, dtype=np.int64)
        self._hashes = np.empty(0, dtype=np.uint64)
        self._known: set[int] = set()
        self._loaded_until = None

    def refresh(self):
        with self._lock:
            now = timezone.now()
            rows = Fingerprint.objects.filter(algorithm=self.algorithm, mirrored=False)
            if self._loaded_until is not None:
                rows = rows.filter(created_at__gte=self._loaded_until - LOOKBACK)
            new = [(i, h) for i, h in rows.values_list("item_id", "value") if i not in self._known]
            if new:
                ids, hashes = zip(*new)
                self._known.update(ids)
                self._ids = np.concatenate([self._ids, np.fromiter(ids, np.int64, len(ids))])
                values = np.fromiter((int(h, 16) for h in hashes), np.uint64, len(hashes))
                self._hashes = np.concatenate([self._hashes, values])
            self._loaded_until = now

    def search(self, queries: list[int], max_distance: int) -> dict[int, int]:
        """item id -> smallest distance to any of the query hashes (plain and mirrored)."""
        self.refresh()
        found: dict[int, int] = {}
        ids, hashes = self._ids, self._hashes
        for q in queries:
            dist = np.bitwise_count(hashes ^ np.uint64(q))
            hits = np.nonzero(dist <= max_distance)[0]
            for i in hits:
                item_id, d = int(ids[i]), int(dist[i])
                if d < found.get(item_id, 99):
                    found[item_id] = d
        return found


class ItemIndexes:
    """The process's duplicate indexes, one per algorithm, made on first use."""

    def __init__(self):
        self._lock = threading.Lock()
        self._indexes: dict[str, ItemHashIndex] = {}

    def get(self, algorithm: str) -> ItemHashIndex:
        with self._lock:
            return self._indexes.setdefault(algorithm, ItemHashIndex(algorithm))

    def reset(self):
        with self._lock:
            self._indexes.clear()


item_index = ItemIndexes()


def find_duplicates(item, fp: dict, max_distance: int, limit: int = 10) -> list[dict]:
    """Earlier items that are exact (sha256) or near copies of `item`, nearest first.

    Near: within `max_distance` of any near-duplicate algorithm of the item's kind, the
    mirrored hash included; the distance reported is the smallest.
    """
    decided = MediaItem.objects.exclude(pk=item.pk).exclude(status=MediaItem.Status.PROCESSING)
    found: dict[int, dict] = {}
    for other in decided.filter(sha256=item.sha256).only("pk", "uuid", "status")[:limit]:
        found[other.pk] = {
            "id": str(other.uuid),
            "pk": other.pk,
            "distance": 0,
            "exact": True,
            "status": other.status,
        }
    near: dict[int, int] = {}
    for algorithm in algorithms_for(item.kind):
        if not algorithm.finds_near_duplicates or fp.get(algorithm.name) is None:
            continue
        queries = [fp[algorithm.name]]
        if (fp.get("mirror") or {}).get(algorithm.name) is not None:
            queries.append(fp["mirror"][algorithm.name])
        for pk, distance in item_index.get(algorithm.name).search(queries, max_distance).items():
            near[pk] = min(distance, near.get(pk, distance))
    near.pop(item.pk, None)
    candidates = sorted(near.items(), key=lambda kv: kv[1])[: limit * 3]
    rows = decided.filter(pk__in=[pk for pk, _ in candidates]).only("pk", "uuid", "status")
    for other in rows:
        if other.pk not in found:
            found[other.pk] = {
                "id": str(other.uuid),
                "pk": other.pk,
                "distance": near[other.pk],
                "exact": False,
                "status": other.status,
            }
    # Human decisions first among equals: they are what gets reused.
    human = {"rejected": 0, "approved": 1}
    ordered = sorted(found.values(), key=lambda d: (d["distance"], human.get(d["status"], 2)))
    return ordered[:limit]
