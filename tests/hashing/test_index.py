"""HashIndex / MatchIndex agree with a brute-force Python loop, in every mode."""

import numpy as np
import pytest

from hashing import index as index_module
from hashing.index import HashIndex, MatchIndex, hashes_from_hex, hashes_from_ints

MODES = ("scan", "mih", "auto")


def _flip(value: int, bits: int, distance: int, rng) -> int:
    for bit in rng.choice(bits, size=distance, replace=False):
        value ^= 1 << int(bit)
    return value


def _bank(bits: int, n: int, seed: int, skewed: bool = False):
    """Random hashes plus planted neighbours of row 0 at every distance 0..max and duplicates."""
    rng = np.random.default_rng(seed)
    if skewed:  # mostly-zero hashes: a few huge buckets, like flat images give
        values = [int(v) for v in rng.integers(0, 2**12, size=n)]
    else:
        values = [int.from_bytes(rng.bytes(bits // 8), "big") for _ in range(n)]
    base = values[0]
    top = 12 if bits == 64 else 31
    for distance in range(top + 3):
        for _ in range(2):
            values.append(_flip(base, bits, distance, rng))
    values += [base, values[5], values[5]]  # duplicate hashes under other ids
    ids = [1000 + 7 * i for i in range(len(values))]
    rng.shuffle(ids)
    return ids, values, base


def _brute(ids, values, query: int, radius: int):
    found = [(i, (v ^ query).bit_count()) for i, v in zip(ids, values)]
    return sorted(((i, d) for i, d in found if d <= radius), key=lambda t: (t[1], t[0]))


def _queries(values, base, bits, seed):
    rng = np.random.default_rng(seed + 1)
    top = 12 if bits == 64 else 31
    near = [_flip(base, bits, d, rng) for d in (0, 1, top // 2, top)]
    return near + [values[5], int.from_bytes(rng.bytes(bits // 8), "big")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bits", [64, 256])
def test_search_equals_brute_force(bits, mode):
    ids, values, base = _bank(bits, 3000 if bits == 64 else 1500, seed=bits)
    index = HashIndex(np.array(ids), hashes_from_ints(values, bits), mode=mode)
    assert len(index) == len(ids) and index.bits == bits
    top = 12 if bits == 64 else 31
    for query in _queries(values, base, bits, seed=bits):
        everything = _brute(ids, values, query, top)
        for radius in range(top + 1):
            expected = [(i, d) for i, d in everything if d <= radius]
            assert index.search(query, radius) == expected, (mode, radius)
        planted = index.search(base, top)
        assert [d for _, d in planted[:3]] == [0, 0, 0]  # base, its copy, a distance-0 plant


@pytest.mark.parametrize("bits", [64, 256])
def test_mih_falls_back_to_scan_on_skewed_buckets(bits, monkeypatch):
    monkeypatch.setitem(index_module.MIN_MIH_SIZE, bits, 100)
    ids, values, base = _bank(bits, 4000, seed=3, skewed=True)
    index = HashIndex(ids, hashes_from_ints(values, bits))
    assert index.mode == "mih"
    for query in _queries(values, base, bits, seed=3) + [0, values[7]]:
        for radius in (0, 3, 10, 12 if bits == 64 else 31):
            assert index.search(query, radius) == _brute(ids, values, query, radius)


def test_auto_mode_depends_on_size():
    small = HashIndex(np.arange(10), np.arange(10, dtype=np.uint64))
    assert small.mode == "scan"
    n = index_module.MIN_MIH_SIZE[64]
    large = HashIndex(np.arange(n), np.arange(n, dtype=np.uint64))
    assert large.mode == "mih"


@pytest.mark.parametrize("mode", MODES)
def test_search_many_limit_nearest_and_bounds(mode):
    ids, values, base = _bank(64, 2000, seed=9)
    index = HashIndex(ids, hashes_from_ints(values), mode=mode)
    queries = _queries(values, base, 64, seed=9)
    assert index.search_many(queries, 8) == [index.search(q, 8) for q in queries]
    assert index.search_many([], 8) == []
    full = index.search(base, 12)
    assert index.search(base, 12, limit=3) == full[:3]
    assert index.search(base, -1) == []
    assert len(index.search(base, 64)) == len(ids)
    assert index.nearest(base) == (min(i for i, v in zip(ids, values) if v == base), 0)
    far = int.from_bytes(np.random.default_rng(4).bytes(8), "big")
    distance, nearest_id = min(((v ^ far).bit_count(), i) for i, v in zip(ids, values))
    assert index.nearest(far) == (nearest_id, distance)
    assert index.nearest(far, max_distance=distance) == (nearest_id, distance)
    assert index.nearest(far, max_distance=distance - 1) is None


def test_signed_and_unsigned_inputs_agree():
    ids, values, base = _bank(64, 500, seed=5)
    unsigned = hashes_from_ints(values)
    signed = unsigned.view(np.int64)
    assert (signed < 0).any()
    a, b = HashIndex(ids, unsigned), HashIndex(ids, signed)
    assert a.search(base, 12) == b.search(base, 12)
    # Signed Python ints (as read from a BIGINT column) are accepted as queries too.
    negative = values[1] - 2**64 if values[1] >= 2**63 else values[1]
    assert a.search(negative, 5) == a.search(values[1], 5)


def test_pdq_hex_loading_matches_ints():
    _, values, _ = _bank(256, 50, seed=6)
    hexes = [format(v, "064x") for v in values]
    assert np.array_equal(hashes_from_hex(hexes), hashes_from_ints(values, 256))
    assert np.array_equal(hashes_from_hex([h[:16] for h in hexes], 64), [v >> 192 for v in values])
    with pytest.raises(ValueError):
        hashes_from_hex(["abc"])


@pytest.mark.parametrize("bits", [64, 256])
def test_empty_index(bits):
    for index in (HashIndex.empty(bits), HashIndex([], hashes_from_ints([], bits), mode="mih")):
        assert len(index) == 0 and index.bits == bits
        assert index.search(123, 10) == []
        assert index.search_many([1, 2], 10) == [[], []]
        assert index.nearest(123) is None
        assert index.nbytes >= 0


def test_duplicate_hashes_are_all_returned():
    ids = np.arange(100, 100 + 50)
    hashes = np.full(50, 0xDEADBEEF, dtype=np.uint64)
    for mode in MODES:
        index = HashIndex(ids, hashes, mode=mode)
        assert index.search(0xDEADBEEF, 0) == [(int(i), 0) for i in ids]
        assert index.search(0xDEADBEEE, 1, limit=2) == [(100, 1), (101, 1)]


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        HashIndex([1, 2], np.zeros(3, np.uint64))
    with pytest.raises(TypeError):
        HashIndex([1], np.zeros(1, np.float64))
    with pytest.raises(ValueError):
        HashIndex([1], np.zeros(1, np.uint64), mode="fast")
    with pytest.raises(ValueError):
        HashIndex([1], np.zeros((1, 4), np.uint64), bits=64)


def _voter_rows(n: int, seed: int):
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1) * 3
    rows, ints = {}, {}
    for name in ("ahash", "dhash", "phash_simple", "phash", "pdq"):
        bits = 256 if name == "pdq" else 64
        ints[name] = [int.from_bytes(rng.bytes(bits // 8), "big") for _ in range(n)]
        rows[name] = (ids, hashes_from_ints(ints[name], bits))
    return ids.tolist(), rows, ints


@pytest.mark.parametrize("mode", MODES)
def test_match_index_equals_per_voter_brute_force(mode):
    ids, rows, ints = _voter_rows(1200, seed=11)
    match = MatchIndex().build(rows, version="v1", mode=mode)
    assert match.version == "v1" and len(match) == 1200 and match.nbytes > 0
    rng = np.random.default_rng(12)
    thresholds = {"ahash": 6, "dhash": 12, "phash_simple": 0, "phash": 9, "pdq": 31}
    for row in (0, 77, 500):
        fp, mirror = {}, {}
        for name, values in ints.items():
            bits = 256 if name == "pdq" else 64
            fp[name] = _flip(values[row], bits, int(rng.integers(0, 13)), rng)
            mirror[name] = _flip(values[row + 1], bits, int(rng.integers(0, 13)), rng)
        fp["mirror"] = mirror
        got = match.query(fp, thresholds)
        plain_only = match.query(fp, thresholds, mirrored=False)
        for name, radius in thresholds.items():
            plain = _brute(ids, ints[name], fp[name], radius)
            flipped = _brute(ids, ints[name], mirror[name], radius)
            merged = {i: (d, False) for i, d in plain}
            for i, d in flipped:
                if i not in merged or d < merged[i][0]:
                    merged[i] = (d, True)
            expected = sorted(
                ((i, d, m) for i, (d, m) in merged.items()), key=lambda t: (t[1], t[0])
            )
            assert got[name] == expected, (mode, name)
            assert plain_only[name] == [(i, d, False) for i, d in plain]


def test_match_index_mirror_merge_rules():
    ids = np.array([10, 20, 30])
    a = [0x0F, 0xFF00, 0xF0F0]
    rows = {"ahash": (ids, hashes_from_ints(a)), "pdq": (ids, hashes_from_ints([1, 2, 3], 256))}
    match = MatchIndex().build(rows, version=7)
    fp = {"ahash": 0x0F ^ 0b111, "pdq": 1, "mirror": {"ahash": 0x0F ^ 0b1, "pdq": 3}}
    got = match.query(fp, {"ahash": 8, "pdq": 0, "dhash": 5}, limit=5)
    # id 10: plain 3, mirror 1 -> mirror wins; ties keep the plain match.
    assert got["ahash"][0] == (10, 1, True)
    assert got["pdq"] == [(10, 0, False), (30, 0, True)]
    assert got["dhash"] == []  # voter without an index
    assert set(got) == {"ahash", "pdq", "dhash"}  # only the voters asked for
    tie = match.query({"ahash": 0x0F, "mirror": {"ahash": 0x0F}}, {"ahash": 0})
    assert tie["ahash"] == [(10, 0, False)]
    assert match.query(fp, {"ahash": 8}, limit=1)["ahash"] == [(10, 1, True)]
    assert MatchIndex().query(fp, {"ahash": 8}) == {"ahash": []}
    assert MatchIndex().version is None


@pytest.mark.parametrize("mode", MODES)
def test_match_index_voters_of_different_sizes(mode):
    ids, rows, ints = _voter_rows(300, seed=21)
    rows["dhash"] = (np.array(ids[:40]), rows["dhash"][1][:40])
    rows["phash_simple"] = ([], np.zeros(0, np.uint64))
    match = MatchIndex().build(rows, mode=mode)
    assert [len(match.indexes[n]) for n in ("ahash", "dhash", "phash_simple", "pdq")] == [
        300,
        40,
        0,
        300,
    ]
    fp = {name: values[30] for name, values in ints.items()}
    fp["mirror"] = {name: values[35] for name, values in ints.items()}
    got = match.query(fp, {"ahash": 0, "dhash": 0, "phash_simple": 12, "phash": 0, "pdq": 0})
    assert got["ahash"] == [(ids[30], 0, False), (ids[35], 0, True)]
    assert got["dhash"] == [(ids[30], 0, False), (ids[35], 0, True)]
    assert got["phash_simple"] == []
    assert got["pdq"] == [(ids[30], 0, False), (ids[35], 0, True)]
    assert match.indexes["dhash"].search(ints["dhash"][100], 0) == []  # beyond its 40 rows
