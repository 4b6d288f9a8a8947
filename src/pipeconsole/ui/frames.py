"""Keypress -> repaint latency of a running console, measured the one way we measure it.

``bench/ui_latency.py`` and the reliability soak both use it: :class:`FrameClock` stamps every
frame the app writes to its terminal driver (``App._display``), and :meth:`FrameClock.press`
presses a key through a Textual pilot and returns the milliseconds until the next frame.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

__all__ = ["FrameClock", "percentile"]


class FrameClock:
    """Stamps (``time.perf_counter()``) of the frames ``app`` writes, from now on."""

    def __init__(self, app: Any) -> None:
        self.frames: list[float] = []
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            self.frames.append(time.perf_counter())
            original(screen, renderable)

        app._display = display

    async def press(self, pilot: Any, key: str, timeout: float = 2.0) -> float | None:
        """Press ``key``; milliseconds until the next frame, or None if none came in time."""
        before = len(self.frames)
        t0 = time.perf_counter()
        await pilot.press(key)
        deadline = t0 + timeout
        while len(self.frames) == before and time.perf_counter() < deadline:
            await asyncio.sleep(0.001)
        painted = next((f for f in self.frames[before:] if f >= t0), None)
        return None if painted is None else (painted - t0) * 1000


def percentile(sorted_values: list[float], p: float) -> float:
    """The ``p``-th percentile of an already sorted list (nearest rank); -1 when empty."""
    if not sorted_values:
        return -1.0
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]
