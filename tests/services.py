"""Private services for tests that stop and start them: never the machine's PostgreSQL or
Redis, which other suites share."""

import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    def __init__(self, root: Path):
        self.port = free_port()
        self.root = root
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.root), "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        self.process.kill()
        self.process.wait(timeout=20)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def queued(self) -> int:
        import redis

        return redis.Redis.from_url(self.url).llen("celery")


async def close_code(comm, within=2.0) -> int:
    """The code a websocket server closes with, skipping whatever it sent before (what a
    browser's onclose reads)."""
    while True:
        message = await comm.receive_output(timeout=within)
        if message["type"] == "websocket.close":
            return message.get("code", 1000)
