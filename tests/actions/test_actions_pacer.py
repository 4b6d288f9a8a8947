"""The replay pacer on a fake clock: no one-second window of record timestamps holds more than
``rate`` sends, however the sends are delayed around it."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from pipeconsole.actions.replay import Pacer


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        assert s > 0
        self.now += s


def _stamps(rate: int, delays: list[tuple[float, float]]) -> list[float]:
    """Send once per ``(stall, produce)``: ``stall`` s pass between ``wait()`` returning and
    the producer taking the record's timestamp, ``produce`` s more before the call returns."""
    clock = _Clock()
    pacer = Pacer(rate, clock=clock, sleep=clock.sleep)
    stamps = []
    for stall, produce in delays:
        pacer.wait()
        clock.now += stall
        stamps.append(clock.now)
        clock.now += produce
        pacer.sent()
    return stamps


def _window_max(stamps: list[float]) -> int:
    return max(sum(1 for t in stamps[i:] if t < s + 1.0) for i, s in enumerate(stamps))


delay = st.floats(min_value=0.0, max_value=0.2, allow_nan=False)


@given(
    rate=st.integers(min_value=1, max_value=200),
    delays=st.lists(st.tuples(delay, delay), min_size=2, max_size=300),
)
def test_no_second_holds_more_than_rate_sends_whatever_the_stalls(
    rate: int, delays: list[tuple[float, float]]
) -> None:
    stamps = _stamps(rate, delays)
    assert all(b - a >= 1.0 / rate for a, b in itertools.pairwise(stamps))
    assert _window_max(stamps) <= rate


def test_a_send_stalled_after_wait_pushes_the_next_back() -> None:
    """Measured from ``wait()`` alone, a send stalled after it and the next one took the same
    timestamp: two at once, where the rate promises one per interval."""
    delays = [(0.0, 0.0)] * 120
    delays[10] = (0.06, 0.0)
    stamps = _stamps(50, delays)
    assert stamps[11] - stamps[10] >= 1 / 50
    assert _window_max(stamps) <= 50
