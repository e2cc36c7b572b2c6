"""API clients with keys, a DRF client that sends them, and a loopback image server."""

import http.server
import threading

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from api import services
from api.authentication import forget_keys
from api.hashes import forget_rules
from api.models import SCOPES
from tests.conftest import encode


@pytest.fixture(autouse=True)
def _fresh_per_process_state():
    """Throttle counts live in the cache, keyed by client id: ids come back after a
    transactional test's flush, so another test's requests must not count here. Lookups
    keep a policy's rules for a second and keys for API_KEY_CACHE_S; each test has its
    own database."""
    cache.clear()
    forget_rules()
    forget_keys()
    yield
    forget_rules()
    forget_keys()


@pytest.fixture
def api_client_row(db):
    return services.create_client("partner", scopes=SCOPES)


@pytest.fixture
def api_key(api_client_row):
    _, raw = services.issue_key(api_client_row, "tests")
    return raw


@pytest.fixture
def api(api_key):
    """An HTTP client (DRF's test client) sending the key on every request."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    return client


def key_client(name="partner", scopes=("analyse",), **fields):
    """A new client (its row) and a DRF test client sending one of its keys."""
    row = services.create_client(name, scopes=scopes, **fields)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {services.issue_key(row)[1]}")
    return row, client


def key_with(*scopes, **fields):
    """A DRF test client for a new client holding just these scopes (named after them)."""
    return key_client("-".join(scopes), scopes, **fields)[1]


@pytest.fixture
def loopback_allowed(settings):
    """The test allowance through the SSRF guard for the servers tests start on loopback."""
    settings.URL_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]


@pytest.fixture
def serve():
    """``serve(routes)`` starts a loopback HTTP server and returns its base URL: a path
    answers its bytes (as image/jpeg: content decides, not the type), a str value is a
    302 to that address, anything else 404."""
    servers = []

    def start(routes: dict) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = routes.get(self.path)
                if isinstance(body, str):
                    self.send_response(302)
                    self.send_header("Location", body)
                    self.end_headers()
                    return
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def images(jpeg, photo):
    """What the loopback server serves, by path."""
    return {
        "/coffee.jpg": jpeg("coffee"),
        "/coffee-again.jpg": jpeg("coffee"),
        "/rocket.jpg": jpeg("rocket"),
        "/astronaut.jpg": jpeg("astronaut"),
        "/chelsea.jpg": encode(photo("chelsea"), quality=60),
        "/page.html": b"<html>not an image</html>",
        "/to-metadata": "http://169.254.169.254/latest/meta-data/",
    }


@pytest.fixture
def image_server(serve, images):
    """A loopback HTTP server with images, a redirect to a refused address, and junk."""
    return serve(images)
