"""Issue 10, the upload page between a drop and its answer, and when the answer is a refusal.

Each file gets a row with its name and a progress bar as soon as it is dropped; the answer's
card then takes the row's place. A refused URL stays in its box beside the error. A banned
user's drop answers 403 with the error shape {"code", "detail"}: the page shows that message
and how to appeal, and throws no JavaScript error.
"""

import threading

import pytest
from PIL import Image

from accounts.models import Author
from accounts.services import BANNED_MESSAGE
from tests.browser import collect_page_errors, launch, log_in, needs_chromium

pytestmark = [needs_chromium, pytest.mark.django_db(transaction=True)]

APPEAL = "If you think this is a mistake, contact the moderators of this site."


def in_a_thread(work):
    """The ORM, from inside Playwright's sync API (whose event loop the ORM refuses)."""
    failure = []

    def run():
        try:
            work()
        except Exception as exc:  # pragma: no cover - reported below
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert not failure, failure


@pytest.fixture
def pictures(photo, tmp_path):
    photo("coffee").resize((1600, 1200)).save(tmp_path / "coffee.png")  # ~3 MB: many chunks
    Image.new("RGB", (400, 300), (30, 120, 200)).save(tmp_path / "blue.png")
    return [str(tmp_path / "coffee.png"), str(tmp_path / "blue.png")]


def test_each_dropped_file_has_a_row_with_progress_until_its_card_replaces_it(
    live_server, uploader, pictures
):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        errors = collect_page_errors(page)
        try:
            log_in(page, live_server.url, "uploader", "/uploads/")
            held = []  # the upload's request waits here until the rows have been looked at
            page.route("**/uploads/submit/", lambda route: held.append(route))
            page.set_input_files("#files", pictures)

            rows = page.locator("#items .item.uploading")
            expect(rows).to_have_count(2)
            expect(rows.nth(0).locator(".name")).to_have_text("coffee.png")
            expect(rows.nth(1).locator(".name")).to_have_text("blue.png")
            for i in range(2):
                bar = rows.nth(i).locator("progress")
                expect(bar).to_have_attribute("max", "100")
                expect(bar).to_have_accessible_name(f"Upload of {('coffee.png', 'blue.png')[i]}")
            expect(rows.locator(".phase")).to_have_text(["Uploading… 0%", "Uploading… 0%"])
            assert len(held) == 1  # nothing answered yet: the rows are all there is
            held[0].continue_()

            cards = page.locator("#items .item")
            page.wait_for_function(
                "!document.querySelector('#items .uploading') && "
                "!document.querySelector('#items .status-processing')",
                timeout=60_000,
            )
            expect(cards).to_have_count(2)
            # Each card took its row's place: same order as dropped, with the outcome.
            expect(cards.nth(0).locator(".name")).to_have_text("coffee.png")
            expect(cards.nth(1).locator(".name")).to_have_text("blue.png")
            expect(cards.nth(0)).to_contain_text("Passed")
            assert errors == []
        finally:
            browser.close()


def test_progress_is_reported_per_file_as_the_body_is_sent(live_server, uploader, pictures):
    """The rows' bars move with XMLHttpRequest's upload progress, each by its own bytes
    (the files are sent in order): the big file's bar climbs while the small one waits at
    0, both reach 100%, then the rows say the server is checking them."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        try:
            log_in(page, live_server.url, "uploader", "/uploads/")
            # A slow uplink (2 MB/s), so that the body takes a while to send.
            cdp = page.context.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send(
                "Network.emulateNetworkConditions",
                {
                    "offline": False,
                    "latency": 0,
                    "downloadThroughput": -1,
                    "uploadThroughput": 2 * 1024 * 1024,
                },
            )
            page.evaluate(
                """() => {
                  window.seen = [];
                  new MutationObserver(() => {
                    const bars = [...document.querySelectorAll('#items .uploading progress')];
                    if (bars.length) window.seen.push(bars.map(b => b.getAttribute('value')));
                  }).observe(document.getElementById('items'),
                             {subtree: true, childList: true, attributes: true,
                              attributeFilter: ['value']});
                }"""
            )
            page.set_input_files("#files", pictures)
            page.wait_for_function(
                "document.querySelectorAll('#items .item:not(.uploading)').length === 2",
                timeout=60_000,
            )
            seen = page.evaluate("window.seen")
        finally:
            browser.close()
    values = [[None if v is None else int(v) for v in snap] for snap in seen]
    assert values[0] == [0, 0]  # both rows, before anything was sent
    sending = [big for big, small in values if big is not None and 0 < big < 100]
    assert len(sending) >= 3 and sending == sorted(sending)  # the big file, step by step
    assert all(small == 0 for big, small in values if big is not None and big < 100)
    assert [100, 100] in values  # all sent
    assert values[-1] == [None, None]  # then "Checking…" until the answer


def test_a_refused_url_stays_in_the_box_with_the_error(live_server, uploader):
    from playwright.sync_api import expect, sync_playwright

    url = "http://127.0.0.1:9/picture.png"  # loopback: never fetched
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        errors = collect_page_errors(page)
        try:
            log_in(page, live_server.url, "uploader", "/uploads/")
            page.fill("#url", url)
            page.click("#upload-form button[type=submit]")
            expect(page.locator("#errors li")).to_have_count(1)
            expect(page.locator("#errors li")).to_contain_text(url)
            expect(page.locator("#url")).to_have_value(url)
            expect(page.locator("#url")).to_have_attribute("aria-invalid", "true")
            expect(page.locator("#items .uploading")).to_have_count(0)
            expect(page.locator("#items .empty")).to_have_text("Nothing yet.")
            # Corrected, the mark goes.
            page.fill("#url", url + "x")
            expect(page.locator("#url")).not_to_have_attribute("aria-invalid", "true")
            assert errors == []
        finally:
            browser.close()


def test_a_banned_users_drop_shows_the_ban_and_how_to_appeal_without_a_script_error(
    live_server, uploader, pictures
):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        errors = collect_page_errors(page)
        answers = []
        page.on(
            "response",
            lambda r: (
                answers.append((r.status, r.json())) if r.url.endswith("/uploads/submit/") else None
            ),
        )
        # No live updates here: their reconnecting requests would meet the ban first.
        page.route_web_socket("**/ws/uploads/", lambda ws: None)
        try:
            log_in(page, live_server.url, "uploader", "/uploads/")
            # Banned while the page is open (a moderator's decision, a third strike).
            in_a_thread(
                lambda: Author.objects.filter(user__username="uploader").update(
                    status=Author.Status.BANNED
                )
            )
            with page.expect_response("**/uploads/submit/"):
                page.set_input_files("#files", pictures[1:])
            page.wait_for_timeout(300)  # the page's script handles the answer
            assert errors == []  # it did: no uncaught error on the 403's body
            notice = page.locator("#banned")
            expect(notice).to_be_visible()
            expect(notice).to_have_attribute("role", "alert")
            expect(notice.locator(".detail")).to_have_text(BANNED_MESSAGE)
            text = notice.inner_text().lower()
            assert "appeal" in text and "contact the moderators" in text
            expect(page.locator("#items .uploading")).to_have_count(0)
            expect(page.locator("#url")).to_be_disabled()
            expect(page.locator("#files")).to_be_disabled()
            assert answers and answers[0][0] == 403 and answers[0][1]["code"] == "banned"
            assert errors == []
        finally:
            browser.close()


def test_the_appeal_sentence_is_shown_when_the_ban_message_does_not_say_it(
    live_server, uploader, pictures
):
    """A 403 whose detail does not say how to appeal (another server's wording) gets the
    page's own sentence, kept once in templates/uploads/upload.html."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        errors = collect_page_errors(page)
        try:
            log_in(page, live_server.url, "uploader", "/uploads/")
            page.route(
                "**/uploads/submit/",
                lambda route: route.fulfill(
                    status=403,
                    content_type="application/json",
                    body='{"code": "banned", "detail": "Your account is banned."}',
                ),
            )
            page.set_input_files("#files", pictures[1:])
            expect(page.locator("#banned .detail")).to_have_text("Your account is banned.")
            expect(page.locator("#banned .appeal")).to_have_text(APPEAL)
            expect(page.locator("#banned .appeal")).to_be_visible()
            assert errors == []
        finally:
            browser.close()
