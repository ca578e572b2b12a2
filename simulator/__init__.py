"""A local Midtrans-compatible payment gateway for development, demos and tests.

Run it with ``python -m simulator`` (see ``python -m simulator --help``).
It speaks enough of Midtrans's Snap and Core API wire format (charge, status,
status/b2b, cancel, expire, refund, approve, deny) for the unmodified
``midtransclient`` package, serves a payment page a person can use, sends signed
HTTP notifications with Midtrans's retry schedule to the configured URL or the
request's X-Override-Notification / X-Append-Notification, and offers a control
API (``/sim/...``) and a shell CLI to drive transactions from tests and demos.
docs/simulator.md lists what is implemented and what is approximated.
"""

ACTIONS = ("pending", "settle", "deny", "expire", "cancel", "refund", "challenge", "approve")
