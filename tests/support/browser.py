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


# How long an `expect` waits for the page (Playwright's default is 5 s). With two test workers on two cores, a
# page's first events can queue for longer than that; this bounds a wait, it measures nothing.
EXPECT_TIMEOUT_MS = 30_000


def use_patient_expect() -> None:
    """Make every Playwright `expect` wait up to EXPECT_TIMEOUT_MS."""
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)


def log_in(page, name: str) -> None:
    """Sign in as `name` (an account of `make_store`) on Gradio's login form and wait for the rater page."""
    from playwright.sync_api import expect

    page.locator("input").nth(0).fill(name)
    page.locator("input").nth(1).fill(PASSWORDS[name])
    page.get_by_role("button", name="Login").click()
    expect(page.locator("#plumb-progress")).to_contain_text("0 judged today")
