"""Benchmark of the public API's analyses, against the bare pipeline in the same run.

1. Overhead: ``POST /api/v1/analyses?wait=`` (multipart 1024x768 JPEG, through the real
   URL conf, key authentication, throttle, Submission row and the full answer) against the
   bare pipeline (``ingest_bytes`` + ``analyse_item``), tasks in-process, interleaved image
   by image so that both see the same machine load. Aim: at most 1.2x.
2. Batches (needs --redis): 50 URLs served by a loopback HTTP server, analysed by a real
   Celery worker with 2 processes consuming from Redis: ``POST analyses/batch`` with
   ``max_concurrent`` 10 (and 1) against 50 sequential ``POST analyses?wait=`` calls.

Every figure is printed with os.getloadavg() before and after its part (the machine is
shared: read ratios, which are same-run, rather than absolute times).

Usage: python bench/api.py [--images 24] [--batch 50] [--redis redis://127.0.0.1:6379/13]
Uses DATABASE_URL when set (PostgreSQL recommended for part 2), else a temporary SQLite file.
"""

import argparse
import http.server
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24, help="images for the overhead part")
    parser.add_argument("--batch", type=int, default=50, help="items per batch")
    parser.add_argument("--redis", default="", help="Redis URL for part 2 (a real worker)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes in part 2")
    parser.add_argument("--save", action="store_true", help="write bench/results/api.md")
    return parser.parse_args()


ARGS = _args() if __name__ == "__main__" else None
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation_site.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-throwaway-key")  # DEBUG off needs one
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")  # the test client speaks plain http
os.environ.setdefault("NUDENET_THREADS", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["URL_FETCH_ALLOWED_NETWORKS"] = "127.0.0.1/32"  # the loopback image server
os.environ.setdefault("API_BATCH_WAIT_MAX_S", "300")
os.environ.setdefault("API_WAIT_MAX_S", "60")
if ARGS is not None and ARGS.redis:
    os.environ["REDIS_URL"] = ARGS.redis
else:
    os.environ.pop("REDIS_URL", None)
_TMP = tempfile.mkdtemp(prefix="bench-api-")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_TMP}/bench.sqlite3")
os.environ["PRIVATE_MEDIA_ROOT"] = f"{_TMP}/private"

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina", "cat")


def make_jpegs(count: int, offset: int = 0, size=(1024, 768)) -> list[bytes]:
    """Distinct real photographs (scikit-image), resized and varied, as JPEG bytes."""
    import numpy as np
    from PIL import Image, ImageDraw
    from skimage import data

    bases = [
        Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB").resize(size)
        for name in PHOTOS
    ]
    out = []
    for i in range(offset, offset + count):
        img = bases[i % len(bases)].rotate(i // len(bases) % 100 * 3 + 1)
        ImageDraw.Draw(img).text((8, 8), str(i), fill=(255, 255, 0))  # never the same bytes
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def setup():
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    call_command("migrate", verbosity=0)
    setup_test_environment()  # lets the test client use "testserver"


def make_client():
    from django.test import Client

    from api import services

    row = services.create_client(
        f"bench-{time.time_ns()}", scopes=["analyse"], throttle_rate="1000000/minute"
    )
    _, raw = services.issue_key(row)
    return row, Client(HTTP_AUTHORIZATION=f"Api-Key {raw}")


# -- part 1 -----------------------------------------------------------------------------------


def overhead(n: int) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from api.services import author_for
    from moderation_site.celery import app
    from review.pipeline import analyse_item
    from uploads.intake import ingest_bytes

    app.conf.task_always_eager = True  # the analysis in-process, at the commit
    row, client = make_client()
    author = author_for(row, "bench-user")
    bare_images, api_images = make_jpegs(n + 2, 0), make_jpegs(n + 2, 1000)

    def bare(data):
        item = ingest_bytes(data, name="b.jpg", source="api", uploader=row.user, author=author)
        analyse_item(item.pk)

    def api(data):
        answer = client.post(
            "/api/v1/analyses?wait=30",
            {"file": SimpleUploadedFile("b.jpg", data), "user_uuid": "bench-user"},
        )
        assert answer.status_code == 200, answer.content[:300]
        assert answer.json()["decision"], "not decided"

    for i in range(2):  # warm both paths (model session, URL conf, first queries)
        bare(bare_images[i])
        api(api_images[i])
    before = load()
    samples = {"bare": [], "api": []}
    for i in range(2, n + 2):
        for name, fn, data in (("bare", bare, bare_images[i]), ("api", api, api_images[i])):
            t = time.perf_counter()
            fn(data)
            samples[name].append((time.perf_counter() - t) * 1000)
    return {
        "n": n,
        "bare": statistics.median(samples["bare"]),
        "api": statistics.median(samples["api"]),
        "bare_p90": sorted(samples["bare"])[int(0.9 * (n - 1))],
        "api_p90": sorted(samples["api"])[int(0.9 * (n - 1))],
        "load": (before, load()),
    }


# -- part 2 -----------------------------------------------------------------------------------


def serve(images: dict[str, bytes]) -> tuple[str, http.server.ThreadingHTTPServer]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = images.get(self.path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        # socketserver's default backlog of 5 drops SYNs of 10 concurrent fetches: each
        # then waits the 1 s retransmit (a real image host listens with a longer queue).
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def start_worker(processes: int) -> subprocess.Popen:
    from moderation_site.celery import app

    worker = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "celery"),
            "-A",
            "moderation_site",
            "worker",
            "-c",
            str(processes),
            "-P",
            "prefork",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=dict(os.environ),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.control.ping(timeout=1.0):
            return worker
    worker.terminate()
    raise SystemExit("the Celery worker did not answer a ping within 60 s")


def batches(count: int, processes: int) -> dict:
    from moderation_site.celery import app
    from review.models import Analysis

    app.conf.task_always_eager = False  # to the worker, through Redis
    runs = {"warm": make_jpegs(4 * processes, 7000)}
    order = ("sequential", "batch10", "batch1", "batch10-again", "batch1-again")
    for i, name in enumerate(order):
        runs[name] = make_jpegs(count, 2000 + i * 1000)
    files = {f"/{run}/{i}.jpg": data for run, items in runs.items() for i, data in enumerate(items)}
    base, server = serve(files)
    urls = {run: [f"{base}/{run}/{i}.jpg" for i in range(len(v))] for run, v in runs.items()}
    _, client = make_client()
    worker = start_worker(processes)
    try:

        def batch(run, max_concurrent):
            items = [{"url": url, "user_uuid": f"u{i % 7}"} for i, url in enumerate(urls[run])]
            answer = client.post(
                "/api/v1/analyses/batch?wait=300",
                {"items": items, "max_concurrent": max_concurrent},
                content_type="application/json",
            )
            body = answer.json()
            assert answer.status_code == 200 and body["decided"] == len(items), str(body)[:500]
            return body

        batch("warm", processes)  # every worker process loads the model
        out = {"load_before": load()}
        t = time.perf_counter()
        each, ids = [], []
        for i, url in enumerate(urls["sequential"]):
            t1 = time.perf_counter()
            answer = client.post(
                "/api/v1/analyses?wait=60",
                {"url": url, "user_uuid": f"u{i % 7}"},
                content_type="application/json",
            )
            each.append((time.perf_counter() - t1) * 1000)
            assert answer.status_code == 200, answer.content[:300]
            ids.append(answer.json()["id"])
        out["sequential"] = time.perf_counter() - t
        out["one_request_ms"] = statistics.median(each)
        out["in_worker_ms"] = statistics.median(
            a.timings.get("total", 0)
            for a in Analysis.objects.filter(item__uuid__in=ids).only("timings")
        )
        for name in order[1:]:
            t = time.perf_counter()
            batch(name, 10 if name.startswith("batch10") else 1)
            out[name] = time.perf_counter() - t
        out["load_after"] = load()
        return out
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        server.shutdown()


def main():
    setup()
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, database {engine}, "
        f"NUDENET_THREADS={os.environ['NUDENET_THREADS']}",
        "",
        "| measure | ours | baseline | ratio | load 1/5/15 min before → after |",
        "|---|---|---|---|---|",
    ]
    o = overhead(ARGS.images)
    lines.append(
        f"| POST analyses?wait (1024×768 JPEG, n={o['n']}) vs bare ingest + analyse_item, "
        f"median ms (p90) | {o['api']:.1f} ({o['api_p90']:.1f}) "
        f"| {o['bare']:.1f} ({o['bare_p90']:.1f}) | {o['api'] / o['bare']:.2f}× "
        f"| {o['load'][0]} → {o['load'][1]} |"
    )
    if ARGS.redis:
        b = batches(ARGS.batch, ARGS.workers)
        n, w = ARGS.batch, ARGS.workers
        lines.append(
            f"| POST analyses?wait by URL through Redis and a worker, median ms per item, vs "
            f"the analysis inside the worker (its timings.total) | {b['one_request_ms']:.1f} "
            f"| {b['in_worker_ms']:.1f} | {b['one_request_ms'] / b['in_worker_ms']:.2f}× "
            f"| {b['load_before']} → {b['load_after']} |"
        )
        for name, label in (("batch10", "max_concurrent 10"), ("batch1", "max_concurrent 1")):
            runs = (b[name], b[f"{name}-again"])
            took = statistics.mean(runs)
            lines.append(
                f"| batch of {n} URLs, {label}, vs {n} sequential POST analyses?wait, "
                f"{w} worker processes, s (items/s; two runs) "
                f"| {took:.2f} ({n / took:.1f}; {runs[0]:.2f}, {runs[1]:.2f}) "
                f"| {b['sequential']:.2f} ({n / b['sequential']:.1f}) "
                f"| {b['sequential'] / took:.2f}× faster "
                f"| {b['load_before']} → {b['load_after']} |"
            )
    else:
        lines.append("| batches | (skipped: give --redis for a real worker) | | | |")
    table = "\n".join(lines)
    print(table)
    if ARGS.save:
        out = ROOT / "bench" / "results" / "api.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table + "\n")


if __name__ == "__main__":
    main()
