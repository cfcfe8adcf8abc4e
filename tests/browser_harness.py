"""A real browser for the console's tests: headless Chromium from Debian's `chromium` package, driven by
Playwright (never `playwright install`: the browser is the system's). Without it the browser tests are
skipped, saying why, except in CI where they must run."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Set, a folder where the screenshots the README shows are saved too (`GATEWAY_SCREENSHOTS=docs pytest
# tests/test_console.py tests/test_console_operator.py -k "suspends or queue_page"`).
SCREENSHOTS = os.environ.get("GATEWAY_SCREENSHOTS")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} not found: CI must run the browser tests (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not found (Debian's chromium package): browser tests skipped")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield chromium
        chromium.close()


def screenshot(page, tmp_path: Path, name: str) -> None:
    """The page as an image under the test's tmp_path, and in GATEWAY_SCREENSHOTS if set (at a laptop's width)."""
    page.screenshot(path=tmp_path / name, full_page=True)
    if SCREENSHOTS:
        page.screenshot(path=Path(SCREENSHOTS) / f"console-{name}", full_page=True)


@pytest.fixture
def new_page(browser, tmp_path: Path) -> Iterator[Callable]:
    """new_page(base_url, **context options): a page in a fresh context (its own cookies), whose console
    errors are kept in page.errors; each page is saved as a screenshot under the test's tmp_path at the end,
    whether the test passed or failed."""
    pages = []

    def make(base_url: str, **options):
        context = browser.new_context(base_url=base_url, accept_downloads=True, **{"locale": "en-US", **options})
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.errors = []
        page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        pages.append(page)
        return page

    yield make
    for number, page in enumerate(pages):
        page.screenshot(path=tmp_path / f"page-{number}.png", full_page=True)
        page.context.close()
