"""Claim throughput and latency on PostgreSQL: SKIP LOCKED claims against a naive claim.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x .venv/bin/python bench/claims.py [--save]

Works in its own database (`bench_claims` on the server of DATABASE_URL, created and
migrated if missing), seeds 100,000 pending items, then for 2, 8 and 32 concurrent
moderators claims batches of 10: closed loop (every moderator claims again at once, until a
fixed number of claims: the throughput ceiling) and paced (each moderator claims once a
second, still far above a person's pace: the latency a moderator sees). Before each run
every claim is released, so all runs start from the same queue. Any item handed out twice
in a run is a duplicate (must be 0).

Two shapes of the same moderators: `own process`, each moderator a process with its own
connection (as many server processes and backends as moderators: 64 on 2 cores at 32), and
`served`, as the product runs them: each moderator's claim a request thread of one of
--web-processes processes (docs/deploy.md: 2), taking a connection from that process's
pool (settings: DATABASE_POOL, --pool-sizes) and giving it back at the end, as Django does
at the end of a request. HTTP itself is not in it (bench/api.py measures that). Each row
also says where the CPU went: the moderators' processes, and the rest of the machine
(PostgreSQL's backends, mostly).

`skip_locked` is review.claims.claim_items as the pages and the API call it: one
UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n) RETURNING that claims
pending rows and rows whose lease ran out, with their group members, prepared once per
connection and run on its generic plan (PostgreSQL), in binary, the policy's claim numbers
cached, the entries built from the order columns (the claim's own are the values it set),
a poke for live counts coalesced per process (one per 50 ms). `orm_before` is the claim as
it was before issue 14 (kept here for the ratio): policy read, expired leases released,
SELECT FOR UPDATE SKIP LOCKED, group members, a conditional UPDATE, each a round trip, in
one transaction, and a poke of its own after each claim.
`naive` selects the first pending rows and then updates them, with no row locks.
"""

import argparse
import itertools
import multiprocessing as mp
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation_site.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-throwaway-key")  # DEBUG off needs one
# Moderators are forked processes, each with its own connection held for the run: a
# psycopg pool opened in the parent would hand its connections to every child at once.
os.environ.setdefault("DATABASE_POOL", "false")

BENCH_DB = "bench_claims"


def bench_database_url(url: str, name: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit("bench/claims.py needs DATABASE_URL to a PostgreSQL server.")
    return urlunsplit(parts._replace(path="/" + name))


def ensure_database(url: str, name: str) -> None:
    import psycopg

    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str):
    os.environ["DATABASE_URL"] = url
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(n_items: int, n_moderators: int) -> list[int]:
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from accounts.roles import MODERATOR
    from review.models import QueueEntry
    from uploads.models import MediaItem

    group = Group.objects.get_or_create(name=MODERATOR)[0]
    users = []
    for i in range(n_moderators):
        user, _ = User.objects.get_or_create(username=f"bench-mod-{i}")
        user.groups.add(group)
        users.append(user.pk)
    if (
        QueueEntry.objects.count() == n_items
        and not QueueEntry.objects.exclude(item__status=MediaItem.Status.REVIEW).exists()
    ):
        return users
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE review_queueentry, review_decision, review_analysis, "
            "uploads_mediaitem CASCADE"
        )
    now = timezone.now()
    step = 5000
    for start in range(0, n_items, step):
        items = MediaItem.objects.bulk_create(
            [
                MediaItem(
                    sha256=f"{i:064x}",
                    mime="image/jpeg",
                    width=1,
                    height=1,
                    size=1,
                    file=f"bench/{i}.jpg",
                    source=MediaItem.Source.API,
                    status=MediaItem.Status.REVIEW,
                    scores={"explicit": (i * 7919 % 1000) / 1000},
                )
                for i in range(start, min(start + step, n_items))
            ]
        )
        QueueEntry.objects.bulk_create(
            [
                QueueEntry(
                    item=item,
                    severity=item.scores["explicit"],
                    item_created_at=now - timedelta(seconds=start + k),
                )
                for k, item in enumerate(items)
            ]
        )
    return users


def reset_queue() -> None:
    from django.db import connection

    from review.models import QueueEntry

    QueueEntry.objects.filter(claimed_by__isnull=False).update(
        claimed_by=None, claimed_at=None, lease_expires_at=None
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE review_queueentry")


def naive_claim(moderator, count: int) -> list[int]:
    """What the old app did: read the first pending rows, then mark them. Two moderators
    who read at the same moment get the same items."""
    from django.db import transaction
    from django.utils import timezone

    from review.models import QueueEntry

    now = timezone.now()
    with transaction.atomic():
        ids = list(
            QueueEntry.objects.filter(claimed_by__isnull=True)
            .order_by("-severity", "item_created_at", "pk")
            .values_list("item_id", flat=True)[:count]
        )
        QueueEntry.objects.filter(item_id__in=ids).update(
            claimed_by=moderator, claimed_at=now, lease_expires_at=now + timedelta(minutes=10)
        )
    return ids


def orm_before_claim(moderator, count: int) -> list[int]:
    """review.claims.claim_items before issue 14, step by step through the ORM."""
    from django.db import transaction
    from django.utils import timezone

    from review.access import require_moderator
    from review.claims import ORDER, _release_expired, clean_count
    from review.models import Policy, QueueEntry

    require_moderator(moderator)
    policy = Policy.current()
    count = clean_count(count, policy)
    now = timezone.now()
    lease = now + timedelta(minutes=policy.lease_minutes)
    with transaction.atomic():
        released = _release_expired(now)
        pending = QueueEntry.objects.select_for_update(skip_locked=True).filter(
            claimed_by__isnull=True
        )
        picked = list(pending.order_by(*ORDER)[:count])
        keys = {e.group_key for e in picked if e.group_key is not None}
        if keys:
            picked += pending.filter(group_key__in=keys).exclude(pk__in=[e.pk for e in picked])
        if picked:
            updated = QueueEntry.objects.filter(
                pk__in=[e.pk for e in picked], claimed_by__isnull=True
            ).update(claimed_by=moderator, claimed_at=now, lease_expires_at=lease)
            assert updated == len(picked)
        if picked or released:
            transaction.on_commit(poke_as_before, robust=True)
    return [e.item_id for e in picked]


def poke_as_before() -> None:
    """review.counts before issue 14: every change sent its own poke (now one per 50 ms)."""
    import asyncio

    from channels.layers import get_channel_layer

    from review.counts import COUNTS_GROUP, _loop

    layer = get_channel_layer()
    if layer is not None:
        asyncio.run_coroutine_threadsafe(
            layer.group_send(COUNTS_GROUP, {"type": "counts.changed"}), _loop()
        )


MODES = ("skip_locked", "orm_before", "naive")


def skip_locked_claim(moderator, count: int) -> list[int]:
    from review.claims import claim_items

    return [e.item_id for e in claim_items(moderator, count)]


def worker(mode, user_ids, batch, budget, deadline, start, results, rate, phases, pool):
    """One process: a moderator with its own connection (`pool` 0), or, served, each of
    `user_ids` a request thread taking a connection from the process's pool of `pool`."""
    import threading

    import django

    django.setup()
    from django.db import DEFAULT_DB_ALIAS, connection, connections

    from accounts.models import User

    if pool:
        # As the web processes run (moderation_site.settings, DATABASE_POOL on); set here,
        # after the fork, so that no pool is shared with the parent.
        connections.settings[DEFAULT_DB_ALIAS]["CONN_MAX_AGE"] = 0
        connections.settings[DEFAULT_DB_ALIAS].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": pool,
            "timeout": 10.0,
        }
    claim = {
        "skip_locked": skip_locked_claim,
        "orm_before": orm_before_claim,
        "naive": naive_claim,
    }[mode]
    out = [([], []) for _ in user_ids]

    def moderate(k):
        latencies, items = out[k]
        moderator = User.objects.get(pk=user_ids[k])
        moderator.has_perm("review.moderate")  # the permission cache, warmed untimed
        if pool:
            connection.close()  # back to the pool, as at the end of a request
        start.wait()
        began = time.perf_counter() + phases[k]
        n = 0
        while time.time() < deadline:
            if rate:
                # Paced: a claim every 1/rate s. Latency counts from when the claim was
                # due, so a server that falls behind is not hidden (no coordinated omission).
                due = began + n / rate
                time.sleep(max(0.0, due - time.perf_counter()))
                n += 1
            else:
                with budget.get_lock():
                    if budget.value <= 0:
                        break
                    budget.value -= 1
                due = time.perf_counter()
            got = claim(moderator, batch)
            if pool:
                connection.close()
            latencies.append(time.perf_counter() - due)
            if not got:
                break
            items.extend(got)
        connection.close()

    threads = [threading.Thread(target=moderate, args=(k,)) for k in range(len(user_ids))]
    for t in threads:
        t.start()
    start.wait()
    cpu = time.process_time()
    for t in threads:
        t.join()
    cpu = time.process_time() - cpu
    if pool:  # the claims went through a pool of that size
        assert connection.pool.get_stats()["pool_max"] == pool
    results.put(([x for lat, _ in out for x in lat], [x for _, got in out for x in got], cpu))


def run(mode, users, batch, claims, seconds, rate=0.0, served=0, pool=0) -> dict:
    """Closed loop (rate 0: every moderator claims again at once, `claims` in all) or
    paced (each moderator claims `rate` times a second for `seconds`); each moderator a
    process of its own (`served` 0) or a request thread of one of `served` processes."""
    from django.db import connections

    reset_queue()
    connections.close_all()
    ctx = mp.get_context("fork")
    budget = ctx.Value("i", claims)
    start = ctx.Event()
    results = ctx.Queue()
    deadline = time.time() + 1.0 + seconds
    phases = [(k / len(users)) / rate if rate else 0.0 for k in range(len(users))]
    ways = served or len(users)
    procs = [
        ctx.Process(
            target=worker,
            args=(
                mode,
                users[w::ways],
                batch,
                budget,
                deadline,
                start,
                results,
                rate,
                phases[w::ways],
                pool if served else 0,
            ),
        )
        for w in range(ways)
    ]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let every process connect before the clock starts
    machine = busy_seconds()
    began = time.perf_counter()
    start.set()
    latencies, items, moderators_cpu = [], [], 0.0
    for _ in procs:
        lat, got, cpu = results.get()
        moderators_cpu += cpu
        latencies += lat
        items += got
    elapsed = time.perf_counter() - began
    machine = busy_seconds() - machine
    for p in procs:
        p.join()
    latencies.sort()
    return {
        "mode": mode,
        "shape": f"served: {served} × pool {pool}" if served else "own process",
        "load": f"{rate:g}/s each" if rate else "closed loop",
        "moderators": len(users),
        "claims": len(latencies),
        "items": len(items),
        "claims_per_s": len(latencies) / elapsed,
        "items_per_s": len(items) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "duplicates": len(items) - len(set(items)),
        # CPU per claim: the moderators' processes (the claim's Python side), and all the
        # rest of the machine's busy time in the run (PostgreSQL's backends, mostly).
        "client_cpu_ms": moderators_cpu / max(1, len(latencies)) * 1000,
        "rest_cpu_ms": (machine - moderators_cpu) / max(1, len(latencies)) * 1000,
    }


def settle(below: float, most_s: float = 180.0) -> None:
    """Wait for the machine to quieten (the last run's processes raised the load)."""
    until = time.monotonic() + most_s
    while os.getloadavg()[0] >= below and time.monotonic() < until:
        time.sleep(5)


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_columns(row: dict, between: str) -> str:
    """A claim's CPU, closed loop only: paced, the machine's own background work over the
    run's few claims would be most of it."""
    if row["load"] != "closed loop":
        return f"–{between}–"
    return f"{row['client_cpu_ms']:.2f}{between}{row['rest_cpu_ms']:.2f}"


def table(rows: list[dict], meta: str) -> str:
    lines = [
        meta,
        "",
        "| mode | moderators as | load | moderators | claims | claims/s | p50 ms | p99 ms "
        "| duplicates | CPU ms/claim: moderators | rest | load before |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['shape']} | {r['load']} | {r['moderators']} | {r['claims']} | "
            f"{r['claims_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['duplicates']} | {cpu_columns(r, ' | ')} | {r['load_before']:.2f} |"
        )
    lines.append("")
    by = {(r["mode"], r["shape"], r["load"], r["moderators"]): r for r in rows}
    for shape, load in dict.fromkeys((r["shape"], r["load"]) for r in rows):
        for n in sorted({r["moderators"] for r in rows}):
            s = by.get(("skip_locked", shape, load, n))
            for other in ("orm_before", "naive"):
                v = by.get((other, shape, load, n))
                if s and v:
                    lines.append(
                        f"- {shape}, {load}, {n} moderators: skip_locked/{other} claims/s "
                        f"×{s['claims_per_s'] / v['claims_per_s']:.2f}, p99 "
                        f"×{s['p99_ms'] / v['p99_ms']:.2f}; duplicates {s['duplicates']} vs "
                        f"{v['duplicates']}"
                    )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--moderators", default="2,8,32")
    parser.add_argument("--modes", default=",".join(MODES), help="which claims to compare")
    parser.add_argument("--batch", type=int, default=10, help="items per claim")
    parser.add_argument("--claims", type=int, default=1500, help="claims per closed-loop run")
    parser.add_argument("--max-seconds", type=float, default=40.0, help="per closed-loop run")
    parser.add_argument(
        "--rate", type=float, default=1.0, help="claims/s per moderator in paced runs (0: none)"
    )
    parser.add_argument("--paced-seconds", type=float, default=15.0, help="per paced run")
    parser.add_argument(
        "--shapes",
        default="own,served",
        help="own: each moderator a process with its own connection; served: the "
        "moderators' claims as request threads of --web-processes processes, each with "
        "a pool of --pool-sizes connections, as the web processes run them",
    )
    parser.add_argument("--web-processes", type=int, default=2, help="docs/deploy.md: 2")
    parser.add_argument(
        "--pool-sizes",
        default="",
        help="connections per served process, each size a run of its own (default: "
        "settings.DATABASE_POOL_MAX_SIZE, as shipped)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="before each run, wait (up to 3 min) until the 1-minute load is below this; "
        "the load each run began at is in its row",
    )
    parser.add_argument("--database", default=BENCH_DB)
    parser.add_argument("--save", action="store_true", help="write bench/results/claims.md")
    args = parser.parse_args()
    if set(args.shapes.split(",")) - {"own", "served"}:
        parser.error("--shapes takes own, served or both")

    url = os.environ.get("DATABASE_URL", "")
    if not url:
        sys.exit("Set DATABASE_URL to a PostgreSQL server (the bench uses its own database).")
    url = bench_database_url(url, args.database)
    ensure_database(url, args.database)
    setup_django(url)
    counts = [int(n) for n in args.moderators.split(",")]
    t = time.perf_counter()
    users = seed(args.items, max(counts))
    print(f"seeded {args.items} pending items in {time.perf_counter() - t:.1f}s", flush=True)

    rows = []
    loads = [0.0] + ([args.rate] if args.rate else [])
    from django.conf import settings

    pools = [int(n) for n in args.pool_sizes.split(",") if n] or [settings.DATABASE_POOL_MAX_SIZE]
    shapes = [
        (served, pool)
        for name in args.shapes.split(",")
        for served, pool in (
            [(0, 0)] if name == "own" else [(args.web_processes, p) for p in pools]
        )
    ]
    for rate, (served, pool), n, mode in itertools.product(
        loads, shapes, counts, args.modes.split(",")
    ):
        claims, seconds = (0, args.paced_seconds) if rate else (args.claims, args.max_seconds)
        settle(args.settle)
        load = os.getloadavg()[0]
        row = run(mode, users[:n], args.batch, claims, seconds, rate, served, pool)
        row["load_before"] = load
        print(
            f"{mode:11} {row['shape']:20} {row['load']:12} {n:3} moderators: "
            f"{row['claims_per_s']:6.0f} claims/s p50 {row['p50_ms']:.1f} ms "
            f"p99 {row['p99_ms']:.1f} ms duplicates {row['duplicates']}; CPU/claim "
            f"{cpu_columns(row, ' ms moderators + ')} ms rest; load before {load:.2f}",
            flush=True,
        )
        rows.append(row)
    meta = (
        f"Claims of {args.batch} items from {args.items:,} pending items; PostgreSQL on the "
        f"same machine ({os.cpu_count()} CPUs). Own process: each moderator a process with "
        f"its own connection. Served: the moderators' claims as request threads of "
        f"{args.web_processes} processes, each with a pool of the connections shown. "
        f"Closed loop: {args.claims} claims per run, each moderator claiming again at once. "
        f"Paced: each moderator makes {args.rate:g} claim(s) a second for "
        f"{args.paced_seconds:g} s; latency counted from when the claim was due. CPU per "
        f"claim (closed loop): the moderators' processes, and the rest of the machine's "
        f"busy time."
    )
    out = table(rows, meta)
    print()
    print(out)
    if args.save:
        path = ROOT / "bench" / "results" / "claims.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# Claims benchmark\n\n" + out)
        print(f"saved {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
