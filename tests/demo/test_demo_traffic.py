"""The demo's request traffic and the retry-storm scenario that needs it, against the session
broker and a simulated fleet (no device actors: what is checked is what the demo sends)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from pipeconsole.config import Profile
from pipeconsole.demo import Background
from pipeconsole.demostack import SCENARIOS
from pipeconsole.demotraffic import ISSUED_BY, Traffic
from pipeconsole.kafka.reader import AssignReader
from pipeconsole.sim.fleet import Fleet
from pipeconsole.wire.codec import decode
from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest
from pipeconsole.wire.validate import validate_request


def _requests(profile: Profile) -> list[DeviceRequest]:
    with AssignReader(profile, [profile.topics.request]) as reader:
        records = reader.read_to_end(30)
    out = []
    for r in records:
        req = decode(DeviceRequest, r.value)
        assert isinstance(req, DeviceRequest), req
        assert r.key == req.device_id.encode()  # keyed by device: its partition, its order
        out.append(req)
    return out


def test_traffic_sends_valid_requests_round_robin_and_counts_them(profile: Profile) -> None:
    devices = ["ingest-01", "transcode-01", "origin-01"]
    with Traffic(profile, devices, rate=500.0, limit=30) as traffic:
        assert traffic.wait(60)
    assert (traffic.sent, traffic.failed) == (30, 0)
    got = _requests(profile)
    assert len(got) == 30
    assert [r.device_id for r in got if r.device_id == "origin-01"] == ["origin-01"] * 10
    now = datetime.now(UTC)
    for r in got:
        assert r.issued_by == ISSUED_BY
        assert validate_request(r, now=now) == [], r
    assert len({r.request_id for r in got}) == len({r.nonce for r in got}) == 30


def test_two_senders_never_issue_the_same_request_id(profile: Profile) -> None:
    """Devices de-duplicate by request id: a second sender repeating the first one's ids (a
    fixed seed did) would have its requests taken for repeats and never executed."""
    with (
        Traffic(profile, ["origin-01"], rate=500.0, limit=20) as a,
        Traffic(profile, ["origin-01"], rate=500.0, limit=20) as b,
    ):
        assert a.wait(60) and b.wait(60)
    ids = [r.request_id for r in _requests(profile)]
    assert len(ids) == len(set(ids)) == 40


@pytest.mark.parametrize(
    ("devices", "rate", "why"),
    [([], 1.0, "at least one device"), (["a"], 0.0, "positive"), (["a"], float("nan"), "positive")],
)
def test_traffic_refuses_what_it_cannot_send(
    profile: Profile, devices: list[str], rate: float, why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        Traffic(profile, devices, rate)


def test_the_retry_storm_scenario_sends_requests_to_its_failing_origin(profile: Profile) -> None:
    """Its fault fails commands, not health checks: without requests it showed nothing."""
    scenario = SCENARIOS["retry-storm"]
    assert scenario.traffic_per_s > 0
    with Fleet.start(devices=8, seed=3, profile=profile) as fleet:
        stages = {d.device_id: d.stage for d in fleet.devices}
        target = scenario.pick(stages)
        assert target is not None
        background = Background(profile, len(stages), scenario=scenario, delay_s=0.0).start()
        try:
            assert _wait_for(lambda: [t for t in background.traffic if t.sent >= 3])
        finally:
            background.stop()
        assert background.traffic and not any(t.running for t in background.traffic)
        assert fleet.device(target).clear() == 1  # its fault was on
    sent = _requests(profile)
    assert len(sent) >= 3 and {r.device_id for r in sent} == {target}


def _wait_for(cond, timeout: float = 60.0) -> object:  # type: ignore[no-untyped-def]
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        pause.wait(0.05)  # a poll of the sender's counters: there is no event to await
    return None
