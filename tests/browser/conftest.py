"""Browser-test fixtures: headless Chromium, a real station process, the screenshots folder.

The station runs as ``python -m atmosphere station --db-url ... --port 0`` (a real process on
a real socket) against the session's embedded database server; Chromium is Debian's, driven
by Playwright (browsers cannot be downloaded here). Without /usr/bin/chromium the tests skip,
unless CI is set, where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing (CI is set, so browser tests must run)")
        pytest.skip("/usr/bin/chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@contextmanager
def open_page(browser: Any, *, bypass_csp: bool) -> Iterator[Any]:
    """A fresh page that fails the test on any script error or console error it logged."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, bypass_csp=bypass_csp)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    tab.on(
        "console",
        lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    try:
        yield tab
    finally:
        context.close()
    assert not errors, errors


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page with the Content-Security-Policy lifted: escaping must hold without it, and
    Playwright's wait_for_function needs eval."""
    with open_page(browser, bypass_csp=True) as tab:
        yield tab


@pytest.fixture
def strict_page(browser: Any) -> Iterator[Any]:
    """A page under the station's real CSP: any violation is a console error, failing the test."""
    with open_page(browser, bypass_csp=False) as tab:
        yield tab


@pytest.fixture(scope="session")
def shot() -> Callable[[Any, str], Path]:
    """``shot(page, name)`` saves a full-page screenshot into test-output/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(tab: Any, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        tab.screenshot(path=str(path), full_page=True)
        return path

    return take
