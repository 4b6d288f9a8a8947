"""The back-pressure view's lag rows (pure rendering of hand-made lag polls)."""

from __future__ import annotations

from pipeconsole.model.lag import LagBook, LagSample
from pipeconsole.ui.screens.backpressure import _lag_row

T0 = 1_790_000_000_000


def test_the_backpressure_view_does_not_call_an_unknown_rate_stuck() -> None:
    book = LagBook()
    book.update([LagSample("g", "req", 0, committed=100, high=150)], T0)
    cells = [c.plain for c in _lag_row(book.rows()[0], 30.0)]
    assert cells[-2:] == ["?", "?"]
    book.update([LagSample("g", "req", 0, committed=100, high=150)], T0 + 1000)
    assert _lag_row(book.rows()[0], 30.0)[-1].plain == "stuck"
