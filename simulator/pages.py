"""The payment page and the dashboard, filled in from simulator/templates/.

A template file holds named sections: a line ``<!-- name -->`` starts one,
which runs to the next such line. Each section is a ``string.Template``;
every value is HTML-escaped unless it is ``Html`` (a section already filled).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from html import escape
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import quote

from simulator import ACTIONS
from simulator.engine import METHODS
from simulator.snap import finish_redirect
from simulator.store import ERROR_MODES, Transaction

TEMPLATES = Path(__file__).with_name("templates")
SECTION = re.compile(r"^<!-- ([\w-]+) -->\n", re.MULTILINE)
CARD_BUTTONS = (("accept", ""), ("challenge", "alt"), ("deny", "bad"))


class Html(str):
    """Markup that is substituted as it is."""


@cache
def _sections(page: str) -> dict[str, Template]:
    parts = SECTION.split((TEMPLATES / f"{page}.html").read_text())
    return {key: Template(text.strip()) for key, text in zip(parts[1::2], parts[2::2], strict=True)}


def render(page: str, section: str, /, **values: Any) -> Html:
    """Fill a section of templates/<page>.html."""
    safe = {key: value if isinstance(value, Html) else escape(str(value)) for key, value in values.items()}
    return Html(_sections(page)[section].substitute(safe))


def _join(parts: Iterable[Html], separator: str = "\n") -> Html:
    return Html(separator.join(parts))


@cache
def _stylesheet() -> Html:
    return Html((TEMPLATES / "style.css").read_text().strip())


def _layout(title: str, body: Html, refresh: int | None = None, wide: bool = False) -> str:
    return render("layout", "page", title=title, body=body, width="wide" if wide else "", css=_stylesheet(),
                  refresh=render("layout", "refresh", seconds=refresh) if refresh else Html(""))


def rupiah(amount: int) -> str:
    """Format an amount as Rupiah ("Rp 10.000")."""
    return "Rp " + f"{amount:,}".replace(",", ".")


# -- payment page -------------------------------------------------------------------------
def payment_page(tx: Transaction) -> str:
    """Render the payment page for the transaction's current state.

    A Snap transaction lets the customer pick (and after a declined card,
    re-pick) a method; a Core API charge has its method fixed, so its page
    only completes that payment (a VA's *Pay now*, a card's 3-D Secure).
    """
    page = render("payment", "page", order_id=tx.order_id, status=tx.status or "",
                  amount=rupiah(tx.gross_amount), body=_next_step(tx, f"/snap/v2/vtweb/{quote(tx.token)}"))
    return _layout(f"Pay {tx.order_id}", page)


def not_found() -> str:
    return render("payment", "not-found")


def not_possible(reason: str) -> str:
    return render("payment", "not-possible", reason=reason)


def _next_step(tx: Transaction, base: str) -> Html:
    status, core = tx.status, tx.channel == "core"
    if tx.page_expired or status in ("expire", "cancel"):
        return _result(tx, f"This payment has {'cancelled' if status == 'cancel' else 'expired'}.")
    if status in ("settlement", "refund", "partial_refund") or (status == "capture" and tx.fraud_status == "accept"):
        return _result(tx, "Payment successful")
    if status == "capture":
        return _result(tx, "Payment under review", "The card payment is being reviewed by the merchant.")
    if status == "pending" and tx.payment_type != "credit_card":
        return render("payment", "pending", details=_payment_details(tx), finish=_finish_link(tx),
                      pay=_button(f"{base}/pay", "Pay now (simulate)", name="pay"),
                      other_methods=Html("") if core else _method_picker(tx, base, "Choose another method"))
    if core and status == "pending":
        return _card(base, "3-D Secure (simulated)", tx.method.get("masked_card", ""))
    if core:
        return render("payment", "result", heading="Payment declined", note="", finish=Html(""))
    declined = _result(tx, "Payment declined", "Your card was declined. Try again or choose another method.")
    return _join([declined if status == "deny" else Html(""), _method_picker(tx, base, "Choose a payment method")])


def _result(tx: Transaction, heading: str, note: str = "") -> Html:
    return render("payment", "result", heading=heading, note=note, finish=_finish_link(tx))


def _finish_link(tx: Transaction) -> Html:
    """Return the link back to the merchant: callbacks.finish with Snap's query."""
    url = finish_redirect(tx)
    return render("payment", "finish-link", url=url) if url else render("payment", "no-finish-link")


def _payment_details(tx: Transaction) -> Html:
    """Return what the customer needs to pay a pending transaction: a VA number, a bill key, a code, a QR."""
    method = tx.method
    if tx.payment_type == "bank_transfer":
        return render("payment", "bank_transfer", bank=(method.get("bank") or "").upper(),
                      va_number=method.get("va_number", ""))
    if tx.payment_type == "echannel":
        return render("payment", "echannel", biller_code=method.get("biller_code"), bill_key=method.get("bill_key"))
    if tx.payment_type == "cstore":
        return render("payment", "cstore", store=str(method.get("store", "indomaret")).title(),
                      payment_code=method.get("payment_code"))
    return render("payment", "qr", wallet="QRIS" if tx.payment_type == "qris" else "GoPay")


def _method_picker(tx: Transaction, base: str, title: str) -> Html:
    """Render the payment methods Snap's enabled_payments allow (all when it is empty)."""
    keys = [k for k in METHODS if not tx.enabled_payments or k in tx.enabled_payments] or list(METHODS)
    methods = [
        _card(base, "Credit/debit card", "4811 1111 1111 1114 (simulated)") if key == "credit_card"
        else _button(f"{base}/choose", METHODS[key][0], {"method": key}, name=f"method-{key}")
        for key in keys
    ]
    return render("payment", "methods", title=title, methods=_join(methods))


def _card(base: str, heading: str, card: str) -> Html:
    buttons = [_button(f"{base}/card", f"Pay by card: {result}", {"result": result}, style)
               for result, style in CARD_BUTTONS]
    return render("payment", "card", heading=heading, card=card, buttons=_join(buttons))


def _button(action: str, label: str, fields: dict[str, str] | None = None, style: str = "", name: str = "") -> Html:
    """Return a form of one button that posts ``fields``."""
    hidden = _join((render("payment", "field", name=k, value=v) for k, v in (fields or {}).items()), "")
    return render("payment", "button", action=action, fields=hidden, style=style, name=name, label=label)


# -- dashboard ------------------------------------------------------------------------------
def dashboard(transactions: list[dict[str, Any]], config: dict[str, Any], notify_url: str) -> str:
    """Render the dashboard: transactions with actions, where their notifications go, attempts, the config form."""
    rows = [_row(tx, notify_url) for tx in transactions]
    modes = [render("dashboard", "error-mode", mode=m, selected=" selected" if config.get("error_mode") == m else "")
             for m in ERROR_MODES]
    page = render(
        "dashboard", "page", notify_url=notify_url, checked=" checked" if config.get("notifications") else "",
        status_latency_ms=config.get("status_latency_ms"), error_rate=config.get("error_rate"),
        error_modes=_join(modes, ""),
        transactions=render("dashboard", "table", rows=_join(rows)) if rows else render("dashboard", "no-transactions"),
    )
    return _layout("Midtrans simulator", page, refresh=5, wide=True)


def _row(tx: dict[str, Any], notify_url: str) -> Html:
    urls = tx["notification_urls"]
    if urls == [notify_url]:
        destination = "default"
    elif tx["notify_override"]:
        destination = "override: " + ", ".join(tx["notify_override"])
    else:
        destination = "default + " + ", ".join(tx["notify_append"])
    order_id = quote(tx["order_id"], safe="")
    moves = [render("dashboard", "move", order_id=order_id, action=a) for a in ACTIONS if a != "pending"]
    attempts = [
        render("dashboard", "attempt", delivery=n.get("delivery"), attempt=n.get("attempt"), at=n.get("at"),
               url=n.get("requested_url") or n.get("url"), transaction_status=n.get("transaction_status"),
               outcome=n.get("http_status") or n.get("error"), response_body=n.get("response_body") or "",
               payload=json.dumps(n.get("payload"), indent=1))
        for n in tx["notifications"]
    ]
    status = str(tx["status"] or "-") + (f" / {tx['fraud_status']}" if tx["fraud_status"] else "")
    return render(
        "dashboard", "row", redirect_url=tx["redirect_url"], order_id=tx["order_id"], channel=tx["channel"],
        amount=rupiah(tx["gross_amount"]), payment_type=tx["payment_type"] or "-", status=status,
        urls=", ".join(urls), destination=destination, last_notification=tx["last_notification"] or "-",
        moves=_join(moves, " "), attempt_count=len(tx["notifications"]), attempts=_join(attempts),
    )
