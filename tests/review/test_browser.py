"""Two moderators in two browsers (Debian's Chromium, driven by Playwright) on a real server.

The server is daphne in a subprocess on a free loopback port, on a database it can open:
PostgreSQL's test database, or for SQLite a file copied from the in-memory test database
(this test then uses that file too, so both sides see the same rows).
"""

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Group
from django.db import connection, connections
from django.db.utils import load_backend
from PIL import Image

from accounts.roles import MODERATOR
from review import pipeline
from review.models import Decision, QueueEntry
from tests.browser import collect_page_errors, launch, log_in, needs_chromium
from tests.conftest import VENUS
from tests.review.review_factories import review_item
from tests.services import free_port
from tests.videos import encode
from uploads.intake import ingest_bytes
from uploads.models import MediaItem

REPO = Path(__file__).resolve().parents[2]

pytestmark = [needs_chromium, pytest.mark.django_db(transaction=True)]


def database_url_for_server(tmp_path):
    """A URL the server process can open, and a function that undoes any swap."""
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = quote(settings["USER"] or "")
        if settings["PASSWORD"]:
            auth += ":" + quote(settings["PASSWORD"])
        host = f"{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}"
        return f"postgres://{auth}@{host}/{settings['NAME']}", lambda: None
    if connection.vendor != "sqlite":
        pytest.skip(f"no browser test setup for {connection.vendor}")
    path = tmp_path / "browser.sqlite3"
    old = connections["default"]
    old.ensure_connection()
    with sqlite3.connect(path) as target:
        old.connection.backup(target)
    swapped = {**settings, "NAME": str(path)}
    connections["default"] = load_backend(settings["ENGINE"]).DatabaseWrapper(swapped, "default")

    def restore():
        connections["default"].close()
        connections["default"] = old

    return f"sqlite:///{path}", restore


@pytest.fixture
def review_server(transactional_db, tmp_path, settings):
    url, restore = database_url_for_server(tmp_path)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PRIVATE_MEDIA_ROOT": settings.STORAGES["default"]["OPTIONS"]["location"],
        "DEBUG": "1",  # static files straight from static/, no collectstatic needed
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WEBSOCKET_ALLOWED_ORIGINS": f"http://127.0.0.1:{port}",  # the pages' origin
    }
    log = open(tmp_path / "daphne.log", "wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "moderation_site.asgi:application",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "daphne.log").read_text()[-3000:]) from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
        restore()


def make_moderator(django_user_model, name):
    # Tests hash with MD5 for speed; the server only knows the production hasher.
    hasher = PBKDF2PasswordHasher()
    user = django_user_model.objects.create(
        username=name, password=hasher.encode("pw-" + name, hasher.salt())
    )
    user.groups.add(Group.objects.get_or_create(name=MODERATOR)[0])
    return user


def test_two_moderators_in_two_browsers_work_one_queue(review_server, django_user_model, jpeg):
    from playwright.sync_api import expect, sync_playwright

    make_moderator(django_user_model, "alice")
    make_moderator(django_user_model, "bob")
    photos = ["coffee", "chelsea", "rocket", "astronaut"]
    for i in range(8):
        name = photos[i % 4]
        data = jpeg(name, size=(160 + i, 120))
        review_item(explicit=0.3 + i / 100, data=data, name=f"{name}.jpg")

    with sync_playwright() as p:
        browser = launch(p)
        try:
            alice = browser.new_context().new_page()
            bob = browser.new_context().new_page()
            for page, name in ((alice, "alice"), (bob, "bob")):
                page.goto(f"{review_server}/accounts/login/?next=/review/")
                page.fill("input[name=username]", name)
                page.fill("input[name=password]", "pw-" + name)
                page.click("button[type=submit]")
                expect(page.locator("#live")).to_have_text("live", timeout=5000)
            expect(bob.locator("#pending-count")).to_have_text("8")

            alice.fill("#fetch-count", "5")
            alice.click("#fetch")
            cards = alice.locator(".review-card")
            expect(cards).to_have_count(5)
            # Bob's page hears about Alice's claim within a second, without a reload.
            expect(bob.locator("#pending-count")).to_have_text("3", timeout=1000)
            expect(bob.locator("#claimed-others")).to_have_text("5", timeout=1000)
            expect(alice.locator("#review-root")).to_have_class("blur")

            # Approve the current item with the keyboard.
            first = alice.locator(".review-card.current").get_attribute("data-id")
            alice.keyboard.press("a")
            expect(alice.locator(f'.review-card[data-id="{first}"]')).to_have_count(0)
            expect(cards).to_have_count(4)
            expect(bob.locator("#claimed-others")).to_have_text("4", timeout=1000)

            # Reject the next one: without a reason it is refused, with one it goes.
            second = alice.locator(".review-card.current").get_attribute("data-id")
            alice.keyboard.press("r")
            expect(alice.locator("#toast")).to_contain_text("needs a reason")
            alice.select_option("#reason-choice", "Spam")
            alice.fill("#reason-text", "link farm")
            alice.locator(f'.review-card[data-id="{second}"] button.reject').click()
            expect(alice.locator(f'.review-card[data-id="{second}"]')).to_have_count(0)
            expect(bob.locator("#claimed-others")).to_have_text("3", timeout=1000)

            # Blur can be turned off for the whole page with a key.
            alice.keyboard.press("b")
            expect(alice.locator("#review-root")).not_to_have_class("blur")

            # Bob fetches: he gets none of Alice's items.
            bob.click("#fetch")
            expect(bob.locator(".review-card")).to_have_count(3)
            bobs = set(
                bob.locator(".review-card").evaluate_all("els => els.map(e => e.dataset.id)")
            )
            alices = set(cards.evaluate_all("els => els.map(e => e.dataset.id)"))
            assert len(alices) == 3 and not bobs & alices
            expect(alice.locator("#claimed-others")).to_have_text("3", timeout=1000)
        finally:
            browser.close()

    assert Decision.objects.get(item__uuid=first).decision == "approve"
    rejected = Decision.objects.get(item__uuid=second)
    assert rejected.decision == "reject" and rejected.reason == "Spam — link farm"
    assert rejected.moderator.username == "alice"
    assert MediaItem.objects.get(uuid=second).status == "rejected"
    assert QueueEntry.objects.filter(claimed_by__username="bob").count() == 3


# -- live counts when the session ends ----------------------------------------------------
# The server closes a moderator's review socket with 4401 when that browser signs out and
# 4403 when the account is deactivated or banned (accounts/sessions.py); a new socket would
# be refused too. The page stopped on neither: it reconnected every 0.5-15 s for as long as
# it stayed open. Now it stops and says why. Each session is ended inside the server process
# (a log-out in a second tab; a deactivation through the admin), where its channel layer is.

# The page retries 0.5 s after a close, then 1 s, 2 s...: 3 s would see two attempts.
QUIET_S = 3


def open_review_page(browser, base_url, name):
    """A signed-in review page with its live socket open; the list of sockets it opened."""
    from playwright.sync_api import expect

    context = browser.new_context()
    page = context.new_page()
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws) if "/ws/review/" in ws.url else None)
    page.goto(f"{base_url}/accounts/login/?next=/review/")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", "pw-" + name)
    page.click("button[type=submit]")
    page.wait_for_url("**/review/")
    expect(page.locator("#live")).to_have_text("live", timeout=5000)
    return context, page, sockets


def test_signing_out_elsewhere_stops_the_live_counts_and_says_so(review_server, django_user_model):
    from playwright.sync_api import expect, sync_playwright

    make_moderator(django_user_model, "carol")
    with sync_playwright() as p:
        browser = launch(p)
        try:
            context, page, sockets = open_review_page(browser, review_server, "carol")
            assert len(sockets) == 1
            # Another tab of the same browser signs out: this session ends on the server.
            other = context.new_page()
            other.goto(f"{review_server}/review/")
            other.evaluate(
                """async () => {
                  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
                  await fetch("/accounts/logout/", {method: "POST",
                    headers: {"X-CSRFToken": csrf}, credentials: "same-origin"});
                }"""
            )
            live = page.locator("#live")
            expect(live).to_have_text("Signed out — sign in again to see live counts", timeout=5000)
            expect(live).to_have_class("live ended")
            page.wait_for_timeout(QUIET_S * 1000)
            assert len(sockets) == 1, "the page opened another socket after 4401"
            # The message's link reloads the page, which leads through the log-in form.
            live.locator("a").click()
            page.wait_for_url("**/accounts/login/?next=/review/")
        finally:
            browser.close()


def test_a_deactivated_moderator_stops_reconnecting_and_is_told(review_server, django_user_model):
    from playwright.sync_api import expect, sync_playwright

    dave = make_moderator(django_user_model, "dave")
    hasher = PBKDF2PasswordHasher()
    django_user_model.objects.create(
        username="root",
        password=hasher.encode("pw-root", hasher.salt()),
        is_staff=True,
        is_superuser=True,
    )
    with sync_playwright() as p:
        browser = launch(p)
        try:
            _, page, sockets = open_review_page(browser, review_server, "dave")
            # An administrator deactivates dave in the admin (in the server process).
            admin = browser.new_context().new_page()
            admin.goto(f"{review_server}/admin/login/?next=/admin/")
            admin.fill("input[name=username]", "root")
            admin.fill("input[name=password]", "pw-root")
            admin.click("input[type=submit]")
            admin.wait_for_url("**/admin/")
            admin.goto(f"{review_server}/admin/accounts/user/{dave.pk}/change/")
            admin.uncheck("#id_is_active")
            admin.click("input[name=_save]")
            admin.wait_for_url("**/admin/accounts/user/")

            live = page.locator("#live")
            expect(live).to_have_text(
                "No permission to review any more — live counts stopped", timeout=5000
            )
            page.wait_for_timeout(QUIET_S * 1000)
            assert len(sockets) == 1, "the page opened another socket after 4403"
        finally:
            browser.close()
    dave.refresh_from_db()
    assert not dave.is_active


def test_a_videos_strip_is_blurred_until_revealed_and_its_frames_seek_the_player(
    review_server, django_user_model, uploader, photo
):
    """The item page of a flagged clip, in the browser: the strip's flagged frame first and
    blurred, revealed on a click; the player starts at the flagged moment and a strip
    frame's "play from" moves it there."""
    from playwright.sync_api import expect, sync_playwright

    make_moderator(django_user_model, "erin")
    innocent = [photo(n).resize((320, 240)) for n in ("chelsea", "coffee", "rocket")]
    venus = Image.open(VENUS).convert("RGB").resize((320, 240))
    pictures = [venus if 30 <= i < 40 else innocent[(i // 10) % 3] for i in range(80)]
    clip = encode(pictures, fps=10, container="webm", codec="libvpx-vp9")
    item = ingest_bytes(clip, name="party.webm", source="web", uploader=uploader)
    pipeline.analyse_item(item.pk)
    item.refresh_from_db()
    found = item.details["video"]
    assert item.status == MediaItem.Status.FLAGGED and found["flagged_at_timestamp"] == 3.0

    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context().new_page()
            errors = collect_page_errors(page)
            log_in(page, review_server, "erin", next_url=f"/uploads/items/{item.uuid}/")
            strip = page.locator(".video-strip li")
            expect(strip).to_have_count(len(found["strip"]))
            first = strip.first
            expect(first).to_have_class("flagged")
            picture = first.locator("button.pic")
            blur = "getComputedStyle(document.querySelector('.video-strip button.pic img')).filter"
            assert "blur" in page.evaluate(blur)
            expect(picture).to_have_attribute("aria-pressed", "false")
            picture.click()
            expect(picture).to_have_attribute("aria-pressed", "true")
            page.wait_for_function(f"{blur} === 'none'", timeout=3000)
            # The player, loaded, starts at the first flagged moment, and stays blurred.
            player = "document.querySelector('.video-player video')"
            page.wait_for_function(f"{player}.readyState >= 1", timeout=10_000)
            page.wait_for_function(f"Math.abs({player}.currentTime - 3.0) < 0.2", timeout=5000)
            assert "blur" in page.evaluate(f"getComputedStyle({player}).filter")
            # A strip frame's "play from" moves the player to its moment.
            other = next(f for f in found["strip"] if not f["flagged"] and f["timestamp"] > 4)
            page.click(f"a[data-seek='{other['timestamp']}']")
            page.wait_for_function(
                f"Math.abs({player}.currentTime - {other['timestamp']}) < 0.2", timeout=5000
            )
            reveal = page.locator("button.reveal-video")
            reveal.click()
            expect(reveal).to_have_attribute("aria-pressed", "true")
            page.wait_for_function(f"getComputedStyle({player}).filter === 'none'", timeout=3000)
            assert errors == []
        finally:
            browser.close()
