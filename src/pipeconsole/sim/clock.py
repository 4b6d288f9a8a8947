"""The simulator's sense of time: one injectable clock drives the flow model and fault leases.

:class:`RealClock` follows the monotonic clock (a ticker steps the model every ``tick_s``);
:class:`ManualClock` only moves when a test calls ``Fleet.advance()``, so a test can step the
fleet synchronously and deterministically. HTTP latency faults always sleep on the real clock:
they are felt by real clients.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "RealClock"]


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale (only differences matter)."""
        ...

    def unix_ms(self) -> int:
        """Wall-clock time in Unix milliseconds, for bodies and registry events."""
        ...


class RealClock:
    """The process's monotonic clock."""

    def now(self) -> float:
        return time.monotonic()

    def unix_ms(self) -> int:
        return int(time.time() * 1000)


class ManualClock:
    """A clock that moves only when told to; wall time is the start time plus the steps."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = start
        self._origin = start
        self._wall0_ms = int(time.time() * 1000)

    def now(self) -> float:
        return self._t

    def unix_ms(self) -> int:
        return self._wall0_ms + int((self._t - self._origin) * 1000)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._t += seconds
