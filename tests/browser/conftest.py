"""Headless Debian Chromium driven by Playwright (sync API) against the stack's daphne."""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


@pytest.fixture(scope="module", autouse=True)
def _orm_beside_playwright(stack) -> Iterator[None]:
    """Let the test's own ORM calls run while Playwright's sync API keeps its loop in this thread.

    The stack starts first so that its processes do not inherit the switch
    (restart them inside ``for_children()``). The browser is module-scoped for
    the same reason: once it is closed, no loop is left running for the async
    tests of other modules.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ASYNC_UNSAFE, "true")
        yield


@contextmanager
def for_children() -> Iterator[None]:
    """Hide the async-unsafe switch from processes started inside the block."""
    saved = os.environ.pop(ASYNC_UNSAFE, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[ASYNC_UNSAFE] = saved


@pytest.fixture(scope="module")
def browser(_orm_beside_playwright) -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser) -> Iterator:
    """A fresh context per test (its own cookies), phone-sized; console errors are collected."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))  # type: ignore[attr-defined]
    yield page
    context.close()
