"""Shared fixtures: one embedded broker per test session, fresh topic names per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from hypothesis import settings

from pipeconsole.broker import EmbeddedBroker
from pipeconsole.config import Profile, Topics

# No per-example deadline anywhere: this machine's speed swings ~2x, and a 200 ms deadline met
# by a garbage collection or a busy core fails an example that is correct ("Unreliable test
# timings"). Speed is measured in bench/, not asserted here.
settings.register_profile("pipeconsole", deadline=None)
settings.load_profile("pipeconsole")


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """A real Tansu broker on a free loopback port, shared by the whole session."""
    with EmbeddedBroker() as b:
        yield b


def make_topics(suffix: str | None = None, request_partitions: int = 4) -> Topics:
    suffix = suffix or uuid.uuid4().hex[:8]
    base = Topics()
    names = {
        attr: f"{getattr(base, attr)}-{suffix}"
        for attr in ("registry", "state", "request", "control", "response", "dlq", "chaos", "audit")
    }
    return replace(base, request_partitions=request_partitions, partitions=2, **names)


@pytest.fixture
def profile(broker: EmbeddedBroker) -> Profile:
    """A profile on the session broker whose topics exist and belong to this test alone."""
    from pipeconsole.kafka.admin import ensure_topics

    p = Profile(name="test", bootstrap=broker.bootstrap, topics=make_topics())
    ensure_topics(p, p.topics)
    return p
