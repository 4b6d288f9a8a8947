"""The back-pressure view's rows (pure rendering of hand-made lag polls and actor statuses)."""

from __future__ import annotations

from pipeconsole.model.lag import LagBook, LagSample
from pipeconsole.model.snapshot import ActorView
from pipeconsole.ui.screens.backpressure import ACTOR_COLUMNS, _actor_row, _lag_row

T0 = 1_790_000_000_000


def test_the_backpressure_view_does_not_call_an_unknown_rate_stuck() -> None:
    book = LagBook()
    book.update([LagSample("g", "req", 0, committed=100, high=150)], T0)
    cells = [c.plain for c in _lag_row(book.rows()[0], 30.0)]
    assert cells[-2:] == ["?", "?"]
    book.update([LagSample("g", "req", 0, committed=100, high=150)], T0 + 1000)
    assert _lag_row(book.rows()[0], 30.0)[-1].plain == "stuck"


def _actor(tokens: float) -> ActorView:
    return ActorView(
        actor_id="dispatch-1",
        host="vm",
        pid=1,
        time_ms=T0,
        started_ms=T0,
        devices=("d",),
        partitions=(),
        scheduled=0,
        in_flight=0,
        in_flight_limit=128,
        retry_budget_left=tokens,
        executed=0,
        rejected=0,
        dead_lettered=0,
        group="pipeconsole-dispatch",
        dlq_alarm=False,
        stale=False,
    )


def test_the_retry_budget_shows_the_retries_left_not_a_percentage() -> None:
    """The actors report tokens (retries they may start now); 6.21 once showed as "621%"."""
    col = ACTOR_COLUMNS.index("retries")
    shown = {t: _actor_row(_actor(t))[col] for t in (0.0, 0.95, 6.21, 42.4, 100.0)}
    assert {t: c.plain for t, c in shown.items()} == {
        0.0: "empty",
        0.95: "empty",
        6.21: "6.2",
        42.4: "42",
        100.0: "100",
    }
    assert "red" in str(shown[0.0].style)
    assert "red" not in str(shown[6.21].style)
