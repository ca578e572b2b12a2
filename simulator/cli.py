"""Command line: run the server, or drive a running simulator (like ``stripe trigger``)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any
from urllib.parse import quote

import requests

from simulator import ACTIONS

DEFAULT_NOTIFY_URL = "http://127.0.0.1:8000/payments/midtrans/notification"
DEFAULT_SERVER_KEY = "SB-Mid-server-LOCAL-SIMULATOR"
DEFAULT_URL = "http://127.0.0.1:8900"
CLIENT_COMMANDS = (*ACTIONS, "status", "config")


def main(argv: list[str] | None = None) -> int:
    """Run a client command when the first word is one (``settle``, ``status``...), else the server."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in CLIENT_COMMANDS:
        return client_main(argv)
    return server_main(argv)


# -- server ---------------------------------------------------------------------------
def server_main(argv: list[str]) -> int:
    """Run the simulator until SIGINT/SIGTERM; exit 0 after saving the state file."""
    parser = argparse.ArgumentParser(prog="python -m simulator", description="Local Midtrans simulator.",
                                     epilog=f"Client commands: {', '.join(CLIENT_COMMANDS)} (see <command> --help)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--notify-url", default=os.environ.get("SIMULATOR_NOTIFY_URL", DEFAULT_NOTIFY_URL))
    parser.add_argument("--retry-scale", type=float,
                        default=float(os.environ.get("SIMULATOR_RETRY_SCALE", "1.0")),
                        help="multiply Midtrans's retry intervals (2, 10, 30, 90, 210 minutes)")
    parser.add_argument("--state-file", default=os.environ.get("SIMULATOR_STATE_FILE") or None,
                        help="persist transactions to this JSON file")
    parser.add_argument("--public-url", default=os.environ.get("SIMULATOR_PUBLIC_URL") or None,
                        help="base of redirect_url (default: from the request's Host header)")
    args = parser.parse_args(argv)

    from simulator.app import Simulator
    from simulator.server import make_server

    sim = Simulator(
        server_key=os.environ.get("MIDTRANS_SERVER_KEY") or DEFAULT_SERVER_KEY,
        notify_url=args.notify_url, retry_scale=args.retry_scale,
        state_file=args.state_file, public_url=args.public_url,
        merchant_id=os.environ.get("SIMULATOR_MERCHANT_ID", "G000000000"),
    )
    server = make_server(args.host, args.port, sim)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    sim.start_sweeper()
    host, port = server.server_address[:2]
    print(f"Midtrans simulator on http://{host}:{port} (notifications -> {args.notify_url})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop.set()
        server.server_close()
        sim.store.save()
        print("Midtrans simulator stopped", flush=True)
    return 0


# -- client ---------------------------------------------------------------------------
def client_main(argv: list[str]) -> int:
    """Run one client command against a running simulator and print its JSON.

    Exit 1 for an unknown order or a refused move, 2 when the simulator is not reachable.
    """
    parser = argparse.ArgumentParser(prog="python -m simulator", description="Drive a running simulator.")
    sub = parser.add_subparsers(dest="command", required=True)
    for action in ACTIONS:
        p = sub.add_parser(action, help=f"{action} a transaction")
        p.add_argument("order_id")
        p.add_argument("--notify", default="send", help="send|drop|duplicate|reorder|delay:<seconds>")
        if action in ("pending", "settle"):
            p.add_argument("--payment-type", help="bank_transfer|permata|echannel|cstore|qris|gopay|credit_card")
            p.add_argument("--bank", help="bca|bni|bri|permata (bank_transfer)")
        if action == "settle":
            p.add_argument("--again", action="store_true",
                           help="pay an already paid VA again: another transaction under the order id (status/b2b)")
        if action == "refund":
            p.add_argument("--amount", type=int, help="partial amount (default: the rest)")
            p.add_argument("--reason", default="")
    p = sub.add_parser("status", help="show a transaction")
    p.add_argument("order_id")
    p = sub.add_parser("config", help="show or change the simulator's config")
    p.add_argument("--latency-ms", type=int)
    p.add_argument("--error-rate", type=float)
    p.add_argument("--error-mode", choices=("500", "503", "429", "timeout", "html502"))
    p.add_argument("--notifications", choices=("on", "off"))
    p.add_argument("--fee", type=int, help="buyer fee added to gross_amount (0: none)")
    for p in sub.choices.values():
        p.add_argument("--url", default=os.environ.get("SIMULATOR_URL", DEFAULT_URL),
                       help=f"the simulator's base URL (default {DEFAULT_URL})")
    args = parser.parse_args(argv)
    base = args.url.rstrip("/")
    try:
        if args.command == "config":
            changes = {k: v for k, v in {
                "status_latency_ms": args.latency_ms, "error_rate": args.error_rate,
                "error_mode": args.error_mode, "fee": args.fee,
                "notifications": None if args.notifications is None else args.notifications == "on",
            }.items() if v is not None}
            response = (requests.post(f"{base}/sim/config", json=changes, timeout=10) if changes
                        else requests.get(f"{base}/sim/config", timeout=10))
        elif args.command == "status":
            response = requests.get(f"{base}/sim/orders/{quote(args.order_id, safe='')}", timeout=10)
        else:
            params = {"notify": args.notify}
            if getattr(args, "again", False):
                params["again"] = "1"
            for name in ("payment_type", "bank", "amount", "reason"):
                value = getattr(args, name, None)
                if value not in (None, ""):
                    params[name] = str(value)
            response = requests.post(
                f"{base}/sim/orders/{quote(args.order_id, safe='')}/{args.command}", params=params, timeout=10)
    except requests.RequestException as exc:
        print(f"error: the simulator is not reachable at {base} ({type(exc).__name__})", file=sys.stderr)
        return 2
    try:
        data = response.json()
    except ValueError:
        print(f"error: unexpected answer from {base}: HTTP {response.status_code}", file=sys.stderr)
        return 1
    if response.status_code == 404:
        print(f"error: unknown order {getattr(args, 'order_id', '')!r}", file=sys.stderr)
        return 1
    if response.status_code >= 400:
        print(f"error: HTTP {response.status_code}: {data.get('error', data)}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2))
    return 0
