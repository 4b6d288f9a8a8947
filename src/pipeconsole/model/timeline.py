"""The event timeline: a bounded ring of what happened, newest first, with a drop counter."""

from __future__ import annotations

from collections import deque

from pipeconsole.model.snapshot import Severity, TimelineEvent, builder

__all__ = ["Timeline"]

_Event = builder(TimelineEvent)
"""Fast constructor: a registry replay adds an event per device."""


class Timeline:
    def __init__(self, limit: int = 2000) -> None:
        self._events: deque[TimelineEvent] = deque(maxlen=limit)
        self.dropped = 0
        """Events pushed out of the ring by newer ones."""

    def add(
        self, time_ms: int, kind: str, subject: str, text: str, severity: Severity = Severity.INFO
    ) -> None:
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(_Event(time_ms, kind, subject, text, severity))

    def newest_first(self, limit: int = 500) -> tuple[TimelineEvent, ...]:
        # Read order is not time order across topics: sort (stable, newest first).
        return tuple(sorted(reversed(self._events), key=lambda e: -e.time_ms)[:limit])

    def __len__(self) -> int:
        return len(self._events)
