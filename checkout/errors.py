"""The project's exceptions; each maps to an HTTP status or exit code in one place."""

from typing import Any


class ApplicationError(Exception):
    """Base of every error the project raises on purpose."""

    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class MalformedNotification(ApplicationError):
    """The notification is not JSON, or a required field is missing."""


class InvalidSignature(ApplicationError):
    """The notification's signature_key does not match."""


class UnknownOrder(ApplicationError):
    """No order has that number."""


class GatewayError(ApplicationError):
    """Midtrans answered, or failed to, in a way we could not use."""


class GatewayUnavailable(GatewayError):
    """Midtrans is down, slow, rate-limiting or answered garbage; try later."""


class GatewayRejected(GatewayError):
    """Midtrans refused the request (validation, 401, 406, 412)."""


class TransactionNotFound(GatewayError):
    """Midtrans does not know the transaction (yet: a Snap order with no method chosen)."""
