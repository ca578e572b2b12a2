"""Calls made close together on one event loop, handled by one round trip (a query, a Redis pipeline).

Open pages ping by the thousand and a stopping daphne drops every socket at
once; one round trip each was measured to saturate daphne (docs/benchmarks.md).
A ``LoopBatch`` gathers the calls of a short window per event loop (daphne
has one; each async test has its own) and hands them to one ``flush``.
"""

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")


class _Pending(Generic[K, V, R]):
    def __init__(self) -> None:
        self.items: dict[K, list[V]] = {}
        self.answers: list[tuple[K, asyncio.Future[R | None]]] = []


class LoopBatch(Generic[K, V, R]):
    """Gather ``submit(key, value)`` calls for ``delay`` seconds, then run ``flush({key: [values]})`` once.

    Each caller's future gets ``flush``'s answer for its key (None when it has
    none), or ``flush``'s exception. With ``delay`` 0 the batch is every call
    made before the loop's next turn. A caller that gives up cancels only its
    own future.
    """

    def __init__(self, flush: Callable[[dict[K, list[V]]], Awaitable[Mapping[K, R]]], delay: float) -> None:
        self.flush = flush
        self.delay = delay
        self._pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pending[K, V, R]] = (
            weakref.WeakKeyDictionary())

    def submit(self, key: K, value: V) -> "asyncio.Future[R | None]":
        """Add a call to this loop's current batch (opening one if needed); return its answer's future."""
        loop = asyncio.get_running_loop()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = _Pending()
            loop.call_later(self.delay, lambda: loop.create_task(self._run(loop, pending)))
        pending.items.setdefault(key, []).append(value)
        answer: asyncio.Future[R | None] = loop.create_future()
        pending.answers.append((key, answer))
        return answer

    async def _run(self, loop: asyncio.AbstractEventLoop, pending: _Pending[K, V, R]) -> None:
        del self._pending[loop]  # calls from now on open the next batch
        try:
            results = await self.flush(pending.items)
        except Exception as exc:
            for _, answer in pending.answers:
                if not answer.done():
                    answer.set_exception(exc)
            return
        for key, answer in pending.answers:
            if not answer.done():
                answer.set_result(results.get(key))
