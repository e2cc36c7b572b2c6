"""Benchmark the in-memory match index against a Python loop and the old SQL scan.

    .venv/bin/python bench/matching.py [--sizes 10000,100000,1000000] [--queries 200] [--save]

Banks are random hashes (ids 1..N) with planted near matches: half of the query
fingerprints are a random row with every voter's hash moved by 0..threshold
bits, the other half are random. "5 voters" is what an upload costs: the four
64-bit voters and PDQ, each with the plain and the mirrored hash (10 searches).
The SQL column replays the old API, one statement per hash and orientation:
SELECT id ... WHERE bit_count((hash # q)::bit(64)) <= 10 on an unlogged table
(unlogged rather than TEMP so PostgreSQL may use parallel workers, as it would
on the real table). Baselines take fewer samples: they are 100-10000x slower.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(ROOT))

from hashing.index import MatchIndex  # noqa: E402

VOTERS64 = ("ahash", "dhash", "phash_simple", "phash")
THRESHOLDS = {"ahash": 10, "dhash": 10, "phash_simple": 10, "phash": 10, "pdq": 31}
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _flip(value: int, bits: int, distance: int, rng) -> int:
    for bit in rng.choice(bits, size=distance, replace=False):
        value ^= 1 << int(bit)
    return value


def _pdq_int(row: np.ndarray) -> int:
    return int.from_bytes(row.astype(">u8").tobytes(), "big")


def make_bank(n: int, rng) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    ids = np.arange(1, n + 1, dtype=np.int64)
    bank = {v: (ids, rng.integers(0, 2**64, size=n, dtype=np.uint64)) for v in VOTERS64}
    bank["pdq"] = (ids, rng.integers(0, 2**64, size=(n, 4), dtype=np.uint64))
    return bank


def make_queries(bank, count: int, rng) -> list[tuple[dict, int | None]]:
    """(fingerprint, planted row id or None)."""
    n = len(bank["pdq"][0])
    out = []
    for k in range(count):
        fp, mirror = {}, {}
        row = int(rng.integers(n)) if k % 2 == 0 else None
        for name, (_, hashes) in bank.items():
            bits = 256 if name == "pdq" else 64
            if row is None:
                fp[name] = int.from_bytes(rng.bytes(bits // 8), "big")
            else:
                base = _pdq_int(hashes[row]) if bits == 256 else int(hashes[row])
                fp[name] = _flip(base, bits, int(rng.integers(0, THRESHOLDS[name] + 1)), rng)
            mirror[name] = int.from_bytes(rng.bytes(bits // 8), "big")
        fp["mirror"] = mirror
        out.append((fp, None if row is None else row + 1))
    return out


def _timed(fn, items) -> list[float]:
    out = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - start) * 1000)
    return out


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# -- baselines -------------------------------------------------------------


def python_loop(bank):
    """The naive approach: a Python loop over int hashes, per voter and orientation."""
    ids = bank["ahash"][0].tolist()
    values = {v: bank[v][1].tolist() for v in VOTERS64}
    values["pdq"] = [int.from_bytes(r.astype(">u8").tobytes(), "big") for r in bank["pdq"][1]]

    def search(name, query):
        radius = THRESHOLDS[name]
        hits = [
            (i, d) for i, v in zip(ids, values[name]) if (d := (v ^ query).bit_count()) <= radius
        ]
        return sorted(hits, key=lambda t: (t[1], t[0]))

    def one(fp):
        return search("ahash", fp["ahash"])

    def five(fp):
        return {n: (search(n, fp[n]), search(n, fp["mirror"][n])) for n in THRESHOLDS}

    return one, five


class SqlScan:
    """The old API's sequential scan in PostgreSQL, or a note why it is unavailable."""

    def __init__(self, dsn: str):
        self.note = ""
        self.conn = None
        try:
            import psycopg

            self.conn = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
        except Exception as exc:  # no server, no driver: the column is skipped
            self.note = f"SQL skipped: {type(exc).__name__}: {exc}".splitlines()[0]
            return
        self.version = self.conn.execute("SHOW server_version").fetchone()[0]
        try:
            self.conn.execute("SELECT bit_count(B'101')")
            self.popcount = "bit_count(({x})::bit(64))"
        except Exception:  # before PostgreSQL 14
            self.popcount = "length(replace((({x})::bit(64))::text, '0', ''))"

    def load(self, bank) -> float:
        start = time.perf_counter()
        ids = bank["ahash"][0].tolist()
        cols = [bank[v][1].view(np.int64).tolist() for v in VOTERS64]
        cols += [bank["pdq"][1][:, w].view(np.int64).tolist() for w in range(4)]
        self.conn.execute("DROP TABLE IF EXISTS bench_hashes, bench_fingerprints")
        self.conn.execute("CREATE UNLOGGED TABLE bench_hashes (id bigint, hash bigint)")
        self.conn.execute(
            "CREATE UNLOGGED TABLE bench_fingerprints (id bigint, ahash bigint, dhash bigint,"
            " phash_simple bigint, phash bigint,"
            " pdq0 bigint, pdq1 bigint, pdq2 bigint, pdq3 bigint)"
        )
        with self.conn.cursor() as cur:
            narrow = "".join(f"{i}\t{h}\n" for i, h in zip(ids, cols[0]))
            with cur.copy("COPY bench_hashes (id, hash) FROM STDIN") as copy:
                copy.write(narrow)
            wide = "".join("\t".join(map(str, row)) + "\n" for row in zip(ids, *cols))
            with cur.copy("COPY bench_fingerprints FROM STDIN") as copy:
                copy.write(wide)
        self.conn.execute("VACUUM ANALYZE bench_hashes")
        self.conn.execute("VACUUM ANALYZE bench_fingerprints")
        return time.perf_counter() - start

    def _where64(self, column: str, radius: int) -> str:
        return f"{self.popcount.format(x=f'{column} # %s')} <= {radius}"

    def one(self, fp):
        sql = f"SELECT id FROM bench_hashes WHERE {self._where64('hash', THRESHOLDS['ahash'])}"
        return self.conn.execute(sql, (_signed(fp["ahash"]),)).fetchall()

    def five(self, fp):
        out = {}
        pdq = " + ".join(self.popcount.format(x=f"pdq{w} # %s") for w in range(4))
        for name, radius in THRESHOLDS.items():
            for query in (fp[name], fp["mirror"][name]):
                if name == "pdq":
                    words = [_signed((query >> s) & (2**64 - 1)) for s in (192, 128, 64, 0)]
                    sql = f"SELECT id FROM bench_fingerprints WHERE {pdq} <= {radius}"
                    out[name] = self.conn.execute(sql, words).fetchall()
                else:
                    sql = f"SELECT id FROM bench_fingerprints WHERE {self._where64(name, radius)}"
                    out[name] = self.conn.execute(sql, (_signed(query),)).fetchall()
        return out

    def close(self):
        if self.conn is not None:
            self.conn.execute("DROP TABLE IF EXISTS bench_hashes, bench_fingerprints")
            self.conn.close()


def _signed(value: int) -> int:
    return value - 2**64 if value >= 2**63 else value


# -- run -------------------------------------------------------------------


def bench_size(n: int, queries: int, sql: SqlScan, rng) -> dict:
    bank = make_bank(n, rng)
    start = time.perf_counter()
    index = MatchIndex().build(bank, version=n)
    build = time.perf_counter() - start
    fps = make_queries(bank, queries, rng)
    single = index.indexes["ahash"]
    for fp, _ in fps[:5]:  # warm-up
        index.query(fp, THRESHOLDS)
    cpu, wall = time.process_time(), time.perf_counter()
    one = _timed(lambda fp: single.search(fp[0]["ahash"], THRESHOLDS["ahash"]), fps)
    five = _timed(lambda fp: index.query(fp[0], THRESHOLDS), fps)
    share = (time.process_time() - cpu) / (time.perf_counter() - wall)
    planted = [(fp, row) for fp, row in fps if row is not None]
    found = sum(
        any(i == row for i, _, _ in hits)
        for fp, row in planted
        for hits in index.query(fp, THRESHOLDS).values()
    )
    result = {
        "n": n,
        "build": build,
        "mb": index.nbytes / 1e6,
        "modes": f"{index.indexes['ahash'].mode}/{index.indexes['pdq'].mode}",
        "one": one,
        "five": five,
        "recall": found / max(1, len(planted) * len(THRESHOLDS)),
        "cpu": share,
    }
    if n <= 100_000:
        loop_one, loop_five = python_loop(bank)
        sample = [fp for fp, _ in fps[: max(5, min(queries, 500_000 // n))]]
        result["py_one"] = _timed(loop_one, sample)
        result["py_five"] = _timed(loop_five, sample[: max(3, len(sample) // 4)])
    if sql.conn is not None:
        result["sql_load"] = sql.load(bank)
        sample = [fp for fp, _ in fps[: max(3, min(queries, 10_000_000 // n))]]
        sql.one(sample[0])  # warm-up: first scan after a load sets hint bits
        result["sql_one"] = _timed(sql.one, sample)
        result["sql_five"] = _timed(sql.five, sample[: max(3, len(sample) // 4)])
    return result


def _fmt(values, q=50) -> str:
    return f"{_p(values, q):.3f}" if values else "-"


def _ratio(other, ours) -> str:
    return f"{_p(other, 50) / _p(ours, 50):,.0f}x" if other else "-"


def report(results: list[dict], sql: SqlScan, args) -> None:
    load = os.getloadavg()
    print(f"# Matching benchmark ({time.strftime('%Y-%m-%d %H:%M')})")
    print()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"load average {load[0]:.1f} (shared machine: latencies include other work). "
        f"Thresholds {THRESHOLDS}; {args.queries} query fingerprints per size."
    )
    print(f"PostgreSQL {sql.version}" if sql.conn is not None else sql.note)
    print()
    print("## Index")
    print()
    print(
        "| entries | build s | memory MB | mode 64/PDQ | 1 voter p50 ms | p99 ms "
        "| 5 voters + mirror p50 ms | p99 ms | planted recall | CPU share |"
    )
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['n']:,} | {r['build']:.2f} | {r['mb']:.0f} | {r['modes']} "
            f"| {_fmt(r['one'])} | {_fmt(r['one'], 99)} | {_fmt(r['five'])} "
            f"| {_fmt(r['five'], 99)} | {r['recall']:.0%} | {r['cpu']:.0%} |"
        )
    print()
    print("CPU share: process CPU time / wall time while timing the index; below ~95%")
    print("the process was waiting for a core and the latencies above are inflated.")
    print()
    print("## Versus alternatives (p50 ms; speed-up = alternative / index)")
    print()
    print("| entries | workload | index | Python loop | speed-up | SQL scan | speed-up |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in results:
        for label, key in (("1 voter", "one"), ("5 voters + mirror", "five")):
            py, db = r.get(f"py_{key}"), r.get(f"sql_{key}")
            print(
                f"| {r['n']:,} | {label} | {_fmt(r[key])} | {_fmt(py)} | {_ratio(py, r[key])} "
                f"| {_fmt(db)} | {_ratio(db, r[key])} |"
            )
    print()
    samples = [
        f"{r['n']:,}: Python {len(r.get('py_one', []))}/{len(r.get('py_five', []))}, "
        f"SQL {len(r.get('sql_one', []))}/{len(r.get('sql_five', []))}"
        + (f" (COPY + VACUUM {r['sql_load']:.1f} s)" if "sql_load" in r else "")
        for r in results
    ]
    print("Baseline samples (1 voter / 5 voters): " + "; ".join(samples) + ".")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--save", action="store_true", help="also write bench/results/matching.txt")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    sql = SqlScan(os.environ.get("DATABASE_URL", DEFAULT_DSN))
    try:
        results = []
        for n in (int(s) for s in args.sizes.split(",")):
            print(f"... {n:,} entries", file=sys.stderr, flush=True)
            results.append(bench_size(n, args.queries, sql, rng))
    finally:
        sql.close()
    buf = io.StringIO()
    with redirect_stdout(buf):
        report(results, sql, args)
    print(buf.getvalue(), end="")
    if args.save:
        out = ROOT / "bench" / "results" / "matching.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(buf.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
