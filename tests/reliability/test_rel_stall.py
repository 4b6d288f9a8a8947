"""Broker stall: a frozen broker (SIGSTOP on this test's own broker, never the session's) while
operators schedule 1,000 requests through the action layer and the actors work.

Every action ends Sent (with the partition and offset of a record that is on the topic) or
Failed; none hangs. Failed-in-flight ones (possibly persisted) are reconciled by reading the
topic, never re-sent with a new id. After the resume the ledger balances and each request ran
once at its device. The console's model, following the same broker, shows the outage (with its
reason) while it lasts and recovers by itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from ledger import Ledger, check_devices, wait_for
from relkit import ServiceThread, fresh_topics, settings

from pipeconsole.actions.audit import LocalAuditLog
from pipeconsole.actions.layer import ActionLayer, Failed, ScheduleSpec, Sent
from pipeconsole.actions.outbox import Outbox
from pipeconsole.broker import EmbeddedBroker
from pipeconsole.config import Profile
from pipeconsole.ingest import Ingest, IngestOptions
from pipeconsole.kafka.admin import ensure_topics
from pipeconsole.sim.fleet import Fleet

FREEZE_S = 16.0
"""How long the broker is frozen (the fault's duration, not a wait for an event): twice the send
timeout, so sends caught in it time out and must be reconciled (30 s until session 8)."""
ACTIONS = 1000
"""Schedules issued from 32 threads: 20 before the freeze, the rest during and after it."""
SEND_TIMEOUT_S = 8.0
"""Shorter than the freeze: sends caught in it time out and must be reconciled."""


def _connected(ingest: Ingest) -> bool | None:
    snap = ingest.latest
    return None if snap is None else snap.connection.connected


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def test_a_frozen_broker_loses_no_action_and_no_request(
    own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    profile = Profile(name="stall", bootstrap=own_broker.bootstrap, topics=fresh_topics())
    ensure_topics(profile, profile.topics)
    with (
        Fleet.start(devices=6, seed=9, profile=profile) as fleet,
        Ledger(profile) as ledger,
        ActionLayer(
            profile,
            send_timeout_s=SEND_TIMEOUT_S,
            outbox=Outbox(tmp_path / "outbox.jsonl"),
            audit_log=LocalAuditLog(tmp_path / "audit.jsonl"),
        ) as layer,
    ):
        _ = layer.sender  # one producer for every thread
        devs = [d.device_id for d in fleet.devices]
        svc = ServiceThread(profile, settings())
        # The console's model follows the same broker: it must show the outage while it lasts
        # and recover by itself.
        console = Ingest(
            profile,
            options=IngestOptions(lag_interval_s=0.5, probe_timeout_s=2.0, snapshot_hz=10),
        )
        console.start()
        try:
            svc.wait_ready()
            wait_for(lambda: _connected(console) is True, 60, "the console connected")

            def schedule(i: int) -> Sent | Failed:
                got = layer.schedule(
                    ScheduleSpec(
                        devs[i % len(devs)], "POST", f"/streams/st-{i}/start", deadline="60s"
                    )
                )
                assert isinstance(got, Sent | Failed), got
                return got

            with ThreadPoolExecutor(max_workers=32) as pool:
                warm = list(pool.map(schedule, range(20)))
                assert all(isinstance(r, Sent) for r in warm)
                own_broker.pause()
                frozen_at = time.monotonic()
                futures = [pool.submit(schedule, i) for i in range(20, ACTIONS)]
                wait_for(lambda: _connected(console) is False, FREEZE_S, "the console saw it")
                outage = console.latest
                time.sleep(max(0.0, FREEZE_S - (time.monotonic() - frozen_at)))
                own_broker.resume()
                results = [f.result(timeout=SEND_TIMEOUT_S * 4 + 30) for f in futures]
            assert time.monotonic() - frozen_at < FREEZE_S + 120  # none stuck pending
            results += warm
            sent = [r for r in results if isinstance(r, Sent)]
            failed = [r for r in results if isinstance(r, Failed)]
            assert len(sent) + len(failed) == ACTIONS
            # Actions issued during the freeze but sent after it are delivered: the producer
            # fenced after its in-flight timeouts is replaced, not left dead for the session.
            assert len(sent) > ACTIONS // 2, [f.reason for f in failed][:3]
            # Reconcile the uncertain ones by reading the topic (no blind re-send).
            settled = {r.entry.request_id: r.state for r in layer.reconcile(timeout_s=30)}
            assert {f.request_id for f in failed if f.possibly_persisted} <= set(settled)
            present = {rid for rid, st in settled.items() if st == "present"}
            on_topic_ids = {r.request_id for r in sent} | present
            b = ledger.wait_balanced(120, expect_inputs=len(on_topic_ids), allow_repeats=True)
            records = ledger.request_records()
            by_pos = {(r.partition, r.offset): r for r in records}
            for s in sent:  # sent means acked: that record is on the topic with that id
                rec = by_pos.get((s.partition, s.offset))
                assert rec is not None and s.request_id.encode() in (rec.value or b"")
            from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest

            topic_ids = [DeviceRequest.FromString(r.value or b"").request_id for r in records]
            assert set(topic_ids) == on_topic_ids
            assert len(topic_ids) == len(set(topic_ids)), "an action was produced twice"
            assert b.inputs == len(on_topic_ids) and b.finals == {"OK": len(on_topic_ids)}, (
                b.explain()
            )
            check_devices(ledger, fleet.devices)
            assert outage is not None and outage.connection.last_error, "the outage says why"
            wait_for(lambda: _connected(console) is True, 60, "the console recovered by itself")
            assert console.errors == 0
            audit = LocalAuditLog(tmp_path / "audit.jsonl").read(10_000)
            outcomes = [e["outcome"] for e in audit if e["action"] == "schedule"]
            assert outcomes.count("ACCEPTED") == len(sent)
            assert outcomes.count("FAILED") == len(failed)
            print(  # figures for docs/reliability.md
                f"stall: {len(sent)} sent, {len(failed)} failed "
                f"({sum(f.possibly_persisted for f in failed)} possibly persisted, "
                f"{len(present)} found on the topic), {b.inputs} inputs balanced"
            )
        finally:
            console.stop()
            svc.stop()
