"""A broker outage is the console's silence, not the devices': while the console cannot read
Kafka, and for a grace period after, only devices already silent when it began count as silent
(hand-built streams, fake clock)."""

from __future__ import annotations

from pipeconsole.model import Health, Model, pipeline
from pipeconsole.model.fixtures import FIXED_NOW_MS, FakeClock, added, rounds
from pipeconsole.model.fleet import RECONNECT_GRACE_MS

T0 = FIXED_NOW_MS


def _fleet(silent: str = "") -> tuple[Model, FakeClock]:
    clock = FakeClock(T0)
    model = Model(clock=clock, check_interval_s=5.0)
    model.set_connection(True)
    specs = pipeline(24)
    model.apply(added(s, f"http://127.0.0.1:{18000 + i}", T0 - 60_000) for i, s in enumerate(specs))
    events = list(rounds(specs, T0 - 25_000, 6, silent_after={silent: 1} if silent else None))
    model.apply(events)
    model.consumed("device-state-v1", len(events))
    return model, clock


def test_during_an_outage_the_fleet_stays_as_last_known_then_is_judged_again() -> None:
    model, clock = _fleet()
    before = model.snapshot(analyse=True)
    assert before.fleet.healthy == 24 and not before.incidents

    clock.advance(2.0)
    model.set_connection(False, "lag poll failed: broker transport failure")
    clock.advance(120.0)  # 24 check intervals without a word from Kafka
    during = model.snapshot(analyse=True)
    assert during.fleet.healthy == 24 and during.fleet.unknown == 0 and during.fleet.stale == 0
    assert not during.incidents
    assert not any(e.ghost for e in during.graph.edges)
    assert [e.text for e in during.timeline if e.kind == "health"] == []
    assert not during.connection.connected
    # The age is still the true one ("last seen 2 min ago"), not frozen.
    d = during.device("ingest-02")
    assert d is not None and d.last_seen_age_s is not None and d.last_seen_age_s > 120

    # Back in touch: the devices (their actors lost the broker too) get RECONNECT_GRACE_MS.
    model.set_connection(True)
    clock.advance(1.0)
    model.apply(rounds(pipeline(24)[:20], clock.now_ms, 1))  # 20 of them report at once
    back = model.snapshot(analyse=True)
    assert back.fleet.healthy == 24 and back.fleet.unknown == 0
    clock.advance(RECONNECT_GRACE_MS / 1000 - 2)
    model.apply(rounds(pipeline(24)[:20], clock.now_ms, 1))
    assert model.snapshot(analyse=True).fleet.unknown == 0
    # The other 4 have said nothing for the whole grace: silent now.
    clock.advance(1.5)
    after = model.snapshot(analyse=True)
    assert after.fleet.healthy == 20 and after.fleet.unknown == 4 and after.fleet.stale == 4
    assert after.incidents and after.incidents[0].health == Health.UNKNOWN
    silent = {e.subject for e in after.timeline if e.kind == "health"}
    assert silent == {s.device_id for s in pipeline(24)[20:]}


def test_the_probe_not_a_stray_record_ends_the_outage() -> None:
    """Records still read during an outage (librdkafka's local queue) do not end it: only the
    reader's or the probe's verdict does."""
    model, clock = _fleet()
    model.set_connection(False, "down")
    clock.advance(60.0)
    model.consumed("device-state-v1", 1)
    model.set_connection(False, "still down")
    assert model.snapshot(analyse=True).fleet.unknown == 0


def test_a_device_silent_before_the_outage_stays_unknown_during_it() -> None:
    model, clock = _fleet(silent="origin-01")
    model.set_connection(False, "down")
    clock.advance(300.0)
    snap = model.snapshot(analyse=True)
    d = snap.device("origin-01")
    assert d is not None and d.health == Health.UNKNOWN and d.stale
    assert snap.fleet.unknown == 1 and snap.fleet.healthy == 23


def test_a_second_outage_starts_from_when_the_console_last_heard_from_kafka() -> None:
    model, clock = _fleet()
    model.set_connection(False, "down")
    clock.advance(30.0)
    model.set_connection(True)
    clock.advance(RECONNECT_GRACE_MS / 1000 + 1)  # back, and nothing heard of them: silent
    assert model.snapshot(analyse=True).fleet.unknown == 24
    model.set_connection(True)  # the probe, again
    model.set_connection(False, "down again")  # the outage begins at that probe
    clock.advance(60.0)
    assert model.snapshot(analyse=True).fleet.unknown == 24  # silent before it: still


def test_a_console_that_never_connected_has_no_outage_to_discount() -> None:
    """Start-up: the first attempts failing is not contact lost; the backlog read once
    connected says when each device was last heard of."""
    clock = FakeClock(T0)
    model = Model(clock=clock, check_interval_s=5.0)
    model.set_connection(False, "cannot reach the broker")
    clock.advance(60.0)
    model.set_connection(True)
    spec = pipeline(24)[0]
    model.apply([added(spec, "http://127.0.0.1:18000", T0 - 60_000)])
    model.apply(rounds([spec], T0 - 10_000, 1))  # last heard of 70 s ago
    assert model.snapshot(analyse=True).fleet.unknown == 1


def test_devices_that_went_silent_before_the_outage_was_noticed_are_explained() -> None:
    """The probe notices an outage seconds late: the devices gone UNKNOWN meanwhile come back
    as last known, and the timeline says why, once."""
    model, clock = _fleet()
    clock.advance(20.0)  # the broker died at the start of this; nobody noticed yet
    assert model.snapshot(analyse=True).fleet.unknown == 24
    # The console last heard from Kafka (records, a probe) 20 s ago: the devices were fresh.
    model.set_connection(False, "lag poll failed")
    snap = model.snapshot(analyse=True)
    assert snap.fleet.unknown == 0
    model.snapshot(analyse=True)
    notes = [e.text for e in model.snapshot().timeline if "no longer counted silent" in e.text]
    assert notes == [
        "24 device(s) no longer counted silent: the silence was the console's own outage "
        "(shown as last heard of)"
    ]
