"""Consumer-group lag: messages and seconds behind, and how fast it drains.

The ingest polls committed offsets and high watermarks (admin API) at a bounded rate and hands
them over as :class:`LagSample`. Messages behind = high - committed. Seconds behind comes from
record timestamps: the model remembers a bounded, sorted sample of (offset, timestamp) per
partition of the topics it reads itself (device-request-v1), and the age of the first record at
or after the committed offset is the lag in seconds. Drain rate = how fast the committed offset
moved since the previous poll (unknown, None, after a single poll).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from pipeconsole.model.snapshot import LagRow

__all__ = ["LagBook", "LagSample"]


@dataclass(frozen=True, slots=True)
class LagSample:
    group: str
    topic: str
    partition: int
    committed: int
    """Negative when the group has no committed offset for the partition (librdkafka: -1001);
    the rows say -1."""
    high: int


class _Offsets:
    """Bounded (offset, timestamp) samples of one partition, offsets increasing."""

    __slots__ = ("offsets", "times")

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.times: list[int] = []


class LagBook:
    def __init__(self, *, max_points: int = 4096) -> None:
        self.max_points = max_points
        self._marks: dict[tuple[str, int], _Offsets] = {}
        self._rows: dict[tuple[str, str, int], LagRow] = {}
        self._prev: dict[tuple[str, str, int], tuple[int, int]] = {}
        """(committed, poll time) of the previous poll."""

    def mark(self, topic: str, partition: int, offset: int, timestamp_ms: int) -> None:
        """Remember that ``offset`` was written at ``timestamp_ms`` (records read in order)."""
        m = self._marks.get((topic, partition))
        if m is None:
            m = self._marks[(topic, partition)] = _Offsets()
        if m.offsets and offset <= m.offsets[-1]:
            return
        if len(m.offsets) >= self.max_points:
            # Thin out: keep every other point, so the sample spans the whole history read.
            del m.offsets[::2]
            del m.times[::2]
        m.offsets.append(offset)
        m.times.append(timestamp_ms)

    def _age(self, topic: str, partition: int, committed: int, now_ms: int) -> float | None:
        m = self._marks.get((topic, partition))
        if m is None or not m.offsets:
            return None
        i = bisect.bisect_left(m.offsets, max(committed, 0))
        if i >= len(m.offsets):
            return None
        return max(0.0, (now_ms - m.times[i]) / 1000)

    def update(self, samples: list[LagSample], now_ms: int) -> None:
        for s in samples:
            key = (s.group, s.topic, s.partition)
            # librdkafka says "nothing committed" with OFFSET_INVALID (-1001): -1 here, as
            # documented, so that no front end shows that number to an operator.
            committed = s.committed if s.committed >= 0 else -1
            lag = s.high - committed if committed >= 0 else s.high
            prev = self._prev.get(key)
            drain: float | None = None  # one poll alone cannot say how fast it moves
            if prev is not None and now_ms > prev[1] and committed >= 0 and prev[0] >= 0:
                drain = max(0.0, (committed - prev[0]) / ((now_ms - prev[1]) / 1000))
            self._prev[key] = (committed, now_ms)
            seconds = 0.0 if lag <= 0 else self._age(s.topic, s.partition, committed, now_ms)
            self._rows[key] = LagRow(
                group=s.group,
                topic=s.topic,
                partition=s.partition,
                committed=committed,
                high=s.high,
                lag=max(0, lag),
                lag_seconds=seconds,
                drain_rate=None if drain is None else round(drain, 3),
            )

    def rows(self) -> tuple[LagRow, ...]:
        return tuple(self._rows[k] for k in sorted(self._rows))
