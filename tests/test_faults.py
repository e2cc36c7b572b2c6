"""Faults with real services: a private PostgreSQL (initdb + pg_ctl on a free port in a
temporary folder, never the machine's server) stopped and started under a running web
server (moderation_site.server, daphne).

During the outage every request that needs the database gets a 503 in the one error shape
with a sentence and Retry-After (moderation_site.errors: OperationalError/InterfaceError),
not a 500; when the database is back the same process answers again, without a restart.
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.services import PrivateRedis, free_port

REPO = Path(__file__).resolve().parent.parent
PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
TOKEN = "fault-test-metrics-token"

pytestmark = pytest.mark.skipif(
    not PG_BIN or not shutil.which("runuser"),
    reason="needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) to start a private one",
)


class PrivatePostgres:
    """A throwaway cluster owned by the postgres system user (initdb refuses root)."""

    def __init__(self, root: Path):
        self.dir = root / "pg"
        self.port = free_port()
        self.bin = Path(PG_BIN[-1])
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def run(self, *args):
        subprocess.run([*self.as_postgres, *args], check=True, capture_output=True, timeout=60)

    def init(self):
        self.dir.mkdir(parents=True)
        if self.as_postgres:
            shutil.chown(self.dir, "postgres")
            shutil.chown(self.dir.parent, "postgres")
        self.run(str(self.bin / "initdb"), "-D", str(self.dir), "-A", "trust", "-U", "postgres")

    def start(self):
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.dir), "-o", options, "-l",
                 str(self.dir / "log"), "-w", "start")  # fmt: skip

    def stop(self):
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.dir), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def postgres():
    # Not under pytest's folder: the postgres user cannot enter root's 0700 temp folders.
    root = Path(tempfile.mkdtemp(prefix="faults-pg-"))
    pg = PrivatePostgres(root)
    pg.init()
    pg.start()
    yield pg
    subprocess.run(
        [*pg.as_postgres, str(pg.bin / "pg_ctl"), "-D", str(pg.dir), "-m", "immediate", "stop"],
        capture_output=True,
        timeout=60,
    )
    shutil.rmtree(root, ignore_errors=True)


def site_env(database_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_"))}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY="fault-test-secret-key-not-for-production-0123456789",
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        METRICS_TOKEN=TOKEN,
        REDIS_URL="",
    )
    return env


@pytest.fixture
def web(postgres, tmp_path):
    env = site_env(postgres.url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO, env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    port = free_port()
    log = open(tmp_path / "web.log", "wb")  # noqa: SIM115 (closed at teardown)
    server = subprocess.Popen(
        [sys.executable, "-m", "moderation_site.server", "-b", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            get(base + "/metrics", json=True)
            break
        except OSError:
            time.sleep(0.3)
    else:
        server.kill()
        pytest.fail("the web server did not start: " + (tmp_path / "web.log").read_text())
    yield base
    server.terminate()
    server.wait(timeout=20)
    log.close()


def get(url: str, json: bool = False, token: bool = True, auth: str = ""):
    headers = {"Accept": "application/json"} if json else {}
    if token or auth:
        headers["Authorization"] = auth or f"Bearer {TOKEN}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_a_postgres_restart_answers_503_in_the_shape_and_recovers_without_a_restart(postgres, web):
    import json

    status, _, body = get(web + "/metrics")
    assert status == 200 and b"moderation_queue_pending_items" in body

    postgres.stop()
    for _ in range(3):  # every request of the outage, not only the first
        status, headers, body = get(web + "/metrics", json=True)
        assert status == 503, body
        answer = json.loads(body)
        assert answer["code"] == "unavailable" and "database" in answer["detail"]
        assert "psycopg" not in body.decode() and "connection" not in answer["detail"]
        assert headers.get("Retry-After") == "5"
    # The API (DRF authentication reads the key from the database) answers the same way.
    key = "Api-Key mk_live_0000000000000000000000000000000000000000"
    status, _, body = get(
        web + "/api/v1/analyses/00000000-0000-0000-0000-000000000000", json=True, auth=key
    )
    assert status == 503 and json.loads(body)["code"] == "unavailable"
    # A page (HTML) says it too, as a 503 page.
    status, _, body = get(web + "/metrics", token=True)
    assert status == 503 and b"database" in body

    postgres.start()
    deadline = time.monotonic() + 30
    while True:
        status, _, body = get(web + "/metrics")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200 and b"moderation_queue_pending_items" in body


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_killed_mid_analysis_leaves_the_item_analysed_exactly_once(
    transactional_db, settings, tmp_path, uploader, jpeg
):
    """A prefork child SIGKILLed while it analyses: the message is requeued
    (task_reject_on_worker_lost with acks_late), the next child analyses the item, and
    it is recorded once, never left processing."""
    import signal

    from django.db import connection

    from moderation_site.celery import app
    from review.models import Analysis
    from uploads.intake import ingest_bytes
    from uploads.models import MediaItem

    db = connection.settings_dict
    env = site_env(
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    env.update(REDIS_URL=settings.REDIS_URL, PRIVATE_MEDIA_ROOT=str(tmp_path / "private"))
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 (closed below)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "moderation_site", "worker", "--pool=prefork",
         "--concurrency=1", "--without-gossip", "--without-mingle", "--loglevel=info"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    app.conf.task_always_eager = False
    try:
        deadline = time.monotonic() + 60
        while not children(worker.pid):
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            time.sleep(0.2)
        (first,) = children(worker.pid)
        time.sleep(3)  # let the child finish starting before the clock
        idle = cpu_ticks(first)
        item = ingest_bytes(jpeg("astronaut", size=(3000, 3000)), name="big.jpg",
                            source="web", uploader=uploader)  # fmt: skip
        # Kill the child once it is busy (its CPU time grows) and the item still processing.
        deadline = time.monotonic() + 60
        while cpu_ticks(first) - idle < 10:  # 0.1 s of CPU: it is decoding or classifying
            assert time.monotonic() < deadline, "the worker never started the analysis"
            time.sleep(0.02)
        item.refresh_from_db()
        killed_mid_analysis = item.status == MediaItem.Status.PROCESSING
        os.kill(first, signal.SIGKILL)
        assert killed_mid_analysis, "the analysis finished before the kill: make it slower"

        deadline = time.monotonic() + 120
        while True:
            item.refresh_from_db()
            if item.status != MediaItem.Status.PROCESSING:
                break
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.3)
        time.sleep(2)  # a second delivery, if there were one, would have run by now
        assert Analysis.objects.filter(item=item).count() == 1
        assert children(worker.pid) and children(worker.pid) != [first]
    finally:
        app.conf.task_always_eager = True
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()


def post_file(url: str, key: str, data: bytes) -> tuple[int, dict]:
    import json

    boundary = "----faults-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="user_uuid"\r\n\r\nu-1\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Authorization": f"Api-Key {key}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")
def test_a_redis_restart_while_uploads_arrive_loses_nothing(tmp_path, jpeg):
    """A private Redis (never the machine's) killed under a running web server with no
    worker: the API keeps accepting uploads (the row commits, the task cannot be sent: the
    item waits in processing), and once Redis is back new tasks flow and the sweeper
    sends the waiting item's."""
    redis_server = PrivateRedis(tmp_path)
    redis_server.start()
    env = site_env(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    env.update(REDIS_URL=redis_server.url, PRIVATE_MEDIA_ROOT=str(tmp_path / "private"))
    manage = [sys.executable, "manage.py"]
    run = dict(cwd=REPO, env=env, check=True, capture_output=True, timeout=300)
    subprocess.run([*manage, "migrate", "--noinput"], **run)
    made = subprocess.run([*manage, "create_api_client", "faults"], text=True, **run).stdout
    key = made.split("Key (shown once, not stored): ")[1].split()[0]
    port = free_port()
    log = open(tmp_path / "web.log", "wb")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [sys.executable, "-m", "moderation_site.server", "-b", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api/v1/analyses?wait=0"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, before = post_file(url, key, jpeg("coffee"))
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "web.log").read_text()
                time.sleep(0.3)
        assert status == 202, before
        assert redis_server.queued() == 1  # the analysis task waits for a worker

        redis_server.stop()
        status, during = post_file(url, key, jpeg("rocket"))
        assert status == 202, (during, (tmp_path / "web.log").read_text()[-9000:])
        assert during["status"] == "processing"

        redis_server.start()  # empty: --save '' (a restart that lost its memory)
        status, after = post_file(url, key, jpeg("chelsea"))
        assert status == 202, after
        assert redis_server.queued() == 1  # tasks flow again
        # The sweeper (beat, every 5 minutes) sends what waited: here, at once.
        sweep = (
            "from datetime import timedelta; from uploads.intake import requeue_stuck_items; "
            "print(requeue_stuck_items(timedelta(0)))"
        )
        swept = subprocess.run([*manage, "shell", "-c", sweep], text=True, **run).stdout
        assert swept.split()[-1] == "3"  # all three items, none lost
        assert redis_server.queued() == 4
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        if redis_server.process.poll() is None:
            redis_server.stop()
