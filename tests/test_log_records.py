"""What makes a log line cheap must not change what it says (project/logging.py, project/daphne_log.py)."""

import json
import logging
import time

import pytest
from django.conf import settings

from project.daphne_log import silence_twisted_access_log
from project.logging import JsonFormatter, redact_tokens


def test_logging_is_configured_without_the_callers_frame_thread_or_process() -> None:
    assert settings.LOGGING_CONFIG == "project.logging.configure"
    made = logging.getLogger("paywatch.test").makeRecord("paywatch.test", logging.INFO, "(unknown file)", 0, "hi",
                                                         None, None)
    assert logging._srcfile is None  # findCaller is not walked for every record
    assert made.thread is None and made.process is None


def test_a_line_keeps_its_fields_once_records_carry_less() -> None:
    record = logging.LogRecord("paywatch.webhook", logging.INFO, "", 0, "MIDTRANS WEBHOOK RECEIVED", None, None)
    record.order_id = "INV-1"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "MIDTRANS WEBHOOK RECEIVED" and line["order_id"] == "INV-1"
    assert line["time"] == time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(int(record.created)))


def test_the_time_is_made_again_when_the_second_changes() -> None:
    formatter = JsonFormatter()
    first = logging.LogRecord("x", logging.INFO, "", 0, "a", None, None)
    later = logging.LogRecord("x", logging.INFO, "", 0, "b", None, None)
    first.created, later.created = 1_800_000_000.2, 1_800_000_061.9
    stamps = [json.loads(formatter.format(r))["time"] for r in (first, later, first)]
    assert stamps[0] != stamps[1] and stamps[0] == stamps[2]
    assert stamps[1] == time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(1_800_000_061))


@pytest.mark.parametrize("text", ["GET /orders/INV1/ 200", '{"message": "Auto-updated payment", "to": "success"}'])
def test_a_line_without_a_parameter_is_left_unchanged(text) -> None:
    assert redact_tokens(text) == text


def test_daphne_writes_no_access_line_of_its_own() -> None:
    from daphne.http_protocol import HTTPFactory

    silence_twisted_access_log()
    silence_twisted_access_log()  # idempotent
    factory = HTTPFactory(server=None)

    def formatter(*_):
        raise AssertionError("daphne formatted Twisted's access line")

    factory._logFormatter = formatter
    factory._logFile = _Sink()
    factory.log(object())
    assert factory._logFile.lines == []


class _Sink:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, line: str) -> None:
        self.lines.append(line)
