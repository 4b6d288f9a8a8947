"""Deadlines, retries and the retry budget, and back-pressure, against simulated devices."""

from __future__ import annotations

from actor_harness import Responses, Sender, ServiceThread, States, at, request, settings

from pipeconsole.actors.partitioner import crc32_partition
from pipeconsole.config import Profile
from pipeconsole.sim.fleet import Fleet
from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse as R


def test_hanging_device_gets_deadline_exceeded_and_no_attempt_after_the_deadline(
    profile: Profile, fleet: Fleet, responses: Responses, sender: Sender
) -> None:
    dev = fleet.devices[0].device_id
    svc = ServiceThread(profile, settings())
    try:
        svc.wait_ready()
        # Injected once the group has settled, and for longer than any wait below: a hang that
        # expired under a slow join would let the attempts succeed. Cleared at the end.
        fleet.device(dev).inject(fault="hang", duration_s=120)
        # A deadline far enough ahead that producing and fetching the requests on a loaded
        # machine leaves room for the attempts the device must see.
        reqs = [request(dev, deadline=at(5), max_attempts=5) for _ in range(3)]
        sender.requests(reqs)
        finals = responses.wait_final([r.request_id for r in reqs], timeout=30)
        assert {f.outcome for f in finals.values()} == {R.DEADLINE_EXCEEDED}
        by_id = {r.request_id: finals[r.request_id].deadline_unix_ms for r in reqs}
        attempts = [a for a in fleet.device(dev).counters().attempts if a.request_id in by_id]
        assert attempts, "the device saw the attempts"
        assert all(a.started_unix_ms <= by_id[a.request_id] for a in attempts)
        assert all(
            a.deadline_remaining_ms is not None and a.deadline_remaining_ms <= 5000
            for a in attempts
        )
    finally:
        fleet.device(dev).clear()
        svc.stop()


def test_flaky_device_is_retried_within_budget_and_failing_device_is_not_buried(
    profile: Profile, fleet: Fleet, responses: Responses, sender: Sender
) -> None:
    flaky, failing = fleet.devices[0].device_id, fleet.devices[1].device_id
    fleet.device(flaky).inject(fault="error_rate", duration_s=60, rate=0.3)
    fleet.device(failing).inject(fault="error_rate", duration_s=60, rate=1.0)
    svc = ServiceThread(profile, settings(retry_min_per_s=0.0))
    try:
        svc.wait_ready()
        flaky_reqs = [request(flaky, max_attempts=4) for _ in range(80)]
        sender.requests(flaky_reqs)
        finals = responses.wait_final([r.request_id for r in flaky_reqs], 60)
        assert any(f.attempts > 1 and f.outcome == R.OK for f in finals.values()), "retried"
        failing_reqs = [request(failing, deadline=at(120), max_attempts=4) for _ in range(300)]
        sender.requests(failing_reqs)
        finals |= responses.wait_final([r.request_id for r in failing_reqs], 60)
        failing_finals = [finals[r.request_id] for r in failing_reqs]
        assert {f.outcome for f in failing_finals} == {R.FAILED}
        assert any("retry budget exhausted" in f.reason for f in failing_finals)
        total = len(flaky_reqs) + len(failing_reqs)
        attempts = sum(f.attempts for f in finals.values())
        assert attempts <= 1.1 * total, f"{attempts} attempts for {total} requests"
        seen = fleet.device(failing).counters().commands + fleet.device(flaky).counters().commands
        assert seen <= 1.1 * total
    finally:
        svc.stop()


def test_hanging_device_pauses_its_partition_others_flow_and_everything_drains(
    profile: Profile, fleet: Fleet, responses: Responses, sender: Sender, states: States
) -> None:
    n = profile.topics.request_partitions
    devs = [d.device_id for d in fleet.devices]
    hung = devs[0]
    hung_part = crc32_partition(hung.encode(), n)
    others = [d for d in devs if crc32_partition(d.encode(), n) != hung_part]
    assert others
    svc = ServiceThread(profile, settings(per_device_in_flight=4, high_water=6, low_water=2))
    try:
        svc.wait_ready()
        # Injected once the group has settled: joining takes seconds under load, and a hang
        # that expired before the requests arrived would test nothing.
        # For longer than any wait below: the hang must still hold when the others have
        # flowed. It is cleared by hand once that is checked.
        fleet.device(hung).inject(fault="hang", duration_s=120)
        stuck = [request(hung, deadline=at(180)) for _ in range(30)]
        sender.requests(stuck)
        topic = profile.topics.request
        states.wait(
            lambda: any(
                p.paused and p.topic == topic and p.partition == hung_part
                for s in states.actor_statuses()
                for p in s.partitions
            ),
            15,
            "the hung device's partition to be paused in the actor status",
        )
        flowing = [request(d) for d in others for _ in range(3)]
        sender.requests(flowing)
        finals = responses.wait_final([r.request_id for r in flowing], timeout=15)
        assert {f.outcome for f in finals.values()} == {R.OK}
        assert not responses.finals().keys() >= {r.request_id for r in stuck}
        # The fault ends: everything drains, nothing lost.
        fleet.device(hung).clear()
        finals = responses.wait_final([r.request_id for r in stuck], timeout=30)
        assert {f.outcome for f in finals.values()} == {R.OK}
        states.wait(
            lambda: not any(p.paused for p in states.actor_statuses()[-1].partitions),
            10,
            "the partition to be resumed",
        )
    finally:
        svc.stop()
