"""Connections reused across requests: under ASGI every request runs in a thread (and a
context) of its own, so whatever Django keeps per thread is made anew per request. The
Redis cache shares one client per process (moderation_site.cache); PostgreSQL connections
come from a pool per process (settings: DATABASE_POOL)."""

import threading

import pytest
import redis
from django.conf import settings
from django.core.cache import caches
from django.db import connection


def in_fresh_threads(work, count: int = 20) -> list:
    """What ``work()`` returns in each of ``count`` new threads, one after another (as
    daphne runs one request's view in a thread of its own)."""
    out = []
    for _ in range(count):
        thread = threading.Thread(target=lambda: out.append(work()))
        thread.start()
        thread.join()
    return out


@pytest.mark.redis
def test_requests_in_new_threads_share_one_redis_client_and_its_connections():
    server = redis.Redis.from_url(settings.REDIS_URL)
    before = len(server.client_list())

    def request():
        cache = caches["default"]  # a new cache object in each thread
        cache.set("probe", 1, 5)
        return id(cache), cache._cache.get_client(write=True)

    seen = in_fresh_threads(request)
    assert len({cache for cache, _ in seen}) > 1  # Django made cache objects anew ...
    assert len({id(client) for _, client in seen}) == 1  # ... around one client
    assert len(server.client_list()) - before <= 2  # not one connection per request
    assert caches["default"].get("probe") == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_connections_come_from_a_pool_per_process():
    assert settings.DATABASES["default"]["OPTIONS"]["pool"]["min_size"] == 1
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 0  # a pool requires it

    def request():
        with connection.cursor() as cursor:  # this thread's connection
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        connection.close()  # as request_finished does: back to the pool
        return pid

    pids = in_fresh_threads(request)
    assert len(set(pids)) < len(pids) / 2  # the same few server processes, reused
    assert connection.pool is not None
