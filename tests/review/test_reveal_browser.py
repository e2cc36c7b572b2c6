"""Issue 10, what a moderator sees: pictures stay blurred until revealed on purpose.

A hover, a tap-like pointer over the picture or keyboard focus reveals nothing; a click on
the picture (its button), Enter on it or "v" for the current card does. Greyscale is a
page-wide choice remembered in the browser, applied to revealed pictures too. The item
pages (the review history and the item page a moderator opens) blur the same way.

Real pages in Debian's Chromium against the test server; CSS transitions are turned off in
the page so that a computed style is the settled one.
"""

import re

import pytest

from review.models import QueueEntry
from review.pipeline import analyse_item
from tests.browser import collect_page_errors, launch, log_in, needs_chromium
from tests.conftest import encode
from tests.review.review_factories import rejected_item, review_item
from uploads.intake import ingest_bytes

pytestmark = [needs_chromium, pytest.mark.django_db(transaction=True)]

NO_TRANSITIONS = "*, *::before, *::after { transition: none !important; }"


def filter_of(locator) -> str:
    return locator.evaluate("el => getComputedStyle(el).filter")


def blurred(locator) -> bool:
    return "blur(" in filter_of(locator)


@pytest.fixture
def queue(moderator, uploader, jpeg):
    """Three cards: one with a matched past item beside it, one with a group member."""
    earlier = review_item(uploader, data=jpeg("rocket", size=(200, 150)), name="earlier.jpg")
    QueueEntry.objects.filter(item=earlier).delete()
    lead = review_item(
        uploader, explicit=0.6, data=jpeg("coffee", size=(240, 180)), duplicates=[earlier]
    )
    member = review_item(uploader, explicit=0.5, data=jpeg("coffee", size=(230, 170)))
    QueueEntry.objects.filter(item__in=[lead, member]).update(group_key=lead.uuid)
    review_item(uploader, explicit=0.4, data=jpeg("chelsea", size=(240, 180)))
    review_item(uploader, explicit=0.3, data=jpeg("astronaut", size=(240, 180)))
    return lead


def open_queue(p, live_server, **context):
    browser = launch(p)
    page = browser.new_context(viewport={"width": 1280, "height": 900}, **context).new_page()
    errors = collect_page_errors(page)
    log_in(page, live_server.url, "moderator", "/review/")
    page.click("#fetch")
    page.wait_for_selector(".review-card")
    page.add_style_tag(content=NO_TRANSITIONS)
    return browser, page, errors


def test_hover_and_focus_reveal_nothing_a_click_enter_or_v_does(live_server, queue):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser, page, errors = open_queue(p, live_server)
        try:
            first = page.locator(".review-card").nth(0)
            # A pointer over the picture (what a tap leaves behind) and focus reveal nothing.
            picture = first.locator("img").first
            picture.hover()
            page.wait_for_timeout(200)
            assert blurred(picture)

            pics = first.locator("button.pic")
            assert pics.count() == 3  # the item, the matched past item, the group member
            main = pics.nth(0)
            expect(main).to_have_attribute("aria-pressed", "false")
            expect(main).to_have_accessible_name("Reveal item")
            main.focus()
            page.wait_for_timeout(200)
            assert blurred(main.locator("img"))
            page.mouse.move(0, 0)

            # A click reveals that picture only; a second click blurs it again.
            main.click()
            expect(main).to_have_attribute("aria-pressed", "true")
            assert filter_of(main.locator("img")) == "none"
            assert blurred(pics.nth(1).locator("img"))
            main.click()
            expect(main).to_have_attribute("aria-pressed", "false")
            assert blurred(main.locator("img"))

            # Keyboard: Enter on the focused picture, then "v" for the whole current card.
            main.focus()
            page.keyboard.press("Enter")
            expect(main).to_have_attribute("aria-pressed", "true")
            page.keyboard.press("Enter")
            expect(main).to_have_attribute("aria-pressed", "false")
            page.locator("#pending-count").click()  # focus back on the page, not a picture
            page.keyboard.press("v")
            for i in range(3):
                expect(pics.nth(i)).to_have_attribute("aria-pressed", "true")
                assert filter_of(pics.nth(i).locator("img")) == "none"
            # Moving to the next card blurs what was revealed on this one.
            page.keyboard.press("j")
            expect(page.locator(".review-card").nth(1)).to_have_class(re.compile(r"\bcurrent\b"))
            for i in range(3):
                expect(pics.nth(i)).to_have_attribute("aria-pressed", "false")
                assert blurred(pics.nth(i).locator("img"))
            second = page.locator(".review-card.current button.pic").first
            assert blurred(second.locator("img"))
            page.keyboard.press("v")
            assert filter_of(second.locator("img")) == "none"
            page.keyboard.press("v")
            assert blurred(second.locator("img"))
            assert errors == []
        finally:
            browser.close()


def test_greyscale_applies_to_blurred_and_revealed_pictures_and_is_remembered(live_server, queue):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser, page, errors = open_queue(p, live_server)
        try:
            pics = page.locator(".review-card.current button.pic")
            assert "grayscale" not in filter_of(pics.nth(0).locator("img"))
            page.check("#grey-toggle")
            assert page.evaluate("localStorage.getItem('review.grey')") == "on"
            blurred_grey = filter_of(pics.nth(0).locator("img"))
            assert "blur(" in blurred_grey and "grayscale(1)" in blurred_grey
            pics.nth(0).click()
            assert filter_of(pics.nth(0).locator("img")) == "grayscale(1)"  # revealed, grey

            # Remembered: after a reload the toggle is on and the pictures are grey.
            page.reload()
            page.wait_for_selector(".review-card")
            page.add_style_tag(content=NO_TRANSITIONS)
            expect(page.locator("#grey-toggle")).to_be_checked()
            img = page.locator(".review-card.current button.pic img").first
            assert "grayscale(1)" in filter_of(img) and blurred(img)
            # Blur off (the "b" key) leaves them grey; "g" turns grey off, and is remembered.
            page.locator("#pending-count").click()
            page.keyboard.press("b")
            expect(page.locator("#review-root")).not_to_have_class("blur")
            assert filter_of(img) == "grayscale(1)"
            page.keyboard.press("g")
            expect(page.locator("#grey-toggle")).not_to_be_checked()
            assert filter_of(img) == "none"
            assert page.evaluate("localStorage.getItem('review.grey')") == "off"
            page.keyboard.press("b")
            assert blurred(img)
            assert errors == []
        finally:
            browser.close()


@pytest.fixture
def copy_of_rejected(uploader, moderator, outsider, photo):
    """A near copy of a rejected cat photo: its item page shows both pictures side by side."""
    cat = photo("chelsea")
    rejected_item(encode(cat), uploader, moderator)
    small = cat.resize((cat.width // 2, cat.height // 2))
    item = ingest_bytes(encode(small, quality=60), name="copy.jpg", source="web", uploader=outsider)
    analyse_item(item.pk)
    item.refresh_from_db()
    return item


def test_the_item_pages_blur_every_picture_until_it_is_revealed(live_server, copy_of_rejected):
    from playwright.sync_api import expect, sync_playwright

    item = copy_of_rejected
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = collect_page_errors(page)
        try:
            log_in(page, live_server.url, "moderator", f"/review/items/{item.uuid}/")
            page.add_style_tag(content=NO_TRANSITIONS)
            pics = page.locator("button.pic")
            # The original at the top, and this item beside the past item it copies.
            assert pics.count() == 3
            page.wait_for_function(
                "[...document.querySelectorAll('button.pic img')].every(i => i.naturalWidth)"
            )
            for i in range(3):
                assert blurred(pics.nth(i).locator("img"))
            top = page.locator(".item-page > button.pic")
            top.hover()
            page.wait_for_timeout(200)
            assert blurred(top.locator("img"))
            top.click()
            expect(top).to_have_attribute("aria-pressed", "true")
            assert filter_of(top.locator("img")) == "none"
            assert blurred(pics.nth(1).locator("img"))
            page.locator("h1").click()
            page.keyboard.press("v")  # every picture of the page
            for i in range(3):
                assert filter_of(pics.nth(i).locator("img")) == "none"

            # The item page a moderator reaches from the feed or a link blurs it too.
            page.goto(f"{live_server.url}/uploads/items/{item.uuid}/")
            page.add_style_tag(content=NO_TRANSITIONS)
            only = page.locator("button.pic")
            expect(only).to_have_count(1)
            assert blurred(only.locator("img"))
            page.check("input[data-picture-pref=grey]")
            assert "grayscale(1)" in filter_of(only.locator("img"))
            only.click()
            assert filter_of(only.locator("img")) == "grayscale(1)"
            assert errors == []
        finally:
            browser.close()
