"""The websocket origin check: scheme, host and port exactly as listed.

A browser sends the origin of the page that opens a websocket, and sends the site's
cookies with it whatever that page is; so only pages served from our own origins may open
one. channels' AllowedHostsOriginValidator compares the host only (any scheme, any port of
an allowed host passes: http://127.0.0.1:9999, https://127.0.0.1). channels' OriginValidator
does compare scheme and port, but its list is fixed when the application is built and it
also takes scheme-less and "*" patterns, which match any scheme and port. This one reads
settings.WEBSOCKET_ALLOWED_ORIGINS ("https://mod.example.org", "http://127.0.0.1:8000";
"https://*.example.org" for any subdomain, as in CSRF_TRUSTED_ORIGINS), refuses a missing or
opaque ("null") origin, and fails at start on an entry that is not an origin.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origin(value: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, the default port filled in; None if it is not
    an http(s) origin (a path, credentials, a query or "null" make it none)."""
    try:
        parts = urlsplit(value.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def allowed_origins() -> list[tuple[str, str, int]]:
    """The setting, parsed; an entry that is not an origin is a configuration error."""
    parsed = []
    for entry in settings.WEBSOCKET_ALLOWED_ORIGINS:
        origin = parse_origin(entry)
        if origin is None:
            raise ImproperlyConfigured(
                f"WEBSOCKET_ALLOWED_ORIGINS: {entry!r} is not an origin; write scheme, host "
                "and port as the browser's address bar shows them, e.g. "
                "https://mod.example.org or http://127.0.0.1:8000."
            )
        parsed.append(origin)
    return parsed


def origin_allowed(value: str | None) -> bool:
    origin = parse_origin(value) if value else None
    if origin is None:
        return False
    scheme, host, port = origin
    for a_scheme, a_host, a_port in allowed_origins():
        if (a_scheme, a_port) != (scheme, port):
            continue
        if host == a_host:
            return True
        if a_host.startswith("*.") and host.endswith(a_host[1:]):
            return True
    return False


class ExactOriginValidator:
    """ASGI middleware for websockets: connections from another origin are denied."""

    def __init__(self, application):
        self.application = application
        allowed_origins()  # a bad entry stops the server at start, not at the first socket

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            raise ValueError("ExactOriginValidator checks websocket connections only.")
        origin = None
        for name, value in scope.get("headers", []):
            if name == b"origin":
                origin = value.decode("latin1")
        if origin_allowed(origin):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
