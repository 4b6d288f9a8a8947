"""Hostile records on every topic the console and the actors read.

Garbage (protocol-chaos damage, nesting bombs, random bytes, empty and null values, odd keys
and headers) and valid messages whose every text field is a naughty string go to each topic.
The console's ingest reads them all: every record is counted, the refused ones as undecodable,
nothing raises (``Ingest.errors == 0``) and a snapshot still renders as JSON. The actors, fed
garbage on the registry and control topics, keep executing valid requests and the ledger
balances. The decode path runs on both protobuf backends.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from typing import Any

from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from ledger import Ledger, check_devices, wait_for
from relkit import ESCAPES, Sender, ServiceThread, naughty, request, settings

from pipeconsole.chaos.mangle import KINDS, STACK_BOMB, varint
from pipeconsole.config import Profile
from pipeconsole.ingest import Ingest, IngestOptions, message_types
from pipeconsole.kafka.producer import ConfirmingProducer, wait_all
from pipeconsole.sim.fleet import Fleet
from pipeconsole.wire.gen.device_request_pb2 import CancelRequest

NAUGHTY = naughty()


def fill(cls: type[Message], text: str, depth: int = 0) -> Message:
    """An instance of ``cls`` whose string fields (nested too) all hold ``text``."""
    m = cls()
    for f in m.DESCRIPTOR.fields:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            getattr(m, f.name)[text[:64]] = text
        elif f.type == f.TYPE_STRING:
            if f.is_repeated:
                getattr(m, f.name).append(text)
            else:
                setattr(m, f.name, text)
        elif f.type == f.TYPE_MESSAGE and depth < 3:
            sub = fill(GetMessageClass(f.message_type), text, depth + 1)  # type: ignore[arg-type]
            if f.is_repeated:
                getattr(m, f.name).add().CopyFrom(sub)
            else:
                getattr(m, f.name).CopyFrom(sub)
    return m


def nested(depth: int, field: int = 1) -> bytes:
    data = b""
    tag = bytes([(field << 3) | 2])
    for _ in range(depth):
        data = tag + varint(len(data)) + data
    return data


def garbage(sample: bytes, rng: random.Random) -> list[bytes | None]:
    out: list[bytes | None] = [fn(sample, rng) for fn in KINDS.values()]
    out += [
        None,
        b"",
        STACK_BOMB,
        nested(101),
        nested(1000),
        b"\x2b" * 5000,  # start-group tags
        rng.randbytes(512 * 1024),
        b"\x0a\x05\xff\xfe\xed\xa0\x80",  # field 1 as a string with invalid UTF-8
    ]
    return out


def _hostile_records(profile: Profile) -> dict[str, list[tuple[Any, Any, Any]]]:
    rng = random.Random(3)
    types = dict(message_types(profile))
    types[profile.topics.control] = CancelRequest
    out: dict[str, list[tuple[Any, Any, Any]]] = {}
    headers = [("h\x1b]0;PWNED\x07", b"\xff\x00"), ("x", "\u202e".encode())]
    for topic, cls in types.items():
        recs: list[tuple[Any, Any, Any]] = []
        sample_cls = cls or CancelRequest
        for i, s in enumerate(NAUGHTY[::7] + list(ESCAPES)):
            key = s.encode("utf-8")[:200] or None
            recs.append((key, fill(sample_cls, s).SerializeToString(), headers if i % 5 else None))
        sample = fill(sample_cls, "sample").SerializeToString()
        for g in garbage(sample, rng):
            recs.append((rng.randbytes(40), g, headers))
        out[topic] = recs
    return out


def _produce(profile: Profile, records: dict[str, list[tuple[Any, Any, Any]]]) -> None:
    with ConfirmingProducer(profile, extra={"message.max.bytes": 4_000_000}) as p:
        futs = [p.send(t, v, k, h) for t, recs in records.items() for k, v, h in recs]
        wait_all(futs, 60)


def test_console_ingest_counts_every_hostile_record_and_never_raises(profile: Profile) -> None:
    records = _hostile_records(profile)
    _produce(profile, records)
    watched = set(message_types(profile))
    want = {t: len(r) for t, r in records.items() if t in watched}
    ingest = Ingest(profile, options=IngestOptions(snapshot_hz=20, lag_interval_s=60))
    ingest.start()
    try:

        def consumed() -> dict[str, int]:
            snap = ingest.latest
            if snap is None:
                return {}
            return {c.topic: c.consumed for c in snap.fleet.topics}

        wait_for(lambda: consumed() == want, 60, f"every record counted {want}")
        snap = ingest.latest
        assert snap is not None
        assert ingest.errors == 0
        counters = {c.topic: c for c in snap.fleet.topics}
        for topic, n in want.items():
            if topic == profile.topics.dlq:
                continue  # raw bytes and headers: nothing to decode
            # every garbage record that the codec refuses is counted, none raised
            assert counters[topic].undecodable >= len(KINDS), (topic, counters[topic])
            assert counters[topic].undecodable < n
        text = json.dumps(snap.to_json())
        for esc in ("\x1b", "\x9b", "\x07"):
            assert esc not in text
        assert snap.dlq_total == want[profile.topics.dlq]
    finally:
        ingest.stop()


_PY_BACKEND = r"""
import json, random, sys
from google.protobuf.internal import api_implementation
assert api_implementation.Type() == "python", api_implementation.Type()
sys.path.insert(0, sys.argv[1])
from test_rel_hostile_kafka import garbage, fill, NAUGHTY
from pipeconsole.config import Profile
from pipeconsole.ingest import decode_batch, message_types
from pipeconsole.kafka.records import Record
from pipeconsole.model import Model
profile = Profile()
types = message_types(profile)
rng = random.Random(5)
recs = []
for topic, cls in types.items():
    if cls is None:
        continue
    sample = fill(cls, "sample").SerializeToString()
    valid = [fill(cls, s).SerializeToString() for s in NAUGHTY[::9]]
    for i, v in enumerate(garbage(sample, rng) + valid):
        recs.append(Record(topic, 0, i, 0, b"k", v))
events = decode_batch(recs, types)
model = Model()
model.apply(events)
snap = model.snapshot(analyse=True)
print(json.dumps({"records": len(recs), "events": len(events),
                  "undecodable": sum(c.undecodable for c in snap.fleet.topics)}))
"""


def test_decode_and_fold_survive_on_the_pure_python_protobuf_backend() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
    out = subprocess.run(
        [sys.executable, "-c", _PY_BACKEND, here],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["events"] == got["records"]
    assert got["undecodable"] >= 6 * len(KINDS)


def test_actors_survive_hostile_registry_and_control_records(
    profile: Profile, fleet: Fleet, ledger: Ledger, sender: Sender
) -> None:
    records = _hostile_records(profile)
    t = profile.topics
    hostile = {t.registry: records[t.registry], t.control: records[t.control]}
    devs = [d.device_id for d in fleet.devices]
    svc = ServiceThread(profile, settings())
    try:
        svc.wait_ready()
        _produce(profile, hostile)
        reqs = [request(devs[i % len(devs)]) for i in range(30)]
        sender.requests(reqs)
        b = ledger.wait_balanced(60, expect_inputs=len(reqs))
        assert b.finals == {"OK": len(reqs)}, b.explain()
        check_devices(ledger, fleet.devices)
        # control garbage that is not a valid cancel is dead-lettered, not retried forever
        wait_for(
            lambda: (
                sum(
                    1
                    for r in ledger.dlq_records()
                    if r.header("pipeconsole.dlq.topic") == t.control.encode()
                )
                >= len(KINDS)
            ),
            30,
            "control garbage in the DLQ",
        )
        assert svc._thread.is_alive()
    finally:
        svc.stop()


def test_an_oversized_record_costs_one_record_not_the_partition(
    profile: Profile, fleet: Fleet, ledger: Ledger, sender: Sender
) -> None:
    dev = fleet.devices[0].device_id
    svc = ServiceThread(profile, settings())
    try:
        svc.wait_ready()
        with ConfirmingProducer(profile, extra={"message.max.bytes": 4_000_000}) as p:
            p.send_sync(profile.topics.request, random.Random(1).randbytes(1 << 20), dev)
        reqs = [request(dev) for _ in range(5)]
        sender.requests(reqs)
        b = ledger.wait_balanced(30, expect_inputs=6)
        assert b.finals == {"OK": 5, "REJECTED": 1}
        (letter,) = ledger.dlq_records()  # a truncated copy: size and digest of the original
        assert letter.header("pipeconsole.dlq.truncated") == str(1 << 20).encode()
    finally:
        svc.stop()
