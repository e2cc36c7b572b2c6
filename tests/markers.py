"""Markers for tests that need a real service; each test skips, saying why, when it is missing.

    @pytest.mark.postgres  the default database is PostgreSQL (DATABASE_URL=postgres://...)
    @pytest.mark.redis     REDIS_URL is set and the server answers a ping
    @pytest.mark.browser   Debian's chromium is on PATH (tests.browser.needs_chromium)

The markers are registered in pyproject.toml; tests/conftest.py calls skip_missing_services
on the collected tests. `make test` with the embedded defaults skips them all; .ci/run
starts PostgreSQL and Redis so they run there.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from django.db import connections


def postgres_missing() -> str | None:
    vendor = connections["default"].vendor
    if vendor == "postgresql":
        return None
    return (
        f"needs PostgreSQL, but the default database is {vendor}: "
        "set DATABASE_URL=postgres://user@host:5432/name"
    )


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


@functools.cache
def redis_missing() -> str | None:
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return "needs Redis: set REDIS_URL=redis://host:6379/0"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        return f"needs Redis, but REDIS_URL={_without_password(url)} did not answer a ping: {exc}"
    return None


def browser_missing() -> str | None:
    if shutil.which("chromium"):
        return None
    return "needs a browser: Debian's chromium is not on PATH (apt-get install chromium)"


CHECKS: dict[str, Callable[[], str | None]] = {
    "postgres": postgres_missing,
    "redis": redis_missing,
    "browser": browser_missing,
}


def skip_missing_services(items: Iterable[pytest.Item]) -> None:
    """Add a skip, with the reason, to each test whose marked service is missing.

    Each service is checked once, and only if some collected test is marked for it.
    """
    reasons: dict[str, str | None] = {}
    for item in items:
        for name, check in CHECKS.items():
            if item.get_closest_marker(name) is None:
                continue
            if name not in reasons:
                reasons[name] = check()
            if reasons[name]:
                item.add_marker(pytest.mark.skip(reason=reasons[name]))
