"""Scheduling, misfires, rejects and cancels against a real broker and simulated devices."""

from __future__ import annotations

from actor_harness import Responses, Sender, ServiceThread, States, at, request, settings

from pipeconsole.config import Profile
from pipeconsole.sim.fleet import Fleet
from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse as R


def test_requests_fire_on_time_misfire_by_strategy_and_garbage_is_rejected(
    profile: Profile, fleet: Fleet, responses: Responses, sender: Sender
) -> None:
    devs = [d.device_id for d in fleet.devices]
    svc = ServiceThread(profile, settings(misfire_threshold_s=5.0))
    try:
        svc.wait_ready()
        ahead = request(devs[0], schedule=at(2.0), deadline=at(30))
        now = request(devs[1])
        late_best = request(devs[2], schedule=at(-60), deadline=at(30))
        late_forget = request(devs[3], schedule=at(-60), deadline=at(30), forget=True)
        slightly_late = request(devs[4], schedule=at(-1), deadline=at(30), forget=True)
        garbage = request(devs[5])
        garbage.schedule_time = "2014-12-10T05:44:06.635Z[Europe/Paris]"
        reqs = [ahead, now, late_best, late_forget, slightly_late, garbage]
        sender.requests(reqs)
        finals = responses.wait_final([r.request_id for r in reqs], timeout=30)

        assert finals[ahead.request_id].outcome == R.OK
        # Never early: fired at or after the schedule time.
        assert finals[ahead.request_id].lateness_ms >= 0
        attempts = fleet.device(devs[0]).counters().attempts
        started = [a.started_unix_ms for a in attempts if a.request_id == ahead.request_id]
        assert started and min(started) >= finals[ahead.request_id].scheduled_for_unix_ms
        assert finals[now.request_id].outcome == R.OK
        assert finals[late_best.request_id].outcome == R.OK
        assert finals[slightly_late.request_id].outcome == R.OK  # below the threshold: just late
        assert finals[late_forget.request_id].outcome == R.MISFIRED
        assert "misfire" in finals[late_forget.request_id].reason
        assert finals[garbage.request_id].outcome == R.REJECTED
        assert "schedule_time" in finals[garbage.request_id].reason
        counters = fleet.device(devs[3]).counters()
        assert all(a.request_id != late_forget.request_id for a in counters.attempts)

        # Lifecycle: SCHEDULED and DISPATCHED precede exactly one final outcome.
        events = [m.outcome for m in responses.by_request()[ahead.request_id]]
        assert events.count(R.SCHEDULED) == 1 and events.count(R.DISPATCHED) == 1
        assert sum(e in (R.OK, R.FAILED) for e in events) == 1
    finally:
        svc.stop()


def test_cancel_before_fire_never_executes_and_after_fire_is_too_late(
    profile: Profile, fleet: Fleet, responses: Responses, sender: Sender
) -> None:
    devs = [d.device_id for d in fleet.devices]
    svc = ServiceThread(profile, settings())
    try:
        svc.wait_ready()
        # Far enough ahead that the waits before the cancel fit on a loaded machine.
        pending = request(devs[0], schedule=at(10.0), deadline=at(60))
        # Due just after it on the same device: once it has run, the scheduler is past the
        # pending request's time, and would have run that too had the cancel not held it.
        sentinel = request(devs[0], schedule=at(10.5), deadline=at(60))
        fired = request(devs[1])
        sender.requests([pending, sentinel, fired])
        responses.wait(
            lambda: R.SCHEDULED in [m.outcome for m in responses.by_request()[pending.request_id]],
            20,
            "the pending request to be scheduled",
        )
        responses.wait_final([fired.request_id], timeout=20)
        sender.cancel(pending)
        sender.cancel(fired)
        finals = responses.wait_final([pending.request_id], timeout=20)
        assert finals[pending.request_id].outcome == R.CANCELLED
        responses.wait(
            lambda: (
                R.CANCEL_TOO_LATE in [m.outcome for m in responses.by_request()[fired.request_id]]
            ),
            20,
            "CANCEL_TOO_LATE for the fired request",
        )
        # It had finished before the cancel came, and the answer says how.
        (late,) = [
            m for m in responses.by_request()[fired.request_id] if m.outcome == R.CANCEL_TOO_LATE
        ]
        assert late.reason == "already finished (OK)"
        sender.cancel(pending)  # a second cancel of the cancelled one
        responses.wait(
            lambda: any(
                m.outcome == R.CANCEL_TOO_LATE and m.reason == "already finished (CANCELLED)"
                for m in responses.by_request()[pending.request_id]
            ),
            20,
            "CANCEL_TOO_LATE (CANCELLED) for the second cancel",
        )
        # The cancelled one never reached its device, even after its time has passed.
        assert responses.wait_final([sentinel.request_id], 30)[sentinel.request_id].outcome == R.OK
        assert all(
            a.request_id != pending.request_id for a in fleet.device(devs[0]).counters().attempts
        )
        assert len(responses.finals()[pending.request_id]) == 1
        assert responses.final(fired.request_id).outcome == R.OK  # type: ignore[union-attr]
    finally:
        svc.stop()


def test_owned_devices_are_health_checked_and_status_is_published(
    profile: Profile, fleet: Fleet, states: States
) -> None:
    devs = [d.device_id for d in fleet.devices]
    svc = ServiceThread(profile, settings())
    try:
        svc.wait_ready()
        states.wait(
            lambda: all(states.device_states(d) for d in devs), 20, "a state of every device"
        )
        crashed = devs[0]
        fleet.device(crashed).inject(fault="crash", duration_s=30)
        port = fleet.device(crashed).base_url.rsplit(":", 1)[1]
        states.wait(
            lambda: any(
                s.reason == f"health: unreachable: connection refused (127.0.0.1:{port})"
                for s in states.device_states(crashed)
            ),
            20,
            "the crashed device to be reported unreachable, connection refused, in few words",
        )
        states.wait(
            lambda: {"changed", "unchanged"} <= {m.WhichOneof("event") for m in states.values()},
            10,
            "both changed and unchanged state events",
        )
        states.wait(
            lambda: (
                bool(states.actor_statuses())
                and set(states.actor_statuses()[-1].devices) >= set(devs)
            ),
            10,
            "an actor status naming every device",
        )
        assert states.actor_statuses()[-1].in_flight_limit == 128
    finally:
        svc.stop()
