"""Names of the Channels groups (ASCII letters, digits, ``-_.``, under 100 chars)."""

import re


def order_group(order_number: str) -> str:
    """Return the group that watchers of one order join."""
    return "order." + re.sub(r"[^A-Za-z0-9_.-]", "_", order_number)[:80]
