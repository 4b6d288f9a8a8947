"""The request log: each request id is executed once; repeats get the first result.

Bounded (least recently used ids are forgotten first, ``capacity`` of them are kept). An entry
is a future, so a repeat that arrives while the first attempt still runs waits for its result
instead of executing again. Only results worth replaying are kept (see :meth:`finish`):
a transient failure (5xx, a refused deadline) must let a retry with the same id execute.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

__all__ = ["RequestLog", "Result"]

Result = tuple[int, dict[str, Any]]
"""(HTTP status, JSON body)."""


class RequestLog:
    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, asyncio.Future[Result]] = OrderedDict()
        self.forgotten = 0
        """Ids evicted to stay within ``capacity``."""

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, request_id: str) -> asyncio.Future[Result] | None:
        fut = self._entries.get(request_id)
        if fut is not None:
            self._entries.move_to_end(request_id)
        return fut

    def begin(self, request_id: str) -> asyncio.Future[Result]:
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._entries[request_id] = fut
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
            self.forgotten += 1
        return fut

    def finish(self, request_id: str, fut: asyncio.Future[Result], result: Result) -> None:
        """Resolve waiting repeats; keep the result unless it was a transient failure."""
        if not fut.done():
            fut.set_result(result)
        if result[0] >= 500 and self._entries.get(request_id) is fut:
            del self._entries[request_id]
