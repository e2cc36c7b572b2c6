"""A person signs in, drops three images on the page and sees each one's outcome."""

import pytest
from PIL import Image

from tests.browser import launch, needs_chromium
from tests.conftest import VENUS
from uploads.models import MediaItem

pytestmark = [needs_chromium, pytest.mark.django_db(transaction=True)]


def test_three_dropped_images_show_class_confidence_and_decision(
    live_server, uploader, photo, tmp_path
):
    from playwright.sync_api import sync_playwright

    photo("coffee").save(tmp_path / "coffee.jpg", quality=90)
    Image.new("RGB", (400, 300), (30, 120, 200)).save(tmp_path / "blue.png")
    files = [str(tmp_path / "coffee.jpg"), str(VENUS), str(tmp_path / "blue.png")]
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", "uploader")
        page.fill("input[name=password]", "pw-uploader")
        page.click("button[type=submit]")
        page.wait_for_url("**/uploads/")
        page.set_input_files("#files", files)
        page.wait_for_function(
            "document.querySelectorAll('#items .item').length === 3 && "
            "!document.querySelector('#items .uploading, #items .status-processing')",
            timeout=60_000,
        )
        venus = page.locator(".item", has_text="venus").inner_text()
        assert "Flagged" in venus and "explicit" in venus and "%" in venus
        assert "Explicit content detected" in venus
        coffee = page.locator(".item", has_text="coffee.jpg").inner_text()
        assert "Passed" in coffee and "neutral" in coffee
        assert page.locator(".item", has_text="venus").locator("img").count() == 0

        page.goto(f"{live_server.url}/uploads/feed/")
        feed_images = page.locator(".feed img")
        assert feed_images.count() == 2
        assert "venus" not in " ".join(feed_images.nth(i).get_attribute("alt") for i in range(2))
        browser.close()
    # After the browser: Playwright's sync API runs an event loop, where the ORM refuses to run.
    statuses = dict(MediaItem.objects.values_list("original_name", "status"))
    assert statuses == {
        "coffee.jpg": "passed",
        "venus-of-urbino-titian.jpg": "flagged",
        "blue.png": "passed",
    }
