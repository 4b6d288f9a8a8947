"""Fixtures for the simulator's tests: a started fleet on a manual clock, and an HTTP client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pipeconsole.sim import Fleet, ManualClock


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    """The default 24-device pipeline on a clock that moves only when the test says so."""
    with Fleet.start(devices=24, seed=1, clock=ManualClock()) as f:
        f.advance(3.0)  # let the flow settle
        yield f


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client
