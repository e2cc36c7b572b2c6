"""Fetch an image by URL without letting the URL reach inside our network (SSRF).

Every hop is checked the same way: http(s) only, no credentials in the URL, the host is
resolved once and refused if any of its addresses is not a public internet address, and
the connection then goes to that checked address (so DNS cannot answer differently the
second time), with the original name in the Host header and for TLS (SNI and certificate
verification). Redirects are followed by hand so that each one is checked again.

``post_url`` sends a body (client callbacks) through the same guard: the same checks and
pinned address, a timeout over the whole exchange, a bounded read of the answer, and no
redirects followed at all (a 3xx is returned as the answer), so it never reaches a
refused host either.
"""

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

import urllib3
from urllib3 import HTTPHeaderDict
from urllib3.exceptions import HTTPError, NewConnectionError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from moderation_site.errors import DomainError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchRefused(DomainError):
    """A URL we will not fetch, or a fetch that failed; ``message`` is for the user."""

    def __init__(self, code: str, message: str):
        super().__init__(message, code=code)
        self.message = message


@dataclass(frozen=True)
class Fetched:
    data: bytes
    final_url: str
    content_type: str


@dataclass(frozen=True)
class Posted:
    """A POST's answer, whatever its status: the caller decides what counts as success."""

    status: int
    body: bytes  # at most the caller's max_response_bytes (the rest is not read)
    headers: HTTPHeaderDict


_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 64 * 1024
_DEFAULT_HEADERS = {"User-Agent": "moderation-url-fetch/1", "Accept": "image/*"}
# Credentials and cookies must not follow a redirect to another site.
_PRIVATE_HEADERS = {"authorization", "cookie", "proxy-authorization"}
# Ranges that ipaddress does not (in every Python version) count as non-global.
_SPECIAL = [
    (ipaddress.ip_network(net), why)
    for net, why in (
        ("0.0.0.0/8", "'this network'"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("198.18.0.0/15", "benchmarking"),
        ("240.0.0.0/4", "reserved"),
        ("::/96", "deprecated IPv4-compatible"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("2001::/32", "Teredo"),
        ("fec0::/10", "site-local"),
    )
]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# IPv6 ranges that only carry an IPv4 address, which alone decides whether to connect.
_IPV4_CARRIERS = [ipaddress.ip_network("::ffff:0:0/96"), _NAT64]


def check_address(ip: str | IPAddress, allowed_networks=()) -> None:
    """Raise FetchRefused unless ``ip`` is a public internet address or explicitly allowed."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise FetchRefused("refused_address", f"{ip!r} is not an IP address.") from None
    allowed = [ipaddress.ip_network(net) for net in allowed_networks]
    if any(addr.version == net.version and addr in net for net in allowed):
        return
    carrier = addr.version == 6 and any(addr in net for net in _IPV4_CARRIERS)
    why = None if carrier else _why_not_public(addr)
    if why:
        raise FetchRefused(
            "refused_address",
            f"The address {addr} is {why}; only public internet addresses can be fetched.",
        )
    for embedded in _embedded_ipv4(addr):
        why = _why_not_public(embedded)
        if why:
            raise FetchRefused(
                "refused_address",
                f"The address {addr} contains {embedded}, which is {why}; only public "
                "internet addresses can be fetched.",
            )


def _embedded_ipv4(addr: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, NAT64, 6to4, Teredo, compatible)."""
    if addr.version == 4:
        return []
    found = [a for a in (addr.ipv4_mapped, addr.sixtofour, *(addr.teredo or ())) if a]
    if addr in _NAT64 or addr in _IPV4_COMPATIBLE:
        found.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return found


def _why_not_public(addr: IPAddress) -> str | None:
    if addr.is_unspecified:
        return "the unspecified address"
    for flag in ("loopback", "link-local", "multicast"):
        if getattr(addr, "is_" + flag.replace("-", "_")):
            return f"a {flag} address"
    for net, name in _SPECIAL:
        if addr.version == net.version and addr in net:
            return f"in the {name} range ({net})"
    if addr.is_reserved:
        return "a reserved address"
    if addr.is_private:
        return "a private address"
    if not addr.is_global:
        return "not globally routable"
    return None


def fetch_url(
    url: str,
    *,
    max_bytes: int,
    timeout: float = 10.0,
    max_redirects: int = 3,
    allowed_networks=None,
    headers=None,
) -> Fetched:
    """GET ``url`` (following up to ``max_redirects`` checked redirects) within ``timeout``.

    ``timeout`` bounds the whole fetch, redirects and body included, as well as each
    connect and read. ``allowed_networks`` lists CIDRs permitted despite the rules; by
    default ``settings.URL_FETCH_ALLOWED_NETWORKS`` when Django is configured, else none.
    """
    if allowed_networks is None:
        allowed_networks = _configured_networks()
    deadline = time.monotonic() + timeout
    extra = HTTPHeaderDict(headers or {})
    origin = None
    redirects = 0
    while True:
        url = url.strip()
        scheme, host, port, target, host_header = _parse(url)
        if origin is not None and origin != (scheme, host, port):
            for name in _PRIVATE_HEADERS:
                extra.discard(name)
        origin = (scheme, host, port)
        addresses = _resolve(host, port, allowed_networks)
        request_headers = HTTPHeaderDict(_DEFAULT_HEADERS)
        request_headers.update(extra)
        # Always ours: the checked name, and no compression (it could inflate past max_bytes).
        request_headers.update({"Host": host_header, "Accept-Encoding": "identity"})
        pool, response = _connect(scheme, host, port, addresses, target, request_headers, deadline)
        try:
            if response.status in _REDIRECTS and response.headers.get("Location"):
                if redirects >= max_redirects:
                    raise FetchRefused(
                        "too_many_redirects",
                        f"The address redirected more than {max_redirects} times.",
                    )
                redirects += 1
                url = urljoin(url, response.headers["Location"].strip())
                continue
            if not 200 <= response.status < 300:
                raise FetchRefused(
                    "http_error", f"The server answered with HTTP status {response.status}."
                )
            data = _read_body(response, max_bytes, deadline)
            return Fetched(data, url, response.headers.get("Content-Type", ""))
        finally:
            response.release_conn()
            pool.close()


def post_url(
    url: str,
    body: bytes,
    *,
    headers=None,
    timeout: float = 10.0,
    max_response_bytes: int = 64 * 1024,
    allowed_networks=None,
) -> Posted:
    """POST ``body`` to ``url`` through the guard and return the answer, whatever its status.

    The same checks as ``fetch_url`` (scheme, no credentials, every resolved address public
    or in ``allowed_networks``, the connection pinned to the checked address); ``timeout``
    bounds the whole exchange. Redirects are never followed: a 3xx comes back as the answer.
    At most ``max_response_bytes`` of the answer are read (the rest is dropped, not an
    error). Raises FetchRefused for a refused URL or address and for connection failures
    and timeouts (codes as in ``fetch_url``).
    """
    if allowed_networks is None:
        allowed_networks = _configured_networks()
    deadline = time.monotonic() + timeout
    scheme, host, port, target, host_header = _parse(url.strip())
    addresses = _resolve(host, port, allowed_networks)
    request_headers = HTTPHeaderDict({"User-Agent": "moderation-callback/1", "Accept": "*/*"})
    request_headers.update(HTTPHeaderDict(headers or {}))
    request_headers.update({"Host": host_header, "Accept-Encoding": "identity"})
    pool, response = _connect(
        scheme, host, port, addresses, target, request_headers, deadline, "POST", body
    )
    try:
        answer = _read_at_most(response, max_response_bytes, deadline)
        return Posted(response.status, answer, response.headers)
    finally:
        response.release_conn()
        pool.close()


def _read_at_most(response, limit: int, deadline: float) -> bytes:
    """Up to ``limit`` bytes of the answer, within the deadline; the rest is left unread."""
    body = bytearray()
    sock = getattr(response.connection, "sock", None)
    try:
        while len(body) < limit:
            remaining = _remaining(deadline)
            if sock is not None:
                sock.settimeout(remaining)
            chunk = response.read1(min(_CHUNK, limit - len(body)), decode_content=False)
            if not chunk:
                break
            body += chunk
    except (Urllib3Timeout, TimeoutError):
        raise FetchRefused("timeout", "The answer took too long.") from None
    except (HTTPError, OSError):
        raise FetchRefused(
            "connection", "The connection failed while reading the answer."
        ) from None
    return bytes(body)


def _configured_networks():
    try:
        from django.conf import settings
    except ImportError:
        return ()
    if not settings.configured:
        return ()
    return getattr(settings, "URL_FETCH_ALLOWED_NETWORKS", ())


def _parse(url: str) -> tuple[str, str, int, str, str]:
    """Split and check a URL: (scheme, ASCII host, port, request target, Host header)."""
    if any(ord(c) < 0x21 or c in "\\\x7f" for c in url):
        raise FetchRefused(
            "bad_url",
            "The address contains spaces or other characters not allowed in a web address.",
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchRefused("bad_url", "That is not a valid web address.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchRefused("scheme", "Only http:// and https:// addresses can be fetched.")
    if "@" in parts.netloc:
        raise FetchRefused("bad_url", "Addresses with a user name or password are not accepted.")
    if not parts.hostname:
        raise FetchRefused("bad_url", "The address has no host name.")
    try:
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise FetchRefused("bad_url", "The address's host name is not valid.") from None
    default_port = 443 if scheme == "https" else 80
    port = port or default_port
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default_port else f"{shown}:{port}"
    target = quote(parts.path or "/", safe="/%!$&'()*+,;=:@~-._")
    if parts.query:
        target += "?" + quote(parts.query, safe="/%!$&'()*+,;=:@~-._?")
    return scheme, host, port, target, host_header


def _resolve(host: str, port: int, allowed_networks) -> list[str]:
    """Resolve once and check every answer; one bad address refuses the host."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise FetchRefused("dns", f"The host name {host} could not be found.") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise FetchRefused("dns", f"The host name {host} could not be found.")
    for address in addresses:
        check_address(address, allowed_networks)
    return addresses


def _connect(scheme, host, port, addresses, target, headers, deadline, method="GET", body=None):
    """Send the request to the first checked address that accepts a connection."""
    failure = None
    for address in addresses:
        remaining = _remaining(deadline)
        options = {
            "timeout": urllib3.Timeout(connect=remaining, read=remaining),
            "retries": False,
            "maxsize": 1,
        }
        if scheme == "https":
            # Connect to the address, but speak TLS (SNI, certificate) to the host name.
            pool = urllib3.HTTPSConnectionPool(
                address, port, server_hostname=host, assert_hostname=host, **options
            )
        else:
            pool = urllib3.HTTPConnectionPool(address, port, **options)
        try:
            response = pool.urlopen(
                method,
                target,
                body=body,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                assert_same_host=False,
            )
            return pool, response
        except NewConnectionError:  # before Urllib3Timeout, which it subclasses
            failure = FetchRefused("connection", f"Could not connect to {host}.")
        except Urllib3Timeout:
            failure = FetchRefused("timeout", f"{host} did not answer in time.")
        except SSLError:
            failure = FetchRefused("connection", f"Could not make a secure connection to {host}.")
        except (HTTPError, OSError):
            failure = FetchRefused("connection", f"The connection to {host} failed.")
        pool.close()
        if failure.code == "timeout":
            break
    raise failure


def _read_body(response, max_bytes: int, deadline: float) -> bytes:
    """Read at most ``max_bytes``, refusing as soon as the body is known to be larger."""
    length = response.headers.get("Content-Length", "")
    if length.strip().isdigit() and int(length) > max_bytes:
        raise _too_large(max_bytes)
    body = bytearray()
    sock = getattr(response.connection, "sock", None)
    try:
        while True:
            remaining = _remaining(deadline)
            if sock is not None:
                sock.settimeout(remaining)  # so that a trickle cannot outlast the deadline
            chunk = response.read1(_CHUNK, decode_content=False)
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > max_bytes:
                raise _too_large(max_bytes)
    except (Urllib3Timeout, TimeoutError):
        raise FetchRefused("timeout", "The download took too long.") from None
    except (HTTPError, OSError):
        raise FetchRefused("connection", "The connection failed during the download.") from None


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchRefused("timeout", "The download took too long.")
    return remaining


def _too_large(max_bytes: int) -> FetchRefused:
    if max_bytes >= 1 << 20:
        limit = f"{max_bytes / (1 << 20):.1f}".removesuffix(".0") + " MB"
    elif max_bytes >= 1 << 10:
        limit = f"{max_bytes / (1 << 10):.1f}".removesuffix(".0") + " KB"
    else:
        limit = f"{max_bytes} bytes"
    return FetchRefused("too_large", f"The file is larger than the limit of {limit}.")
