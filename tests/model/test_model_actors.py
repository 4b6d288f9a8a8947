"""Device-actor statuses: stale only after 3 of the actor's own status intervals (hand-made)."""

from __future__ import annotations

from pipeconsole.actors.settings import DispatchSettings
from pipeconsole.model import Model
from pipeconsole.model.fixtures import FakeClock
from pipeconsole.model.model import ACTOR_STATUS_INTERVAL_MS
from pipeconsole.wire.gen import device_state_pb2 as ds


def _status(clock: FakeClock, actor_id: str = "dispatch-1") -> ds.StateEvent:
    return ds.StateEvent(actor=ds.ActorStatus(actor_id=actor_id, time_unix_ms=clock.now_ms))


def _stale(model: Model) -> dict[str, bool]:
    return {a.actor_id: a.stale for a in model.snapshot(analyse=False).actors}


def test_an_actor_reporting_every_5_s_is_never_stale_between_reports_with_1_s_checks() -> None:
    """The demo's setting: checks every second, statuses every 5 s. The bound was 3 check
    intervals (3 s): the actor went stale 2 s of every 5, and the chaos probe with it."""
    clock = FakeClock()
    model = Model(clock=clock, check_interval_s=1.0)
    for _ in range(6):
        model.apply([_status(clock)])
        for _ in range(10):
            assert _stale(model) == {"dispatch-1": False}, clock.now_ms
            clock.advance(0.5)
    # Silent for more than 3 of its intervals (15.5 s): stale.
    clock.advance(10.5)
    assert _stale(model) == {"dispatch-1": True}


def test_the_bound_follows_the_interval_the_actor_reports_at() -> None:
    clock = FakeClock()
    model = Model(clock=clock, check_interval_s=0.1)
    for _ in range(8):  # a fast actor (the tests' 0.3 s)
        model.apply([_status(clock)])
        clock.advance(0.3)
    clock.advance(0.9)  # 1.2 s silent: 4 of its intervals
    assert _stale(model) == {"dispatch-1": True}
    model.apply([_status(clock)])
    assert _stale(model) == {"dispatch-1": False}


def test_one_early_status_does_not_make_the_actor_stale_before_its_next_regular_one() -> None:
    clock = FakeClock()
    model = Model(clock=clock, check_interval_s=1.0)
    for _ in range(4):
        model.apply([_status(clock)])
        clock.advance(5.0)
    model.apply([_status(clock)])
    clock.advance(0.2)
    model.apply([_status(clock)])  # early (a rebalance), then back to every 5 s
    clock.advance(4.8)
    assert _stale(model) == {"dispatch-1": False}


def test_an_actor_seen_once_is_judged_by_the_dispatchers_default_interval() -> None:
    assert DispatchSettings().status_interval_s * 1000 == ACTOR_STATUS_INTERVAL_MS
    clock = FakeClock()
    model = Model(clock=clock, check_interval_s=1.0)
    model.apply([_status(clock)])
    clock.advance(3 * ACTOR_STATUS_INTERVAL_MS / 1000 - 0.5)
    assert _stale(model) == {"dispatch-1": False}
    clock.advance(1.0)
    assert _stale(model) == {"dispatch-1": True}
