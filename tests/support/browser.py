"""Debian's Chromium driven by Playwright, headless, for the browser tests (Playwright's own download is never used)."""

from pathlib import Path

from tests.support.campaigns import PASSWORDS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def log_in(page, name: str) -> None:
    """Sign in as `name` (an account of `make_store`) on Gradio's login form and wait for the rater page."""
    from playwright.sync_api import expect

    page.locator("input").nth(0).fill(name)
    page.locator("input").nth(1).fill(PASSWORDS[name])
    page.get_by_role("button", name="Login").click()
    expect(page.locator("#plumb-progress")).to_contain_text("0 judged today")
