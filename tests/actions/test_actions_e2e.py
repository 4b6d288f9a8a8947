"""Operator actions end to end: CLI -> Kafka (Tansu) -> device actors (with the token verifier)
-> simulated devices -> device-response-v1 -> ``--wait``.

One fleet and one in-process dispatch (signed mode: every request must carry a valid token)
serve the whole module; each test uses its own request ids.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeconsole.actions.layer import ActionLayer, ScheduleSpec, Sent
from pipeconsole.actions.lifecycle import Follower
from pipeconsole.actions.sign import Verifier, sign
from pipeconsole.actors.background import BackgroundDispatch
from pipeconsole.broker import EmbeddedBroker
from pipeconsole.config import Profile, Topics
from pipeconsole.kafka.producer import ConfirmingProducer
from pipeconsole.kafka.reader import AssignReader
from pipeconsole.wire.codec import decode
from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest
from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse
from pipeconsole.wire.timefmt import format_rfc3339

_MISSING = [
    m
    for m in ("pipeconsole.actors.service", "pipeconsole.sim.fleet")
    if importlib.util.find_spec(m) is None
]
pytestmark = pytest.mark.skipif(
    bool(_MISSING), reason=f"needs the device actors and the simulator: {', '.join(_MISSING)}"
)

KEY_ID, SECRET = "ops-1", "s3cret-for-tests"


@dataclass
class Stack:
    profile: Profile
    fleet: Any
    env: dict[str, str]
    state: Path

    def device(self, i: int = 0) -> str:
        return str(self.fleet.devices[i].device_id)

    def cli(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pipeconsole", "request", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def layer(self) -> ActionLayer:
        from pipeconsole.actions.audit import LocalAuditLog
        from pipeconsole.actions.outbox import Outbox

        return ActionLayer(
            self.profile,
            outbox=Outbox(self.state / "outbox.jsonl"),
            audit_log=LocalAuditLog(self.state / "audit.jsonl"),
        )


def _Dispatch(profile: Profile, verifier: Any) -> BackgroundDispatch:
    """In-process dispatch with the token verifier, checking health every 0.5 s."""
    from pipeconsole.actors.settings import DispatchSettings

    s = DispatchSettings(
        group=f"dispatch-{uuid.uuid4().hex[:8]}",
        check_interval_s=0.5,
        check_timeout_s=0.5,
        status_interval_s=0.5,
        session_timeout_ms=6000,
        commit_interval_s=0.1,
        revoke_grace_s=2.0,
    )
    return BackgroundDispatch(profile, s, verifier=verifier)


def _topics() -> Topics:
    sfx = uuid.uuid4().hex[:8]
    base = Topics()
    names = {
        a: f"{getattr(base, a)}-{sfx}"
        for a in ("registry", "state", "request", "control", "response", "dlq", "chaos", "audit")
    }
    return replace(base, request_partitions=4, partitions=2, **names)


def _config(profile: Profile, path: Path) -> None:
    t = profile.topics
    lines = [
        'default_profile = "e2e"',
        "[profiles.e2e]",
        f'bootstrap = "{profile.bootstrap}"',
        f'key_id = "{KEY_ID}"',
        f'key_secret = "{SECRET}"',
        "[profiles.e2e.topics]",
    ]
    lines += [
        f'{a} = "{getattr(t, a)}"'
        for a in ("registry", "state", "request", "control", "response", "dlq", "chaos", "audit")
    ]
    lines += [f"request_partitions = {t.request_partitions}", f"partitions = {t.partitions}"]
    lines += ["[profiles.viewer]", f'bootstrap = "{profile.bootstrap}"', 'role = "viewer"']
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def stack(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from pipeconsole.kafka.admin import ensure_topics
    from pipeconsole.sim.fleet import Fleet

    profile = Profile(
        name="e2e", bootstrap=broker.bootstrap, topics=_topics(), key_id=KEY_ID, key_secret=SECRET
    )
    ensure_topics(profile, profile.topics)
    state = tmp_path_factory.mktemp("state")
    _config(profile, state / "config.toml")
    env = dict(
        os.environ, PIPECONSOLE_CONFIG=str(state / "config.toml"), PIPECONSOLE_STATE_DIR=str(state)
    )
    with Fleet.start(devices=4, seed=5, profile=profile) as fleet:
        dispatch = _Dispatch(profile, Verifier({KEY_ID: SECRET}))
        try:
            dispatch.wait_ready()
            yield Stack(profile, fleet, env, state)
        finally:
            dispatch.stop()


def _id_of(stdout: str) -> str:
    for line in stdout.splitlines():
        if line.startswith("sent "):
            return line.split()[2]
    raise AssertionError(f"no 'sent' line in {stdout!r}")


def test_schedule_with_wait_reaches_ok(stack: Stack) -> None:
    p = stack.cli(
        "schedule",
        "--device",
        stack.device(),
        "--method",
        "POST",
        "--uri",
        "/streams/s1/start",
        "--wait",
        "--timeout",
        "30",
    )
    assert p.returncode == 0, p.stderr
    assert "partition" in p.stdout and "final: OK" in p.stdout


def test_schedule_at_plus_2s_fires_on_time(stack: Stack) -> None:
    t0 = time.time()
    p = stack.cli(
        "schedule",
        "--device",
        stack.device(1),
        "--method",
        "POST",
        "--uri",
        "/streams/s2/start",
        "--at",
        "+2s",
        "--wait",
        "--timeout",
        "30",
    )
    assert p.returncode == 0, p.stderr
    assert "SCHEDULED" in p.stderr  # it waited in the actor's scheduler first
    rid = _id_of(p.stdout)
    attempts = [
        a for a in stack.fleet.device(stack.device(1)).counters().attempts if a.request_id == rid
    ]
    assert len(attempts) == 1
    assert attempts[0].started_unix_ms >= int((t0 + 2.0) * 1000) - 50  # never early


def test_garbage_time_is_refused_before_sending(stack: Stack) -> None:
    p = stack.cli(
        "schedule",
        "--device",
        stack.device(),
        "--method",
        "POST",
        "--uri",
        "/restart",
        "--at",
        "yesterday-ish",
    )
    assert p.returncode == 2
    assert "schedule_time" in p.stderr and "nothing was sent" in p.stderr
    assert "sent " not in p.stdout


def test_cancel_of_a_request_30s_ahead_is_cancelled_and_never_runs(stack: Stack) -> None:
    dev = stack.device(2)
    p = stack.cli(
        "schedule",
        "--device",
        dev,
        "--method",
        "POST",
        "--uri",
        "/streams/s3/start",
        "--at",
        "+30s",
    )
    assert p.returncode == 0, p.stderr
    rid = _id_of(p.stdout)
    c = stack.cli("cancel", rid, "--wait", "--timeout", "30")  # device looked up on the topic
    assert c.returncode == 0, c.stderr
    assert "final: CANCELLED" in c.stdout
    assert all(a.request_id != rid for a in stack.fleet.device(dev).counters().attempts)


def test_cancel_of_an_executed_request_is_too_late(stack: Stack) -> None:
    dev = stack.device(3)
    p = stack.cli(
        "schedule",
        "--device",
        dev,
        "--method",
        "POST",
        "--uri",
        "/streams/s4/start",
        "--wait",
        "--timeout",
        "30",
    )
    assert p.returncode == 0, p.stderr
    c = stack.cli("cancel", _id_of(p.stdout), "--device", dev, "--wait", "--timeout", "30")
    assert c.returncode == 3, c.stderr
    assert "CANCEL_TOO_LATE" in c.stdout + c.stderr


def test_viewer_profile_is_refused_and_audited(stack: Stack) -> None:
    p = stack.cli(
        "schedule",
        "--profile",
        "viewer",
        "--device",
        stack.device(),
        "--method",
        "POST",
        "--uri",
        "/restart",
    )
    assert p.returncode == 2 and "viewer" in p.stderr
    assert '"outcome": "REFUSED"' in (stack.state / "audit.jsonl").read_text()


def _send_raw(profile: Profile, reqs: list[DeviceRequest]) -> None:
    with ConfirmingProducer(profile) as prod:
        for r in reqs:
            prod.send_sync(
                profile.topics.request, r.SerializeToString(), key=r.device_id, timeout=30
            )


def test_actors_reject_bad_tokens_with_the_specific_reason(stack: Stack) -> None:
    dev = stack.device()

    def req() -> DeviceRequest:
        return DeviceRequest(
            method="POST",
            uri="/streams/s5/start",
            device_id=dev,
            request_id=str(uuid.uuid4()),
            issued_by=KEY_ID,
            issued_at=format_rfc3339(datetime.now(UTC)),
        )

    with_body = req()
    with_body.entity, with_body.entity_content_type = b'{"profile": "hd"}', "application/json"
    tampered = sign(with_body, KEY_ID, SECRET)
    tampered.entity = b'{"profile": "4k"}'
    wrong_key = sign(req(), "intruder", SECRET)
    expired = sign(req(), KEY_ID, SECRET, 1, clock=lambda: time.time() - 120)
    unsigned = req()
    first = sign(req(), KEY_ID, SECRET)
    reuse = req()
    reuse.nonce = first.nonce
    reused = sign(reuse, KEY_ID, SECRET)
    cases = {
        tampered.request_id: "bad signature",
        wrong_key.request_id: "unknown key",
        expired.request_id: "expired",
        unsigned.request_id: "unsigned",
        first.request_id: None,
        reused.request_id: "reused nonce",
    }
    with Follower(stack.profile) as follower:
        _send_raw(stack.profile, [tampered, wrong_key, expired, unsigned, first, reused])
        got = follower.wait(list(cases), timeout=30)
    for rid, why in cases.items():
        final = got[rid].final
        assert final is not None, (rid, why)
        if why is None:
            assert final.outcome == DeviceResponse.OK, final.reason
        else:
            assert final.outcome == DeviceResponse.REJECTED and why in final.reason, final


def test_replay_of_200_failed_requests_is_paced_and_deduplicated(stack: Stack) -> None:
    dev = stack.device(1)
    since = format_rfc3339(datetime.now(UTC))
    since_ms = int(time.time() * 1000) - 1
    bad = ScheduleSpec(
        device_id=dev,
        method="PUT",
        uri="/config/bitrate",
        entity=b'{"kbps": 5}',
        content_type="application/json",
        max_attempts=1,
    )
    with stack.layer() as layer, Follower(stack.profile) as follower:
        sent = [layer.schedule(bad) for _ in range(200)]
        assert all(isinstance(s, Sent) for s in sent)
        ids = [s.request_id for s in sent]  # type: ignore[union-attr]
        finals = follower.wait(ids, timeout=60)
    assert {f.outcome for f in finals.values()} == {"FAILED"}

    filt = f"outcome=failed and device={dev} and uri=/config/bitrate"
    dry = stack.cli("replay", "--filter", filt, "--since", since, "--rate", "50/s")
    assert dry.returncode == 0, dry.stderr
    assert "replay plan: 200 request(s)" in dry.stdout and "dry run: nothing sent" in dry.stdout
    with AssignReader(stack.profile, [stack.profile.topics.request]) as rd:
        before = len(rd.read_to_end(30))

    run = stack.cli("replay", "--filter", filt, "--since", since, "--rate", "50/s", "--execute")
    assert run.returncode == 0, run.stderr
    assert "replayed 200 of 200 (0 failed)" in run.stdout
    with AssignReader(stack.profile, [stack.profile.topics.request]) as rd:
        records = [r for r in rd.read_to_end(30) if r.timestamp_ms >= since_ms]
    replays = []
    for r in records:
        q = decode(DeviceRequest, r.value)
        assert isinstance(q, DeviceRequest)
        if q.replay_of:
            replays.append((r.timestamp_ms, q))
    assert len(records) + 0 >= 400 and before >= 200
    assert len(replays) == 200
    assert sorted(q.replay_of for _, q in replays) == sorted(ids)
    assert not {q.request_id for _, q in replays} & set(ids)
    stamps = sorted(t for t, _ in replays)
    assert max(sum(1 for t in stamps[i:] if t < s + 1000) for i, s in enumerate(stamps)) <= 50
