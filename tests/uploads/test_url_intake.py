"""Image URLs on the upload page go through the SSRF guard, then the same pipeline."""

import http.server
import threading

import pytest
from django.urls import reverse

from uploads.models import MediaItem


@pytest.fixture
def image_server(jpeg):
    """A loopback HTTP server with an image, a redirect to a refused address, and junk."""
    body = jpeg("coffee")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/coffee.jpg":
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif self.path == "/to-metadata":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.end_headers()
            else:
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")  # a lie: content decides
                self.end_headers()
                self.wfile.write(b"<html>not an image</html>")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def loopback_allowed(settings):
    settings.URL_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]


def submit_url(client, url):
    return client.post(reverse("uploads:submit"), {"url": url}, HTTP_ACCEPT="application/json")


def test_an_image_url_is_fetched_stored_and_analysed(
    client, uploader, image_server, loopback_allowed, django_capture_on_commit_callbacks
):
    client.force_login(uploader)
    with django_capture_on_commit_callbacks(execute=True):
        response = submit_url(client, f"{image_server}/coffee.jpg")
    assert response.status_code == 200, response.content
    item = MediaItem.objects.get()
    assert item.source_url == f"{image_server}/coffee.jpg" and item.original_name == "coffee.jpg"
    assert item.status == MediaItem.Status.PASSED


def test_a_redirect_to_a_refused_address_is_refused_with_a_message(
    client, uploader, image_server, loopback_allowed
):
    client.force_login(uploader)
    response = submit_url(client, f"{image_server}/to-metadata")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "refused_address"
    assert MediaItem.objects.count() == 0


def test_a_url_that_is_not_an_image_is_refused_by_content(
    client, uploader, image_server, loopback_allowed
):
    client.force_login(uploader)
    response = submit_url(client, f"{image_server}/fake.jpg")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "unsupported_format"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/admin/",
        "http://localhost/",
        "file:///etc/passwd",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/",
        "not a url",
    ],
)
def test_internal_and_malformed_urls_are_refused_without_the_test_allowance(client, uploader, url):
    client.force_login(uploader)
    response = submit_url(client, url)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] in {"refused_address", "scheme", "bad_url"}
    assert MediaItem.objects.count() == 0
