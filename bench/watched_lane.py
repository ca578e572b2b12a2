"""Watched fast lane: from a silent settlement (the webhook lost) to the open waiting page's flip.

Starts its own redis-server, simulator and daphne (``WATCHED_CHECK_SECONDS`` as given; no qcluster, so no
scheduled reconcile) on a scratch SQLite database. For each of ``--runs`` orders (run side by side: each payment
is watched on its own): check out, choose a VA (the pending webhook arrives, so Midtrans "knows" the payment),
open the waiting page's websocket, then at a random moment within one interval settle it at the simulator with
``notify=drop`` and time until the socket says ``success``. Prints p50 and max.

    .venv/bin/python bench/watched_lane.py --runs 20 --interval 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine  # noqa: E402
from paywatch_dev.servers import start_redis  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--interval", type=int, default=30, help="WATCHED_CHECK_SECONDS of the daphne")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    return parser.parse_args(argv)


async def one_run(stack, checkout, interval: int) -> float:
    import websockets

    async with websockets.connect(checkout.ws_url, origin=stack.web_url, open_timeout=10) as socket:
        snapshot = json.loads(await socket.recv())
        assert snapshot["payment_status"] == "pending", snapshot
        await asyncio.sleep(random.uniform(0, interval))  # settle at a random phase of the checks
        await asyncio.to_thread(stack.sim, "settle", checkout.number, notify="drop")
        settled = time.monotonic()
        while True:
            message = json.loads(await asyncio.wait_for(socket.recv(), 4 * interval))
            if message.get("payment_status") == "success":
                assert message["source"] == "reconcile", message
                return time.monotonic() - settled


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="paywatch-watched-"))
    redis = start_redis(scratch)
    os.environ.update(DJANGO_SETTINGS_MODULE="project.settings", DEBUG="1", REDIS_URL=redis.url,
                      DATABASE_URL=f"sqlite:///{scratch / 'bench.sqlite3'}")
    import django

    django.setup()
    from django.core.management import call_command

    from checkout.models import Payment
    from paywatch_dev.stack import Stack

    call_command("migrate", verbosity=0)
    stack = Stack(scratch, database_url=os.environ["DATABASE_URL"], redis_url=redis.url,
                  WATCHED_CHECK_SECONDS=str(args.interval), WEBSOCKET_MAX_PER_ORDER="100")
    try:
        checkouts = []
        for _ in range(args.runs):
            checkout = stack.checkout()
            stack.sim("pending", checkout.number, notify="send")
            checkouts.append(checkout)
        deadline = time.monotonic() + 30
        while Payment.objects.filter(order__number__in=[c.number for c in checkouts], payment_type="").exists():
            assert time.monotonic() < deadline, "pending webhooks did not arrive"
            time.sleep(0.1)

        async def all_runs() -> list[float]:
            return await asyncio.gather(*(one_run(stack, c, args.interval) for c in checkouts))

        latencies = sorted(asyncio.run(all_runs()))
    finally:
        stack.stop()
        redis.stop()
    figures = {"runs": len(latencies), "interval_s": args.interval, "p50_s": round(statistics.median(latencies), 2),
               "max_s": round(max(latencies), 2), "min_s": round(min(latencies), 2)}
    print(f"machine: {machine()}")
    print(f"WATCHED_CHECK_SECONDS={args.interval}, {len(latencies)} runs: settlement → page flip "
          f"p50 {figures['p50_s']} s, max {figures['max_s']} s (min {figures['min_s']} s)")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
