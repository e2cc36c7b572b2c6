"""Scale-out: 2 web processes and 1, 2, 3 Celery workers, images pushed through the public API.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<scratch> \\
    REDIS_URL=redis://127.0.0.1:6379/<n> \\
        .venv/bin/python bench/scale.py [--images 60] [--workers 1,2,3] [--save]

Everything runs as deployed, on loopback: two ``python -m moderation_site.server`` web
processes (daphne), ``celery worker -c 1`` processes (one NudeNet session each, one intra-op
thread), PostgreSQL and Redis. For each worker count, ``--images`` distinct 1024x768 JPEGs
are POSTed to ``/api/v1/analyses`` (multipart, no ``wait``: 202) by 4 client threads, spread
over both web processes; the clock stops when the last item is decided. Reported: intake
rate (requests answered per second), throughput (items decided per second, first request
to last decision), p50/p99 from request to decision (the item's ``Analysis`` row minus the
moment the client sent it), and the ratio of throughput to one worker's, with the load.

On 2 cores the curve flattens at 2 workers: each analysis is ~40 ms of CPU (NudeNet ~19 ms
of it), and the web processes, PostgreSQL and Redis share the same two cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The caller's services, read before bench.api (which sets its own defaults) is imported.
CALLER = {name: os.environ.get(name, "") for name in ("DATABASE_URL", "REDIS_URL")}

from bench.api import load, make_jpegs  # noqa: E402
from bench.api_lookup import Server  # noqa: E402


def _args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--clients", type=int, default=4, help="client threads posting")
    parser.add_argument("--save", action="store_true", help="write bench/results/scale.md")
    return parser.parse_args(argv)


def environment() -> dict:
    """The deployed settings, on the caller's PostgreSQL and Redis (both required)."""
    database, redis = CALLER["DATABASE_URL"], CALLER["REDIS_URL"]
    if not (database and database.startswith("postgres") and redis):
        raise SystemExit("set DATABASE_URL (PostgreSQL) and REDIS_URL: scale-out needs both")
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database,
        REDIS_URL=redis,
        DEBUG="false",
        SECRET_KEY="bench-only-throwaway-key",
        SECURE_SSL_REDIRECT="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        NUDENET_THREADS="1",
        LOG_LEVEL="WARNING",
        PRIVATE_MEDIA_ROOT=os.environ["PRIVATE_MEDIA_ROOT"],
    )
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    return env


def setup(env: dict):
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from api import services

    client = services.create_client(
        f"scale-{time.time_ns()}", scopes=["analyse"], throttle_rate="1000000/minute"
    )
    return services.issue_key(client)[1]


def start_workers(count: int, env: dict) -> list[subprocess.Popen]:
    from moderation_site.celery import app

    workers = [
        subprocess.Popen(
            [str(ROOT / ".venv/bin/celery"), "-A", "moderation_site", "worker", "-c", "1"]
            + ["-n", f"scale{i}-{uuid.uuid4().hex[:6]}@%h", "--without-gossip"]
            + ["--without-mingle", "-l", "WARNING"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(count)
    ]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if len(app.control.ping(timeout=1.0) or ()) >= count:
            return workers
    stop(workers)
    raise SystemExit(f"{count} Celery workers did not answer a ping within 90 s")


def stop(workers) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()


def multipart(data: bytes, user: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="user_uuid"\r\n\r\n{user}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def push(servers, key: str, images: list[bytes], clients: int) -> dict:
    """POST every image (202 each); returns send times by item id and the intake span."""
    sent: dict[str, float] = {}
    lock = threading.Lock()
    todo = list(enumerate(images))

    def client(n: int):
        conn = http.client.HTTPConnection("127.0.0.1", servers[n % len(servers)].port, timeout=120)
        while True:
            with lock:
                if not todo:
                    conn.close()
                    return
                i, data = todo.pop()
            body, content_type = multipart(data, f"u{i % 11}")
            t = time.time()
            headers = {"X-Api-Key": key, "Content-Type": content_type}
            conn.request("POST", "/api/v1/analyses", body=body, headers=headers)
            answer = conn.getresponse()
            payload = answer.read()
            assert answer.status in (200, 202), payload[:300]
            with lock:
                sent[json.loads(payload)["id"]] = t

    started = time.time()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"sent": sent, "started": started, "intake_s": time.time() - started}


def wait_decided(ids, timeout=900) -> dict:
    """When each item's analysis was recorded (the automatic decision: its Analysis row is
    written in the transaction that sets the status; ``decided_at`` is a person's)."""
    from review.models import Analysis

    deadline = time.monotonic() + timeout
    rows = {}
    while time.monotonic() < deadline:
        rows = dict(
            Analysis.objects.filter(item__uuid__in=ids).values_list("item__uuid", "created_at")
        )
        if len(rows) == len(ids):
            return {str(k): v.timestamp() for k, v in rows.items()}
        time.sleep(0.25)
    raise SystemExit(f"only {len(rows)} of {len(ids)} items decided within {timeout} s")


def run(count: int, workers_n: int, servers, key, env, clients, offset) -> dict:
    workers = start_workers(workers_n, env)
    try:
        warm = push(servers, key, make_jpegs(2 * workers_n, 90_000 + offset), clients)
        wait_decided(list(warm["sent"]))  # every worker has loaded the model
        before = load()
        pushed = push(servers, key, make_jpegs(count, offset), clients)
        decided = wait_decided(list(pushed["sent"]))
        latencies = sorted((decided[i] - t) * 1000 for i, t in pushed["sent"].items())
        span = max(decided.values()) - pushed["started"]
        return {
            "workers": workers_n,
            "intake_rps": count / pushed["intake_s"],
            "throughput": count / span,
            "p50": statistics.median(latencies),
            "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            "load": f"{before} → {load()}",
        }
    finally:
        stop(workers)


def table(rows, args) -> str:
    base = rows[0]["throughput"]
    lines = [
        f"# Scale-out ({args.images} images of 1024x768 per row, 2 web processes, "
        f"{args.clients} client threads)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}.",
        "",
        "| workers | intake req/s | decided/s | ratio to 1 worker | p50 ms | p99 ms | load |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workers']} | {r['intake_rps']:.1f} | {r['throughput']:.1f} | "
            f"{r['throughput'] / base:.2f}x | {r['p50']:.0f} | {r['p99']:.0f} | {r['load']} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = _args(argv)
    env = environment()
    key = setup(env)
    servers = [Server(env), Server(env)]
    try:
        rows = [
            run(args.images, int(n), servers, key, env, args.clients, 1000 * i)
            for i, n in enumerate(args.workers.split(","))
        ]
    finally:
        for server in servers:
            server.stop()
    out = table(rows, args)
    print(out)
    if args.save:
        (ROOT / "bench" / "results" / "scale.md").write_text(out + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
