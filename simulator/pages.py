"""HTML for the payment page and the dashboard (plain forms, small inline CSS)."""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import quote

from simulator import ACTIONS
from simulator.app import finish_redirect
from simulator.engine import METHODS
from simulator.store import Transaction

CSS = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f6f8;color:#1d2733}
main{max-width:34rem;margin:0 auto;padding:1rem}
main.wide{max-width:72rem}
.card{background:#fff;border-radius:.6rem;padding:1rem;margin:.8rem 0;box-shadow:0 1px 3px #0002}
h1{font-size:1.3rem}h2{font-size:1.05rem;margin:.2rem 0 .6rem}
.amount{font-size:1.6rem;font-weight:700}
button{font:inherit;padding:.6rem .9rem;margin:.2rem 0;border:0;border-radius:.4rem;background:#0b5cad;
color:#fff;cursor:pointer;width:100%}
button.alt{background:#5b6572}button.bad{background:#b3261e}
.inline button{width:auto;padding:.3rem .5rem;font-size:.85rem}
.inline{display:inline}
.code{font-family:monospace;font-size:1.3rem;letter-spacing:.05em;background:#eef2f6;padding:.4rem .6rem}
.qr{width:10rem;height:10rem;background:repeating-conic-gradient(#000 0 25%,#fff 0 50%) 0 0/1.25rem 1.25rem;
margin:.5rem auto;border:.5rem solid #fff;outline:1px solid #ccc}
table{border-collapse:collapse;width:100%;font-size:.9rem}td,th{padding:.35rem;border-bottom:1px solid #dde;
text-align:left;vertical-align:top}
pre{white-space:pre-wrap;word-break:break-all;font-size:.75rem;background:#f7f7f9;padding:.4rem}
.muted{color:#5b6572;font-size:.85rem}
"""


def _page(title: str, body: str, refresh: int | None = None, wide: bool = False) -> str:
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"{meta}<title>{escape(title)}</title><style>{CSS}</style></head>"
        f'<body><main class="{"wide" if wide else ""}">{body}</main></body></html>'
    )


def rupiah(amount: int) -> str:
    """Format an amount as Rupiah ("Rp 10.000")."""
    return "Rp " + f"{amount:,}".replace(",", ".")


def _form(action: str, label: str, fields: dict[str, str] | None = None, cls: str = "",
          name: str = "") -> str:
    hidden = "".join(
        f'<input type=hidden name="{escape(k)}" value="{escape(v)}">' for k, v in (fields or {}).items()
    )
    attr = f' name="{escape(name)}"' if name else ""
    return (f'<form method=post action="{escape(action)}">{hidden}'
            f'<button class="{cls}"{attr}>{escape(label)}</button></form>')


def _finish_link(tx: Transaction) -> str:
    """Return the link back to the merchant: callbacks.finish with Snap's query."""
    url = finish_redirect(tx)
    if not url:
        return '<p class=muted>No finish URL was given for this transaction.</p>'
    return f'<p><a id="finish-link" href="{escape(url)}">Back to the merchant</a></p>'


def _pending_details(tx: Transaction) -> str:
    m = tx.method
    if tx.payment_type == "bank_transfer":
        bank = (m.get("bank") or "").upper()
        return (f"<h2>{bank} Virtual Account</h2><p>Transfer to virtual account number</p>"
                f'<p class=code id="va-number">{escape(str(m.get("va_number", "")))}</p>')
    if tx.payment_type == "echannel":
        return ("<h2>Mandiri Bill Payment</h2>"
                f'<p>Biller code <span class=code id="biller-code">{escape(str(m.get("biller_code")))}</span></p>'
                f'<p>Bill key <span class=code id="bill-key">{escape(str(m.get("bill_key")))}</span></p>')
    if tx.payment_type == "cstore":
        store = escape(str(m.get("store", "indomaret")).title())
        return (f"<h2>{store}</h2><p>Show this payment code at the cashier</p>"
                f'<p class=code id="payment-code">{escape(str(m.get("payment_code")))}</p>')
    if tx.payment_type in ("qris", "gopay"):
        return (f"<h2>{'QRIS' if tx.payment_type == 'qris' else 'GoPay'}</h2>"
                '<div class=qr role=img aria-label="QR code (simulated)"></div>'
                "<p class=muted>Scan with any e-wallet app (simulated).</p>")
    return "<h2>Card payment in progress</h2>"


def payment_page(tx: Transaction) -> str:
    """Render the payment page for the transaction's current state.

    A Snap transaction lets the customer pick (and after a declined card,
    re-pick) a method; a Core API charge has its method fixed, so its page
    only completes that payment (a VA's *Pay now*, a card's 3-D Secure).
    """
    base = f"/snap/v2/vtweb/{quote(tx.token)}"
    core = tx.channel == "core"
    head = (f'<div class=card id="snap" data-order-id="{escape(tx.order_id)}" '
            f'data-status="{escape(tx.status or "")}"><div class=muted>Order</div>'
            f'<h1 id="order-id">{escape(tx.order_id)}</h1>'
            f'<div class=amount id="amount">{rupiah(tx.gross_amount)}</div></div>')
    status = tx.status
    if tx.page_expired or status in ("expire", "cancel"):
        word = "cancelled" if status == "cancel" else "expired"
        body = f'<div class=card><h2 id="result">This payment has {word}.</h2>{_finish_link(tx)}</div>'
    elif status in ("settlement", "refund", "partial_refund") or (status == "capture" and tx.fraud_status == "accept"):
        body = f'<div class=card><h2 id="result">Payment successful</h2>{_finish_link(tx)}</div>'
    elif status == "capture":
        body = ('<div class=card><h2 id="result">Payment under review</h2>'
                f"<p>The card payment is being reviewed by the merchant.</p>{_finish_link(tx)}</div>")
    elif status == "pending" and tx.payment_type != "credit_card":
        body = (f"<div class=card>{_pending_details(tx)}"
                + _form(f"{base}/pay", "Pay now (simulate)", name="pay")
                + f"{_finish_link(tx)}</div>"
                + ("" if core else _method_picker(tx, base, "Choose another method")))
    elif core and status == "pending":
        body = ('<div class=card id="method-credit_card"><h2>3-D Secure (simulated)</h2>'
                f'<p class=muted>Card {escape(str(tx.method.get("masked_card", "")))}</p>'
                + _card_buttons(base) + "</div>")
    elif core:
        body = '<div class=card><h2 id="result">Payment declined</h2></div>'
    else:
        notice = ""
        if status == "deny":
            notice = ('<div class=card><h2 id="result">Payment declined</h2>'
                      f"<p>Your card was declined. Try again or choose another method.</p>{_finish_link(tx)}</div>")
        body = notice + _method_picker(tx, base, "Choose a payment method")
    return _page(f"Pay {tx.order_id}", head + body)


def _card_buttons(base: str) -> str:
    return (_form(f"{base}/card", "Pay by card: accept", {"result": "accept"})
            + _form(f"{base}/card", "Pay by card: challenge", {"result": "challenge"}, "alt")
            + _form(f"{base}/card", "Pay by card: deny", {"result": "deny"}, "bad"))


def _method_picker(tx: Transaction, base: str, title: str) -> str:
    """Render the payment methods Snap's enabled_payments allow (all when it is empty)."""
    keys = [k for k in METHODS if not tx.enabled_payments or k in tx.enabled_payments] or list(METHODS)
    parts = [f"<div class=card><h2>{escape(title)}</h2>"]
    for key in keys:
        label = METHODS[key][0]
        if key == "credit_card":
            parts.append('<div class=card id="method-credit_card"><h2>Credit/debit card</h2>'
                         '<p class=muted>Card 4811 1111 1111 1114 (simulated)</p>'
                         + _card_buttons(base) + "</div>")
        else:
            parts.append(_form(f"{base}/choose", label, {"method": key}, name=f"method-{key}"))
    parts.append("</div>")
    return "".join(parts)


def dashboard(transactions: list[dict[str, Any]], config: dict[str, Any], notify_url: str) -> str:
    """Render the dashboard: transactions with actions, where their notifications go, attempts, the config form."""
    rows = []
    for tx in transactions:
        oid = quote(tx["order_id"], safe="")
        buttons = "".join(
            f'<form class=inline method=post action="/sim/orders/{oid}/{a}?redirect=1">'
            f"<button>{a}</button></form> "
            for a in ACTIONS if a != "pending"
        )
        attempts = "".join(
            f"<li>#{n.get('delivery')}.{n.get('attempt')} {escape(str(n.get('at')))} "
            f"{escape(str(n.get('requested_url') or n.get('url')))} "
            f"{escape(str(n.get('transaction_status')))} → "
            f"{escape(str(n.get('http_status') or n.get('error')))}"
            f"<pre>{escape(str(n.get('response_body') or ''))}</pre>"
            f"<details><summary>payload</summary><pre>{escape(json.dumps(n.get('payload'), indent=1))}</pre>"
            "</details></li>"
            for n in tx["notifications"]
        )
        urls = tx["notification_urls"]
        where = ("default" if urls == [notify_url] else
                 ("override: " if tx["notify_override"] else "default + ") + ", ".join(
                     tx["notify_override"] or tx["notify_append"]))
        rows.append(
            f"<tr><td><a href=\"{escape(tx['redirect_url'])}\">{escape(tx['order_id'])}</a>"
            f"<div class=muted>{escape(tx['channel'])}</div></td>"
            f"<td>{rupiah(tx['gross_amount'])}</td><td>{escape(str(tx['payment_type'] or '-'))}</td>"
            f"<td>{escape(str(tx['status'] or '-'))}"
            f"{' / ' + escape(tx['fraud_status']) if tx['fraud_status'] else ''}</td>"
            f"<td class=notify-urls title=\"{escape(', '.join(urls))}\">{escape(where)}</td>"
            f"<td>{escape(str(tx['last_notification'] or '-'))}</td><td>{buttons}"
            f"<details><summary>{len(tx['notifications'])} attempts</summary><ol>{attempts}</ol></details>"
            "</td></tr>"
        )
    checked = " checked" if config.get("notifications") else ""
    options = "".join(
        f'<option{" selected" if config.get("error_mode") == m else ""}>{m}</option>'
        for m in ("500", "503", "429", "timeout", "html502")
    )
    form = (
        '<form method=post action="/sim/config?redirect=1" class=card><h2>Config</h2>'
        f'<label><input type=hidden name=notifications value=off>'
        f'<input type=checkbox name=notifications value=on{checked}> notifications</label> '
        f'<label>status latency ms <input name=status_latency_ms size=5 value="{config.get("status_latency_ms")}">'
        f'</label> <label>error rate <input name=error_rate size=4 value="{config.get("error_rate")}"></label> '
        f"<label>error mode <select name=error_mode>{options}</select></label> "
        '<button style="width:auto">Save</button></form>'
    )
    table = ("<table><tr><th>Order</th><th>Amount</th><th>Method</th><th>Status</th>"
             f"<th>Notifications to</th><th>Last notification</th><th>Actions</th></tr>{''.join(rows)}</table>"
             if rows else "<p>No transactions yet.</p>")
    body = (f"<h1>Midtrans simulator</h1><p class=muted>Notifications → {escape(notify_url)}</p>"
            f"{form}<div class=card>{table}</div>")
    return _page("Midtrans simulator", body, refresh=5, wide=True)
