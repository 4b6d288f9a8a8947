"""Poison records, two instances sharing devices, and a kill -9 in the middle of work."""

from __future__ import annotations

import os
import random
import signal

from actor_harness import (
    Collector,
    Responses,
    Sender,
    ServiceThread,
    States,
    at,
    dispatch_process,
    request,
    settings,
)

from pipeconsole.actors.dlq import HEADER_PREFIX
from pipeconsole.config import Profile
from pipeconsole.kafka.records import Record
from pipeconsole.sim.fleet import Fleet
from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest
from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse as R


class _Raw(Collector[DeviceRequest]):
    """DLQ records (values are arbitrary bytes: keep the records)."""

    def records(self) -> list[Record]:
        return [r for r, _ in self.snapshot()]

    def _run(self) -> None:  # keep undecodable values too
        while not self._stop.is_set():
            for r in self._reader.poll_batch(timeout=0.1):
                with self._lock:
                    self.items.append((r, DeviceRequest()))


def test_poison_costs_one_record_each_and_valid_requests_all_finish(
    profile: Profile, fleet: Fleet, responses: Responses, sender: Sender, states: States
) -> None:
    rng = random.Random(7)
    devs = [d.device_id for d in fleet.devices]
    valid = [request(rng.choice(devs), deadline=at(300)) for _ in range(1000)]
    items: list[tuple[bytes | None, bytes]] = [
        (r.device_id.encode(), r.SerializeToString()) for r in valid
    ]
    for i in range(100):  # undecodable: truncated, bit-flipped, junk, overlong varints
        good = valid[i].SerializeToString()
        junk = [good[: len(good) // 2], b"\xff" * 11, bytes([0x0A, 0xFF, 0xFF, 0xFF, 0x7F]) + good]
        items.insert(rng.randrange(len(items)), (devs[0].encode(), junk[i % 3]))
    invalid_ids = []
    for i in range(100):  # decodable but invalid: bad URI, bad time, key mismatch
        bad = request(rng.choice(devs))
        if i % 3 == 0:
            bad.uri = "http://evil.example/../../etc"
        elif i % 3 == 1:
            bad.schedule_time = "2014-02-30T00:00:00Z"
        key = b"someone-else" if i % 3 == 2 else bad.device_id.encode()
        invalid_ids.append(bad.request_id)
        items.insert(rng.randrange(len(items)), (key, bad.SerializeToString()))
    dlq = _Raw(profile, profile.topics.dlq, DeviceRequest)
    svc = ServiceThread(profile, settings())
    try:
        svc.wait_ready()
        sender.raw(items)
        finals = responses.wait_final([r.request_id for r in valid], timeout=90)
        bad = {(f.outcome, f.reason, f.attempts) for f in finals.values() if f.outcome != R.OK}
        assert not bad, list(bad)[:5]
        dlq.wait(lambda: len(dlq.records()) >= 200, 30, "200 dead letters")
        letters = dlq.records()
        assert len(letters) == 200
        assert all(r.header(HEADER_PREFIX + "reason") for r in letters)
        assert all(r.header(HEADER_PREFIX + "offset") is not None for r in letters)
        rejected = responses.finals()
        assert all(rejected[rid][0].outcome == R.REJECTED for rid in invalid_ids)
        # No restart loop: one instance, committed up to the end of every partition.
        topic = profile.topics.request
        states.wait(
            lambda: (
                sum(p.committed for p in states.actor_statuses()[-1].partitions if p.topic == topic)
                == len(items)
            ),
            15,
            "every request partition committed to its end",
        )
    finally:
        svc.stop()
        dlq.close()


def test_requests_for_devices_not_in_the_registry_fail_and_leave_no_actor_behind(
    profile: Profile, fleet: Fleet, responses: Responses, sender: Sender, states: States
) -> None:
    # Each unknown device id used to leave an actor on the instance owning its key, for good:
    # memory without bound under a hostile producer's random ids, and "devices 25" for 24.
    ghosts = [request(f"ghost-{i:03d}") for i in range(200)]
    cancelled = request("ghost-late", schedule=at(60), deadline=at(120))
    real = request(fleet.devices[0].device_id)
    svc = ServiceThread(profile, settings(status_interval_s=0.2))
    try:
        svc.wait_ready()
        sender.requests([*ghosts, cancelled, real])
        finals = responses.wait_final([r.request_id for r in [*ghosts, real]], timeout=60)
        assert {finals[r.request_id].reason for r in ghosts} == {"device is not in the registry"}
        assert finals[real.request_id].outcome == R.OK
        sender.cancel(cancelled)
        assert (
            responses.wait_final([cancelled.request_id], 30)[cancelled.request_id].outcome
            == R.CANCELLED
        )
        actors = svc.call(lambda: set(svc.service.actors))
        assert not {a for a in actors if a.startswith("ghost")}, sorted(actors)[:5]
        registered = {d.device_id for d in fleet.devices}
        states.wait(
            lambda: (
                bool(states.actor_statuses())
                and set(states.actor_statuses()[-1].devices) == registered
            ),
            15,
            "a status listing the registered devices only",
        )
    finally:
        svc.stop()


def test_two_instances_split_devices_and_a_stopped_one_hands_them_over(
    profile: Profile, fleet: Fleet, responses: Responses, sender: Sender, states: States
) -> None:
    devs = [d.device_id for d in fleet.devices]
    s = settings()
    a = ServiceThread(profile, settings(group=s.group, actor_id="actor-a"))
    b = ServiceThread(profile, settings(group=s.group, actor_id="actor-b"))
    try:
        a.wait_ready()
        b.wait_ready()

        def owners() -> dict[str, set[str]]:
            latest: dict[str, set[str]] = {}
            for st in states.actor_statuses():
                latest[st.actor_id] = set(st.devices)
            return latest

        states.wait(
            lambda: (
                len(owners()) == 2
                and all(owners().values())
                and set().union(*owners().values()) >= set(devs)
                and not (owners()["actor-a"] & owners()["actor-b"])
            ),
            30,
            "both instances to own a disjoint share of the devices",
        )
        a.stop()
        states.wait(lambda: owners()["actor-b"] >= set(devs), 30, "actor-b to own every device")
        reqs = [request(d) for d in devs]
        sender.requests(reqs)
        finals = responses.wait_final([r.request_id for r in reqs], 30)
        assert {f.actor_id for f in finals.values()} == {"actor-b"}
    finally:
        a.stop()
        b.stop()


def test_kill_9_with_requests_scheduled_and_in_flight_loses_nothing(
    profile: Profile, fleet: Fleet, responses: Responses, sender: Sender
) -> None:
    devs = [d.device_id for d in fleet.devices]
    for d in devs[:2]:
        fleet.device(d).inject(fault="latency", duration_s=60, mean_ms=1500, jitter_ms=0)
    group = settings().group
    first = dispatch_process(profile, group, "victim")
    second = None
    try:
        # Deadlines far off: the victim's start, the kill, the heir's start and the session
        # expiry before it rejoins take ~15 s, and twice that on a loaded machine.
        slow = [request(d, deadline=at(120)) for d in devs[:2] for _ in range(4)]
        later = [request(d, schedule=at(4), deadline=at(120)) for d in devs for _ in range(2)]
        now = [request(d, deadline=at(120)) for d in devs[2:] for _ in range(5)]
        reqs = slow + later + now
        sender.requests(reqs)
        responses.wait(
            lambda: (
                sum(
                    m.outcome == R.DISPATCHED and m.request_id in {r.request_id for r in slow}
                    for m in responses.values()
                )
                >= 2
            ),
            30,
            "slow requests to be in flight",
        )
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        second = dispatch_process(profile, group, "heir")
        finals = responses.wait_final([r.request_id for r in reqs], 120)
        assert len(finals) == len(reqs)
        by_rid = responses.finals()
        for r in reqs:
            outcomes = {m.outcome for m in by_rid[r.request_id]}
            assert outcomes == {R.OK}, (r.request_id, outcomes)
        executed = sum(fleet.device(d).counters().executed for d in devs)
        assert executed == len(reqs), "each request executed once at its device"
        dupes = sum(fleet.device(d).counters().duplicates for d in devs)
        redone = [rid for rid, ms in by_rid.items() if len(ms) > 1]
        assert dupes >= len(redone)
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except Exception:
                    p.kill()
