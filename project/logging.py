"""A JSON log formatter, so grep-able markers come with structured fields.

It is also the one place that keeps order tokens out of the logs: the
customer's links carry them in ``?t=``, and Django's own loggers
(``django.request``, ``django.security.csrf``) pass the request object, whose
repr holds the full URL. Every handler formats through here, so the whole
line is redacted after it is built: message, extras and traceback alike.
"""

import json
import logging
import logging.config
import re
import time
from typing import Any

from django.http import HttpRequest

# Attributes every LogRecord has; anything else was passed with ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

# A ``t`` parameter's value: in a URL (?t=…, &t=…), a bare query string (a
# websocket scope's b't=…'), or percent-encoded in another URL (next=…%3Ft%3D…).
_TOKEN = re.compile(r"(?P<key>(?:(?<![\w.%-])|%3F|%26)t(?:=|%3D))[^&;#\s\"'<>\\%]+", re.IGNORECASE)
REDACTED = "[redacted]"


def redact_tokens(text: str) -> str:
    """Return text with the value of every ``t=`` query parameter replaced."""
    if "=" not in text and "%3" not in text:  # _TOKEN needs "t=" or "t%3D": most lines hold neither
        return text
    return _TOKEN.sub(rf"\g<key>{REDACTED}", text)


def configure(config: dict[str, Any]) -> None:
    """settings.LOGGING_CONFIG: apply ``config``, and stop making records carry what no line writes.

    JsonFormatter writes time, level, logger, message and extras, never the
    caller's file and line, thread or process; finding the caller walks the
    stack on every record. These are logging's documented switches for it
    (the logging HOWTO, "Optimization"). A webhook writes three lines.
    """
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.config.dictConfig(config)


def _field(value: Any) -> Any:
    # A request's repr is its full URL: log only the method and the path.
    if isinstance(value, HttpRequest):
        return f"{value.method} {value.path}"
    return value


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, logger, message, extras; tokens redacted."""

    _stamped: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's)
        """ISO 8601 to the second, in local time: made once a second, not once a line."""
        second = int(record.created)
        stamped, stamp = self._stamped  # one tuple, so threads never pair one second with another's text
        if second != stamped:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", self.converter(second))
            self._stamped = (second, stamp)
        return stamp

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update({k: _field(v) for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        return redact_tokens(json.dumps(data, default=str))
