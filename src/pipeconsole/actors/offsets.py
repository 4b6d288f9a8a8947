"""Commit-after-outcome bookkeeping: what each partition may commit.

A partition's records finish out of order (a request scheduled an hour ahead finishes after a
thousand that fire now). :class:`PartitionOffsets` remembers the offsets read but not finished;
the commit point is the lowest unfinished offset, or one past the highest offset read when
everything read is finished. Committing that and no more is what makes the service
at-least-once: after a crash the new owner re-reads exactly the records without a final outcome
(and some finished ones above the lowest unfinished, which the devices de-duplicate).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

__all__ = ["PartitionOffsets"]


@dataclass(slots=True)
class PartitionOffsets:
    """Offsets of one partition between read and final outcome. Lives on the event loop."""

    topic: str
    partition: int
    committed: int = -1
    """Offset last handed to the consumer for commit (-1: none yet)."""
    high_read: int = -1
    """Highest offset read + 1 (-1: nothing read yet)."""
    _pending: set[int] = field(default_factory=set)
    _heap: list[int] = field(default_factory=list)

    def read(self, offset: int) -> bool:
        """Record ``offset`` as read and not finished; False when it was already known
        (re-delivered after a seek), in which case the caller must not process it twice."""
        # A partition is delivered in order, so anything below high_read was seen already.
        if offset < self.high_read:
            return False
        self._pending.add(offset)
        heapq.heappush(self._heap, offset)
        self.high_read = max(self.high_read, offset + 1)
        return True

    def done(self, offset: int) -> None:
        """``offset`` reached its final outcome (and the outcome was acknowledged)."""
        self._pending.discard(offset)

    @property
    def pending(self) -> int:
        """Records read and not finished."""
        return len(self._pending)

    def lowest_pending(self) -> int | None:
        while self._heap and self._heap[0] not in self._pending:
            heapq.heappop(self._heap)
        return self._heap[0] if self._heap else None

    def commit_point(self) -> int | None:
        """The offset to commit now (the next record a new owner should read), or ``None``
        when nothing has been read."""
        low = self.lowest_pending()
        if low is not None:
            return low
        return self.high_read if self.high_read >= 0 else None

    def advance(self) -> int | None:
        """The commit point if it moved past :attr:`committed` (and remember it), else None."""
        point = self.commit_point()
        if point is None or point <= self.committed:
            return None
        self.committed = point
        return point
