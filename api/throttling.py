"""Each client's own rate (ApiClient.throttle_rate), shared by all of its keys; DRF's
throttle machinery (cache-backed: Redis in production) does the counting, and the error
handler answers 429 with Retry-After.

When the cache cannot be reached (Redis restarting), the throttle lets the request through
and logs it: a client's upload is worth more than one uncounted request, and the intake
keeps working without Redis (the task waits for the sweeper, uploads.intake)."""

import logging

from rest_framework.throttling import SimpleRateThrottle

from .authentication import client_of

log = logging.getLogger(__name__)


class ClientRateThrottle(SimpleRateThrottle):
    scope = "api_client"

    def allow_request(self, request, view):
        client = client_of(request)
        if client is None:
            return True  # not a key: the authentication answers
        self.rate = client.throttle_rate
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # the cache's own errors (redis ConnectionError, ...)
            log.warning("throttle not counted for client %s: %s", client.pk, type(exc).__name__)
            return True

    def get_rate(self):
        return None  # set per client in allow_request

    def get_cache_key(self, request, view):
        client = client_of(request)
        return self.cache_format % {"scope": self.scope, "ident": client.pk}
