"""API keys in the ``Authorization: Api-Key <key>`` (or ``X-Api-Key``) header.

A key that is unknown, revoked, or whose client is inactive answers 401 in the one error
shape; the request then acts as the client's service user, with ``request.auth`` the key.

A valid key's row (with its client and service user) is kept by each process for
``API_KEY_CACHE_S`` (2 s): a client's burst of requests pays the key's query once instead
of on every request (a third of a lookup's time over HTTP, bench/api_lookup.py). Any save
or delete of a key, a client or a user, and ``services.revoke_key``, empty this process's
cache at once; another process sees a revocation, a deactivation or an edited client
within ``API_KEY_CACHE_S``. Unknown keys are never cached, so guessing fills nothing.
"""

import threading
import time

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from .models import ApiKey

KEYWORD = "Api-Key"
# Writing last_used_at on every request would make each call a write: once a minute is
# enough to tell a live key from a dead one.
LAST_USED_EVERY_S = 60
# Distinct keys kept at most per process; past it the cache starts afresh.
KEYS_KEPT = 10_000

_keys: dict[str, tuple[float, ApiKey]] = {}  # digest -> (read at, key with client and user)
_lock = threading.Lock()


def forget_keys(**_signal_kwargs) -> None:
    """Read every key afresh at its next request (in this process)."""
    with _lock:
        _keys.clear()


def key_from(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.startswith(KEYWORD + " "):
        return header[len(KEYWORD) + 1 :].strip()
    return request.META.get("HTTP_X_API_KEY") or None


def valid_key(raw: str) -> ApiKey | None:
    """The live key ``raw`` names (its client active, its user active), else None; read
    from the database at most once per ``API_KEY_CACHE_S`` per process."""
    digest = ApiKey.digest_of(raw)
    now = time.monotonic()
    kept = _keys.get(digest)
    if kept is not None and now - kept[0] < settings.API_KEY_CACHE_S:
        return kept[1]
    key = (
        ApiKey.objects.select_related("client", "client__user")
        .filter(digest=digest, revoked_at__isnull=True)
        .first()
    )
    if key is None or not key.client.active or not key.client.user.is_active:
        with _lock:
            _keys.pop(digest, None)
        return None
    with _lock:
        if len(_keys) >= KEYS_KEPT:
            _keys.clear()
        _keys[digest] = (now, key)
    return key


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        raw = key_from(request)
        if raw is None:
            return None
        key = valid_key(raw)
        if key is None:
            raise exceptions.AuthenticationFailed("This API key is not valid (or was revoked).")
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > LAST_USED_EVERY_S:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return key.client.user, key

    def authenticate_header(self, request):
        return KEYWORD


def client_of(request):
    """The ApiClient behind a request authenticated by a key, else None."""
    key = getattr(request, "auth", None)
    return key.client if isinstance(key, ApiKey) else None
