"""The timer heap every actor's entries live in: health checks and scheduled commands.

One :class:`Scheduler` serves all actors of a service: a binary heap of :class:`Entry` ordered
by due time, with lazy deletion for cancels and at most one pending entry per key (a request id
cannot be scheduled twice). Time is a monotonic clock passed in, so the pure part
(:meth:`Scheduler.add`, :meth:`Scheduler.pop_due`) is tested with a fake clock.

Firing is separate from execution. :meth:`Scheduler.attach` starts a **timer thread** that
owns nothing but the wait: it sleeps on a condition until the earliest entry is due (an earlier
``add`` wakes it), pops every due entry, stamps each with the moment it fired
(:attr:`Entry.fired_wall`) and hands the batch to the event loop with one
``call_soon_threadsafe`` (batches coalesce while the loop has not taken the previous one). On
the loop, :meth:`Scheduler._deliver` skips entries cancelled meanwhile and calls ``fire``.
So a timer fires on time however busy the loop is with HTTP and Kafka work: lateness is the
thread's wake-up (sub-millisecond) plus waiting for the GIL (bounded by
``sys.getswitchinterval()``); the wait until the loop runs the request is reported apart
(the DISPATCHED event's time).

Threads: the heap is shared under a lock; the key index (``_by_key``) and ``cancelled`` flags
belong to the loop, which is also the only caller of :meth:`add`, :meth:`cancel`, :meth:`drop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import threading
import time
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
    fired_wall: float = 0.0
    """Wall-clock seconds at which the timer fired (0 until then)."""


class Scheduler(Generic[T]):
    """A heap of entries keyed by a unique string. :meth:`add`, :meth:`cancel` and
    :meth:`drop` are called from one thread (the loop's); the timer thread only pops."""

    def __init__(
        self, clock: Callable[[], float], *, wall: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        self._wall = wall
        self._heap: list[tuple[float, int, Entry[T]]] = []
        self._by_key: dict[str, Entry[T]] = {}
        self._seq = itertools.count()
        self._cond = threading.Condition(threading.Lock())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fire: Callable[[Entry[T]], None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = False
        self._outbox: list[Entry[T]] = []
        """Fired entries the loop has not taken yet (guarded by the condition's lock)."""

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
        with self._cond:
            heapq.heappush(self._heap, (due, entry.seq, entry))
            if self._heap[0][2] is entry:
                self._cond.notify()  # the timer thread sleeps until an older, later due
        return entry

    def cancel(self, key: str) -> Entry[T] | None:
        """Remove the pending entry for ``key``; returns it, or ``None`` if none was pending.

        An entry the timer thread has popped but the loop has not delivered yet is still
        pending: cancelling it here means it is never fired."""
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
        with self._cond:
            return self._next_due_locked()

    def _next_due_locked(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _pop_due_locked(self, now: float) -> list[Entry[T]]:
        heap = self._heap
        out: list[Entry[T]] = []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)[2]
            if not entry.cancelled:
                out.append(entry)
        return out

    def pop_due(self, now: float) -> list[Entry[T]]:
        """Remove and return every live entry due at or before ``now``, earliest first
        (the synchronous form, for callers that drive the heap themselves)."""
        with self._cond:
            out = self._pop_due_locked(now)
        for entry in out:
            del self._by_key[entry.key]
        return out

    # -- timer thread -----------------------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop, fire: Callable[[Entry[T]], None]) -> None:
        """Fire due entries on ``loop`` by calling ``fire(entry)``; ``clock`` must be
        ``loop.time`` (or run at the same rate) and callable from any thread."""
        self._loop = loop
        self._fire = fire
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def detach(self, timeout: float = 2.0) -> None:
        """Stop the timer thread; entries still in the heap stay there."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None
        self._loop = None
        self._fire = None

    def _run(self) -> None:
        _raise_priority()
        clock, wall, cond = self._clock, self._wall, self._cond
        while True:
            with cond:
                if self._stop:
                    return
                due = self._next_due_locked()
                wait = None if due is None else due - clock()
                if wait is None or wait > 0:
                    cond.wait(wait)
                    continue
                batch = self._pop_due_locked(clock())
                stamp = wall()
                for entry in batch:
                    entry.fired_wall = stamp
                handoff = not self._outbox
                self._outbox.extend(batch)
                loop = self._loop
            if handoff and batch and loop is not None:
                try:
                    loop.call_soon_threadsafe(self._deliver)
                except RuntimeError:  # the loop closed under us
                    return

    def _deliver(self) -> None:
        with self._cond:
            batch, self._outbox = self._outbox, []
        fire = self._fire
        for entry in batch:
            if entry.cancelled or self._by_key.get(entry.key) is not entry:
                continue
            del self._by_key[entry.key]
            if fire is not None:
                fire(entry)


def _raise_priority() -> None:
    """Best effort: run the timer thread at a higher CPU priority than the rest of the process
    (Linux nice of this thread only), so that on a busy machine the OS runs it when it wakes.
    Without the privilege (CAP_SYS_NICE) it keeps the normal priority."""
    import os

    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -10)
