"""Core API ``POST /v2/charge`` and ``GET /v2/token``: request rules, card test tokens, answers, QR images.

What Midtrans answers is mirrored where its documentation shows it (the
fields per payment type, status codes 201/200/202, 406 for a taken order_id,
411 for a bad token, the ``actions`` of GoPay and QRIS); status messages the
documentation does not show are close approximations (docs/simulator.md).
"""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from simulator.payloads import fmt_time, now
from simulator.snap import EXPIRY_UNITS

if TYPE_CHECKING:
    from simulator.store import Transaction

PAYMENT_TYPES = ("bank_transfer", "echannel", "gopay", "qris", "credit_card", "cstore")
BANKS = ("bca", "bni", "bri", "permata")
# Midtrans's default expiry per method when the charge has no custom_expiry.
DEFAULT_EXPIRY = {"gopay": timedelta(minutes=15), "qris": timedelta(minutes=15),
                  "credit_card": timedelta(minutes=10)}
VA_EXPIRY = timedelta(hours=24)

# Midtrans's sandbox test cards (docs "Testing Payment on Sandbox"), by "<first 6>-<last 4>".
# 451111-1117 (challenged by FDS) is the simulator's own: Midtrans lists no challenge card.
CARD_OUTCOMES = {
    "491111-1113": "deny_bank",
    "471111-1115": "deny_bank",
    "461111-1116": "deny_fds",
    "451111-1117": "challenge",
}
TOKEN_RE = re.compile(r"^(?P<bin>\d{6})-(?P<last4>\d{4})-[A-Za-z0-9-]+$")
INVALID_PARAMETERS = "One or more parameters in the payload is invalid."

STATUS_MESSAGES = {
    "bca": "Success, Bank Transfer transaction is created",
    "bni": "Success, Bank Transfer transaction is created",
    "bri": "Success, Bank Transfer transaction is created",
    "permata": "Success, PERMATA VA transaction is successful",
    "echannel": "OK, Mandiri Bill transaction is successful",
    "gopay": "GoPay transaction is created",
    "qris": "QRIS transaction is created",
    "cstore": "Success, cstore transaction is successful",
}


class ChargeError(Exception):
    """A charge or token request Midtrans refuses: the HTTP status and the Core API body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("status_message", ""))
        self.status = status
        self.body = {**body, "id": str(uuid.uuid4())}


def invalid(*messages: str) -> ChargeError:
    return ChargeError(400, {"status_code": "400", "status_message": INVALID_PARAMETERS,
                             "validation_messages": list(messages)})


def taken() -> ChargeError:
    return ChargeError(406, {
        "status_code": "406",
        "status_message": "The request could not be completed due to a conflict with the current state of the "
                          "target resource, please try again",
        "validation_messages": ["transaction_details.order_id has already been taken"],
    })


def bad_token() -> ChargeError:
    return ChargeError(411, {"status_code": "411", "status_message": "Token id is missing, invalid, or timed out"})


@dataclass
class Charge:
    """A valid charge request, normalised."""

    order_id: str
    gross_amount: int
    payment_type: str
    bank: str | None = None
    card: str | None = None  # "<first 6>-<last 4>" of the token's card
    authentication: bool = False
    expires_in: timedelta = VA_EXPIRY
    start: datetime | None = None
    customer_details: dict[str, Any] = field(default_factory=dict)
    item_details: list[dict[str, Any]] = field(default_factory=list)

    @property
    def card_outcome(self) -> str:
        """The test card's outcome: "accept", "challenge", "deny_bank" or "deny_fds"."""
        return CARD_OUTCOMES.get(self.card or "", "accept")

    def first_move(self) -> tuple[str, dict[str, Any]]:
        """Return the move (engine.apply's action and parameters) the charge makes at once.

        Pending, but a card without 3-D Secure is decided at once by its test card.
        """
        if self.payment_type != "credit_card":
            return "pending", {"payment_type": self.payment_type, "bank": self.bank}
        if self.authentication:
            return "pending", {"payment_type": "credit_card"}
        action = {"accept": "settle", "challenge": "challenge"}.get(self.card_outcome, "deny")
        return action, {"payment_type": "credit_card"}


def validate_charge(body: Any, errors: list[str], order_id: str, gross: int) -> Charge:
    """Check the payment-type part of a charge; ``errors`` already holds transaction_details' problems.

    Raises ChargeError: 400 with validation_messages, or 411 for a card
    charge without a usable token_id.
    """
    payment_type = body.get("payment_type")
    bank = None
    if payment_type in (None, ""):
        errors.append("payment_type is required")
    elif payment_type not in PAYMENT_TYPES:
        errors.append(f"payment_type {payment_type} is not supported")
    elif payment_type == "bank_transfer":
        bank = str((body.get("bank_transfer") or {}).get("bank") or "").lower() \
            if isinstance(body.get("bank_transfer"), dict) else ""
        if not bank:
            errors.append("bank_transfer.bank is required")
        elif bank not in BANKS:
            errors.append(f"bank_transfer.bank {bank} is not supported")
    elif payment_type == "cstore":
        bank = "indomaret"
    start, expires_in = _custom_expiry(body.get("custom_expiry"), payment_type, errors)
    if errors:
        raise invalid(*errors)
    charge = Charge(order_id=order_id, gross_amount=gross, payment_type=str(payment_type), bank=bank,
                    expires_in=expires_in, start=start,
                    customer_details=body.get("customer_details") if isinstance(body.get("customer_details"), dict)
                    else {},
                    item_details=body.get("item_details") if isinstance(body.get("item_details"), list) else [])
    if payment_type == "credit_card":
        card = body.get("credit_card") if isinstance(body.get("credit_card"), dict) else {}
        match = TOKEN_RE.match(str(card.get("token_id") or ""))
        if not match:
            raise bad_token()
        charge.card = f"{match['bin']}-{match['last4']}"
        charge.authentication = bool(card.get("authentication") or card.get("secure"))
    return charge


def _custom_expiry(value: Any, payment_type: Any, errors: list[str]) -> tuple[datetime | None, timedelta]:
    default = DEFAULT_EXPIRY.get(str(payment_type), VA_EXPIRY)
    if value is None:
        return None, default
    if not isinstance(value, dict):
        errors.append("custom_expiry must be an object")
        return None, default
    start = None
    if value.get("order_time"):
        try:
            start = datetime.strptime(str(value["order_time"]), "%Y-%m-%d %H:%M:%S %z")
        except ValueError:
            errors.append("custom_expiry.order_time must be formatted as yyyy-MM-dd HH:mm:ss Z")
    unit = str(value.get("unit", "minute")).lower().rstrip("s")
    if unit not in EXPIRY_UNITS:
        errors.append("custom_expiry.unit must be one of second, minute, hour, day")
        return start, default
    try:
        duration = int(value.get("expiry_duration"))
    except (TypeError, ValueError):
        errors.append("custom_expiry.expiry_duration must be an integer")
        return start, default
    if duration <= 0:
        errors.append("custom_expiry.expiry_duration must be greater than 0")
        return start, default
    return start, timedelta(seconds=duration * EXPIRY_UNITS[unit])


# -- card tokens ---------------------------------------------------------------------------
def _luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        digit = int(ch) * (2 if i % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def card_token(query: dict[str, str]) -> dict[str, Any]:
    """Answer ``GET /v2/token``: a token_id "<first 6>-<last 4>-<uuid>" for a valid card, as Midtrans shapes it.

    The token carries the card's outcome (its first 6 and last 4 digits), so
    the simulator keeps no token state and any "<6 digits>-<4 digits>-<anything>"
    works as a test token.
    """
    number = re.sub(r"[\s-]", "", query.get("card_number", ""))
    errors = []
    if not number.isdigit() or not 13 <= len(number) <= 19 or not _luhn(number):
        errors.append("card_number does not match with luhn algorithm")
    month, year = query.get("card_exp_month", ""), query.get("card_exp_year", "")
    if not (month.isdigit() and 1 <= int(month) <= 12 and year.isdigit()):
        errors.append("card_exp_month and card_exp_year must be a valid expiry date")
    elif (int(year) if len(year) == 4 else 2000 + int(year), int(month)) < (now().year, now().month):
        errors.append("card_exp_year is expired")
    if not re.fullmatch(r"\d{3,4}", query.get("card_cvv", "")):
        errors.append("card_cvv must be 3 or 4 digits")
    if errors:
        raise invalid(*errors)
    masked = f"{number[:6]}-{number[-4:]}"
    return {"status_code": "200", "status_message": "OK, success request new token",
            "validation_messages": ["OK"], "token_id": f"{masked}-{uuid.uuid4()}", "hash": f"{masked}-mami"}


# -- answers ---------------------------------------------------------------------------------
def charge_answer(tx: Transaction, status_body: dict[str, Any], base_url: str, outcome: str) -> dict[str, Any]:
    """Turn a transaction's status body into the charge answer Midtrans gives for its payment type."""
    body = dict(status_body)
    for key in ("signature_key", "payment_amounts", "settlement_time", "refunds", "refund_amount"):
        body.pop(key, None)
    tid = tx.transaction_id
    if tx.payment_type == "credit_card":
        body["status_message"] = {
            "accept": "Success, Credit Card transaction is successful",
            "challenge": "Challenge by FDS",
            "deny_bank": "Deny by Bank [BNI] with code [05] and message [Do not honour]",
            "deny_fds": "Denied by FDS",
        }[outcome]
        if tx.status == "pending":  # 3-D Secure: the customer completes it on the page
            body["status_message"] = "OK, please complete 3DS authentication"
            body["redirect_url"] = tx.redirect_url
        return body
    body["status_message"] = STATUS_MESSAGES.get(tx.method.get("bank") or tx.payment_type or "", "Success")
    if tx.payment_type == "gopay":
        body["actions"] = [
            {"name": "generate-qr-code", "method": "GET", "url": f"{base_url}/v2/gopay/{tid}/qr-code"},
            {"name": "deeplink-redirect", "method": "GET", "url": f"{base_url}/v2/gopay/{tid}/deeplink"},
            {"name": "get-status", "method": "GET", "url": f"{base_url}/v2/{tid}/status"},
            {"name": "cancel", "method": "POST", "url": f"{base_url}/v2/{tid}/cancel"},
        ]
    elif tx.payment_type == "qris":
        # Midtrans's QRIS answer has just this action, plus the QR's content.
        body["actions"] = [{"name": "generate-qr-code", "method": "GET", "url": f"{base_url}/v2/qris/{tid}/qr-code"}]
        body["qr_string"] = qr_string(tx)
        body["acquirer"] = "gopay"
    if tx.status == "pending":
        body["expiry_time"] = fmt_time(tx.expires_at)
    return body


def qr_string(tx: Transaction) -> str:
    """An EMVCo-looking QRIS payload (not a payable one)."""
    return f"00020101021226620014COM.GO-JEK.WWW01189360091430000000000215{tx.transaction_id}5204599953033605802ID" \
           f"5908SIMULATR6007JAKARTA5406{tx.gross_amount}6304ABCD"


def qr_png(seed: str, modules: int = 29, scale: int = 6) -> bytes:
    """A QR-looking PNG (finder squares, pseudo-random modules) derived from seed; not scannable."""
    bits = int.from_bytes(zlib.crc32(seed.encode()).to_bytes(4, "big") * 32, "big")

    def dark(x: int, y: int) -> bool:
        for fx, fy in ((0, 0), (modules - 7, 0), (0, modules - 7)):
            if fx <= x < fx + 7 and fy <= y < fy + 7:
                dx, dy = x - fx, y - fy
                return dx in (0, 6) or dy in (0, 6) or (2 <= dx <= 4 and 2 <= dy <= 4)
        return bool(bits >> ((x * modules + y) % 1000) & 1)

    size = (modules + 8) * scale
    rows = []
    for py in range(size):
        y = py // scale - 4
        row = bytearray([0])
        for px in range(size):
            x = px // scale - 4
            row.append(0 if 0 <= x < modules and 0 <= y < modules and dark(x, y) else 255)
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows))) \
        + chunk(b"IEND", b"")
