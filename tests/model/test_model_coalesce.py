"""Catching up on a backlog: superseded heartbeats are skipped undecoded, and counted."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeconsole.config import Profile
from pipeconsole.ingest import HEARTBEAT_TAG, Ingest, IngestOptions
from pipeconsole.kafka import reader as reader_mod
from pipeconsole.kafka.producer import ConfirmingProducer, wait_all
from pipeconsole.kafka.reader import AssignReader
from pipeconsole.kafka.records import Record
from pipeconsole.model import pipeline
from pipeconsole.model.fixtures import added, downstream_of, state
from pipeconsole.wire.gen.device_state_pb2 import (
    DeviceState,
    ServiceStateChanged,
    ServiceStateUnchanged,
    StateEvent,
)


def _event(device: str, seq: int, changed: bool) -> bytes:
    state = DeviceState(device_id=device, seq=seq)
    ev = (
        StateEvent(changed=ServiceStateChanged(state=state))
        if changed
        else StateEvent(unchanged=ServiceStateUnchanged(state=state))
    )
    return ev.SerializeToString()


def test_heartbeats_are_told_from_changes_by_their_first_byte() -> None:
    assert _event("enc-1", 1, changed=False)[0] == HEARTBEAT_TAG
    assert _event("enc-1", 1, changed=True)[0] != HEARTBEAT_TAG


def test_only_the_latest_heartbeat_per_device_is_kept_and_changes_always_are(
    profile: Profile,
) -> None:
    topic = profile.topics.state
    sent = [
        ("enc-1", 0, False),
        ("enc-1", 1, True),
        ("enc-2", 2, False),
        ("enc-1", 3, False),
        ("enc-1", 4, False),
        ("enc-2", 5, False),
    ]
    with ConfirmingProducer(profile) as producer:
        wait_all(
            [producer.send(topic, _event(d, n, c), key=d, partition=0) for d, n, c in sent], 30
        )
        for _ in range(2):
            producer.send(topic, b"\x12garbage", key="enc-3", partition=0).result(30)
    with AssignReader(profile, [topic]) as reader:
        # One consume() call gathers all eight records (it waits out its timeout for more).
        got = reader.poll_batch(100, 2.0, supersede=(topic, HEARTBEAT_TAG))
    seqs = [
        StateEvent.FromString(r.value).changed.state.seq
        or StateEvent.FromString(r.value).unchanged.state.seq
        for r in got
        if r.value and r.key != b"enc-3"
    ]
    assert seqs == [1, 4, 5]  # enc-1's change, then the latest heartbeat of each device
    assert reader.superseded == 4  # enc-1 x2, enc-2 x1, and the first enc-3 record


def test_the_model_counts_what_was_skipped_as_sampled(profile: Profile) -> None:
    topic = profile.topics.state
    with ConfirmingProducer(profile) as producer:
        wait_all(
            [producer.send(topic, _event("enc-1", n, False), key="enc-1") for n in range(50)], 30
        )
    ingest = Ingest(profile, options=IngestOptions(lag_interval_s=3600))
    try:
        assert ingest.connect()  # stepped by hand here: no reader thread
        while ingest.model._topic(topic).consumed + ingest.model._topic(topic).sampled < 50:
            ingest.step(timeout=1.0)
        counters = {t.topic: t for t in ingest.snapshot_now().fleet.topics}[topic]
    finally:
        ingest.close()
    assert counters.sampled >= 1
    assert counters.consumed + counters.sampled == 50


def test_one_poll_gathers_several_consume_chunks(
    profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """poll_batch reads in chunks (one waiting call, then what is already fetched): a batch
    bigger than a chunk still supersedes across chunk boundaries, and nothing is lost."""
    monkeypatch.setattr(reader_mod, "_CHUNK", 5)
    topic = profile.topics.state
    # Five devices round-robin: each chunk of 5 alone holds every key once (nothing to skip).
    sent = [(f"enc-{n % 5}", n) for n in range(40)]
    with ConfirmingProducer(profile) as producer:
        wait_all(
            [producer.send(topic, _event(d, n, False), key=d, partition=0) for d, n in sent], 30
        )
    kept: list[int] = []
    with AssignReader(profile, [topic]) as reader:
        while len(kept) + reader.superseded < len(sent):
            for r in reader.poll_batch(100, 2.0, supersede=(topic, HEARTBEAT_TAG)):
                kept.append(r.offset)
    assert reader.superseded > 0
    assert kept == sorted(kept) and len(set(kept)) == len(kept)


def _records(topic: str, events: list[Any], start: int) -> list[Record]:
    return [
        Record(topic, 0, start + i, 1, b"k", ev.SerializeToString()) for i, ev in enumerate(events)
    ]


class _BacklogReader:
    """Hands out a full batch (a backlog), then a partial one (caught up), then nothing."""

    def __init__(self, profile: Profile, *_: Any, **__: Any) -> None:
        t = profile.topics
        specs = pipeline(6)
        down = downstream_of(specs)
        full = _records(t.registry, [added(s) for s in specs], 0)
        full += _records(
            t.state,
            [
                state(s.device_id, 1, upstream=s.upstream, downstream=down[s.device_id])
                for s in specs
            ],
            0,
        )
        self.batches = [full, full[:3]]

    def poll_batch(self, max_records: int, timeout: float) -> list[Record]:
        return self.batches.pop(0) if self.batches else []

    def close(self) -> None:
        pass


def test_snapshots_of_a_backlog_leave_the_graph_analysis_pending(profile: Profile) -> None:
    ingest = Ingest(
        profile,
        options=IngestOptions(batch=12, lag_interval_s=3600, snapshot_hz=1000),
        reader_factory=_BacklogReader,
    )
    assert ingest.connect()
    ingest._last_post = 0.0  # due at once (the first snapshot otherwise waits a period)
    ingest.step()  # a full batch: reading a backlog
    snap = ingest.latest
    assert snap is not None and snap.fleet.total == 6
    assert snap.graph.computed_ms == 0 and snap.incidents == ()
    ingest._last_post = 0.0  # the next snapshot is due at once
    ingest.step()  # a partial batch: caught up, the analyses run
    snap = ingest.latest
    assert snap is not None and snap.graph.computed_ms > 0 and len(snap.graph.nodes) == 6


class _GatheringReader(_BacklogReader):
    """A reader with the supersede option: notes how long each poll may gather, and says how
    many records are still waiting (``waiting``, set by the test)."""

    def __init__(self, profile: Profile, *args: Any, **kw: Any) -> None:
        super().__init__(profile, *args, **kw)
        self.superseded = 0
        self.waiting = 0
        self.gathers: list[float] = []
        self.batches = [self.batches[0]] * 4 + [self.batches[1]]

    def poll_batch(  # type: ignore[override]
        self, max_records: int, timeout: float, **options: Any
    ) -> list[Record]:
        self.gathers.append(options["gather_s"])
        assert options["stop"] is not None
        return super().poll_batch(max_records, timeout)

    def behind(self) -> int:
        return self.waiting


def _gathering_ingest(profile: Profile) -> tuple[Ingest, _GatheringReader]:
    ingest = Ingest(
        profile,
        options=IngestOptions(batch=12, lag_interval_s=3600, snapshot_hz=4),
        reader_factory=_GatheringReader,
    )
    assert ingest.connect()
    reader = ingest._reader
    assert isinstance(reader, _GatheringReader)
    return ingest, reader


def test_a_backlog_is_gathered_until_the_next_snapshot_is_due(profile: Profile) -> None:
    """Live traffic gathers for at most a second; a backlog, until the next snapshot is due
    (its survivors folded in once per snapshot), within [1 s, 5 s]."""
    ingest, reader = _gathering_ingest(profile)
    reader.waiting = 10**9
    ingest.step()  # nothing known yet: a second
    ingest._snapshot_cost = 0.5  # a backlog snapshot is due every 19 x 0.5 s
    ingest._last_post = time.monotonic()
    ingest.step()  # a backlog: up to the longest gather
    ingest._snapshot_cost = 0.0  # due every second
    ingest._last_post = time.monotonic() - 0.5
    ingest.step()  # due within the second: the shortest gather
    assert reader.gathers[0] == 1.0
    assert reader.gathers[1] == 5.0
    assert reader.gathers[2] == 1.0
    reader.waiting = 0
    reader.batches = [reader.batches[-1]]  # a partial batch: caught up
    ingest.step()
    ingest.step()
    assert reader.gathers[4] == 1.0  # live again


def test_a_snapshot_due_just_before_the_backlog_ends_waits_for_the_rest(
    profile: Profile,
) -> None:
    """Nearly caught up (the rest reads within a second), a due backlog snapshot waits for the
    complete, analysed one; but never more than one period."""
    ingest, reader = _gathering_ingest(profile)
    reader.waiting = 1  # a full batch read, one record left: read in no time
    # Due (a backlog snapshot period is 1 s), and 0.9 s short of being a period late: room for
    # a slow step on a loaded machine.
    ingest._last_post = time.monotonic() - 1.1
    ingest.step()
    assert ingest.latest is None  # held
    ingest._last_post = time.monotonic() - 2.5  # a period late
    ingest.step()
    assert ingest.latest is not None
    posted = ingest.latest
    reader.waiting = 10**12  # far behind: the rest takes a while
    ingest._snapshot_cost = 0.0  # the period stays 1 s, however long that snapshot took
    ingest._last_post = time.monotonic() - 1.5
    ingest.step()
    assert ingest.latest is not posted  # not held
    assert ingest.latest is not None and ingest.latest.graph.computed_ms == 0  # a backlog's


def test_a_big_batch_drops_superseded_heartbeats_while_it_is_gathered(
    profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of many ``consume()`` calls is compacted as it is read (memory for the survivors
    only): a change in an early call's messages is kept, earlier survivors are superseded by
    later calls', and every record is either returned or counted."""
    monkeypatch.setattr(reader_mod, "_CHUNK", 5)
    topic = profile.topics.state
    sent = [(f"enc-{n % 3}", n, n == 4) for n in range(60)]  # seq 4 is a change of enc-1
    with ConfirmingProducer(profile) as producer:
        wait_all(
            [producer.send(topic, _event(d, n, c), key=d, partition=0) for d, n, c in sent], 30
        )
    got: list[Record] = []
    with AssignReader(profile, [topic]) as reader:
        while len(got) + reader.superseded < len(sent):
            got += reader.poll_batch(1000, 2.0, supersede=(topic, HEARTBEAT_TAG))
        skipped = reader.superseded
    seqs = []
    for r in got:
        ev = StateEvent.FromString(r.value or b"")
        seqs.append(ev.changed.state.seq or ev.unchanged.state.seq)
    assert 4 in seqs  # the change survives every compaction
    assert seqs == sorted(seqs)  # in order
    assert {57, 58, 59} <= set(seqs)  # the latest heartbeat of each device
    assert len(got) + skipped == len(sent)


def test_the_reader_knows_when_records_are_waiting(profile: Profile) -> None:
    """``behind()`` tells a backlog from live traffic without asking the broker."""
    topic = profile.topics.state
    with ConfirmingProducer(profile) as producer:
        wait_all(
            [producer.send(topic, _event("enc-1", n, False), key="enc-1") for n in range(300)],
            30,
        )
    with AssignReader(profile, [topic]) as reader:
        read = len(reader.poll_batch(10, 2.0))
        assert read > 0 and reader.behind() > 0  # 300 records, ten read
        while read < 300:
            read += len(reader.poll_batch(1000, 1.0))
        assert reader.behind() == 0


class _Msg:
    """A consumed message as the supersede pass sees it (pure logic: no broker needed)."""

    def __init__(self, n: int, topic: str, key: bytes | None, value: bytes | None, err: bool):
        self.n, self._topic, self._key, self._value, self._err = n, topic, key, value, err

    def key(self) -> bytes | None:
        return self._key

    def topic(self) -> str:
        return self._topic

    def value(self) -> bytes | None:
        return self._value

    def error(self) -> object | None:
        return "broken" if self._err else None


def _superseded_naively(msgs: list[_Msg], topic: str, tag: int) -> list[_Msg]:
    """The rule, spelled out: a heartbeat of ``topic`` goes when a later record of ``topic`` has
    its key; records with an error neither go nor make others go."""
    out = []
    for i, m in enumerate(msgs):
        v = m.value()
        if m.topic() == topic and m.key() and v and v[0] == tag and m.error() is None:
            later = msgs[i + 1 :]
            if any(x.topic() == topic and x.key() == m.key() and x.error() is None for x in later):
                continue
        out.append(m)
    return out


_STATE = "state"
_messages = st.lists(
    st.tuples(
        st.sampled_from([_STATE, _STATE, _STATE, "registry"]),
        st.sampled_from([b"a", b"b", b"c", b"", None]),
        st.sampled_from([b"\x12beat", b"\x0achange", b"\x12", b"", None]),
        st.booleans(),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(_messages, st.lists(st.integers(1, 20), max_size=8))
def test_the_supersede_pass_keeps_what_the_rule_keeps_however_the_batch_is_split(
    raw: list[tuple[str, bytes | None, bytes | None, bool]], cuts: list[int]
) -> None:
    msgs = [_Msg(n, t, k, v, e) for n, (t, k, v, e) in enumerate(raw)]
    compactor = reader_mod._Compactor(_STATE, HEARTBEAT_TAG)
    rest = msgs
    for cut in cuts:  # call after call, as _take feeds it
        compactor.add(rest[:cut])
        rest = rest[cut:]
    compactor.add(rest)
    kept = compactor.survivors()
    assert [m.n for m in kept] == [m.n for m in _superseded_naively(msgs, _STATE, HEARTBEAT_TAG)]
    assert compactor.dropped == len(msgs) - len(kept)
