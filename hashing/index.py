"""In-memory Hamming-distance index over perceptual hashes (pure numpy).

Two strategies, picked automatically (``mode="auto"``) because neither wins
everywhere:

* ``scan``: ``np.bitwise_count(hashes ^ q)`` over the whole array. Cheapest for
  small sets and for radii so large that most rows would be candidates anyway.
* ``mih``: multi-index hashing (Norouzi, Punjani & Fleet 2012). The hash is cut
  into m 16-bit chunks; a hash within r = s*m + a of the query has one of some
  a+1 chunks within s of the query's chunk, or one of the others within s-1
  (pigeonhole). Each chunk has a CSR bucket table (rows sorted by chunk value +
  an offsets array of 2^16 entries); the chunk neighbourhood is enumerated with
  precomputed XOR masks, candidates are gathered and verified with
  ``bitwise_count``.

Numpy calls cost microseconds each, so the work is batched: one ``_Bank`` holds
several hash sets of the same width (the four 64-bit voters share one) and
answers all their queries, plain and mirrored, in one vectorised pass.

For 64-bit hashes each chunk table stores a sorted *copy* of the hashes, so a
bucket is verified from contiguous memory instead of one cache miss per
candidate; chunk 0's copy is the canonical order. 256-bit PDQ rows are too big
to copy 16 times, so PDQ tables store row numbers instead.

No Django here: the caller loads rows and hands over numpy arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

MASK64 = (1 << 64) - 1
CHUNK_BITS = 16
_VALUES = 1 << CHUNK_BITS

# All 16-bit XOR masks ordered by popcount: the first _PREFIX[s] are those
# with at most s bits set, so a radius-s neighbourhood is a prefix slice.
_ALL = np.arange(_VALUES, dtype=np.int64)
_POPCOUNT = np.bitwise_count(_ALL)
_MASKS = _ALL[np.argsort(_POPCOUNT, kind="stable")]
_PREFIX = np.cumsum(np.bincount(_POPCOUNT, minlength=CHUNK_BITS + 1))
_NARROW = np.concatenate([[0], _PREFIX[:-1]])  # masks for radius s - 1
del _ALL, _POPCOUNT

# Measured on 2 cores: below these sizes scanning the whole array beats MIH's
# fixed per-batch overhead (~0.3 ms) for MatchIndex's 5-voter batches; a lone
# 64-bit search breaks even nearer 100k, where both take ~0.3 ms anyway.
MIN_MIH_SIZE = {64: 30_000, 256: 8_000}
# Scan instead when MIH would gather more than this share of a set's rows
# (skewed buckets, large radii): a gathered candidate costs ~20x a scanned row.
SCAN_FRACTION = 0.05

Result = list[tuple[int, int]]


def _words_of(value: int, words: int) -> list[int]:
    """Split an unsigned int into 64-bit words, most significant first."""
    return [(value >> s) & MASK64 for s in range(64 * (words - 1), -1, -64)]


_ARANGE = np.arange(1 << 16)


def _arange(n: int) -> np.ndarray:
    """np.arange(n) without regenerating it per query (read-only, thread-safe)."""
    global _ARANGE
    if n > len(_ARANGE):
        _ARANGE = np.arange(max(n, 2 * len(_ARANGE)))
    return _ARANGE[:n]


def _ranges(lo: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Concatenation of the ranges [lo_i, lo_i + cnt_i), vectorised."""
    ends = np.cumsum(cnt)
    total = int(ends[-1]) if len(ends) else 0
    return np.repeat(lo - ends + cnt, cnt) + np.arange(total)


def hashes_from_ints(values: Iterable[int], bits: int = 64) -> np.ndarray:
    """Python ints (unsigned, or signed 64-bit) -> uint64 array (N,) or (N, bits // 64)."""
    if bits == 64:
        return np.fromiter((v & MASK64 for v in values), dtype=np.uint64)
    full = (1 << bits) - 1
    raw = b"".join((v & full).to_bytes(bits // 8, "big") for v in values)
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, bits // 64)


def hashes_from_hex(values: Sequence[str], bits: int = 256) -> np.ndarray:
    """Hex strings (e.g. PDQ as stored) -> uint64 array, without per-row int parsing."""
    raw = bytes.fromhex("".join(values))
    if len(raw) != len(values) * bits // 8:
        raise ValueError(f"every hex value must have {bits // 4} characters")
    arr = np.frombuffer(raw, dtype=">u8").astype(np.uint64)
    return arr if bits == 64 else arr.reshape(-1, bits // 64)


def _as_hash_array(hashes) -> np.ndarray:
    hashes = np.asarray(hashes)
    if hashes.dtype == np.int64:  # as stored in a signed BIGINT column
        hashes = hashes.view(np.uint64)
    if hashes.dtype != np.uint64:
        raise TypeError(f"hashes must be uint64 or int64, not {hashes.dtype}")
    if hashes.ndim == 2 and hashes.shape[1] == 1:
        hashes = hashes[:, 0]
    if hashes.ndim not in (1, 2):
        raise ValueError("hashes must be (N,) or (N, words)")
    return np.ascontiguousarray(hashes)


class _Plan:
    """Per-batch constants: probe masks and selection rings for each query's radius."""

    def __init__(self, bank: _Bank, members: np.ndarray, radii: np.ndarray):
        m = bank.chunks
        s, a = np.divmod(radii, m)
        width, narrow = _PREFIX[s], _NARROW[s]
        cols = np.arange(int(width.max()))
        self.masks = _MASKS[: len(cols)]
        self.tables = (bank.table_start[members][:, None] + np.arange(m)) << CHUNK_BITS
        within = (cols < width[:, None])[:, None, :]
        self.inner = (cols < narrow[:, None])[:, None, :]
        self.ring = within & ~self.inner
        self.within = np.repeat(within, m, axis=1)
        self.a = a[:, None]
        self.choose = bool((a + 1 < m).any())
        sizes = (bank.starts[members + 1] - bank.starts[members]).astype(np.float64)
        self.max_candidates = SCAN_FRACTION * bank.words * sizes
        self.scan = (m * width > sizes) if bank.adaptive else np.zeros(len(radii), dtype=bool)


class _Bank:
    """Packed storage and chunk tables for hash sets ("members") of one width."""

    def __init__(self, members: Sequence[tuple], words: int, mode: str = "auto"):
        if mode not in ("auto", "scan", "mih"):
            raise ValueError(f"unknown mode {mode!r}")
        self.words, self.bits = words, 64 * words
        self.chunks = self.bits // CHUNK_BITS
        self.adaptive = mode == "auto"  # a forced "mih" never falls back (tests rely on it)
        self._plans: dict[tuple, _Plan] = {}
        sizes = [len(ids) for ids, _ in members]
        self.starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        min_mih = MIN_MIH_SIZE.get(self.bits, MIN_MIH_SIZE[64])
        self.uses_mih = [mode == "mih" or (mode == "auto" and n >= min_mih) for n in sizes]
        mih_members = [k for k, use in enumerate(self.uses_mih) if use]
        self.table_start = np.full(len(members), -1, dtype=np.int64)
        for t, k in enumerate(mih_members):
            self.table_start[k] = t * self.chunks
        n_tables = len(mih_members) * self.chunks
        counts = np.zeros(n_tables * _VALUES, dtype=np.int64)
        table_rows = sum(sizes[k] for k in mih_members) * self.chunks
        ids_parts, self.member_hashes = [], []
        # Row r of member k is global row starts[k] + r; for 64-bit MIH members
        # their canonical order is chunk 0's sort order.
        self.sorted = self.order = self.hashes = None
        self.delta = np.zeros(len(members), dtype=np.int64)
        if words == 1:
            self.sorted = np.empty(table_rows, dtype=np.uint64)
        else:
            row_type = np.int32 if self.starts[-1] < 2**31 else np.int64
            self.order = np.empty(table_rows, dtype=row_type)
            self.hashes = np.concatenate([h for _, h in members]) if members else None
        pos = 0
        for k, (ids, hashes) in enumerate(members):
            ids = np.asarray(ids, dtype=np.int64)
            if not self.uses_mih[k]:
                ids_parts.append(ids)
                self.member_hashes.append(self._member_rows(k, hashes))
                continue
            for j in range(self.chunks):
                values = self._chunk_values(hashes, j)
                order = np.argsort(values, kind="stable")
                table = self.table_start[k] + j
                counts[table * _VALUES : (table + 1) * _VALUES] = np.bincount(
                    values, minlength=_VALUES
                )
                region = slice(pos, pos + len(ids))
                if words == 1:
                    self.sorted[region] = hashes[order]
                    if j == 0:
                        ids_parts.append(ids[order])
                        self.member_hashes.append(self.sorted[region])
                        self.delta[k] = self.starts[k] - pos
                else:
                    self.order[region] = order + self.starts[k]
                pos += len(ids)
            if words > 1:
                ids_parts.append(ids)
                self.member_hashes.append(self._member_rows(k, hashes))
        self.ids = np.concatenate(ids_parts) if ids_parts else np.zeros(0, np.int64)
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        self.offsets = offsets.astype(np.int32 if table_rows < 2**31 else np.int64)

    def _member_rows(self, k: int, hashes: np.ndarray) -> np.ndarray:
        if self.hashes is not None:
            return self.hashes[self.starts[k] : self.starts[k + 1]]
        return hashes

    def _chunk_values(self, hashes: np.ndarray, j: int) -> np.ndarray:
        column = hashes if self.words == 1 else hashes[:, j // 4]
        shift = np.uint64(64 - CHUNK_BITS * (j % 4 + 1))
        return ((column >> shift) & np.uint64(_VALUES - 1)).astype(np.uint16)

    @property
    def nbytes(self) -> int:
        arrays = (self.ids, self.sorted, self.order, self.hashes, self.offsets)
        own = sum(a.nbytes for a in arrays if a is not None)
        # 64-bit sets small enough to scan keep their own array (not in ``sorted``).
        extra = sum(h.nbytes for k, h in enumerate(self.member_hashes) if not self.uses_mih[k])
        return own + (extra if self.words == 1 else 0)

    def size(self, k: int) -> int:
        return int(self.starts[k + 1] - self.starts[k])

    # -- query ------------------------------------------------------------

    def _distances(self, rows: np.ndarray, q) -> np.ndarray:
        """Hamming distances; ``q`` is one query's words or one row of words per row."""
        if self.words == 1:
            return np.bitwise_count(rows ^ q)
        counts = np.bitwise_count(rows ^ q)
        dist = counts[:, 0].astype(np.uint16)  # 4 x 64 bits would overflow uint8
        for w in range(1, self.words):
            dist += counts[:, w]
        return dist

    def _scan(self, k: int, query: int, r: int):
        words = _words_of(query, self.words)
        q = np.uint64(words[0]) if self.words == 1 else np.array(words, dtype=np.uint64)
        dist = self._distances(self.member_hashes[k], q)
        pos = np.flatnonzero(dist <= r)
        return pos + self.starts[k], dist[pos]

    def nearest(self, k: int, query: int) -> tuple[int, int] | None:
        if self.size(k) == 0:
            return None
        rows, dist = self._scan(k, int(query) & ((1 << self.bits) - 1), self.bits)
        best = int(dist.min())
        return int(self.ids[rows[dist == best]].min()), best

    def _plan(self, members: tuple, radii: tuple) -> _Plan:
        """Everything about a batch that depends only on (members, radii), cached."""
        plan = self._plans.get((members, radii))
        if plan is None:
            plan = _Plan(self, np.array(members, dtype=np.int64), np.array(radii, dtype=np.int64))
            if len(self._plans) > 1024:
                self._plans.clear()
            self._plans[(members, radii)] = plan
        return plan

    def _probes(self, plan: _Plan, queries: list[int]):
        """Bucket ranges (query_no, lo, cnt) to gather; also which queries must scan."""
        shifts = range(self.bits - CHUNK_BITS, -1, -CHUNK_BITS)
        qchunks = np.array([[(q >> sh) & (_VALUES - 1) for sh in shifts] for q in queries])
        keys = (plan.tables | qchunks)[:, :, None] ^ plan.masks
        lo = np.take(self.offsets, keys)
        cnt = np.take(self.offsets, keys + 1) - lo
        if plan.choose:
            # Any a+1 chunks may take radius s: pick those whose extra ring is lightest.
            extra = (cnt * plan.ring).sum(axis=2)
            rank = np.argsort(np.argsort(extra, axis=1, kind="stable"), axis=1)
            select = plan.inner | ((rank <= plan.a)[:, :, None] & plan.ring)
        else:
            select = plan.within
        gathered = cnt * select
        scan = plan.scan
        if self.adaptive:
            scan = scan | (gathered.sum(axis=(1, 2)) > plan.max_candidates)
        select = gathered > 0
        if scan.any():
            select &= ~scan[:, None, None]
        return np.nonzero(select)[0], lo[select], cnt[select], scan

    def _gather(self, members, queries, radii):
        """Verified (query_no, global row, distance) triples from the chunk tables.

        Candidates come out grouped by query, so each query's slice is verified
        against a scalar query and radius instead of per-candidate copies of them.
        """
        nq = len(queries)
        plan = self._plan(tuple(members.tolist()), tuple(radii.tolist()))
        qno, lo, cnt, scan = self._probes(plan, queries)
        ends = np.cumsum(cnt)
        total = int(ends[-1]) if len(ends) else 0
        idx = np.repeat(lo - ends + cnt, cnt)
        np.add(idx, _arange(total), out=idx)
        probe_bounds = np.searchsorted(qno, np.arange(nq + 1))
        bounds = np.concatenate([[0], ends])[probe_bounds].tolist()
        if self.words == 1:
            values = np.take(self.sorted, idx)
        else:
            rows = np.take(self.order, idx)
            values = np.take(self.hashes, rows, axis=0)
        found = []
        for i, q in enumerate(queries):
            b, e = bounds[i], bounds[i + 1]
            if b == e:
                continue
            words = _words_of(q, self.words)
            qw = np.uint64(words[0]) if self.words == 1 else np.array(words, dtype=np.uint64)
            dist = self._distances(values[b:e], qw)
            hit = np.flatnonzero(dist <= radii[i])
            if len(hit):
                found.append((i, hit + b, dist[hit]))
        if not found:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty, scan
        qno = np.concatenate([np.full(len(h), i) for i, h, _ in found])
        hit = np.concatenate([h for _, h, _ in found])
        dist = np.concatenate([d for _, _, d in found])
        if self.words > 1:
            return qno, rows[hit], dist, scan
        rows, owner = self._rows_of(members[qno], values[hit])
        return qno[owner], rows, dist[owner], scan

    def _rows_of(self, members: np.ndarray, values: np.ndarray):
        """Global rows holding ``values`` (64-bit), found through chunk 0's table."""
        keys = (self.table_start[members] << CHUNK_BITS) | (values >> np.uint64(48)).astype(
            np.int64
        )
        lo = np.take(self.offsets, keys)
        cnt = np.take(self.offsets, keys + 1) - lo
        idx = _ranges(lo, cnt)
        owner = np.repeat(np.arange(len(values)), cnt)
        hit = np.take(self.sorted, idx) == values[owner]
        idx, owner = idx[hit], owner[hit]
        return idx + self.delta[members[owner]], owner

    def query(self, members: Sequence[int], queries: Sequence[int], radii: Sequence[int]):
        """One pass for many (member, query, radius): per query sorted (ids, distances)."""
        nq = len(queries)
        full = (1 << self.bits) - 1
        queries = [int(q) & full for q in queries]
        members = np.asarray(members, dtype=np.int64)
        radii = np.asarray(radii, dtype=np.int64)
        live = [i for i in range(nq) if radii[i] >= 0 and self.size(int(members[i])) > 0]
        mih = [i for i in live if self.uses_mih[members[i]] and radii[i] < self.bits]
        parts = []
        if mih:
            sel = np.array(mih)
            qno, rows, dist, scan = self._gather(
                members[sel], [queries[i] for i in mih], radii[sel]
            )
            parts.append((sel[qno], rows, dist))
            scanned = {mih[i] for i in np.flatnonzero(scan)}
        else:
            scanned = set()
        for i in live:
            if i in scanned or i not in mih:
                rows, dist = self._scan(int(members[i]), queries[i], int(radii[i]))
                parts.append((np.full(len(rows), i), rows, dist))
        if not parts:
            return [([], []) for _ in range(nq)]
        qno = np.concatenate([p[0] for p in parts])
        rows = np.concatenate([p[1] for p in parts])
        dist = np.concatenate([p[2].astype(np.int64) for p in parts])
        # A row can be reached through several chunks: keep one per (query, row).
        _, first = np.unique(qno * len(self.ids) + rows, return_index=True)
        qno, dist = qno[first], dist[first]
        ids = self.ids[rows[first]]
        order = np.lexsort((ids, dist, qno))
        qno, ids, dist = qno[order], ids[order].tolist(), dist[order].tolist()
        bounds = np.searchsorted(qno, np.arange(nq + 1)).tolist()
        return [(ids[b:e], dist[b:e]) for b, e in zip(bounds[:-1], bounds[1:])]


class HashIndex:
    """Hamming-radius search over one algorithm's hashes.

    ``hashes``: uint64 (or int64, as stored in a signed BIGINT) of shape (N,) for
    64-bit hashes, or (N, W) uint64 words, most significant first, for W*64-bit
    hashes such as PDQ (W=4). ``ids`` are returned as given; they should be
    unique. ``mode``: "auto", or force "scan" / "mih".
    """

    def __init__(self, ids=None, hashes=None, *, bits: int | None = None, mode="auto", _bank=None):
        if _bank is not None:  # a view on a shared bank (see MatchIndex)
            self._bank, self._member = _bank
        else:
            hashes = _as_hash_array(hashes)
            words = 1 if hashes.ndim == 1 else hashes.shape[1]
            if bits is not None and bits != 64 * words:
                raise ValueError(f"bits={bits} but hashes have {words} words")
            if len(ids) != len(hashes):
                raise ValueError("ids and hashes differ in length")
            self._bank, self._member = _Bank([(ids, hashes)], words, mode), 0
        self.bits = self._bank.bits
        self.mode = "mih" if self._bank.uses_mih[self._member] else "scan"

    @classmethod
    def empty(cls, bits: int = 64) -> HashIndex:
        shape = (0,) if bits == 64 else (0, bits // 64)
        return cls(np.zeros(0, np.int64), np.zeros(shape, np.uint64), mode="scan")

    def __len__(self) -> int:
        return self._bank.size(self._member)

    def __repr__(self) -> str:
        return f"<HashIndex {self.bits} bits, {len(self)} entries, {self.mode}>"

    @property
    def nbytes(self) -> int:
        """This set's share of its bank's memory."""
        bank = self._bank
        total = int(bank.starts[-1])
        return bank.nbytes if total == 0 else bank.nbytes * len(self) // total

    def search(self, query: int, max_distance: int, limit: int | None = None) -> Result:
        """(id, distance) of every hash within ``max_distance``, nearest first."""
        return self.search_many([query], max_distance, limit)[0]

    def search_many(
        self, queries: Sequence[int], max_distance: int, limit: int | None = None
    ) -> list[Result]:
        """``search`` for several queries in one vectorised pass."""
        queries = list(queries)
        if not queries:
            return []
        found = self._bank.query(
            [self._member] * len(queries), queries, [int(max_distance)] * len(queries)
        )
        return [list(zip(ids, dist))[:limit] for ids, dist in found]

    def nearest(self, query: int, max_distance: int | None = None) -> tuple[int, int] | None:
        """Closest entry (ties: smallest id); unbounded means a full scan."""
        if max_distance is None:
            return self._bank.nearest(self._member, query)
        found = self.search(query, max_distance, limit=1)
        return found[0] if found else None


class MatchIndex:
    """One HashIndex per voter, swapped as a whole when the bank changes.

    Voters of the same width share one packed ``_Bank`` so that ``query`` answers
    all of them (plain and mirrored) in one pass per width. ``version`` is opaque
    (e.g. the newest fingerprint id) and lets the caller decide when to rebuild.
    State is replaced in one assignment: a concurrent reader sees the old or the
    new bank, never a mix.
    """

    def __init__(self, indexes: Mapping[str, HashIndex] | None = None, version=None):
        self._state = (version, dict(indexes or {}))

    @property
    def version(self):
        return self._state[0]

    @property
    def indexes(self) -> dict[str, HashIndex]:
        return self._state[1]

    def build(self, rows: Mapping[str, tuple], version=None, mode: str = "auto") -> MatchIndex:
        """rows: name -> (ids, hashes) as HashIndex takes them. Returns self."""
        by_width: dict[int, list[str]] = {}
        arrays = {}
        for name, (ids, hashes) in rows.items():
            hashes = _as_hash_array(hashes)
            arrays[name] = (ids, hashes)
            by_width.setdefault(1 if hashes.ndim == 1 else hashes.shape[1], []).append(name)
        indexes = {}
        for words, names in by_width.items():
            bank = _Bank([arrays[n] for n in names], words, mode)
            for k, name in enumerate(names):
                indexes[name] = HashIndex(_bank=(bank, k))
        self._state = (version, indexes)
        return self

    def __len__(self) -> int:
        return max((len(ix) for ix in self.indexes.values()), default=0)

    @property
    def nbytes(self) -> int:
        banks = {id(ix._bank): ix._bank for ix in self.indexes.values()}
        return sum(bank.nbytes for bank in banks.values())

    def query(
        self,
        fingerprint: Mapping,
        thresholds: Mapping[str, int],
        mirrored: bool = True,
        limit: int | None = None,
    ) -> dict[str, list[tuple[int, int, bool]]]:
        """Per voter: (id, distance, via_mirror) within its threshold, nearest first.

        With ``mirrored`` the fingerprint's "mirror" hashes are searched too and
        merged by id; the flag is True only when the mirror was strictly closer.
        """
        indexes = self.indexes
        mirror = (fingerprint.get("mirror") or {}) if mirrored else {}
        jobs: dict[int, tuple] = {}  # bank id -> (bank, [(name, member, query, radius, is_mirror)])
        out: dict[str, list[tuple[int, int, bool]]] = {}
        for name, threshold in thresholds.items():
            out[name] = []
            index = indexes.get(name)
            if index is None or fingerprint.get(name) is None:
                continue
            bank_jobs = jobs.setdefault(id(index._bank), (index._bank, []))[1]
            bank_jobs.append((name, index._member, fingerprint[name], threshold, False))
            if mirror.get(name) is not None:
                bank_jobs.append((name, index._member, mirror[name], threshold, True))
        best: dict[str, dict[int, tuple[int, bool]]] = {name: {} for name in out}
        for bank, bank_jobs in jobs.values():
            found = bank.query(
                [j[1] for j in bank_jobs], [j[2] for j in bank_jobs], [j[3] for j in bank_jobs]
            )
            for (name, _, _, _, is_mirror), (ids, dists) in zip(bank_jobs, found):
                merged = best[name]
                for i, d in zip(ids, dists):
                    if i not in merged or d < merged[i][0]:
                        merged[i] = (d, is_mirror)
        for name, merged in best.items():
            hits = sorted(((i, d, m) for i, (d, m) in merged.items()), key=lambda t: (t[1], t[0]))
            out[name] = hits[:limit] if limit is not None else hits
        return out
