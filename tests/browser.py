"""Playwright on Debian's Chromium (nothing downloads a browser); skipped if it is absent."""

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

needs_chromium = pytest.mark.browser  # skipped without chromium on PATH (tests/markers.py)


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)


def log_in(page, base_url, username, next_url="/"):
    """Sign in through the log-in form (personas have the password "pw-<username>")."""
    page.goto(f"{base_url}/accounts/login/?next={next_url}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw-" + username)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_url}")


def collect_page_errors(page) -> list[str]:
    """Uncaught JavaScript errors of the page, as they happen ('pageerror' events)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors
