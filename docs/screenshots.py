"""Screenshots of the rating app for the README, taken from a running demo (`make demo`) with Debian's Chromium.

    make demo &   # wait for the logins to print
    python docs/screenshots.py --url http://127.0.0.1:7860/ --out docs

Writes rater-page.png (alice's Rate tab on a 1366x768 laptop screen), arena-page.png (a battle
voted on early, once both answers have streamed to their end) and campaign-tab.png (adam's
Campaign tab, once alice and bob judged a few pairs with the keyboard: it stores real judgments
in the demo database).
"""

import argparse
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
ARENA_PROMPT = "Write a Python function that checks whether a string is a palindrome, and explain it briefly."


def log_in(page, url: str, name: str) -> None:
    """Open the app and sign in with a demo account (password NAME-demo)."""
    page.goto(url)
    page.locator("input").nth(0).fill(name)
    page.locator("input").nth(1).fill(f"{name}-demo")
    page.get_by_role("button", name="Login").click()
    expect(page.locator("#plumb-progress")).to_contain_text("judged today", timeout=30_000)


def main() -> None:
    """Take the three screenshots."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:7860/")
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    out = Path(args.out)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        log_in(page, args.url, "alice")
        page.screenshot(path=str(out / "rater-page.png"))  # what a laptop shows, without scrolling
        page.set_viewport_size({"width": 1280, "height": 1000})

        page.get_by_role("tab", name="Arena").click()
        page.locator("#plumb-arena-prompt textarea").fill(ARENA_PROMPT)
        page.locator("#plumb-arena-start").click()
        expect(page.locator("#plumb-arena-key-a")).to_be_enabled(timeout=120_000)
        page.keyboard.press("t")  # an early vote: the answers go on to their end
        expect(page.locator("#plumb-arena-message")).to_contain_text("Model A was", timeout=60_000)
        for side in "ab":
            expect(page.locator(f"#plumb-arena-status-{side}")).to_contain_text("finished", timeout=300_000)
        page.screenshot(path=str(out / "arena-page.png"), full_page=True)

        for name, keys in (("alice", "2613572"), ("bob", "3615472")):
            rater = browser.new_page(viewport={"width": 1280, "height": 1000})
            log_in(rater, args.url, name)
            for key in keys:
                before = rater.locator("#plumb-progress").inner_text()
                rater.keyboard.press(key)
                expect(rater.locator("#plumb-progress")).not_to_have_text(before, timeout=30_000)

        admin = browser.new_page(viewport={"width": 1280, "height": 1000})
        log_in(admin, args.url, "adam")
        admin.get_by_role("tab", name="Campaign").click()  # it loads on opening
        expect(admin.locator("#plumb-overview")).to_contain_text("complete tasks", timeout=60_000)
        admin.wait_for_timeout(3_000)
        admin.screenshot(path=str(out / "campaign-tab.png"), full_page=True)
        browser.close()


if __name__ == "__main__":
    main()
