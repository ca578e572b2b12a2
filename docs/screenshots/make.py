"""Take the README's screenshots: the waiting page in each state (id and en, phone and desktop), and the admin.

Usage: .venv/bin/python docs/screenshots/make.py [--out docs/screenshots] [--states pending,paid] [--no-admin]

Starts everything it needs in a scratch directory (a fresh SQLite database,
redis-server, the simulator, daphne), the same way the test suite's stack
does, puts one order in each state, and saves ``<state>-<language>-<viewport>.png``. Then it sends
a little traffic through the real paths (notifications, a forged one, money for an expired order, a
reconcile run by a worker) and saves the admin's ``admin-health-desktop.png``,
``admin-payments-desktop.png`` and ``admin-payment-desktop.png`` (a pending payment's page), logged
in as an operator (``--states ""`` takes only these).
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
ADMIN_PAGES = {"health": "/admin/checkout/paymentevent/health/", "payments": "/admin/checkout/payment/"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--states", default=",".join(DEFAULT_STATES), help="comma-separated; default: all")
    parser.add_argument("--no-admin", dest="admin", action="store_false", help="skip the admin's screenshots")
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

        from paywatch_dev.servers import start_redis
        from paywatch_dev.stack import Stack
        from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
        from tests.browser.pages import LOCALES, put_in_state

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
            if args.admin:
                _admin_screenshots(stack, args.out)
        finally:
            stack.stop()
            redis.stop()
    return 0


def _admin_screenshots(stack, out: Path) -> None:
    """Give the delivery health page something to show, then capture it and the payments list at 1280 px."""
    import json
    import time

    import requests
    from django.contrib.auth import get_user_model
    from django_q.models import Task
    from playwright.sync_api import sync_playwright

    from checkout.models import EventOutcome, EventSource
    from checkout.selectors import payment_for_order_number
    from checkout.services import events as event_services
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.browser.pages import put_in_state
    from tests.checkout.samples import notification

    password = "operator-screenshots"
    get_user_model().objects.create_superuser("operator", "operator@example.com", password)
    for action, params in (("settle", {}), ("settle", {}), ("pending", {"payment_type": "bank_transfer"})):
        waiting = stack.checkout()
        stack.sim(action, waiting.number, notify="send", **params)
    late = stack.checkout()  # money for an order that had expired: it needs a person
    put_in_state(late.number, "expired")
    stack.sim("settle", late.number, notify="send")
    lost = stack.checkout()  # a lost notification: the reconcile finds the payment
    stack.sim("settle", lost.number, notify="drop")
    forged = notification(lost.number, "settlement", server_key="not-the-key")
    requests.post(stack.notify_url, json=forged, timeout=10)
    failed = stack.checkout()
    stack.start_worker()
    deadline = time.monotonic() + 120
    while not Task.objects.filter(func="reconcile.tasks.reconcile_pending").exists():  # its first scheduled run
        if time.monotonic() > deadline:
            raise SystemExit("no reconcile run within 120 s; is the worker starting?")
        time.sleep(0.5)
    # A notification whose application failed (the database was locked, say), after the run that would retry it.
    body = notification(failed.number, "settlement", server_key=stack.env["MIDTRANS_SERVER_KEY"])
    event_services.payment_event_record(source=EventSource.WEBHOOK, payment=payment_for_order_number(failed.number),
                                        raw_body=json.dumps(body), payload=body, signature_valid=True,
                                        outcome=EventOutcome.ERROR, detail="OperationalError: database is locked")
    base = stack.web_url
    pages = {**ADMIN_PAGES, "payment": f"/admin/checkout/payment/{payment_for_order_number(waiting.number).pk}/change/"}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(f"{base}/admin/login/?next=/admin/")
        page.locator("#id_username").fill("operator")
        page.locator("#id_password").fill(password)
        page.locator("input[type=submit]").click()
        page.wait_for_url(f"{base}/admin/")
        for name, path in pages.items():
            page.goto(base + path)
            shot = out / f"admin-{name}-desktop.png"
            page.screenshot(path=str(shot), full_page=True)
            print(shot)
        browser.close()


def _expires_at(number: str) -> dt.datetime:
    from checkout.models import Payment

    return Payment.objects.get(order__number=number).expires_at


if __name__ == "__main__":
    sys.exit(main())
