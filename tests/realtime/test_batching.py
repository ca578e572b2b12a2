"""realtime.batching: calls close together on one loop share one flush; each caller gets its own answer."""

import asyncio

import pytest

from realtime.batching import LoopBatch


async def test_a_window_calls_flush_once_and_answers_each_key() -> None:
    flushes = []

    async def flush(items):
        flushes.append(items)
        return {key: sum(values) for key, values in items.items() if key != "none"}

    batch = LoopBatch(flush, 0.05)
    answers = [batch.submit("a", 1), batch.submit("b", 2), batch.submit("a", 3), batch.submit("none", 0)]
    assert await asyncio.gather(*answers) == [4, 2, 4, None]
    assert flushes == [{"a": [1, 3], "b": [2], "none": [0]}]
    assert await batch.submit("a", 5) == 5 and len(flushes) == 2  # a call after the flush opens the next batch


async def test_a_failing_flush_reaches_every_caller_and_a_cancelled_one_only_itself() -> None:
    async def flush(items):
        raise OSError("down")

    batch = LoopBatch(flush, 0)
    first, second, gone = batch.submit("a", 1), batch.submit("b", 2), batch.submit("c", 3)
    gone.cancel()
    for answer in (first, second):
        with pytest.raises(OSError, match="down"):
            await answer
    assert gone.cancelled()
