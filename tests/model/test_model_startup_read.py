"""The console's start-up read: the whole window in one batch, one fold, nothing missed.

A console starting on a backlog reads it in one batch: the partitions started from the
beginning are looked up with those started by time (every start known when it assigns), a
short first read does not end the batch, ``max_records`` counts the survivors of the supersede
pass, and the partitions read to their marks are paused while the rest is gathered, then
resumed with nothing lost.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from pipeconsole.config import Profile
from pipeconsole.ingest import HEARTBEAT_TAG
from pipeconsole.kafka import reader as reader_mod
from pipeconsole.kafka.producer import ConfirmingProducer, wait_all
from pipeconsole.kafka.reader import AssignReader
from pipeconsole.kafka.records import Record
from pipeconsole.wire.gen.device_state_pb2 import DeviceState, ServiceStateUnchanged, StateEvent


def _beat(device: str, seq: int) -> bytes:
    state = DeviceState(device_id=device, seq=seq)
    return StateEvent(unchanged=ServiceStateUnchanged(state=state)).SerializeToString()


def _send(profile: Profile, topic: str, items: list[tuple[str, bytes]]) -> None:
    with ConfirmingProducer(profile) as producer:
        wait_all([producer.send(topic, v, key=k) for k, v in items], 30)


def _reader(profile: Profile, topics: list[str], **kw: Any) -> AssignReader:
    """A reader as the console's: the registry from the beginning, the rest by time."""
    start: dict[str, Any] = {t: 0 for t in topics}
    start[profile.topics.registry] = "beginning"
    return AssignReader(profile, topics, start, **kw)


def test_partitions_read_from_the_beginning_start_at_a_known_offset(profile: Profile) -> None:
    """Left to librdkafka, "beginning" partitions became fetchable a lookup later than the
    others, and its first fetch often held only partitions with nothing to read (which the
    broker holds for fetch.wait.max.ms)."""
    t = profile.topics
    _send(profile, t.registry, [(f"enc-{n}", b"x") for n in range(6)])
    with _reader(profile, [t.registry, t.state]) as reader:
        starts = reader._starts
        assert all(starts[k] >= 0 for k in reader.partitions if k[0] == t.registry)
        got: list[Record] = []
        while not reader.reached_marks():
            got += reader.poll_batch(100, 1.0)
    assert sorted(r.key or b"" for r in got) == [f"enc-{n}".encode() for n in range(6)]


def test_the_start_up_window_is_one_batch_however_short_the_first_read(
    profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fetches of one record batch per partition, each record a batch of its own: the first
    call comes back short and librdkafka runs dry between fetches; the start-up batch still
    ends only when the window is read (it ended at the first dry moment)."""
    monkeypatch.setattr(reader_mod, "_CHUNK", 5)
    t = profile.topics
    _send(profile, t.registry, [(f"enc-{n}", b"x") for n in range(4)])
    with ConfirmingProducer(profile) as producer:
        for n in range(60):
            producer.send(t.state, _beat(f"enc-{n % 4}", n), key=f"enc-{n % 4}").result(30)
    tiny = {"max.partition.fetch.bytes": 64}
    batches: list[list[Record]] = []
    with _reader(profile, [t.registry, t.state], extra=tiny) as reader:
        while not reader.reached_marks():  # the console's timeout: 0.1 s
            batch = reader.poll_batch(
                1000, 0.1, supersede=(t.state, HEARTBEAT_TAG), gather_s=30.0, startup=True
            )
            if batch:
                batches.append(batch)
        superseded = reader.superseded
    with_beats = [b for b in batches if any(r.topic == t.state for r in b)]
    assert len(with_beats) == 1  # one batch, one fold, for the whole window's heartbeats
    beats = [r for r in with_beats[0] if r.topic == t.state]
    assert len([r for b in batches for r in b if r.topic == t.registry]) == 4
    assert len(beats) == 4  # one heartbeat per device: the latest
    assert {StateEvent.FromString(r.value or b"").unchanged.state.seq for r in beats} == {
        56,
        57,
        58,
        59,
    }
    assert len(beats) + superseded == 60


def test_max_records_counts_the_records_kept_not_those_superseded(profile: Profile) -> None:
    """A backlog of exactly ``max_records`` heartbeats ended one call short: its last records
    came in a batch (and a fold) of their own."""
    t = profile.topics
    _send(profile, t.state, [(f"enc-{n % 3}", _beat(f"enc-{n % 3}", n)) for n in range(40)])
    with AssignReader(profile, [t.state]) as reader:
        batch: list[Record] = []
        while not batch:
            batch = reader.poll_batch(
                10, 1.0, supersede=(t.state, HEARTBEAT_TAG), gather_s=30.0, startup=True
            )
        assert len(batch) == 3 and len(batch) + reader.superseded == 40


class _HeldConsumer:
    """The reader's real consumer, but its second ``consume()`` waits for ``release`` (the
    test's seam: the gather is held open while records go to a paused partition)."""

    def __init__(self, consumer: Any) -> None:
        self._consumer = consumer
        self.calls = 0
        self.held = threading.Event()
        self.release = threading.Event()

    def consume(self, **kw: Any) -> Any:
        self.calls += 1
        if self.calls == 2:
            self.held.set()
            assert self.release.wait(30)
        return self._consumer.consume(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


def test_partitions_paused_during_the_start_up_gather_lose_nothing(
    profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry is read to its mark in the first call and paused while the state backlog
    is gathered; what is written to it meanwhile is read once it is resumed, exactly once."""
    monkeypatch.setattr(reader_mod, "_CHUNK", 5)
    t = profile.topics
    _send(profile, t.registry, [("enc-0", b"first")])
    _send(profile, t.state, [(f"enc-{n % 4}", _beat(f"enc-{n % 4}", n)) for n in range(60)])
    with _reader(profile, [t.registry, t.state]) as reader:
        # The first call takes the registry's record (and some heartbeats): wait until the
        # registry's partitions are known to be read, then gather as the console does.
        while not any(r.topic == t.registry for r in reader.poll_batch(5, 1.0)):
            pass
        held = _HeldConsumer(reader._consumer)
        reader._consumer = held
        out: list[list[Record]] = []
        gathering = threading.Thread(
            target=lambda: out.append(
                reader.poll_batch(
                    1000, 1.0, supersede=(t.state, HEARTBEAT_TAG), gather_s=30, startup=True
                )
            )
        )
        gathering.start()
        try:
            assert held.held.wait(30)
            paused = set(reader.paused)
            assert {k for k in reader.partitions if k[0] == t.registry} <= paused
            _send(profile, t.registry, [("enc-1", b"meanwhile"), ("enc-2", b"meanwhile")])
        finally:
            held.release.set()
            gathering.join(30)
        assert reader.paused == ()
        gathered = out[0]
        assert not [r for r in gathered if r.topic == t.registry]  # paused while gathered
        later: list[Record] = []
        while len(later) < 2:
            later += [r for r in reader.poll_batch(100, 1.0) if r.topic == t.registry]
        later += [r for r in reader.poll_batch(100, 0.5) if r.topic == t.registry]
    assert sorted((r.key, r.value) for r in later) == [
        (b"enc-1", b"meanwhile"),
        (b"enc-2", b"meanwhile"),
    ]
