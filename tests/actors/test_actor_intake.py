"""The service's intake queue: records are handled a slice per turn of the loop, in order, and
queued records of a revoked partition are never handled (nor committed past)."""

from __future__ import annotations

import asyncio

from pipeconsole.actors.offsets import PartitionOffsets
from pipeconsole.actors.service import _INTAKE_SLICE, DispatchService
from pipeconsole.config import Profile
from pipeconsole.kafka.records import Record


class _Lifecycle:
    """Stands in for RequestLifecycle: records what it was handed."""

    def __init__(self) -> None:
        self.handled: list[int] = []

    def on_request(self, r: Record) -> None:
        self.handled.append(r.offset)

    def on_cancel(self, r: Record) -> None:  # pragma: no cover - no cancels here
        raise AssertionError("no cancel was sent")


def _service() -> tuple[DispatchService, _Lifecycle, tuple[str, int]]:
    svc = DispatchService(Profile(name="intake", bootstrap="127.0.0.1:1"))
    svc._loop = asyncio.get_running_loop()
    tp = (svc.topics.request, 0)
    svc.offsets[tp] = PartitionOffsets(*tp)
    svc.owned_request_parts = {0}
    life = _Lifecycle()
    svc.lifecycle = life  # type: ignore[assignment]
    return svc, life, tp


def _records(tp: tuple[str, int], offsets: range) -> list[Record]:
    return [Record(tp[0], tp[1], o, 0, b"dev-1", b"", ()) for o in offsets]


async def _turns_until(cond: object, limit: int = 1000) -> int:
    """Turns of the loop until ``cond()``; each turn is one ``sleep(0)``."""
    for turn in range(limit):
        if cond():  # type: ignore[operator]
            return turn
        await asyncio.sleep(0)
    raise AssertionError(f"not reached within {limit} turns")


async def test_a_burst_is_handled_a_slice_per_turn_in_order() -> None:
    svc, life, tp = _service()
    n = 3 * _INTAKE_SLICE + 5
    svc._on_records(_records(tp, range(n)))
    assert life.handled == []  # queued, not handled inside the consumer's callback
    assert svc.offsets[tp].pending == n  # but read: the commit cannot pass them
    await asyncio.sleep(0)
    assert life.handled == list(range(_INTAKE_SLICE))  # one slice, then the loop runs others
    await _turns_until(lambda: len(life.handled) == n)
    assert life.handled == list(range(n))


async def test_queued_records_of_a_revoked_partition_are_dropped_uncommitted() -> None:
    svc, life, tp = _service()
    svc._on_records(_records(tp, range(10, 10 + 2 * _INTAKE_SLICE)))
    final = await svc._on_revoked([tp], lost=False)
    await _turns_until(lambda: not svc._intake_scheduled)
    assert life.handled == []
    assert tp not in svc.offsets
    assert final == {tp: 10}  # the last commit stops at the first unhandled record
