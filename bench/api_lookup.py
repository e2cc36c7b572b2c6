"""Benchmark the public API's lookup, bank ingest and matching freshness over real HTTP.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<a scratch database> REDIS_URL=redis://... \\
        .venv/bin/python bench/api_lookup.py [--pdq 1000000] [--pictures 200000] [--save]

The database is emptied of banks and filled by COPY: ``--pdq`` PDQ-only contents (a shared
hash list, as ThreatExchange and HMA hold them) and ``--pictures`` reference pictures with
all five hashes (random hashes; queries are planted near copies or random). Two servers are
started on loopback exactly as deployed (``python -m moderation_site.server``: daphne, with
Redis for the throttle when REDIS_URL is set) and asked over keep-alive HTTP/1.1 with an
API key, one request at a time:

- ``GET lookup?algorithm=pdq&hash=`` and ``POST lookup {"hashes": five}``: latency
  percentiles, beside the same lookups in-process (``hashing.matcher.lookup``) in this run,
  and on a third server whose application is Django's own ASGI handler (its middleware in
  async mode, as before ``moderation_site.asgi.SyncChainHandler``; ``--no-stock`` skips it).
- Ingest: ``POST banks/{id}/import`` (CSV body, and with ``?progress=true``) against
  ``hashing.services.import_hash_list`` called in-process in the same run, and ``POST
  banks/{id}/contents`` one content at a time.
- Freshness: after ``POST banks/{id}/contents`` (and after ``DELETE``) answers on one
  server, how long until each server's next lookup sees it.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VOTERS64 = ("ahash", "dhash", "phash_simple", "phash")


def _p(values, q) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _hex(rng, bits: int) -> str:
    return rng.bytes(bits // 8).hex()


def _flip(hex_value: str, distance: int, rng) -> str:
    bits = len(hex_value) * 4
    value = int(hex_value, 16)
    for bit in rng.choice(bits, size=distance, replace=False):
        value ^= 1 << int(bit)
    return format(value, f"0{len(hex_value)}x")


# -- the database -----------------------------------------------------------------------


def fill(dsn: str, pdq: int, pictures: int, rng) -> dict:
    """Empty the bank tables and COPY in the banks."""
    import psycopg

    started = time.perf_counter()
    samples = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE hashing_bankchange, hashing_bankentry, hashing_bankcontent, "
            "hashing_bank, hashing_bankjournal, hashing_bankversion RESTART IDENTITY CASCADE"
        )
        conn.execute(
            "INSERT INTO hashing_bank (id, name, kind, active, description, created_at, "
            "updated_at) VALUES (1, 'shared pdq list', 'block', true, '', now(), now()), "
            "(2, 'reference pictures', 'block', true, '', now(), now())"
        )
        content_id = entry_id = 0
        stamp = "2026-01-01 00:00:00+00"
        with conn.cursor() as cur:
            with cur.copy(
                "COPY hashing_bankcontent (id, bank_id, source, name, sha256, note, "
                "external_id, created_at) FROM STDIN"
            ) as contents:
                for bank, count in ((1, pdq), (2, pictures)):
                    rows = []
                    for _ in range(count):
                        content_id += 1
                        rows.append(f"{content_id}\t{bank}\timport\t\t\t\tx{content_id}\t{stamp}\n")
                        if len(rows) == 100_000:
                            contents.write("".join(rows))
                            rows = []
                    contents.write("".join(rows))
            with cur.copy(
                "COPY hashing_bankentry (id, bank_id, content_id, algorithm, value, note, "
                "enabled, created_at, updated_at, frame) FROM STDIN"
            ) as entries:
                content = 0
                for start in range(0, pdq, 100_000):
                    block = min(pdq, start + 100_000) - start
                    values = rng.bytes(32 * block).hex()
                    rows = []
                    for k in range(block):
                        content += 1
                        entry_id += 1
                        value = values[64 * k : 64 * k + 64]
                        rows.append(
                            f"{entry_id}\t1\t{content}\tpdq\t{value}\t\tt\t{stamp}\t{stamp}\t0\n"
                        )
                    entries.write("".join(rows))
                for start in range(0, pictures, 50_000):
                    rows = []
                    for _ in range(start, min(pictures, start + 50_000)):
                        content += 1
                        hashes = {n: _hex(rng, 64) for n in VOTERS64}
                        hashes["pdq"] = _hex(rng, 256)
                        for name, value in hashes.items():
                            entry_id += 1
                            rows.append(
                                f"{entry_id}\t2\t{content}\t{name}\t{value}\t\tt\t{stamp}\t{stamp}\t0\n"
                            )
                    entries.write("".join(rows))
        for table in ("hashing_bankcontent", "hashing_bankentry", "hashing_bank"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        conn.execute("VACUUM ANALYZE hashing_bankentry")
        conn.execute("VACUUM ANALYZE hashing_bankcontent")
    samples["entries"] = entry_id
    samples["seconds"] = time.perf_counter() - started
    return samples


def samples_from(dsn: str) -> dict:
    """Query material from the banks as filled: PDQ values of the list, and pictures."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        pdq = [
            r[0]
            for r in conn.execute(
                "SELECT value FROM hashing_bankentry WHERE bank_id = 1 AND content_id % 2003 = 0"
                " ORDER BY id LIMIT 500"
            )
        ]
        pictures: dict[int, dict] = {}
        for content, name, value in conn.execute(
            "SELECT content_id, algorithm, value FROM hashing_bankentry WHERE bank_id = 2 "
            "AND content_id % 401 = 0 ORDER BY id LIMIT 2500"
        ):
            pictures.setdefault(content, {})[name] = value
        entries = conn.execute(
            "SELECT count(*) FROM hashing_bankentry WHERE bank_id IN (1, 2)"
        ).fetchone()[0]
    return {
        "pdq": pdq,
        "pictures": [p for p in pictures.values() if len(p) == 5],
        "entries": entries,
    }


def filled_already(dsn: str, pdq: int, pictures: int) -> bool:
    import psycopg

    with psycopg.connect(dsn) as conn:
        counts = dict(
            conn.execute(
                "SELECT bank_id, count(*) FROM hashing_bankcontent WHERE bank_id IN (1, 2) "
                "AND external_id <> '' GROUP BY bank_id"
            ).fetchall()
        )
    return counts.get(1) == pdq and counts.get(2) == pictures


def bump_version() -> None:
    """The bulk load bypassed the services: one full-rebuild change marks it."""
    from django.db import transaction

    from hashing.models import BankVersion

    with transaction.atomic():
        BankVersion.bump()


# -- servers ----------------------------------------------------------------------------


def _free_port() -> int:
    from tests.services import free_port  # the tests' own (bench/ runs from the repository)

    return free_port()


# The server as it was before moderation_site.asgi.SyncChainHandler: Django's own ASGI
# handler, its middleware in async mode (the same settings, HTTP only).
STOCK_HANDLER = """
import django
from django.core.handlers.asgi import ASGIHandler

django.setup(set_prefix=False)
application = ASGIHandler()
"""


def stock_env(env: dict) -> dict:
    """`env` with a module on the path whose `application` is Django's own ASGI handler."""
    folder = Path(tempfile.mkdtemp(prefix="bench-stock-"))
    (folder / "stock_handler.py").write_text(STOCK_HANDLER)
    return {**env, "PYTHONPATH": os.pathsep.join([str(folder), env.get("PYTHONPATH", "")])}


class Server:
    def __init__(self, env: dict, app: str | None = None):
        self.port = _free_port()
        self.log = open(f"/tmp/bench-api-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "moderation_site.server",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                *([app] if app else []),
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"server on {self.port} did not start (see {self.log.name})")
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def request(self, method, path, key, body=None, content_type="application/json"):
        headers = {"X-Api-Key": key, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
            if isinstance(body, dict | list):
                body = json.dumps(body)
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=headers)
            answer = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            # daphne closes a keep-alive connection left idle: open another and go on.
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            started = time.perf_counter()
            self.conn.request(method, path, body=body, headers=headers)
            answer = self.conn.getresponse()
        data = answer.read()
        elapsed = (time.perf_counter() - started) * 1000
        if answer.status >= 400:
            raise RuntimeError(f"{method} {path}: {answer.status} {data[:300]!r}")
        return answer.status, data, elapsed

    def stop(self):
        self.conn.close()
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


# -- measurements ---------------------------------------------------------------------------


def pdq_queries(samples, count, rng) -> list[str]:
    out = []
    for k in range(count):
        if k % 2 == 0 and samples["pdq"]:
            out.append(
                _flip(samples["pdq"][k % len(samples["pdq"])], int(rng.integers(0, 16)), rng)
            )
        else:
            out.append(_hex(rng, 256))
    return out


def five_queries(samples, count, rng) -> list[dict]:
    out = []
    for k in range(count):
        if k % 2 == 0 and samples["pictures"]:
            base = samples["pictures"][k % len(samples["pictures"])]
            out.append(
                {
                    n: _flip(v, int(rng.integers(0, 5 if n != "pdq" else 16)), rng)
                    for n, v in base.items()
                }
            )
        else:
            out.append({n: _hex(rng, 64) for n in VOTERS64} | {"pdq": _hex(rng, 256)})
    return out


def http_lookups(server, key, pdqs, fives) -> dict:
    for q in pdqs[:30]:
        server.request("GET", f"/api/v1/lookup?algorithm=pdq&hash={q}", key)
    one, found = [], 0
    for q in pdqs:
        _, data, ms = server.request("GET", f"/api/v1/lookup?algorithm=pdq&hash={q}", key)
        one.append(ms)
        found += bool(json.loads(data)["matches"])
    five, blocked = [], 0
    for q in fives:
        _, data, ms = server.request("POST", "/api/v1/lookup", key, {"hashes": q})
        five.append(ms)
        blocked += json.loads(data)["verdict"]["blocked"]
    return {"one": one, "five": five, "found": found, "blocked": blocked}


def floors(server, key, count: int) -> dict:
    """What any request costs on this server: a 404 (no database), and ``GET me`` (the
    key's query and the throttle's Redis round trip, as every API request pays)."""
    out = {"404": [], "me": []}
    for _ in range(count):
        started = time.perf_counter()
        server.conn.request("GET", "/api/v1/no-such-path", headers={"Accept": "application/json"})
        server.conn.getresponse().read()
        out["404"].append((time.perf_counter() - started) * 1000)
        out["me"].append(server.request("GET", "/api/v1/me", key)[2])
    return out


def test_client_lookups(key, pdqs, fives) -> dict:
    """The same requests through Django's test client: the whole Django stack (middleware,
    DRF, the view) without a server, on one kept connection."""
    from django.test import Client

    client = Client(HTTP_X_API_KEY=key)
    out = {"one": [], "five": []}
    for q in pdqs[:20]:
        assert client.get("/api/v1/lookup", {"algorithm": "pdq", "hash": q}).status_code == 200
    for q in pdqs:
        started = time.perf_counter()
        client.get("/api/v1/lookup", {"algorithm": "pdq", "hash": q})
        out["one"].append((time.perf_counter() - started) * 1000)
    for q in fives:
        body = json.dumps({"hashes": q})
        started = time.perf_counter()
        client.post("/api/v1/lookup", body, content_type="application/json")
        out["five"].append((time.perf_counter() - started) * 1000)
    return out


def in_process_lookups(pdqs, fives, key) -> dict:
    from api.hashes import parse_hashes
    from hashing import matcher
    from review.models import Policy

    rules = Policy.current().voting_rules()
    started = time.perf_counter()
    matcher.matcher.state()
    build = time.perf_counter() - started
    through_django = test_client_lookups(key, pdqs, fives)
    one, five = [], []
    for queries, out in ((pdqs, one), (fives, five)):
        for q in queries:
            fp = parse_hashes({"pdq": q} if isinstance(q, str) else q)
            t = time.perf_counter()
            matcher.lookup(fp, rules)
            out.append((time.perf_counter() - t) * 1000)
    matcher.matcher.reset()
    return {"one": one, "five": five, "build": build, "django": through_django}


def freshness(servers, key, rounds: int, rng) -> list[dict]:
    """Add (then remove) a content through server 0; time each server's first lookup
    that sees it, polling back to back."""
    out = []
    for r in range(rounds):
        value = secrets.token_hex(32)  # never one an earlier run (--keep) added
        path = f"/api/v1/lookup?algorithm=pdq&hash={value}"
        _, data, add_ms = servers[0].request(
            "POST", "/api/v1/banks/1/contents", key, {"hashes": {"pdq": value}}
        )
        answered = time.perf_counter()
        content = json.loads(data)["content"]["id"]
        row = {"round": r, "add_ms": add_ms}
        for label, wanted, before in (("added", True, None), ("removed", False, content)):
            if before is not None:
                _, _, row["delete_ms"] = servers[0].request(
                    "DELETE", f"/api/v1/banks/1/contents/{before}", key
                )
                answered = time.perf_counter()
            for i, server in enumerate(servers):
                first_ms = None
                while True:
                    _, data, ms = server.request("GET", path, key)
                    first_ms = ms if first_ms is None else first_ms
                    if bool(json.loads(data)["matches"]) == wanted:
                        break
                    if time.perf_counter() - answered > 30:
                        raise RuntimeError("not seen within 30 s")
                row[f"{label}_{i}_s"] = time.perf_counter() - answered
                row[f"{label}_{i}_first_ms"] = first_ms
        out.append(row)
    return out


def make_csv(count: int, rng) -> bytes:
    values = rng.bytes(32 * count).hex()
    lines = ["hash_type,hash_value,note"]
    lines += [f"pdq,{values[64 * k : 64 * k + 64]},row {k}" for k in range(count)]
    return ("\n".join(lines) + "\n").encode()


def create_bank(name: str) -> int:
    from hashing import services

    return services.create_bank(name).pk


def ingest(servers, key, rows: int, adds: int, rng) -> dict:
    from hashing import services
    from hashing.models import Bank

    out = {}
    data = make_csv(rows, rng)
    bank = Bank.objects.get(pk=create_bank(f"in-process {secrets.token_hex(3)}"))
    started = time.perf_counter()
    report = services.import_hash_list(bank, data.decode().splitlines(), source_name="bench")
    out["service"] = (report.added_entries, time.perf_counter() - started)

    server = servers[0]
    data = make_csv(rows, rng)
    last = data.decode().rstrip().rsplit("\n", 1)[-1].split(",")[1]
    bank_id = create_bank(f"api csv {secrets.token_hex(3)}")
    _, body, ms = server.request("POST", f"/api/v1/banks/{bank_id}/import", key, data, "text/csv")
    answered = time.perf_counter()
    out["api_csv"] = (json.loads(body)["added_entries"], ms / 1000)
    for i, other in enumerate(servers):
        first = None
        while True:
            _, found, ms = other.request("GET", f"/api/v1/lookup?algorithm=pdq&hash={last}", key)
            first = ms if first is None else first
            if json.loads(found)["matches"]:
                break
        out[f"import_seen_{i}"] = (time.perf_counter() - answered, first)

    data = make_csv(rows, rng)
    bank_id = create_bank(f"api progress {secrets.token_hex(3)}")
    _, body, ms = server.request(
        "POST", f"/api/v1/banks/{bank_id}/import?progress=true", key, data, "text/csv"
    )
    events = [json.loads(line) for line in body.splitlines()]
    out["api_progress"] = (events[-1]["report"]["added_entries"], ms / 1000)
    out["progress_events"] = len(events) - 1

    bank_id = create_bank(f"api batches {secrets.token_hex(3)}")
    batches = max(1, rows // 5000)
    started = time.perf_counter()
    for b in range(batches):
        contents = [
            {"hashes": {"pdq": _hex(rng, 256)}, "external_id": f"b{b}-{i}"} for i in range(1000)
        ]
        server.request(
            "POST", f"/api/v1/banks/{bank_id}/contents/batch", key, {"contents": contents}
        )
    out["api_batch"] = (batches * 1000, time.perf_counter() - started)

    bank_id = create_bank(f"api adds {secrets.token_hex(3)}")
    started = time.perf_counter()
    for _ in range(adds):
        server.request(
            "POST", f"/api/v1/banks/{bank_id}/contents", key, {"hashes": {"pdq": _hex(rng, 256)}}
        )
    out["api_adds"] = (adds, time.perf_counter() - started)
    return out


# -- report -------------------------------------------------------------------------------


def _row(label, values, aim=None) -> str:
    aim = f" | {aim}" if aim else " | "
    return (
        f"| {label} | {_p(values, 50):.2f} | {_p(values, 90):.2f} | {_p(values, 99):.2f} "
        f"| {max(values):.2f}{aim} |"
    )


def report(
    args, filled, build_s, http, inproc, after, fresh, ingested, loads, default, before=None
) -> None:
    redis = "Redis" if os.environ.get("REDIS_URL") else "in-process"
    seconds = filled["seconds"]
    copied = "filled by an earlier run" if seconds != seconds else f"COPY {seconds:.1f} s"
    print(f"# API lookup, ingest and freshness benchmark ({time.strftime('%Y-%m-%d %H:%M')})")
    print()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, PostgreSQL, throttle cache {redis}. "
        f"Load average at start / lookups / end: "
        + " / ".join(f"{a:.1f}" for a in loads)
        + " (shared machine)."
    )
    print(
        f"Banks: {args.pdq:,} PDQ-only contents + {args.pictures:,} reference pictures x 5 "
        f"hashes = {filled['entries']:,} entries ({copied}); the "
        f"server's first lookup built its matcher in {build_s:.1f} s. Real HTTP: "
        "`moderation_site.server` (daphne) processes on loopback, one keep-alive "
        f"connection, {args.queries} queries each (half planted near matches), settings "
        f'{args.settings}: "as shipped" pools PostgreSQL connections per process '
        '(psycopg-pool) and keeps valid keys for API_KEY_CACHE_S; "no pool": '
        "DATABASE_POOL=false, a new connection per request (as before)."
    )
    print()
    print("## Lookup latency (ms)")
    print()
    print("| request | p50 | p90 | p99 | max | aim |")
    print("|---|---:|---:|---:|---:|---|")
    print(_row("GET lookup, one PDQ hash (HTTP, as shipped)", http["one"], "p50 ≤ 3, p99 ≤ 10"))
    print(_row("POST lookup, five hashes (HTTP, as shipped)", http["five"], "≤ 5"))
    if default:
        print(_row("GET lookup, one PDQ hash (HTTP, no pool)", default["one"]))
        print(_row("POST lookup, five hashes (HTTP, no pool)", default["five"]))
    print(_row("GET a path that does not exist (HTTP): the floor", http["floors"]["404"]))
    print(_row("GET me (HTTP): key + throttle", http["floors"]["me"]))
    if before:
        print(_row("GET lookup, one PDQ hash (HTTP, Django's ASGI handler)", before["one"]))
        print(_row("POST lookup, five hashes (HTTP, Django's ASGI handler)", before["five"]))
        print(
            _row("GET a path that does not exist (HTTP, Django's handler)", before["floors"]["404"])
        )
        print(_row("GET me (HTTP, Django's ASGI handler)", before["floors"]["me"]))
    if inproc:
        django = inproc["django"]
        print(_row("GET lookup, one PDQ hash (Django test client)", django["one"]))
        print(_row("POST lookup, five hashes (Django test client)", django["five"]))
        print(_row("matcher.lookup, one PDQ hash (in-process)", inproc["one"]))
        print(_row("matcher.lookup, five hashes (in-process)", inproc["five"]))
    if after:
        print(_row("GET lookup, one PDQ, after the ingest below", after["one"]))
        print(_row("POST lookup, five, after the ingest below", after["five"]))
    print()
    print(
        f"Planted PDQ queries found: {http['found']} of {len(http['one'])}; planted pictures "
        f"blocked: {http['blocked']} of {len(http['five'])}."
    )
    if before:
        print(
            "Django's own ASGI handler (middleware in async mode) / as shipped (one sync "
            f"chain), p50: one PDQ {_p(before['one'], 50) / _p(http['one'], 50):.2f}x, five "
            f"{_p(before['five'], 50) / _p(http['five'], 50):.2f}x, the floor "
            f"{_p(before['floors']['404'], 50) / _p(http['floors']['404'], 50):.2f}x."
        )
    if default:
        print(
            f"No pool / as shipped, p50: one PDQ "
            f"{_p(default['one'], 50) / _p(http['one'], 50):.2f}x, five "
            f"{_p(default['five'], 50) / _p(http['five'], 50):.2f}x."
        )
    if inproc:
        print(
            f"HTTP / in-process p50: one PDQ {_p(http['one'], 50) / _p(inproc['one'], 50):.1f}x, "
            f"five {_p(http['five'], 50) / _p(inproc['five'], 50):.1f}x "
            f"(in-process build {inproc['build']:.1f} s)."
        )
    print()
    print("## Ingest (entries/s, same run)")
    print()
    print("| path | entries | seconds | entries/s | vs import_hash_list |")
    print("|---|---:|---:|---:|---:|")
    base = ingested["service"][0] / ingested["service"][1]
    for label, key in (
        ("hashing.services.import_hash_list (in-process)", "service"),
        ("POST banks/{id}/import, CSV body (HTTP)", "api_csv"),
        ("POST banks/{id}/import?progress=true (HTTP, NDJSON)", "api_progress"),
        ("POST banks/{id}/contents/batch, 1,000 per request (HTTP)", "api_batch"),
        ("POST banks/{id}/contents, one at a time (HTTP)", "api_adds"),
    ):
        n, s = ingested[key]
        print(f"| {label} | {n:,} | {s:.2f} | {n / s:,.0f} | {n / s / base:.2f}x |")
    print()
    print(f"Progress stream: {ingested['progress_events']} progress events. Aim ≥ 5,000/s.")
    seen = [ingested[f"import_seen_{i}"] for i in (0, 1)]
    print(
        f"The CSV import's last row was matchable on server 1 {seen[0][0]:.2f} s after the "
        f"import answered, on server 2 {seen[1][0]:.2f} s after (asked after server 1); each "
        f"server's first lookup after it took {seen[0][1]:.0f} / {seen[1][1]:.0f} ms, as it "
        "applied the entries added since its last lookup (both imports' entries)."
    )
    print()
    print("## Freshness: a new or removed entry, seen by each server's next lookup")
    print()
    print(
        "| round | add ms | server 1 sees it (s) | server 2 sees it (s) | delete ms "
        "| server 1 drops it (s) | server 2 drops it (s) | first lookup after, ms (1 / 2) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in fresh:
        print(
            f"| {r['round']} | {r['add_ms']:.1f} | {r['added_0_s']:.3f} | {r['added_1_s']:.3f} "
            f"| {r['delete_ms']:.1f} | {r['removed_0_s']:.3f} | {r['removed_1_s']:.3f} "
            f"| {r['added_0_first_ms']:.1f} / {r['added_1_first_ms']:.1f} |"
        )
    worst = max(max(r[k] for k in r if k.endswith("_s")) for r in fresh)
    print()
    print(f"Worst: {worst:.3f} s (aim ≤ 1 s; HMA: a full index rebuild every 60 s).")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdq", type=int, default=1_000_000)
    parser.add_argument("--pictures", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--ingest", type=int, default=100_000, help="CSV rows per import")
    parser.add_argument("--adds", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-in-process", action="store_true")
    parser.add_argument(
        "--no-stock", action="store_true", help="skip the server with Django's own ASGI handler"
    )
    parser.add_argument("--keep", action="store_true", help="reuse banks an earlier run filled")
    parser.add_argument(
        "--no-default", action="store_true", help="skip the server without a connection pool"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settings", default="moderation_site.settings")
    parser.add_argument("--save", action="store_true", help="write bench/results/api_lookup.md")
    args = parser.parse_args(argv)
    dsn = os.environ.get("DATABASE_URL", "")
    if not dsn.startswith(("postgres://", "postgresql://")):
        parser.error("DATABASE_URL must name a scratch PostgreSQL database (it is emptied)")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": args.settings,
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
    }
    os.environ.update(env)
    import django

    django.setup()
    from api import services as api_services
    from api.models import SCOPES

    rng = np.random.default_rng(args.seed)
    loads = [os.getloadavg()[0]]
    if args.keep and filled_already(dsn, args.pdq, args.pictures):
        print("... keeping the banks as filled", file=sys.stderr, flush=True)
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as conn:  # earlier runs' ingest banks
            for table in ("bankchange", "bankentry", "bankcontent", "bank"):
                column = "id" if table == "bank" else "bank_id"
                conn.execute(f"DELETE FROM hashing_{table} WHERE {column} > 2")
        filled = {"seconds": float("nan")}
    else:
        print(f"... filling {args.pdq:,} + {args.pictures:,} x 5", file=sys.stderr, flush=True)
        filled = fill(dsn, args.pdq, args.pictures, rng)
    bump_version()
    filled.update(samples_from(dsn))
    client = api_services.create_client(
        f"bench-{secrets.token_hex(3)}", scopes=SCOPES, throttle_rate="10000000/minute"
    )
    key = api_services.issue_key(client)[1]
    pdqs = pdq_queries(filled, args.queries, rng)
    fives = five_queries(filled, args.queries, rng)
    inproc = None
    if not args.no_in_process:
        print("... in-process lookups", file=sys.stderr, flush=True)
        inproc = in_process_lookups(pdqs, fives, key)
    servers = [Server(env), Server(env)]
    plain = None if args.no_default else Server({**env, "DATABASE_POOL": "false"})
    stock = None if args.no_stock else Server(stock_env(env), "stock_handler:application")
    try:
        print("... warming the servers", file=sys.stderr, flush=True)
        builds = []
        for server in [*servers, plain] if plain else servers:
            _, _, ms = server.request("GET", f"/api/v1/lookup?algorithm=pdq&hash={pdqs[0]}", key)
            builds.append(ms / 1000)
        if stock:
            stock.request("GET", f"/api/v1/lookup?algorithm=pdq&hash={pdqs[0]}", key)
        print("... lookups", file=sys.stderr, flush=True)
        http = http_lookups(servers[0], key, pdqs, fives)
        http["floors"] = floors(servers[0], key, args.queries // 2)
        loads.append(os.getloadavg()[0])
        default = before = None
        if stock:  # right after the shipped server's, on the same machine's moment
            before = http_lookups(stock, key, pdqs, fives)
            before["floors"] = floors(stock, key, args.queries // 2)
            stock.stop()
            stock = None
        if plain:
            default = http_lookups(plain, key, pdqs, fives)
            plain.stop()
            plain = None
        print("... freshness", file=sys.stderr, flush=True)
        fresh = freshness(servers, key, args.rounds, rng)
        print("... ingest", file=sys.stderr, flush=True)
        ingested = ingest(servers, key, args.ingest, args.adds, rng)
        after = http_lookups(servers[0], key, pdqs[: args.queries // 2], fives[: args.queries // 2])
    finally:
        for server in [*servers, plain, stock]:
            if server is not None and server.proc.poll() is None:
                server.stop()
    loads.append(os.getloadavg()[0])
    buf = io.StringIO()
    with redirect_stdout(buf):
        report(
            args, filled, max(builds), http, inproc, after, fresh, ingested, loads, default, before
        )
    print(buf.getvalue(), end="")
    if args.save:
        out = ROOT / "bench" / "results" / "api_lookup.md"
        out.write_text(buf.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
