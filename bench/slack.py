"""Benchmark the Slack bot over real HTTP: ack latency under a burst, and event → removal.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<a scratch database> \\
    REDIS_URL=redis://127.0.0.1:6379/<n> .venv/bin/python bench/slack.py [--events 100] [--save]

Started on loopback exactly as deployed: the web server (``python -m moderation_site.server``,
daphne), a Celery worker (2 prefork processes) on Redis, and the fake Slack of the tests
(Web API and file host). Measured in the same run:

1. Ack: a burst of ``--events`` signed message events (each with a 60 KB photo), sent by 10
   concurrent connections; latency of each answer (verify, record, enqueue), with the
   analysis and the Slack calls in the worker meanwhile. The alternative: the same burst
   (``--inline`` events) against a second server whose tasks run in the request
   (``CELERY_TASK_ALWAYS_EAGER``), the seed Lambda's way: download, analysis and Slack calls
   before the answer. Then the burst again with the worker's processes at a lower CPU
   priority (``--worker-nice``, 10): how much of the ack's tail is the worker's CPU share;
   the removals below run with the worker so.
2. Removal: one event at a time with a 1 MB explicit JPEG; time from the POST to the fake
   Slack's ``chat.delete`` and to the notice (``chat.postMessage`` in the thread).
3. Receipt in-process, no HTTP: ``chatbot.receipt.receive_event`` against Slack Bolt 1.30's
   ``App.dispatch`` (signature, url_verification, a listener that acks) on the same signed
   bodies; and what each does with a retry and with a non-numeric timestamp.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHANNEL, MEMBER = "C0BENCH", "U0MEMBER"


def _p(values, q) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _free_port() -> int:
    from tests.services import free_port  # the tests' own (bench/ runs from the repository)

    return free_port()


def _wait_port(port: int, log: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port} (see {log})")


class Process:
    def __init__(self, args: list[str], env: dict, name: str, port: int | None = None):
        self.log_path = f"/tmp/bench-slack-{name}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if port:
            _wait_port(port, self.log_path)

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def web_server(env: dict, name: str) -> tuple[Process, int]:
    port = _free_port()
    args = [sys.executable, "-m", "moderation_site.server", "-b", "127.0.0.1", "-p", str(port)]
    return Process(args, env, name, port), port


def post(port: int, body: bytes, headers: dict) -> tuple[int, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    conn.request("POST", "/slack/events/", body=body, headers=headers)
    answer = conn.getresponse()
    answer.read()
    elapsed = (time.perf_counter() - started) * 1000
    conn.close()
    return answer.status, elapsed


def signed(body: bytes, secret: str) -> dict:
    from tests.chatbot.conftest import sign

    return {"Content-Type": "application/json", **sign(body, secret=secret)}


def burst(port, fake, secret, pictures, workers=10) -> list[float]:
    from tests.chatbot.conftest import envelope

    bodies = []
    for data in pictures:
        file = fake.add_file(data, user=MEMBER)
        bodies.append(envelope(fake.post_message(CHANNEL, MEMBER, [file])))
    with ThreadPoolExecutor(workers) as pool:
        answers = list(pool.map(lambda b: post(port, b, signed(b, secret)), bodies))
    bad = [s for s, _ in answers if s != 200]
    if bad:
        raise RuntimeError(f"{len(bad)} answers were not 200: {bad[:5]}")
    return [ms for _, ms in answers]


def wait_for(predicate, timeout=300.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def explicit_megabyte() -> bytes:
    """The Venus fixture scaled up to a ~1 MB JPEG (NudeNet still flags it)."""
    from PIL import Image

    from tests.conftest import VENUS

    img = Image.open(VENUS).convert("RGB")
    for side in range(1400, 4000, 100):
        big = img.resize((side, side * img.height // img.width), Image.LANCZOS)
        buf = io.BytesIO()
        big.save(buf, "JPEG", quality=92)
        if buf.tell() >= 1_000_000:
            return buf.getvalue()
    return buf.getvalue()


def removals(port, fake, secret, data, rounds) -> tuple[list[float], list[float]]:
    from tests.chatbot.conftest import envelope

    to_delete, to_notice = [], []
    for _ in range(rounds):
        file = fake.add_file(data, user=MEMBER, name="big.jpg")
        event = fake.post_message(CHANNEL, MEMBER, [file])
        body = envelope(event)
        started = time.monotonic()
        status, _ = post(port, body, signed(body, secret))
        assert status == 200, status

        def deleted(event=event):
            return [c for c in fake.called("chat.delete") if c.params.get("ts") == event["ts"]]

        def noticed(event=event):
            return [
                c
                for c in fake.called("chat.postMessage")
                if c.params.get("thread_ts") == event["ts"]
            ]

        if not wait_for(lambda: deleted() and noticed(), 120):
            raise RuntimeError("the 1 MB image was not removed within 120 s")
        to_delete.append((deleted()[0].at - started) * 1000)
        to_notice.append((noticed()[0].at - started) * 1000)
    return to_delete, to_notice


def in_process(secret: str, count: int) -> dict:
    """receive_event against Bolt's App.dispatch on identical signed bodies (no HTTP)."""
    from slack_bolt import App, BoltRequest
    from slack_bolt.authorization import AuthorizeResult

    from chatbot import receipt, tasks
    from chatbot.models import Event
    from tests.chatbot.conftest import envelope

    queued = []
    tasks.handle_event.delay = lambda pk: queued.append(pk)  # receipt only
    event = {
        "type": "message",
        "subtype": "file_share",
        "channel": CHANNEL,
        "channel_type": "channel",
        "user": MEMBER,
        "ts": "1700000000.1",
        "files": [{"id": "F1", "url_private": "https://files.slack.com/x"}],
    }

    def authorize(enterprise_id, team_id, logger):  # no network: the bot is known
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token="xoxb-bench",
            bot_user_id="U0BOT",
            bot_id="B0BOT",
        )

    bolt = App(signing_secret=secret, authorize=authorize)
    ran = []

    @bolt.event("message")
    def on_message(ack, body):
        ran.append(body["event_id"])

    ours, theirs = [], []
    for n in range(count):
        body = envelope(event, event_id=f"EvBENCH{secrets.token_hex(6)}{n}")
        headers = signed(body, secret)
        t = time.perf_counter()
        result = receipt.receive_event(body, headers)  # autocommit, as in the view
        ours.append((time.perf_counter() - t) * 1000)
        assert result.status == 200
        t = time.perf_counter()
        answer = bolt.dispatch(BoltRequest(body=body.decode(), headers=headers))
        theirs.append((time.perf_counter() - t) * 1000)
        assert answer.status == 200, answer.status
    # A retry of the same event, and a timestamp that is not a number.
    body = envelope(event, event_id="EvBENCHRETRY")
    retry = {**signed(body, secret), "X-Slack-Retry-Num": "1"}
    time.sleep(1.0)  # Bolt's listener threads of the loop above finish first
    before_ours, before_bolt = len(queued), len(ran)
    for _ in range(4):
        receipt.receive_event(body, retry)
        bolt.dispatch(BoltRequest(body=body.decode(), headers=retry))
    time.sleep(0.5)  # Bolt runs listeners in its thread pool
    odd = {**signed(body, secret), "X-Slack-Request-Timestamp": "17e8"}
    ours_odd = receipt.receive_event(body, odd).status
    try:
        bolt_odd = bolt.dispatch(BoltRequest(body=body.decode(), headers=odd)).status
    except ValueError:
        bolt_odd = "ValueError (500)"
    Event.objects.filter(event_id__startswith="EvBENCH").delete()  # queued, never handled
    return {
        "ours": ours,
        "bolt": theirs,
        "ours_retries": len(queued) - before_ours,
        "bolt_retries": len(ran) - before_bolt,
        "ours_odd": ours_odd,
        "bolt_odd": bolt_odd,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--inline", type=int, default=20, help="events for the in-request run")
    parser.add_argument("--rounds", type=int, default=5, help="1 MB removals")
    parser.add_argument("--receipt-only", action="store_true", help="part 3 alone")
    parser.add_argument(
        "--worker-nice", type=int, default=10, help="the worker's niceness in the second burst"
    )
    parser.add_argument("--save", action="store_true", help="write bench/results/slack.md")
    args = parser.parse_args(argv)
    dsn, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not dsn.startswith(("postgres://", "postgresql://")) or not redis_url:
        parser.error("set DATABASE_URL (a scratch PostgreSQL database) and REDIS_URL")
    from tests.chatbot import fakeslack

    fake = fakeslack.FakeSlack()
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    secret = secrets.token_hex(16)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "moderation_site.settings",
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "SLACK_API_URL": fake.api_url,
        "SLACK_FILE_HOSTS": fake.origin,
        "URL_FETCH_ALLOWED_NETWORKS": "127.0.0.1/32",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from chatbot.models import Event, Workspace
    from review.models import Policy

    Policy.current()
    # A scratch database: earlier runs' events (their ids repeat) and workspace go.
    Event.objects.all().delete()
    Workspace.objects.filter(team_id=fakeslack.TEAM).delete()
    ws = Workspace(team_id=fakeslack.TEAM, bot_user_id=fakeslack.BOT_USER, bot_id=fakeslack.BOT_ID)
    ws.set_secret("signing_secret", secret)
    ws.set_secret("bot_token", fakeslack.BOT_TOKEN)
    ws.set_secret("admin_token", fakeslack.ADMIN_TOKEN)
    ws.save()

    from PIL import Image
    from skimage import data as skdata

    base = Image.fromarray(np.asarray(skdata.coffee())).convert("RGB")

    def photo(n):
        buf = io.BytesIO()
        base.rotate(n % 7).save(buf, "JPEG", quality=70 + n % 25)
        return buf.getvalue()

    loads = {"before": os.getloadavg()}
    if args.receipt_only:
        fake.shutdown()
        print(in_process(secret, 300))
        return 0
    worker = Process(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "moderation_site",
            "worker",
            "--concurrency=2",
            "--loglevel=WARNING",
        ],
        env,
        "worker",
    )
    server, port = web_server(env, "web")
    inline_env = {**env, "CELERY_TASK_ALWAYS_EAGER": "true"}
    inline, inline_port = web_server(inline_env, "web-inline")
    try:
        time.sleep(5)  # the worker's processes load NudeNet
        print("... burst through the worker", file=sys.stderr, flush=True)
        acks = burst(port, fake, secret, [photo(n) for n in range(args.events)])
        started = time.monotonic()
        wait_for(lambda: not Event.objects.filter(status__in=["queued", "working"]).exists(), 600)
        drained = time.monotonic() - started
        # The same burst again with the worker's processes at a lower CPU priority: how much
        # of the ack's tail is the worker taking the web process's CPU.
        os.setpriority(os.PRIO_PGRP, worker.proc.pid, args.worker_nice)
        print(f"... burst through the worker at nice {args.worker_nice}", file=sys.stderr)
        niced = burst(port, fake, secret, [photo(2000 + n) for n in range(args.events)])
        started = time.monotonic()
        wait_for(lambda: not Event.objects.filter(status__in=["queued", "working"]).exists(), 600)
        drained_niced = time.monotonic() - started
        print("... burst handled in the request", file=sys.stderr, flush=True)
        inline_acks = burst(
            inline_port, fake, secret, [photo(1000 + n) for n in range(args.inline)]
        )
        print("... 1 MB removals", file=sys.stderr, flush=True)
        big = explicit_megabyte()
        to_delete, to_notice = removals(port, fake, secret, big, args.rounds)
    finally:
        server.stop()
        inline.stop()
        worker.stop()
        fake.shutdown()
    print("... in-process receipt vs Bolt", file=sys.stderr, flush=True)
    compared = in_process(secret, 300)
    loads["after"] = os.getloadavg()
    report(
        args,
        (acks, drained, niced, drained_niced),
        inline_acks,
        len(big),
        to_delete,
        to_notice,
        compared,
        loads,
    )
    return 0


def report(args, bursts, inline, big, to_delete, to_notice, compared, loads) -> None:
    acks, drained, niced, drained_niced = bursts
    load = (
        "/".join(f"{x:.2f}" for x in loads["before"])
        + " → "
        + "/".join(f"{x:.2f}" for x in loads["after"])
    )
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, PostgreSQL, Redis; load 1/5/15 min {load}",
        "",
        "| measure | ours | alternative | ratio |",
        "|---|---|---|---|",
        f"| ack of a burst of {len(acks)} signed events (10 connections), p50 / p99 ms, vs "
        f"{len(inline)} handled in the request | {_p(acks, 50):.1f} / {_p(acks, 99):.1f} | "
        f"{_p(inline, 50):.0f} / {_p(inline, 99):.0f} | "
        f"{_p(inline, 99) / _p(acks, 99):.0f}× (p99) |",
        f"| the worker's backlog of that burst drained after the last ack, s | {drained:.1f} | "
        " | |",
        f"| the same burst with the worker at nice {args.worker_nice}, p50 / "
        f"p99 ms, vs at nice 0 | {_p(niced, 50):.1f} / {_p(niced, 99):.1f} | "
        f"{_p(acks, 50):.1f} / {_p(acks, 99):.1f} | {_p(acks, 99) / _p(niced, 99):.2f}× (p99) |",
        f"| its backlog drained after the last ack, s | {drained_niced:.1f} | {drained:.1f} | |",
        f"| event → chat.delete of a {big / 1e6:.2f} MB explicit JPEG, median / max ms "
        f"(n={len(to_delete)}: {', '.join(f'{x:.0f}' for x in to_delete)}) | "
        f"{_p(to_delete, 50):.0f} / {max(to_delete):.0f} | | |",
        f"| event → notice in the thread, median / max ms | {_p(to_notice, 50):.0f} / "
        f"{max(to_notice):.0f} | | |",
        f"| receipt in-process (verify, record, enqueue), median / p99 ms, vs Bolt 1.30 "
        f"App.dispatch (verify, ack, listener thread) | {_p(compared['ours'], 50):.2f} / "
        f"{_p(compared['ours'], 99):.2f} | {_p(compared['bolt'], 50):.2f} / "
        f"{_p(compared['bolt'], 99):.2f} | "
        f"{_p(compared['bolt'], 50) / _p(compared['ours'], 50):.2f}× |",
        f"| 4 deliveries of one event (X-Slack-Retry-Num): runs of the handler | "
        f"{compared['ours_retries']} | {compared['bolt_retries']} (Bolt) | |",
        f"| a non-numeric X-Slack-Request-Timestamp | {compared['ours_odd']} | "
        f"{compared['bolt_odd']} (Bolt) | |",
    ]
    text = "\n".join(lines)
    print(text)
    if args.save:
        (ROOT / "bench" / "results" / "slack.md").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
