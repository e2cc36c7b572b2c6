"""A deployment that checks out: the production settings, as a node started as documented.

The settings are read in subprocesses, from the project's settings module (the suite itself
runs on tests.settings, a plain-http instance) and with nothing of this process's
environment but PATH: what decides is what each test passes, `.env.example` for the
documented production environment.
"""

import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.services import free_port

REPO = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = REPO / ".env.example"
HOST = "moderation.example.org"  # ALLOWED_HOSTS in .env.example

needs_no_dotenv = pytest.mark.skipif(
    (REPO / ".env").exists(), reason="a .env file in the checkout changes the defaults read"
)


def documented_environment() -> dict[str, str]:
    """The variables `.env.example` sets (its uncommented lines), as CI reads them."""
    env = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.isidentifier() and not line.startswith("#"):
            env[name] = value
    return env


def production_environment(**extra) -> dict[str, str]:
    return {**documented_environment(), "SECRET_KEY": secrets.token_urlsafe(50), **extra}


def run(args, env: dict[str, str], timeout=120) -> subprocess.CompletedProcess:
    base = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "moderation_site.settings",
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


SETTINGS_DUMP = (
    "import json, moderation_site.settings as s; print(json.dumps({name: getattr(s, name) "
    "for name in ('DEBUG', 'SECRET_KEY', 'SECURE_SSL_REDIRECT', 'SECURE_PROXY_SSL_HEADER', "
    "'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_HSTS_PRELOAD', "
    "'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'URL_FETCH_ALLOWED_NETWORKS')}))"
)


def settings_with(env: dict[str, str]) -> dict:
    done = run(["-c", SETTINGS_DUMP], env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("debug", [None, "false", "0"])
def test_without_a_secret_key_debug_off_refuses_to_start(debug):
    env = {"SECRET_KEY": ""} if debug is None else {"SECRET_KEY": "", "DEBUG": debug}
    done = run(["manage.py", "check"], env)
    assert done.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set." in done.stderr
    assert "secrets.token_urlsafe" in done.stderr  # says how to make one


@needs_no_dotenv
def test_a_local_trial_with_debug_on_needs_no_variable():
    """What `make run` starts with (DEBUG=true and nothing else): plain http, a dev key."""
    local = settings_with({"DEBUG": "true"})
    assert local["SECRET_KEY"].startswith("django-insecure-")  # check --deploy flags it (W009)
    assert local["SECURE_SSL_REDIRECT"] is False and local["SECURE_HSTS_SECONDS"] == 0
    assert local["SESSION_COOKIE_SECURE"] is False and local["CSRF_COOKIE_SECURE"] is False
    # The SSRF guard lets no loopback URL through unless URL_FETCH_ALLOWED_NETWORKS says so.
    assert local["URL_FETCH_ALLOWED_NETWORKS"] == []


@needs_no_dotenv
def test_debug_off_defaults_are_a_deployment_over_https():
    deployed = settings_with({"SECRET_KEY": secrets.token_urlsafe(50)})
    assert deployed["DEBUG"] is False
    assert deployed["SECURE_SSL_REDIRECT"] is True
    assert deployed["SESSION_COOKIE_SECURE"] is True and deployed["CSRF_COOKIE_SECURE"] is True
    assert deployed["SECURE_HSTS_SECONDS"] == 31_536_000
    # Commitments for the whole domain, and a header only a proxy can vouch for: set, not assumed.
    assert deployed["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert deployed["SECURE_HSTS_PRELOAD"] is False
    assert deployed["SECURE_PROXY_SSL_HEADER"] is None
    assert deployed["URL_FETCH_ALLOWED_NETWORKS"] == []


def test_the_documented_environment_sets_what_the_deploy_check_reads():
    env = documented_environment()
    assert env["DEBUG"] == "false" and env["SECRET_KEY"] == ""  # each deployment makes its own
    assert env["SECURE_PROXY_SSL_HEADER"] == "HTTP_X_FORWARDED_PROTO,https"
    assert env["URL_FETCH_ALLOWED_NETWORKS"] == ""
    parsed = settings_with(production_environment())
    assert parsed["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert parsed["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and parsed["SECURE_HSTS_PRELOAD"]


def test_a_proxy_header_without_its_value_is_refused():
    done = run(
        ["-c", "import moderation_site.settings"],
        production_environment(SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO"),
    )
    assert done.returncode != 0 and "SECURE_PROXY_SSL_HEADER takes a header" in done.stderr


def test_the_deploy_check_passes_with_the_documented_production_environment():
    """As CI does (.ci/run): `check --deploy --fail-level WARNING` on .env.example + a key."""
    done = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_environment()
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_the_deploy_check_fails_when_a_production_setting_is_off():
    env = production_environment(SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="0")
    done = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert done.returncode != 0
    assert "security.W008" in done.stderr and "security.W004" in done.stderr


@pytest.fixture(scope="module")
def production_node(tmp_path_factory):
    """The node on the documented production environment, started as the README (and
    `make run`) says: collectstatic, then `python -m moderation_site.server` (daphne with
    request bodies bounded), behind a (pretend) proxy that ends TLS."""
    tmp = tmp_path_factory.mktemp("node")
    env = production_environment(
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        PRIVATE_MEDIA_ROOT=str(tmp / "private"),
        STATIC_ROOT=str(tmp / "static"),
        LOG_LEVEL="WARNING",
    )
    collected = run(["manage.py", "collectstatic", "--noinput", "--verbosity", "0"], env)
    assert collected.returncode == 0, collected.stderr
    port = free_port()
    log = open(tmp / "server.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moderation_site.server", "-b", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env={
            "PATH": os.environ.get("PATH", ""),
            "DJANGO_SETTINGS_MODULE": "moderation_site.settings",
            **env,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp / "server.log").read_text()[-3000:]) from None
                time.sleep(0.1)
        yield port, Path(env["STATIC_ROOT"])
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def get(port: int, path: str, *, https=True):
    """GET as the proxy forwards it: the public host name, and X-Forwarded-Proto."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    headers = {"Host": HOST, **({"X-Forwarded-Proto": "https"} if https else {})}
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response, body


def test_a_production_node_serves_its_css_and_js(production_node):
    port, static_root = production_node
    page, html = get(port, "/accounts/login/")
    assert page.status == 200
    assert b'href="/static/css/app.css"' in html and b"/static/favicon.svg" in html
    assert page.getheader("Strict-Transport-Security", "").startswith("max-age=31536000")

    css, body = get(port, "/static/css/app.css")
    assert css.status == 200
    assert css.getheader("Content-Type").startswith("text/css")
    assert body == (static_root / "css" / "app.css").read_bytes()
    js, _ = get(port, "/static/js/review.js")
    assert js.status == 200 and "javascript" in js.getheader("Content-Type")
    admin_css, _ = get(port, "/static/admin/css/base.css")
    assert admin_css.status == 200


def test_a_production_node_serves_a_favicon(production_node):
    port, _ = production_node
    icon, _ = get(port, "/favicon.ico")
    assert icon.status == 302 and icon.getheader("Location") == "/static/favicon.svg"
    svg, body = get(port, "/static/favicon.svg")
    assert svg.status == 200 and svg.getheader("Content-Type").startswith("image/svg+xml")
    assert body.lstrip().startswith(b"<svg")


def test_a_production_node_redirects_plain_http_to_https(production_node):
    port, _ = production_node
    response, _ = get(port, "/static/css/app.css", https=False)
    assert response.status == 301
    assert response.getheader("Location") == f"https://{HOST}/static/css/app.css"


def test_a_production_node_refuses_an_oversized_body_before_reading_it(production_node):
    """What moderation_site.server adds to daphne: a declared body over REQUEST_MAX_BYTES is
    answered 413 in the one error shape as soon as the headers are in, on any path, signed in
    or not; plain daphne read the whole body first (100 MB cost it over 1 GB)."""
    port, _ = production_node
    limit = json.loads(
        run(
            ["-c", "from django.conf import settings; print(settings.REQUEST_MAX_BYTES)"],
            production_environment(),
        ).stdout
    )
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(
            (
                f"POST /no-such-page/ HTTP/1.1\r\nHost: {HOST}\r\nX-Forwarded-Proto: https\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {limit + 1}\r\n\r\n"
            ).encode()
        )  # and not a byte of the body: the answer must come without it
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            got = sock.recv(65536)
            if not got:
                break
            answer += got
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b"application/json" in head.lower()
    refusal = json.loads(body)
    assert refusal["code"] == "too_large"
    assert f"{limit / (1 << 20):.1f}".removesuffix(".0") + " MB" in refusal["detail"]


def test_a_node_cannot_speak_http2_around_the_body_limit():
    """The limit covers HTTP/1.1 requests only; daphne would accept HTTP/2 streams on a TLS
    endpoint if `h2` were installed (README, "HTTP/2 ends at the proxy")."""
    import importlib.util

    assert importlib.util.find_spec("h2") is None
