"""The backoff table: fresh payments are asked about often, old ones hourly, never past expiry."""

from datetime import UTC, datetime, timedelta

import pytest

from reconcile.schedule import check_interval, next_check_at

NOW = datetime(2026, 7, 18, 4, 7, tzinfo=UTC)
M = timedelta(minutes=1)


@pytest.mark.parametrize(("age", "interval"), [
    (timedelta(0), 1 * M),
    (4 * M, 1 * M),
    (5 * M, 2 * M),
    (14 * M, 2 * M),
    (15 * M, 5 * M),
    (59 * M, 5 * M),
    (60 * M, 10 * M),
    (3 * 60 * M, 30 * M),
    (12 * 60 * M, 60 * M),
    (3 * 24 * 60 * M, 60 * M),
])
def test_interval_backs_off_with_age(age: timedelta, interval: timedelta) -> None:
    assert check_interval(age) == interval


def test_next_check_is_now_plus_interval() -> None:
    assert next_check_at(created_at=NOW - 20 * M, now=NOW) == NOW + 5 * M


def test_next_check_never_later_than_a_future_expiry() -> None:
    expires = NOW + 30 * M
    assert next_check_at(created_at=NOW - 24 * 60 * M, now=NOW, expires_at=expires) == expires


def test_past_expiry_does_not_pull_the_check_into_the_past() -> None:
    assert next_check_at(created_at=NOW - 24 * 60 * M, now=NOW, expires_at=NOW - M) == NOW + 60 * M
