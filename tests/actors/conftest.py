"""Fixtures of the device-actor tests: a simulated fleet registered on the test's topics,
collectors of the response and state topics, and a request sender."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from actor_harness import Responses, Sender, States

from pipeconsole.config import Profile
from pipeconsole.sim.fleet import Fleet


@pytest.fixture
def fleet(profile: Profile) -> Iterator[Fleet]:
    with Fleet.start(devices=8, seed=3, profile=profile) as f:
        yield f
        # A fleet stopped with a hang active waits for the held requests: end faults first.
        for d in f.devices:
            d.clear()


@pytest.fixture
def responses(profile: Profile) -> Iterator[Responses]:
    r = Responses(profile)
    yield r
    r.close()


@pytest.fixture
def states(profile: Profile) -> Iterator[States]:
    s = States(profile)
    yield s
    s.close()


@pytest.fixture
def sender(profile: Profile) -> Iterator[Sender]:
    s = Sender(profile)
    yield s
    s.close()
