"""Consumer-group lag on hand-made polls: messages, seconds from record timestamps, drain rate."""

from __future__ import annotations

from dataclasses import replace

from pipeconsole.model.lag import LagBook, LagSample
from pipeconsole.model.snapshot import LagRow

T0 = 1_790_000_000_000


def _row(book: LagBook) -> LagRow:
    (row,) = book.rows()
    return row


def test_messages_and_seconds_behind_come_from_the_marks() -> None:
    book = LagBook()
    for offset in range(10):
        book.mark("req", 0, offset, T0 + offset * 1000)
    book.update([LagSample("g", "req", 0, committed=4, high=10)], T0 + 20_000)
    row = _row(book)
    assert row.lag == 6
    assert row.lag_seconds == 16.0  # offset 4 was written at +4 s


def test_one_poll_cannot_say_how_fast_it_drains_two_can() -> None:
    """A console just started (or ``status``, which polls once) showed a lagging partition as
    "stuck" in red: the drain rate was 0 until a second poll."""
    book = LagBook()
    book.update([LagSample("g", "req", 0, committed=100, high=150)], T0)
    assert _row(book).drain_rate is None
    book.update([LagSample("g", "req", 0, committed=140, high=160)], T0 + 2000)
    assert _row(book).drain_rate == 20.0
    book.update([LagSample("g", "req", 0, committed=140, high=170)], T0 + 4000)
    assert _row(book).drain_rate == 0.0  # stuck: known now


def test_a_group_without_a_commit_lags_by_the_whole_partition_at_an_unknown_rate() -> None:
    book = LagBook()
    book.update([LagSample("g", "req", 0, committed=-1, high=42)], T0)
    book.update([LagSample("g", "req", 0, committed=-1, high=42)], T0 + 1000)
    row = _row(book)
    assert row.lag == 42 and row.drain_rate is None


def test_nothing_committed_is_minus_one_and_status_says_none() -> None:
    """librdkafka reports a partition the group never committed as -1001 (OFFSET_INVALID);
    ``pipeconsole status`` printed "committed -1001"."""
    from pipeconsole.model.fixtures import demo_snapshot
    from pipeconsole.status import render_text

    book = LagBook()
    book.update([LagSample("g", "req", 1, committed=-1001, high=3)], T0)
    row = _row(book)
    assert (row.committed, row.lag) == (-1, 3)
    book.update([LagSample("g", "req", 1, committed=-1001, high=3)], T0 + 1000)
    assert _row(book).drain_rate is None  # no committed offset: no rate either

    text = render_text(replace(demo_snapshot(), lag=book.rows()), [])
    assert "g req[1] committed none high 3 lag 3" in text
