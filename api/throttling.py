"""Each client's own rate (ApiClient.throttle_rate), shared by all of its keys, counted in
the cache (Redis in production) as a DRF throttle; the error handler answers 429 with
Retry-After.

DRF's SimpleRateThrottle keeps every request's timestamp of the last window in one cache
value, read and written back whole on each request: two round trips and a pickled list as
long as the rate (a client allowed 10,000 a minute moved ~90 KB per request). This one
counts per fixed window and weighs the previous window by how much of it still overlaps
the sliding one (the "sliding window counter"): a fixed cost per request, one Redis round
trip (INCR, EXPIRE and GET pipelined), and at most the rate in any window's length, give
or take the previous window's spread.

When the cache cannot be reached (Redis restarting), the throttle lets the request through
and logs it: a client's upload is worth more than one uncounted request, and the intake
keeps working without Redis (the task waits for the sweeper, uploads.intake)."""

import logging
import math

from django.core.cache import cache as default_cache
from rest_framework.throttling import SimpleRateThrottle

from .authentication import client_of

log = logging.getLogger(__name__)


class ClientRateThrottle(SimpleRateThrottle):
    scope = "api_client"
    cache = default_cache

    def allow_request(self, request, view):
        client = client_of(request)
        if client is None:
            return True  # not a key: the authentication answers
        self.rate = client.throttle_rate
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.now = self.timer()
        window = int(self.now // self.duration)
        key = self.get_cache_key(request, view)
        current, previous = f"{key}:{window}", f"{key}:{window - 1}"
        try:
            counted, before = self._count(current, previous)
        except Exception as exc:  # the cache's own errors (redis ConnectionError, ...)
            log.warning("throttle not counted for client %s: %s", client.pk, type(exc).__name__)
            return True
        overlap = 1.0 - (self.now % self.duration) / self.duration
        if before * overlap + counted <= self.num_requests:
            return True
        self._uncount(current)  # only allowed requests count, as in DRF's throttles
        self.counts = (counted - 1, before, overlap)
        return False

    def wait(self):
        """Seconds until the weighted count falls below the rate: the previous window's
        weight shrinks as time passes, and the current window's count drops out when a
        new window starts."""
        counted, before, overlap = self.counts  # counted: without the denied request
        into = self.duration * (1.0 - overlap)  # seconds into the current window
        room = self.num_requests - counted - 1  # what the previous window's weight may take
        if room < 0 or before == 0:
            return max(1, math.ceil(self.duration - into))
        # counted + 1 + before * (1 - t / duration) <= num_requests, t into the window
        t = self.duration * (1.0 - room / before)
        return max(1, math.ceil(t - into))

    def get_rate(self):
        return None  # set per client in allow_request

    def get_cache_key(self, request, view):
        client = client_of(request)
        return self.cache_format % {"scope": self.scope, "ident": client.pk}

    def _redis(self):
        """The cache's own Redis client (moderation_site.cache), or None for other caches."""
        get_client = getattr(getattr(self.cache, "_cache", None), "get_client", None)
        return get_client(write=True) if get_client is not None else None

    def _count(self, current: str, previous: str) -> tuple[int, int]:
        """Count this request in the current window: (its count now, the previous one's)."""
        ttl = int(self.duration * 2) + 1
        redis = self._redis()
        if redis is not None:
            key = self.cache.make_and_validate_key(current)
            pipe = redis.pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, ttl)
            pipe.get(self.cache.make_and_validate_key(previous))
            counted, _, before = pipe.execute()
            return int(counted), int(before or 0)
        # Any other Django cache (the local-memory one of `make run`): the same counts
        # through the cache API, a few calls instead of one.
        if not self.cache.add(current, 1, ttl):
            try:
                self.cache.incr(current)
            except ValueError:  # expired between the two calls
                self.cache.add(current, 1, ttl)
        found = self.cache.get_many([current, previous])
        return int(found.get(current, 1)), int(found.get(previous, 0))

    def _uncount(self, current: str) -> None:
        try:
            redis = self._redis()
            if redis is not None:
                redis.decr(self.cache.make_and_validate_key(current))
            else:
                self.cache.decr(current)
        except Exception as exc:  # noqa: BLE001 - a denied request counted once too often
            log.warning("throttle could not uncount a denied request: %s", type(exc).__name__)
