"""Fixtures of the reliability suite: a small simulated fleet on the test's topics, the ledger,
a request sender."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ledger import Ledger
from relkit import Sender

from pipeconsole.config import Profile
from pipeconsole.sim.fleet import Fleet


@pytest.fixture
def fleet(profile: Profile) -> Iterator[Fleet]:
    with Fleet.start(devices=6, seed=5, profile=profile) as f:
        yield f
        for d in f.devices:
            d.clear()


@pytest.fixture
def ledger(profile: Profile) -> Iterator[Ledger]:
    with Ledger(profile) as led:
        yield led


@pytest.fixture
def sender(profile: Profile) -> Iterator[Sender]:
    s = Sender(profile)
    yield s
    s.close()
