"""Catching up on a backlog: superseded heartbeats are skipped undecoded, and counted."""

from __future__ import annotations

from pipeconsole.ingest import coalesce_heartbeats
from pipeconsole.kafka.records import Record
from pipeconsole.wire.gen.device_state_pb2 import (
    DeviceState,
    ServiceStateChanged,
    ServiceStateUnchanged,
    StateEvent,
)

TOPIC = "device-state-v1"


def _rec(offset: int, device: str, changed: bool, topic: str = TOPIC) -> Record:
    state = DeviceState(device_id=device, seq=offset)
    ev = (
        StateEvent(changed=ServiceStateChanged(state=state))
        if changed
        else StateEvent(unchanged=ServiceStateUnchanged(state=state))
    )
    return Record(topic, 0, offset, 0, device.encode(), ev.SerializeToString())


def test_only_the_latest_heartbeat_per_device_is_kept_and_changes_always_are() -> None:
    batch = [
        _rec(0, "enc-1", changed=False),
        _rec(1, "enc-1", changed=True),
        _rec(2, "enc-2", changed=False),
        _rec(3, "enc-1", changed=False),
        _rec(4, "enc-1", changed=False),
        _rec(5, "enc-1", changed=False, topic="device-response-v1"),
    ]
    kept, skipped = coalesce_heartbeats(batch, TOPIC)
    assert [r.offset for r in kept] == [1, 2, 4, 5]
    assert skipped == 2


def test_a_batch_without_repeats_is_returned_as_it_is() -> None:
    batch = [_rec(0, "enc-1", changed=False), _rec(1, "enc-2", changed=False)]
    kept, skipped = coalesce_heartbeats(batch, TOPIC)
    assert kept is batch and skipped == 0


def test_garbage_in_a_repeated_key_is_kept_for_the_undecodable_counter() -> None:
    garbage = Record(TOPIC, 0, 0, 0, b"enc-1", b"\xff\xff\xff")
    batch = [garbage, _rec(1, "enc-1", changed=False)]
    kept, skipped = coalesce_heartbeats(batch, TOPIC)
    assert kept == batch and skipped == 0
