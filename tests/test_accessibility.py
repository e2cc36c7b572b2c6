"""Issue 10, what a person sees: badges readable (WCAG AA), every input labelled, a heading
on the review page, and a review header that leaves a phone's screen to the pictures.

The contrast test reads the badge rules out of static/css/*.css (a small parser for the
rules the site writes: flat rules, custom properties from :root, hex colours) and computes
the WCAG 2 contrast ratio of each badge's text on its background. The others look at the
pages in Debian's Chromium.
"""

import re
from pathlib import Path

import pytest

from tests.browser import collect_page_errors, launch, log_in, needs_chromium
from tests.review.review_factories import review_item

CSS_DIR = Path(__file__).resolve().parent.parent / "static" / "css"
AA_TEXT = 4.5
# A badge: the shared pill, an upload's outcome, a class, the review page's live marker.
BADGE = re.compile(r"\.(badge|outcome|cls-[\w-]+|live)\b")
RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
HEX = re.compile(r"#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b")


def parse_rules(css: str) -> list[tuple[str, dict[str, str]]]:
    """(selector, {property: value}) of every rule; rules inside @media blocks included."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    rules = []
    for selector, body in RULE.findall(css):
        declarations = {}
        for part in body.split(";"):
            if ":" in part:
                name, value = part.split(":", 1)
                declarations[name.strip().lower()] = value.strip()
        rules.append((" ".join(selector.split()), declarations))
    return rules


def colour(value: str, variables: dict[str, str]) -> str | None:
    """The hex colour of a declaration value (var() resolved), or None."""
    for _ in range(5):
        match = re.search(r"var\(\s*(--[\w-]+)\s*\)", value)
        if not match:
            break
        value = value.replace(match.group(0), variables[match.group(1)])
    found = HEX.search(value)
    if not found:
        return None
    hex_ = found.group(0)[1:]
    return "#" + ("".join(c * 2 for c in hex_) if len(hex_) == 3 else hex_).lower()


def luminance(hex_: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def badge_pairs(css_texts: list[str]) -> dict[str, tuple[str, str]]:
    """{selector: (text colour, background)} of every badge rule that sets either.

    A rule without a colour inherits the body's; one without a background sits on the
    shared badge background.
    """
    rules = [rule for css in css_texts for rule in parse_rules(css)]
    variables = {
        name: value
        for selector, declarations in rules
        if selector == ":root"
        for name, value in declarations.items()
        if name.startswith("--")
    }

    def first(selector_name, prop):
        for selector, declarations in rules:
            if selector == selector_name and prop in declarations:
                return colour(declarations[prop], variables)
        raise AssertionError(f"no {prop} for {selector_name}")

    body_text = first("body", "color")
    badge_background = first(".badge", "background")
    pairs = {}
    for selector, declarations in rules:
        if not BADGE.search(selector):
            continue
        text = declarations.get("color")
        background = declarations.get("background") or declarations.get("background-color")
        if text is None and background is None:
            continue
        text = colour(text, variables) if text else body_text
        background = colour(background, variables) if background else badge_background
        assert text and background, selector
        pairs[selector] = (text, background)
    return pairs


def test_every_badge_colour_pair_meets_wcag_aa_contrast():
    pairs = badge_pairs([path.read_text() for path in sorted(CSS_DIR.glob("*.css"))])
    # The parser found the badges: outcomes, classes, the confirm badge, the live marker.
    for expected in (
        ".status-passed .outcome, .status-approved .outcome",
        ".status-review .outcome",
        ".status-flagged .outcome, .status-rejected .outcome",
        ".status-processing .outcome",
        ".cls-explicit",
        ".cls-suggestive",
        ".badge.confirm",
        ".badge",
        ".live",
        ".live.on",
    ):
        assert expected in pairs, (expected, sorted(pairs))
    ratios = {selector: round(contrast(*pair), 2) for selector, pair in pairs.items()}
    low = {selector: ratio for selector, ratio in ratios.items() if ratio < AA_TEXT}
    assert not low, f"below {AA_TEXT}:1: {low}"


def test_the_contrast_arithmetic_is_wcags():
    assert round(contrast("#000000", "#ffffff"), 2) == 21.0
    assert round(contrast("#777777", "#ffffff"), 2) == 4.48  # the classic just-failing grey
    assert contrast("#2f5bea", "#eef2ff") == contrast("#eef2ff", "#2f5bea")


# -- in the browser ----------------------------------------------------------------------

UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(el => el.type !== 'hidden')
  .filter(el => !(el.labels && el.labels.length)
            && !(el.getAttribute('aria-label') || '').trim()
            && !(el.getAttribute('aria-labelledby') || '').trim())
  .map(el => el.outerHTML.slice(0, 120))"""


@pytest.fixture
def review_pages(moderator, jpeg):
    """Claimed cards on the review page; one item page."""
    items = [review_item(data=jpeg("coffee", size=(200 + i, 150))) for i in range(4)]
    return items[0]


@needs_chromium
@pytest.mark.django_db(transaction=True)
def test_every_input_has_a_label_on_the_upload_review_and_item_pages(live_server, review_pages):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        errors = collect_page_errors(page)
        try:
            log_in(page, live_server.url, "moderator", "/review/")
            page.click("#fetch")
            page.wait_for_selector(".review-card")
            found = {}
            for path in (
                "/review/",
                "/uploads/",
                f"/review/items/{review_pages.uuid}/",
                f"/uploads/items/{review_pages.uuid}/",
            ):
                page.goto(live_server.url + path)
                count = page.locator("input:not([type=hidden]), select, textarea").count()
                found[path] = (count, page.evaluate(UNLABELLED))
            assert errors == []
        finally:
            browser.close()
    assert found["/review/"][0] >= 8 and found["/uploads/"][0] >= 2  # the pages were seen
    assert {path: missing for path, (_, missing) in found.items() if missing} == {}


@needs_chromium
@pytest.mark.django_db(transaction=True)
def test_the_review_page_has_a_heading_and_a_short_header_on_a_phone(live_server, review_pages):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        try:
            log_in(page, live_server.url, "moderator", "/review/")
            page.click("#fetch")
            page.wait_for_selector(".review-card")
            expect(page.locator("h1")).to_have_count(1)
            expect(page.locator("h1")).to_have_text("Review queue")
            head = page.locator(".review-head").bounding_box()
            width = page.evaluate("document.documentElement.scrollWidth")
            # Scrolled, the sticky header is what stays on screen.
            page.mouse.wheel(0, 600)
            page.wait_for_timeout(200)
            sticky = page.locator(".review-head").bounding_box()
            first_card = page.locator(".review-card").first.bounding_box()
        finally:
            browser.close()
    assert head["height"] < 0.25 * 844, head
    assert sticky["height"] < 0.25 * 844 and sticky["y"] >= -1, sticky
    assert width <= 390  # nothing forces a sideways scroll
    assert first_card["width"] > 300  # the cards use the width
