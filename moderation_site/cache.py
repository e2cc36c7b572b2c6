"""Django's Redis cache with one Redis client per server and process.

Django makes a cache object per request context (``caches`` is context-local), and under
ASGI every request is a context of its own; Django's ``RedisCacheClient`` keeps its
connection pool on that object and builds a ``redis.Redis`` for every call. So each API
request opened a new TCP connection to Redis for the throttle, and every call built a
client (~0.13 ms of Python each, measured). A ``redis.Redis`` is thread-safe (it takes a
connection from its pool for each command) and its pool reopens itself after a fork
(Celery's prefork children), so this backend keeps one per server and process for every
cache object with the same settings. Beside it, the channel layer's Redis host options
(``channel_layer_host``): how this project talks to Redis is settled in one module.
"""

import threading

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django.utils.functional import cached_property


def channel_layer_host(url: str) -> dict:
    """channels-redis's host for `url`, retrying a command on a fresh connection.

    After a Redis restart every pooled connection of a process is dead, and redis-py's
    asyncio client does not retry by default: each of them failed its next command once
    (a review page's reconnect refused, a poke lost) before the pool dropped it. Three
    retries, 50 ms to 0.4 s apart (tests/review/test_counts_after_redis_restart.py).
    """
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    return {
        "address": url,
        "retry_on_error": [RedisConnectionError],
        "retry": Retry(ExponentialBackoff(cap=0.4, base=0.05), 3),
    }


_shared: dict[tuple, "SharedRedisCacheClient"] = {}
_lock = threading.Lock()


class SharedRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._redis = {}  # pool index -> redis.Redis on that pool

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._redis.get(index)
        if client is None:
            with _lock:
                if index not in self._pools:
                    self._pools[index] = self._pool_class.from_url(
                        self._servers[index], **self._pool_options
                    )
                client = self._redis.setdefault(
                    index, self._client(connection_pool=self._pools[index])
                )
        return client


class RedisCache(DjangoRedisCache):
    """``django.core.cache.backends.redis.RedisCache``, its client shared per process."""

    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            client = _shared.get(key)
            if client is None:
                client = _shared[key] = SharedRedisCacheClient(self._servers, **self._options)
        return client
