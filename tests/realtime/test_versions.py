"""The pings of a short window share one read of the current versions."""

import asyncio

import pytest

from checkout import selectors
from realtime import versions


@pytest.mark.django_db(transaction=True)
def test_many_pings_at_once_are_answered_from_one_query(make_order, monkeypatch) -> None:
    orders = [make_order() for _ in range(4)]
    reads: list[list[str]] = []
    read = selectors.payment_versions_for_orders

    def counted(numbers: list[str]) -> dict[str, int]:
        reads.append(numbers)
        return read(numbers)

    monkeypatch.setattr(selectors, "payment_versions_for_orders", counted)

    async def ping_all() -> list[int | None]:
        numbers = [o.number for o in orders for _ in range(5)] + ["NO-SUCH-ORDER"]
        return await asyncio.gather(*(versions.current_version(n) for n in numbers))

    answers = asyncio.run(ping_all())
    assert answers == [o.payment.version for o in orders for _ in range(5)] + [None]
    assert len(reads) == 1 and sorted(reads[0]) == sorted({o.number for o in orders} | {"NO-SUCH-ORDER"})
