"""API keys in the ``Authorization: Api-Key <key>`` (or ``X-Api-Key``) header.

A key that is unknown, revoked, or whose client is inactive answers 401 in the one error
shape; the request then acts as the client's service user, with ``request.auth`` the key.
"""

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from .models import ApiKey

KEYWORD = "Api-Key"
# Writing last_used_at on every request would make each call a write: once a minute is
# enough to tell a live key from a dead one.
LAST_USED_EVERY_S = 60


def key_from(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.startswith(KEYWORD + " "):
        return header[len(KEYWORD) + 1 :].strip()
    return request.META.get("HTTP_X_API_KEY") or None


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        raw = key_from(request)
        if raw is None:
            return None
        key = (
            ApiKey.objects.select_related("client", "client__user")
            .filter(digest=ApiKey.digest_of(raw), revoked_at__isnull=True)
            .first()
        )
        if key is None or not key.client.active or not key.client.user.is_active:
            raise exceptions.AuthenticationFailed("This API key is not valid (or was revoked).")
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > LAST_USED_EVERY_S:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return key.client.user, key

    def authenticate_header(self, request):
        return KEYWORD


def client_of(request):
    """The ApiClient behind a request authenticated by a key, else None."""
    key = getattr(request, "auth", None)
    return key.client if isinstance(key, ApiKey) else None
