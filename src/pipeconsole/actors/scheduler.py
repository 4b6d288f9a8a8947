"""The timer heap every actor's entries live in: health checks and scheduled commands.

One :class:`Scheduler` serves all actors of a service: a binary heap of :class:`Entry` ordered
by due time, with lazy deletion for cancels and at most one pending entry per key (a request id
cannot be scheduled twice). Time is a monotonic clock passed in, so the pure part
(:meth:`Scheduler.add`, :meth:`Scheduler.pop_due`) is tested with a fake clock.

:meth:`Scheduler.attach` drives the heap from an asyncio loop with a single ``call_at`` handle
armed for the earliest entry; an earlier entry re-arms it. Entries fire from the loop's own timer
machinery, so lateness is the loop's timer resolution plus whatever else the loop is doing.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Entry", "Scheduler"]

T = TypeVar("T")


@dataclass(slots=True, eq=False)
class Entry(Generic[T]):
    """One timer: fires ``payload`` at ``due`` unless cancelled first."""

    due: float
    """Monotonic seconds."""
    key: str
    """Unique among pending entries (a request id, or ``health:<device>``)."""
    payload: T
    cancelled: bool = False
    seq: int = field(default=0)
    """Tie-breaker: entries due at the same time fire in the order they were added."""


class Scheduler(Generic[T]):
    """A heap of entries keyed by a unique string. Not thread-safe: it lives on the loop."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Entry[T]]] = []
        self._by_key: dict[str, Entry[T]] = {}
        self._seq = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fire: Callable[[Entry[T]], None] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def get(self, key: str) -> Entry[T] | None:
        return self._by_key.get(key)

    def add(self, due: float, key: str, payload: T) -> Entry[T] | None:
        """Schedule ``payload`` at ``due``; ``None`` when ``key`` is already pending."""
        if key in self._by_key:
            return None
        entry = Entry(due, key, payload, seq=next(self._seq))
        self._by_key[key] = entry
        heapq.heappush(self._heap, (due, entry.seq, entry))
        self._arm()
        return entry

    def cancel(self, key: str) -> Entry[T] | None:
        """Remove the pending entry for ``key``; returns it, or ``None`` if none was pending."""
        entry = self._by_key.pop(key, None)
        if entry is not None:
            entry.cancelled = True
        return entry

    def drop(self, predicate: Callable[[Entry[T]], bool]) -> list[Entry[T]]:
        """Cancel every pending entry for which ``predicate`` holds (used on revoke)."""
        gone = [e for e in self._by_key.values() if predicate(e)]
        for e in gone:
            self.cancel(e.key)
        return gone

    def next_due(self) -> float | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[Entry[T]]:
        """Remove and return every live entry due at or before ``now``, earliest first."""
        out: list[Entry[T]] = []
        while self._heap and self._heap[0][0] <= now:
            _, _, entry = heapq.heappop(self._heap)
            if entry.cancelled:
                continue
            del self._by_key[entry.key]
            out.append(entry)
        return out

    # -- asyncio driver -------------------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop, fire: Callable[[Entry[T]], None]) -> None:
        """Fire due entries on ``loop`` by calling ``fire(entry)``; ``clock`` must be
        ``loop.time`` (or run at the same rate) for the timers to line up."""
        self._loop = loop
        self._fire = fire
        self._arm()

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._armed_at = None
        self._loop = None
        self._fire = None

    def _arm(self) -> None:
        if self._loop is None:
            return
        due = self.next_due()
        if due is None:
            return
        if self._armed_at is not None and self._armed_at <= due:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = due
        delay = max(0.0, due - self._clock())
        self._handle = self._loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._handle = None
        self._armed_at = None
        fire = self._fire
        if fire is None:
            return
        for entry in self.pop_due(self._clock()):
            fire(entry)
        self._arm()
