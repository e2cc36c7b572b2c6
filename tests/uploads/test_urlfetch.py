"""The SSRF guard. The only network traffic is to servers started here on 127.0.0.1.

Every other address is refused before any connection is made; the ``connections`` fixture
fails a test that tries to connect anywhere else. DNS answers for made-up names are
simulated by replacing socket.getaddrinfo, which is where the guard meets the network.
"""

import datetime
import http.server
import io
import ipaddress
import socket
import ssl
import threading
import time
import types
from urllib.parse import unquote

import django.conf
import pytest
import urllib3.util.connection
from PIL import Image

from uploads import urlfetch
from uploads.urlfetch import FetchRefused, check_address, fetch_url

LOOPBACK = ["127.0.0.1/32"]


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 8), "red").save(buf, "PNG")
    return buf.getvalue()


PNG = _png()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append((self.path, dict(self.headers)))
        path, _, query = self.path.partition("?")
        name, _, arg = path.strip("/").partition("/")
        try:
            getattr(self, "route_" + name.replace("-", "_"), self.route_missing)(arg, query)
        except OSError:  # the client hung up, as it should when it has seen enough
            self.close_connection = True

    def send(self, status, body=b"", **headers):
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        if "Content_Length" not in headers and "Transfer_Encoding" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route_image(self, arg, query):
        self.send(200, PNG, Content_Type="image/png")

    def route_hops(self, arg, query):
        """/hops/N answers after N relative redirects."""
        if int(arg) == 0:
            self.route_image(arg, query)
        else:
            self.send(302, Location=f"/hops/{int(arg) - 1}")

    def route_to(self, arg, query):
        """/to?URL redirects to URL."""
        self.send(302, Location=unquote(query))

    def route_declared_huge(self, arg, query):
        self.send(200, Content_Type="image/png", Content_Length=str(10**9))
        self.server.stop.wait(2)

    def route_chunked(self, arg, query):
        self.send(200, Content_Type="image/png", Transfer_Encoding="chunked")
        for _ in range(2000):
            self.wfile.write(b"400\r\n" + b"x" * 0x400 + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def route_unsized(self, arg, query):
        """No Content-Length: the body ends when the connection closes."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Connection", "close")
        self.end_headers()
        for _ in range(2000):
            self.wfile.write(b"x" * 1024)

    def route_slow(self, arg, query):
        self.server.stop.wait(1.5)
        self.route_image(arg, query)

    def route_drip(self, arg, query):
        """Each byte comes quickly, but the whole body would take a minute."""
        self.send(200, Content_Type="image/png", Content_Length="1200")
        for _ in range(1200):
            if self.server.stop.wait(0.05):
                return
            self.wfile.write(b"x")
            self.wfile.flush()

    def route_missing(self, arg, query):
        self.send(404, b"not here", Content_Type="text/plain")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


def start_server(context: ssl.SSLContext | None = None) -> Server:
    server = Server(("127.0.0.1", 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.requests = []
    server.stop = threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_server(server: Server) -> None:
    server.stop.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def http_server():
    server = start_server()
    yield server
    stop_server(server)


@pytest.fixture
def server(http_server):
    """The module's server, with this test's requests only; its base URL is ``.url``."""
    http_server.requests.clear()
    http_server.url = f"http://127.0.0.1:{http_server.server_address[1]}"
    return http_server


@pytest.fixture(autouse=True)
def connections(monkeypatch):
    """Record every outgoing connection, and fail any that is not to 127.0.0.1."""
    made = []
    real = urllib3.util.connection.create_connection

    def guarded(address, *args, **kwargs):
        made.append(address[0])
        assert address[0] == "127.0.0.1", f"the test tried to connect to {address}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", guarded)
    return made


@pytest.fixture
def dns(monkeypatch):
    """Simulated DNS: set ``answers[name] = [ip, ...]`` (or None for "no such name")."""
    real = socket.getaddrinfo
    state = types.SimpleNamespace(answers={}, lookups=[])

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in state.answers:
            return real(host, port, *args, **kwargs)
        state.lookups.append(host)
        if state.answers[host] is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0))
            if ":" in ip
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in state.answers[host]
        ]

    monkeypatch.setattr(urlfetch.socket, "getaddrinfo", getaddrinfo)
    return state


@pytest.fixture
def without_settings(monkeypatch):
    """As if Django were not configured, whatever the test run's settings allow."""
    monkeypatch.setattr(django.conf, "settings", types.SimpleNamespace(configured=False))


def refused(url: str, **kwargs) -> FetchRefused:
    kwargs.setdefault("max_bytes", 1 << 20)
    with pytest.raises(FetchRefused) as caught:
        fetch_url(url, **kwargs)
    return caught.value


# Addresses


def teredo(client: str) -> str:
    """A Teredo address (server 65.54.227.120) whose obfuscated client is ``client``."""
    prefix = int(ipaddress.IPv6Address("2001:0:4136:e378:8000:63bf::"))
    return str(ipaddress.IPv6Address(prefix | (int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF)))


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "127.255.255.254",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "0.1.2.3",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "198.18.0.1",
        "192.0.2.1",
        "::1",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b::a00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::808:808",
        "2002:7f00:1::",
        "2002:a00:1::",
        "2002:a9fe:a9fe::1",
        teredo("10.0.0.1"),
        teredo("8.8.8.8"),
        "2001:db8::1",
    ],
)
def test_check_address_refuses(ip):
    with pytest.raises(FetchRefused) as caught:
        check_address(ip)
    assert caught.value.code == "refused_address"
    assert "only public internet addresses" in caught.value.message


def test_teredo_helper_embeds_the_client():
    assert ipaddress.IPv6Address(teredo("10.0.0.1")).teredo[1] == ipaddress.IPv4Address("10.0.0.1")


@pytest.mark.parametrize(
    "ip",
    [
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
        ipaddress.ip_address("93.184.215.14"),
    ],
)
def test_check_address_accepts_public(ip):
    check_address(ip)  # only checked: nothing ever connects to these


def test_check_address_messages_name_the_reason():
    with pytest.raises(FetchRefused, match="169.254.169.254 is a link-local address"):
        check_address("169.254.169.254")
    with pytest.raises(FetchRefused, match="contains 10.0.0.1, which is a private address"):
        check_address("64:ff9b::a00:1")
    with pytest.raises(FetchRefused, match="carrier-grade NAT"):
        check_address("100.64.0.1")


def test_allowed_networks_are_exact():
    check_address("127.0.0.1", LOOPBACK)
    check_address("10.9.8.7", ["10.0.0.0/8"])
    for ip in ("127.0.0.2", "::1", "::ffff:127.0.0.1", "10.0.0.1"):
        with pytest.raises(FetchRefused):
            check_address(ip, LOOPBACK)


# URLs refused before any connection


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.com/cat.png", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://127.0.0.1:70/_GET", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("data:image/png;base64,iVBORw0KGgo=", "scheme"),
        ("//example.com/cat.png", "scheme"),
        ("http://user@127.0.0.1/", "bad_url"),
        ("http://user:pw@example.com@127.0.0.1/", "bad_url"),
        ("http://127.0.0.1\\@example.com/", "bad_url"),
        ("http://exa mple.com/", "bad_url"),
        ("http://example.com/\r\nX-Injected: 1", "bad_url"),
        ("http:///cat.png", "bad_url"),
        ("http://127.0.0.1:99999/", "bad_url"),
        ("http://localhost/", "refused_address"),
        ("http://LOCALHOST:8080/", "refused_address"),
        ("http://127.0.0.1/", "refused_address"),
        ("http://127.1/", "refused_address"),
        ("http://2130706433/", "refused_address"),
        ("http://017700000001/", "refused_address"),
        ("http://0x7f.0.0.1/", "refused_address"),
        ("http://0x7f.1/", "refused_address"),
        ("http://0/", "refused_address"),
        ("http://[::1]/", "refused_address"),
        ("http://[::ffff:127.0.0.1]/", "refused_address"),
        ("http://[::ffff:a9fe:a9fe]/latest/meta-data/", "refused_address"),
        ("http://169.254.169.254/latest/meta-data/", "refused_address"),
        ("https://10.0.0.1/", "refused_address"),
    ],
)
def test_refuses_url_without_connecting(url, code, connections, without_settings):
    error = refused(url)
    assert (error.code, connections) == (code, [])


def test_refuses_name_that_resolves_to_private_address(dns, connections):
    dns.answers["images.example.test"] = ["10.0.0.1"]
    error = refused("http://images.example.test/cat.png")
    assert error.code == "refused_address"
    assert "10.0.0.1" in error.message
    assert connections == []


def test_one_private_answer_refuses_the_name(dns, server, connections):
    port = server.server_address[1]
    dns.answers["images.example.test"] = ["127.0.0.1", "169.254.169.254"]
    error = refused(f"http://images.example.test:{port}/image", allowed_networks=LOOPBACK)
    assert error.code == "refused_address"
    assert connections == []


def test_unknown_name(dns, connections):
    dns.answers["nowhere.example.test"] = None
    assert refused("https://nowhere.example.test/x.png").code == "dns"
    assert connections == []


# Fetching from the loopback test server


def test_fetches_an_image(server, connections):
    fetched = fetch_url(f"{server.url}/image", max_bytes=10_000, allowed_networks=LOOPBACK)
    assert fetched.data == PNG
    assert fetched.content_type == "image/png"
    assert fetched.final_url == f"{server.url}/image"
    assert connections == ["127.0.0.1"]
    path, headers = server.requests[0]
    assert headers["Accept-Encoding"] == "identity"


def test_connects_to_the_checked_address_with_the_original_host(dns, server, connections):
    """One DNS lookup; the connection goes to that answer; Host keeps the name."""
    port = server.server_address[1]
    dns.answers["images.example.test"] = ["127.0.0.1"]
    fetched = fetch_url(
        f"http://images.example.test:{port}/image?size=large",
        max_bytes=10_000,
        allowed_networks=LOOPBACK,
        headers={"User-Agent": "moderation-tests", "host": "ignored.example"},
    )
    assert fetched.data == PNG
    assert dns.lookups == ["images.example.test"]
    assert connections == ["127.0.0.1"]
    path, headers = server.requests[0]
    assert path == "/image?size=large"
    assert headers["Host"] == f"images.example.test:{port}"
    assert headers["User-Agent"] == "moderation-tests"


def test_follows_two_redirects(server):
    fetched = fetch_url(f"{server.url}/hops/2", max_bytes=10_000, allowed_networks=LOOPBACK)
    assert fetched.data == PNG
    assert fetched.final_url == f"{server.url}/hops/0"
    assert [path for path, _ in server.requests] == ["/hops/2", "/hops/1", "/hops/0"]


def test_follows_an_absolute_redirect(server):
    url = f"{server.url}/to?{server.url}/image"
    fetched = fetch_url(url, max_bytes=10_000, allowed_networks=LOOPBACK)
    assert fetched.final_url == f"{server.url}/image"


def test_three_redirects_are_the_limit(server):
    error = refused(f"{server.url}/hops/4", allowed_networks=LOOPBACK)
    assert error.code == "too_many_redirects"
    assert "more than 3 times" in error.message
    assert len(server.requests) == 4  # the fifth address is never asked for
    assert fetch_url(f"{server.url}/hops/3", max_bytes=10_000, allowed_networks=LOOPBACK).data
    assert refused(f"{server.url}/hops/1", allowed_networks=LOOPBACK, max_redirects=0).code == (
        "too_many_redirects"
    )


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/image",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[::1]:{port}/image",
        "http://[::ffff:127.0.0.1]:{port}/image",
        "http://0x7f.2:{port}/image",
    ],
)
def test_redirect_to_refused_address_is_not_followed(server, connections, target):
    target = target.format(port=server.server_address[1])
    error = refused(f"{server.url}/to?{target}", allowed_networks=LOOPBACK)
    assert error.code == "refused_address"
    assert connections == ["127.0.0.1"]  # the first hop only
    assert len(server.requests) == 1


def test_redirect_to_other_scheme_is_not_followed(server, connections):
    error = refused(f"{server.url}/to?file:///etc/passwd", allowed_networks=LOOPBACK)
    assert error.code == "scheme"
    assert connections == ["127.0.0.1"]


def test_redirect_to_named_private_host_is_not_followed(dns, server, connections):
    dns.answers["internal.example.test"] = ["10.0.0.1"]
    error = refused(f"{server.url}/to?http://internal.example.test/", allowed_networks=LOOPBACK)
    assert error.code == "refused_address"
    assert connections == ["127.0.0.1"]


def test_credentials_do_not_follow_a_redirect_to_another_host(dns, server):
    port = server.server_address[1]
    dns.answers["a.example.test"] = ["127.0.0.1"]
    dns.answers["b.example.test"] = ["127.0.0.1"]
    fetch_url(
        f"http://a.example.test:{port}/to?http://b.example.test:{port}/image",
        max_bytes=10_000,
        allowed_networks=LOOPBACK,
        headers={"Authorization": "Bearer secret", "X-Request-Id": "42"},
    )
    (_, first), (_, second) = server.requests
    assert first["Authorization"] == "Bearer secret"
    assert "Authorization" not in second
    assert second["X-Request-Id"] == "42"
    assert second["Host"] == f"b.example.test:{port}"


def test_refuses_declared_length_over_the_limit_without_reading(server):
    started = time.monotonic()
    error = refused(
        f"{server.url}/declared-huge", max_bytes=20 * 1024 * 1024, allowed_networks=LOOPBACK
    )
    assert error.code == "too_large"
    assert "20 MB" in error.message
    assert time.monotonic() - started < 1  # the server never sends the body


@pytest.mark.parametrize("path", ["/chunked", "/unsized"])
def test_refuses_body_over_the_limit_without_a_length(server, path):
    error = refused(f"{server.url}{path}", max_bytes=100 * 1024, allowed_networks=LOOPBACK)
    assert error.code == "too_large"
    assert error.message == "The file is larger than the limit of 100 KB."


def test_body_at_the_limit_is_accepted(server):
    fetched = fetch_url(f"{server.url}/image", max_bytes=len(PNG), allowed_networks=LOOPBACK)
    assert fetched.data == PNG
    error = refused(f"{server.url}/image", max_bytes=len(PNG) - 1, allowed_networks=LOOPBACK)
    assert error.code == "too_large"


def test_http_error_status(server):
    error = refused(f"{server.url}/missing", allowed_networks=LOOPBACK)
    assert error.code == "http_error"
    assert "404" in error.message


def test_slow_server_times_out(server):
    started = time.monotonic()
    error = refused(f"{server.url}/slow", timeout=0.3, allowed_networks=LOOPBACK)
    assert error.code == "timeout"
    assert time.monotonic() - started < 1


def test_trickling_body_hits_the_overall_deadline(server):
    started = time.monotonic()
    error = refused(f"{server.url}/drip", timeout=0.5, allowed_networks=LOOPBACK)
    assert error.code == "timeout"
    assert time.monotonic() - started < 1.5


def test_connection_refused(connections):
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = refused(f"http://127.0.0.1:{port}/", allowed_networks=LOOPBACK)
    assert error.code == "connection"


# Default allowed networks


def test_default_allows_no_extra_networks(server, without_settings, connections):
    error = refused(f"{server.url}/image")
    assert error.code == "refused_address"
    assert connections == []
    assert server.requests == []


def test_default_allows_no_extra_networks_in_django_settings(server, monkeypatch, connections):
    monkeypatch.setattr(django.conf, "settings", types.SimpleNamespace(configured=True))
    assert refused(f"{server.url}/image").code == "refused_address"
    assert connections == []


def test_django_setting_can_allow_a_network(server, monkeypatch):
    configured = types.SimpleNamespace(configured=True, URL_FETCH_ALLOWED_NETWORKS=LOOPBACK)
    monkeypatch.setattr(django.conf, "settings", configured)
    assert fetch_url(f"{server.url}/image", max_bytes=10_000).data == PNG


# TLS: the connection goes to the checked address, but TLS is spoken to the name


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A private CA and an HTTPS server on 127.0.0.1 whose certificate names one host."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def certificate(subject, issuer, key, signer, *, ca, names=()):
        """Signed by ``signer``; with the key identifiers strict verifiers want."""
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
        if ca:
            usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
            builder = builder.add_extension(usage, critical=True)
        return builder.sign(signer, hashes.SHA256())

    folder = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = certificate("Test CA", "Test CA", ca_key, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certificate(
        "images.example.test", "Test CA", key, ca_key, ca=False, names=["images.example.test"]
    )
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (folder / "server.pem").write_bytes(
        cert.public_bytes(pem)
        + key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "server.pem")
    sni = []
    context.sni_callback = lambda sock, name, ctx: sni.append(name)
    server = start_server(context)
    yield types.SimpleNamespace(server=server, ca=folder / "ca.pem", sni=sni)
    stop_server(server)


def test_https_verifies_the_certificate_against_the_name(tls, dns, monkeypatch, connections):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))  # trust the test CA only
    port = tls.server.server_address[1]
    dns.answers["images.example.test"] = ["127.0.0.1"]
    tls.sni.clear()
    fetched = fetch_url(
        f"https://images.example.test:{port}/image", max_bytes=10_000, allowed_networks=LOOPBACK
    )
    assert fetched.data == PNG
    assert tls.sni == ["images.example.test"]
    assert connections == ["127.0.0.1"]
    assert tls.server.requests[-1][1]["Host"] == f"images.example.test:{port}"


def test_https_refuses_a_certificate_for_another_name(tls, dns, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))
    port = tls.server.server_address[1]
    dns.answers["other.example.test"] = ["127.0.0.1"]
    error = refused(f"https://other.example.test:{port}/image", allowed_networks=LOOPBACK)
    assert error.code == "connection"
    assert "secure connection" in error.message


def test_https_refuses_an_untrusted_certificate(tls, dns):
    port = tls.server.server_address[1]
    dns.answers["images.example.test"] = ["127.0.0.1"]
    error = refused(f"https://images.example.test:{port}/image", allowed_networks=LOOPBACK)
    assert error.code == "connection"
