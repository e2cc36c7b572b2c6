"""Benchmark of hostile requests: what each costs the process that receives it.

Starts the real web server in a subprocess on a free loopback port, with its own SQLite
file and private folder, twice in one run: ours (``python -m moderation_site.server``) and
plain daphne (``daphne moderation_site.asgi:application``, the obvious alternative). With
the embedded defaults the analysis runs inside the web process, which is then also the
worker; ``--redis URL`` runs the analysis in a real Celery worker (solo pool) instead and
measures it too. A signed-in uploader sends the corpus over real HTTP, one request at a
time: decompression bombs, a pixel-cap RGBA picture, extreme proportions, many-frame GIFs
and bodies over the cap with and without Content-Length (the cap is lowered to
``--max-body-mb`` for both servers so that a 100 MB body is over it: at the default 401 MB,
plain daphne would need ~5 GB for an oversized multipart body).

Per request: the answer, the server's CPU seconds (utime + stime from /proc/<pid>/stat,
until it is idle again), its peak RSS during the request (VmHWM after resetting it through
/proc/<pid>/clear_refs; psutil's ``memory_info`` cannot give a peak) and the wall time.

Usage: python bench/hostile.py [--servers ours,plain] [--max-body-mb 64] [--redis URL]
                               [--plain-tree PATH]  (run plain daphne from another checkout,
                                                     e.g. the tree before this change)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MB = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the corpus ------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def flat_png(width: int, height: int, colour_type: int = 2, depth: int = 8, extra=b"") -> bytes:
    """A one-colour PNG built row by row, so that even a huge one costs little to make.
    colour_type 0 grey, 2 RGB, 3 palette, 6 RGBA."""
    channels = {0: 1, 2: 3, 3: 1, 6: 4}[colour_type]
    row = b"\x00" * (1 + (width * channels * depth + 7) // 8)
    compressor = zlib.compressobj(6)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + extra
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def palette_png(width: int, height: int) -> bytes:
    """8-bit palette with a transparent entry (flattened through RGBA by the analysis)."""
    extra = _chunk(b"PLTE", b"\x00\x00\x00\xff\xff\xff") + _chunk(b"tRNS", b"\x00")
    return flat_png(width, height, 3, 8, extra)


def many_frames_gif(frames: int, side: int = 1) -> bytes:
    """A GIF of `frames` one-colour frames of side x side pixels (23 bytes a frame at 1 px),
    10 ms each; one frame encoded by Pillow, repeated."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("P", (side, side), 0).save(buf, "GIF")
    data = buf.getvalue()
    flags = data[10]
    i = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    header = data[:i]
    while data[i] == 0x21:  # extensions Pillow wrote: skip their sub-blocks
        i += 2
        while data[i]:
            i += 1 + data[i]
        i += 1
    image = data[i:-1]  # descriptor, colour table, LZW data up to the trailer
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    control = b"\x21\xf9\x04\x00\x01\x00\x00\x00"
    return header + loop + (control + image) * frames + b"\x3b"


def small_jpeg() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def multipart(files: list[tuple[str, bytes]], boundary: str) -> bytes:
    out = []
    for name, data in files:
        out.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        )
        out.append(data)
        out.append(b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


def zeros_multipart(total: int, boundary: str):
    """The parts of a `total`-byte multipart body of one file of zeros, 1 MB at a time."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
        f'filename="zeros.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = total - len(head) - len(tail)

    def chunks():
        yield head
        left = size
        block = b"\0" * MB
        while left > 0:
            n = min(MB, left)
            yield block[:n]
            left -= n
        yield tail

    return chunks


def corpus() -> list[tuple[str, str, str, object]]:
    """(name, path, how, payload): how is "upload" (one file, as a signed-in uploader),
    "length" or "chunked" (a multipart body of `payload` bytes, sent 1 MB at a time)."""
    up = "/uploads/submit/"
    return [
        ("bomb: 20000x20000 1-bit PNG", up, "upload", flat_png(20_000, 20_000, 0, 1)),
        ("49 Mpx RGBA PNG (at the pixel cap)", up, "upload", flat_png(7_000, 7_000, 6)),
        ("49 Mpx palette PNG, transparent", up, "upload", palette_png(7_000, 7_000)),
        ("strip: 20000x1 PNG", up, "upload", flat_png(20_000, 1)),
        ("1:25 screenshot 1200x30000 PNG", up, "upload", flat_png(1_200, 30_000)),
        ("GIF 100,000 frames (2.4 MB)", up, "upload", many_frames_gif(100_000)),
        ("GIF 800,000 frames (19.1 MB)", up, "upload", many_frames_gif(800_000)),
        ("GIF 1,000 frames 220x220 (at the caps)", up, "upload", many_frames_gif(1_000, 220)),
        ("100 MB multipart, Content-Length, 404 path", "/nope/", "length", 100 * MB),
        ("100 MB multipart, chunked, 404 path", "/nope/", "chunked", 100 * MB),
        ("100 MB multipart upload, Content-Length", up, "length", 100 * MB),
        ("48 MB multipart within the cap, 404 path", "/nope/", "length", 48 * MB),
    ]


# -- a tiny HTTP/1.1 client (every request its own connection) -------------------------------


def send(
    port: int, path: str, headers: dict, chunks, chunked: bool, length: int | None, method="POST"
):
    """Send a request, then read the whole answer. Returns (status, body, note)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=300)
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if method == "POST":
        lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}")
    note = ""
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        for chunk in chunks():
            if chunked:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            else:
                sock.sendall(chunk)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
    except OSError as exc:  # the server closed after answering: read what it said
        note = f"send stopped: {type(exc).__name__}"
    data = b""
    try:
        while True:
            got = sock.recv(1 << 16)
            if not got:
                break
            data += got
    except OSError as exc:
        note = note or f"recv: {type(exc).__name__}"
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        status = 0
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return status, body, note


def _dechunk(body: bytes) -> bytes:
    out, i = b"", 0
    while True:
        end = body.find(b"\r\n", i)
        if end < 0:
            return out
        size = int(body[i:end].split(b";")[0] or b"0", 16)
        if size == 0:
            return out
        out += body[end + 2 : end + 2 + size]
        i = end + 4 + size


# -- processes -------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def wait_idle(pids: list[int], quiet: float = 0.6, most: float = 120.0) -> None:
    """Until none of the processes used CPU for `quiet` seconds."""
    deadline = time.monotonic() + most
    last = [cpu_seconds(p) for p in pids]
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = [cpu_seconds(p) for p in pids]
        if all(b - a < 0.02 for a, b in zip(last, now, strict=True)):
            return
        last = now


def free_port() -> int:
    from tests.services import free_port  # the tests' own (bench/ runs from the repository)

    return free_port()


def environment(tmp: Path, port: int, max_body: int, redis: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="moderation_site.settings",
        DEBUG="false",  # DEBUG keeps every SQL query in memory
        SECRET_KEY="bench-only-throwaway-key",
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        SECURE_HSTS_SECONDS="0",
        ALLOWED_HOSTS="127.0.0.1",
        CSRF_TRUSTED_ORIGINS=f"http://127.0.0.1:{port}",
        DATABASE_URL=f"sqlite:///{tmp}/db.sqlite3",
        PRIVATE_MEDIA_ROOT=str(tmp / "private"),
        REQUEST_MAX_BYTES=str(max_body),
        NUDENET_THREADS="1",
        LOG_LEVEL="WARNING",
    )
    if redis:
        env.update(REDIS_URL=redis, CELERY_TASK_ALWAYS_EAGER="false")
    return env


SESSION_SCRIPT = """
from django.test import Client
from accounts.roles import UPLOADER, sync_roles
from accounts.services import author_for_user
from tests.factories import UserFactory
sync_roles()
user = UserFactory(username="bench-uploader", roles=[UPLOADER])
author_for_user(user)
client = Client()
client.force_login(user)
print(client.cookies["sessionid"].value)
"""


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    cookies: str
    csrf: str
    worker: subprocess.Popen | None = None

    @property
    def pids(self) -> list[int]:
        return [self.proc.pid] + ([self.worker.pid] if self.worker else [])

    def stop(self) -> None:
        for p in (self.proc, self.worker):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


def start(name: str, tree: Path, tmp: Path, max_body: int, redis: str | None) -> Server:
    port = free_port()
    env = environment(tmp, port, max_body, redis)
    # The session script uses tests.factories; a PYTHONPATH of the caller's comes after.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), str(ROOT), env.get("PYTHONPATH")]))
    manage = [PYTHON, str(tree / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, cwd=tree, check=True)
    session = subprocess.run(
        [*manage, "shell", "-c", SESSION_SCRIPT],
        env=env,
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[-1]
    if name == "ours":
        cmd = [PYTHON, "-m", "moderation_site.server", "-b", "127.0.0.1", "-p", str(port)]
    else:
        daphne = str(Path(PYTHON).with_name("daphne"))
        cmd = [daphne, "-b", "127.0.0.1", "-p", str(port), "moderation_site.asgi:application"]
    log = open(tmp / f"{name}.log", "w")
    proc = subprocess.Popen(cmd, env=env, cwd=tree, stdout=log, stderr=subprocess.STDOUT)
    worker = None
    if redis:
        worker = subprocess.Popen(
            [str(Path(PYTHON).with_name("celery")), "-A", "moderation_site", "worker",
             "--pool=solo", "--concurrency=1", "--loglevel=WARNING"],
            env=env, cwd=tree, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.3)
    else:
        raise SystemExit(f"{name} did not start; see {tmp / (name + '.log')}")
    csrf = uuid.uuid4().hex  # an unmasked 32-character secret is a valid token
    cookies = f"sessionid={session}; csrftoken={csrf}"
    return Server(name, proc, port, cookies, csrf, worker)


# -- the run ---------------------------------------------------------------------------------


def request(server: Server, path: str, how: str, payload) -> tuple[int, dict | str, str]:
    boundary = "bench" + uuid.uuid4().hex
    headers = {
        "Cookie": server.cookies,
        "X-CSRFToken": server.csrf,
        "Accept": "application/json",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    if how == "upload":
        body = multipart([("hostile", payload)], boundary)
        status, raw, note = send(server.port, path, headers, lambda: [body], False, len(body))
    else:
        chunks = zeros_multipart(payload, boundary)
        status, raw, note = send(server.port, path, headers, chunks, how == "chunked", payload)
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = raw[:60].decode("latin-1")
    return status, answer, note


def wait_analysed(server: Server, answer, most: float = 180.0) -> None:
    """With a worker: until the items an upload accepted are no longer processing."""
    if not server.worker or not isinstance(answer, dict):
        return
    headers = {"Cookie": server.cookies, "Accept": "application/json"}
    deadline = time.monotonic() + most
    for item in answer.get("items", []):
        path = f"/uploads/items/{item['id']}/status/"
        while time.monotonic() < deadline:
            _, raw, _ = send(server.port, path, headers, lambda: [], False, None, "GET")
            if json.loads(raw).get("status") != "processing":
                break
            time.sleep(0.3)


def summary(status: int, answer) -> str:
    if isinstance(answer, dict):
        code = answer.get("code")
        if not code and answer.get("errors"):
            code = answer["errors"][0].get("code")
        if not code and answer.get("items"):
            code = answer["items"][0].get("status")
        return f"{status} {code or ''}".strip()
    return f"{status} (not JSON)"


def run(server: Server, cases) -> list[dict]:
    rows = []
    # Warm-up: one ordinary upload loads the model, the hashes and every module.
    wait_analysed(server, request(server, "/uploads/submit/", "upload", small_jpeg())[1])
    wait_idle(server.pids)
    base = [status_kb(p, "VmRSS") // 1024 for p in server.pids]
    for name, path, how, payload in cases:
        for pid in server.pids:
            reset_peak(pid)
        before = [status_kb(p, "VmRSS") // 1024 for p in server.pids]
        cpu0 = [cpu_seconds(p) for p in server.pids]
        started = time.perf_counter()
        status, answer, note = request(server, path, how, payload)
        wall = time.perf_counter() - started
        wait_analysed(server, answer)
        wait_idle(server.pids)
        cpu = [cpu_seconds(p) - c for p, c in zip(server.pids, cpu0, strict=True)]
        peak = [status_kb(p, "VmHWM") // 1024 for p in server.pids]
        rows.append(
            {
                "case": name,
                "answer": summary(status, answer),
                "cpu": cpu,
                "peak": peak,
                "before": before,
                "wall": wall,
                "note": note,
            }
        )
        print(
            f"  {server.name:5} {name:44} {rows[-1]['answer']:22} cpu {cpu} rss {before}"
            f" -> peak {peak}"
        )
        if server.proc.poll() is not None:
            rows[-1]["note"] = "server died"
            break
    return rows, base


def table(results: dict, cases: list[str], worker: bool) -> str:
    names = list(results)
    out = []
    head = ["request"]
    for n in names:
        head += [f"{n}: answer", f"{n}: CPU s", f"{n}: peak MB"]
        if worker:
            head += [f"{n}: worker CPU s", f"{n}: worker peak MB"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    rows = {n: results[n][0] for n in names}
    for i, case in enumerate(cases):
        line = [case]
        for n in names:
            r = rows[n][i] if i < len(rows[n]) else None
            if r is None:
                line += ["-", "-", "-"] + (["-", "-"] if worker else [])
                continue
            line += [r["answer"], f"{r['cpu'][0]:.2f}", str(r["peak"][0])]
            if worker:
                line += [f"{r['cpu'][1]:.2f}", str(r["peak"][1])]
        out.append("| " + " | ".join(line) + " |")
    bases = ", ".join(f"{n} {results[n][1]} MB" for n in names)
    out.append("")
    out.append(f"RSS after the warm-up upload (web{', worker' if worker else ''}): {bases}.")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="ours,plain")
    parser.add_argument("--max-body-mb", type=int, default=64)
    parser.add_argument("--redis", default=None, help="run the analysis in a Celery worker")
    parser.add_argument("--plain-tree", type=Path, default=ROOT)
    args = parser.parse_args()
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()};"
        f" load {os.getloadavg()[0]:.2f}; request cap {args.max_body_mb} MB"
    )
    cases = corpus()
    results = {}
    for name in args.servers.split(","):
        tmp = Path(tempfile.mkdtemp(prefix=f"bench-hostile-{name}-"))
        tree = ROOT if name == "ours" else args.plain_tree.resolve()
        server = start(name, tree, tmp, args.max_body_mb * MB, args.redis)
        try:
            results[name] = run(server, cases)
        finally:
            server.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print(table(results, [case[0] for case in cases], bool(args.redis)))


if __name__ == "__main__":
    main()
