"""Take the waiting page's screenshots for the README: each state, in Indonesian and English, phone and desktop.

Usage: .venv/bin/python docs/screenshots/make.py [--out docs/screenshots] [--states pending,paid]

Starts everything it needs in a scratch directory (a fresh SQLite database,
redis-server, the simulator, daphne), the same way the test suite's stack
does, puts one order in each state, and saves ``<state>-<language>-<viewport>.png``.
The browser's clock is paused 23 h 12 min before each order's expiry, so the
countdown reads the same in every run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# The states the issue lists, plus the fallback (the refresh button shown after PAYMENT_FALLBACK_SECONDS).
DEFAULT_STATES = ["pending", "pending-va", "pending-mandiri", "pending-store", "challenge", "paid", "expired",
                  "cancelled", "refunded", "failed", "fallback"]
LANGUAGES = ["id", "en"]
VIEWPORTS = ["phone", "desktop"]
LIVE_MS = 20_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--states", default=",".join(DEFAULT_STATES), help="comma-separated; default: all")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    states = [s for s in args.states.split(",") if s]
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="paywatch-screenshots-") as scratch:
        workdir = Path(scratch)
        database_url = f"sqlite:///{workdir / 'db.sqlite3'}"
        # This process reads and writes the same database as the daphne it starts.
        os.environ.update(DJANGO_SETTINGS_MODULE="project.settings", DATABASE_URL=database_url, DEBUG="1")
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, check=True)

        import django

        django.setup()
        from playwright.sync_api import expect, sync_playwright

        from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
        from tests.browser.pages import LOCALES, put_in_state
        from tests.support.servers import start_redis
        from tests.support.stack import Stack

        redis = start_redis(workdir / "redis")
        stack = Stack(workdir, database_url=database_url, redis_url=redis.url)
        try:
            orders = {}
            for state in states:
                checkout = stack.checkout()
                if state != "fallback":
                    put_in_state(checkout.number, state)
                orders[state] = (checkout, _expires_at(checkout.number))  # no ORM once Playwright runs its loop
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                for state, (checkout, expires) in orders.items():
                    for language in LANGUAGES:
                        for viewport in VIEWPORTS:
                            size = ({"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
                                    if viewport == "phone" else {"viewport": {"width": 1280, "height": 800}})
                            context = browser.new_context(locale=LOCALES[language], **size)
                            page = context.new_page()
                            page.clock.install(time=expires - dt.timedelta(hours=23, minutes=13))
                            page.clock.pause_at(expires - dt.timedelta(hours=23, minutes=12))
                            page.goto(checkout.page_url)
                            expect(page.locator("#order-live")).to_have_attribute("data-live", "true",
                                                                                  timeout=LIVE_MS)
                            if state == "fallback":
                                page.clock.fast_forward(5_000)  # past PAYMENT_FALLBACK_SECONDS (3 in the stack)
                                expect(page.locator("#refresh-button")).to_be_visible(timeout=LIVE_MS)
                            path = args.out / f"{state}-{language}-{viewport}.png"
                            page.screenshot(path=str(path), full_page=True)
                            print(path.relative_to(ROOT))
                            context.close()
                browser.close()
        finally:
            stack.stop()
            redis.stop()
    return 0


def _expires_at(number: str) -> dt.datetime:
    from checkout.models import Payment

    return Payment.objects.get(order__number=number).expires_at


if __name__ == "__main__":
    sys.exit(main())
