"""Sparkline history in snapshots: unpacked on first read, and never moved by later events."""

from __future__ import annotations

import json

from pipeconsole.model import Model
from pipeconsole.model.fixtures import state
from pipeconsole.model.snapshot import DeviceHistory

_T0 = 1_700_000_000_000


def _model_with_points(n: int) -> Model:
    model = Model(clock=lambda: (_T0 + n * 1000) / 1000)
    model.apply([state("enc-1", _T0 + i * 1000, queue_depth=i, seq=i) for i in range(n)])
    return model


def _fields(h: DeviceHistory) -> tuple[tuple[float, ...], ...]:
    return (h.time_ms, h.rate_in, h.rate_out, h.queue_depth, h.in_flight, h.latency_p99_ms)


def test_history_reads_the_same_as_the_rings_oldest_first() -> None:
    for points in (7, 60, 95):  # part of the ring, exactly full, wrapped
        model = _model_with_points(points)
        view = model.snapshot().device("enc-1")
        assert view is not None
        rec = model.fleet.devices["enc-1"]
        assert _fields(view.history) == _fields(model.fleet.history_now(rec))
        kept = min(points, 60)
        assert view.history.queue_depth == tuple(range(points - kept, points))
        assert view.history.time_ms[-1] == _T0 + (points - 1) * 1000


def test_a_snapshot_history_does_not_move_when_later_events_arrive() -> None:
    model = _model_with_points(10)
    view = model.snapshot().device("enc-1")
    assert view is not None
    model.apply([state("enc-1", _T0 + 10_000 + i * 1000, queue_depth=100 + i) for i in range(70)])
    assert view.history.queue_depth == tuple(range(10))  # first read after the ring moved on


def test_history_is_in_the_json_and_compares_by_value() -> None:
    model = _model_with_points(5)
    snap = model.snapshot()
    view = snap.device("enc-1")
    assert view is not None
    doc = json.loads(json.dumps(snap.to_json()))
    assert doc["devices"][0]["history"]["queue_depth"] == [0, 1, 2, 3, 4]
    again = model.fleet.history_of(model.fleet.devices["enc-1"])
    assert again == view.history and hash(again.queue_depth) == hash(view.history.queue_depth)


def test_views_share_the_rings_until_the_next_write_copies_them() -> None:
    model = _model_with_points(60)  # a full ring: the next point overwrites the oldest
    rec = model.fleet.devices["enc-1"]
    rings = rec.hist
    first = model.fleet.history_of(rec)
    second = model.fleet.history_of(rec)
    assert rec.hist is rings  # shared with both views, not copied
    model.apply([state("enc-1", _T0 + 60_000, queue_depth=99, seq=60)])
    assert rec.hist is not rings  # the write copied them first
    assert first.queue_depth == second.queue_depth == tuple(range(60))
    assert model.fleet.history_of(rec).queue_depth == (*range(1, 60), 99)
