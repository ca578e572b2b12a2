"""When a pending payment is asked about next: often while fresh, hourly once old.

A webhook lost for a fresh payment is caught within minutes, while a day-old
virtual account is not polled at every run.
"""

from datetime import datetime, timedelta

# (payment younger than, check again after)
BACKOFF: tuple[tuple[timedelta, timedelta], ...] = (
    (timedelta(minutes=5), timedelta(minutes=1)),
    (timedelta(minutes=15), timedelta(minutes=2)),
    (timedelta(hours=1), timedelta(minutes=5)),
    (timedelta(hours=3), timedelta(minutes=10)),
    (timedelta(hours=12), timedelta(minutes=30)),
)
OLDER = timedelta(hours=1)


def check_interval(age: timedelta) -> timedelta:
    """Return the wait before the next check of a payment of this age."""
    for younger_than, interval in BACKOFF:
        if age < younger_than:
            return interval
    return OLDER


def next_check_at(*, created_at: datetime, now: datetime, expires_at: datetime | None = None) -> datetime:
    """Return when to check a payment next; never later than its expiry while that is ahead."""
    due = now + check_interval(now - created_at)
    if expires_at is not None and now < expires_at < due:
        return expires_at
    return due
