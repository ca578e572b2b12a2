"""A local Midtrans-compatible payment gateway for development, demos and tests.

Run it with ``python -m simulator`` (see ``python -m simulator --help``).
It speaks enough of Midtrans's Snap and Core API wire format for the unmodified
``midtransclient`` package, serves a payment page a person can use, sends signed
HTTP notifications with Midtrans's retry schedule, and offers a control API
(``/sim/...``) and a shell CLI to drive transactions from tests and demos.
"""

ACTIONS = ("pending", "settle", "deny", "expire", "cancel", "refund", "challenge", "approve")
