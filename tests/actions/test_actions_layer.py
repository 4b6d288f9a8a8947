"""The action layer against a real broker (no actors needed): what is sent, refused, audited."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pipeconsole.actions.audit import LocalAuditLog
from pipeconsole.actions.layer import ActionLayer, Failed, Refused, ScheduleSpec, Sent
from pipeconsole.actions.outbox import Outbox
from pipeconsole.actions.replay import Pacer
from pipeconsole.actions.sign import Verifier
from pipeconsole.broker import free_port
from pipeconsole.config import Profile
from pipeconsole.kafka.producer import ConfirmingProducer
from pipeconsole.kafka.reader import AssignReader
from pipeconsole.kafka.records import Record
from pipeconsole.wire.codec import decode
from pipeconsole.wire.gen.audit_pb2 import AuditRecord
from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest
from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse

RESTART = ScheduleSpec(device_id="enc-1", method="POST", uri="/restart")


@pytest.fixture
def layer_for(tmp_path: Path) -> Iterator[object]:
    made: list[ActionLayer] = []

    def make(profile: Profile, **kw: object) -> ActionLayer:
        layer = ActionLayer(
            profile,
            outbox=Outbox(tmp_path / "outbox.jsonl"),
            audit_log=LocalAuditLog(tmp_path / "audit.jsonl"),
            **kw,  # type: ignore[arg-type]
        )
        made.append(layer)
        return layer

    yield make
    for layer in made:
        layer.close()


def _read(profile: Profile, topic: str, timeout: float = 10.0) -> list[Record]:
    with AssignReader(profile, [topic]) as rd:
        return rd.read_to_end(timeout)


def _audits(profile: Profile) -> list[AuditRecord]:
    out = []
    for r in _read(profile, profile.topics.audit):
        rec = decode(AuditRecord, r.value)
        assert isinstance(rec, AuditRecord)
        out.append(rec)
    return out


def test_schedule_is_confirmed_signed_and_audited(
    profile: Profile, layer_for, tmp_path: Path
) -> None:
    signed = replace(profile, key_id="ops-1", key_secret="s3cret")
    layer = layer_for(signed)
    res = layer.schedule(replace(RESTART, at="+30s", deadline="2s", qos="interactive"))
    assert isinstance(res, Sent), res
    assert res.offset >= 0 and res.topic == profile.topics.request
    (rec,) = _read(profile, profile.topics.request)
    assert (rec.partition, rec.offset) == (res.partition, res.offset)
    assert rec.key == b"enc-1"
    req = decode(DeviceRequest, rec.value)
    assert isinstance(req, DeviceRequest)
    assert req.request_id == res.request_id and req.issued_by == "ops-1"
    assert Verifier({"ops-1": "s3cret"}).verify(req) is None
    (audit,) = _audits(profile)
    assert audit.outcome == AuditRecord.ACCEPTED and list(audit.request_ids) == [req.request_id]
    assert layer.outbox.open_entries() == []
    assert LocalAuditLog(tmp_path / "audit.jsonl").read()[-1]["outcome"] == "ACCEPTED"


def test_garbage_time_is_refused_before_anything_is_sent(profile: Profile, layer_for) -> None:
    layer = layer_for(profile)
    res = layer.schedule(replace(RESTART, at="next tuesday"))
    assert isinstance(res, Refused) and res.code == "invalid"
    assert [e.field for e in res.errors] == ["schedule_time"]
    assert _read(profile, profile.topics.request) == []
    (audit,) = _audits(profile)
    assert audit.outcome == AuditRecord.REFUSED and "schedule_time" in audit.reason


@pytest.mark.parametrize(
    ("changes", "code"), [({"read_only": True}, "read_only"), ({"role": "viewer"}, "role")]
)
def test_read_only_and_viewer_refuse_every_write_path_and_audit_it(
    profile: Profile, layer_for, changes: dict[str, object], code: str, tmp_path: Path
) -> None:
    layer = layer_for(replace(profile, **changes))
    results = [
        layer.schedule(RESTART),
        layer.cancel(str(uuid.uuid4()), "enc-1"),
    ]
    plan = layer.plan_replay(ids=[str(uuid.uuid4())], rate=10)
    assert not isinstance(plan, Refused | Failed)  # a dry run only reads
    results.append(layer.execute_replay(plan))
    for res in results:
        assert isinstance(res, Refused) and res.code == code, res
        assert res.message
    assert _read(profile, profile.topics.request) == []
    assert _read(profile, profile.topics.control) == []
    audits = _audits(profile)
    assert sorted(a.action for a in audits) == ["cancel", "replay", "schedule"]
    assert all(a.outcome == AuditRecord.REFUSED for a in audits)
    local = LocalAuditLog(tmp_path / "audit.jsonl").read()
    assert [e["outcome"] for e in local] == ["REFUSED"] * 3


def test_unreachable_broker_is_a_clear_error_within_the_timeout(layer_for, tmp_path: Path) -> None:
    dead = Profile(name="dead", bootstrap=f"127.0.0.1:{free_port()}")
    layer = layer_for(dead, send_timeout_s=2.0)
    t0 = time.monotonic()
    res = layer.schedule(RESTART)
    took = time.monotonic() - t0
    assert isinstance(res, Failed), res
    assert dead.bootstrap in res.reason and "not delivered" in res.reason
    assert took < 2.0 + 5.0  # bounded by the send timeout (+ the settle margin)
    entry = LocalAuditLog(tmp_path / "audit.jsonl").read()[-1]
    assert entry["outcome"] == "FAILED"


def _seed_failures(profile: Profile, n: int) -> list[str]:
    """n requests on the request topic, each with a FAILED final outcome."""
    ids = []
    with ConfirmingProducer(profile) as prod:
        futs = []
        for i in range(n):
            rid = str(uuid.uuid4())
            ids.append(rid)
            dev = f"enc-{i % 7}"
            req = DeviceRequest(
                method="POST", uri="/restart", request_id=rid, device_id=dev, nonce=uuid.uuid4().hex
            )
            futs.append(prod.send(profile.topics.request, req.SerializeToString(), key=dev))
            resp = DeviceResponse(
                request_id=rid, device_id=dev, outcome=DeviceResponse.FAILED, status_code=503
            )
            futs.append(prod.send(profile.topics.response, resp.SerializeToString(), key=dev))
        # one success and a re-sent duplicate of the first request
        ok_id = str(uuid.uuid4())
        futs.append(
            prod.send(
                profile.topics.request,
                DeviceRequest(
                    method="POST", uri="/restart", request_id=ok_id, device_id="enc-1"
                ).SerializeToString(),
                key="enc-1",
            )
        )
        futs.append(
            prod.send(
                profile.topics.response,
                DeviceResponse(
                    request_id=ok_id, device_id="enc-1", outcome=DeviceResponse.OK
                ).SerializeToString(),
                key="enc-1",
            )
        )
        dup = DeviceRequest(method="POST", uri="/restart", request_id=ids[0], device_id="enc-0")
        futs.append(prod.send(profile.topics.request, dup.SerializeToString(), key="enc-0"))
        for f in futs:
            f.result(30)
    return ids


def test_replay_of_a_failed_window_is_paced_new_and_deduplicated(
    profile: Profile, layer_for
) -> None:
    since = int(time.time() * 1000) - 1000
    originals = _seed_failures(profile, 200)
    layer = layer_for(profile)
    plan = layer.plan_replay(filter_text="outcome=failed", since="-1m", rate=50)
    assert not isinstance(plan, Refused | Failed), plan
    assert plan.count == 200 and sum(plan.targets.values()) == 200
    assert len(_read(profile, profile.topics.request)) == 202  # the dry run sent nothing

    res = layer.execute_replay(plan, pacer=Pacer(50))
    assert not isinstance(res, Refused)
    assert len(res.sent) == 200 and not res.failed
    recs = [r for r in _read(profile, profile.topics.request, 30) if r.timestamp_ms >= since]
    new = [decode(DeviceRequest, r.value) for r in recs]
    replays = [
        (r, q)
        for r, q in zip(recs, new, strict=True)
        if isinstance(q, DeviceRequest) and q.replay_of
    ]
    assert len(replays) == 200
    assert sorted(q.replay_of for _, q in replays) == sorted(originals)  # each once
    assert len({q.request_id for _, q in replays}) == 200
    assert not {q.request_id for _, q in replays} & set(originals)
    assert len({q.nonce for _, q in replays}) == 200
    stamps = sorted(r.timestamp_ms for r, _ in replays)
    window_max = max(
        sum(1 for t in stamps[i:] if t < start + 1000) for i, start in enumerate(stamps)
    )
    assert window_max <= 50
    audit = [a for a in _audits(profile) if a.action == "replay"]
    assert len(audit) == 1 and len(audit[0].request_ids) == 200


def test_cli_reports_an_unreachable_broker_and_nothing_as_sent(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = dict(
        os.environ,
        PIPECONSOLE_STATE_DIR=str(tmp_path),
        PIPECONSOLE_CONFIG=os.devnull,
    )
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeconsole",
            "request",
            "schedule",
            "--bootstrap",
            f"127.0.0.1:{free_port()}",
            "--device",
            "enc-1",
            "--method",
            "POST",
            "--uri",
            "/restart",
            "--send-timeout",
            "2",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == 1
    assert "not delivered" in p.stderr and "within 2 s" in p.stderr
    assert "sent " not in p.stdout


def test_a_replay_filter_refuses_an_outcome_no_request_can_have() -> None:
    from pipeconsole.actions.replay import OUTCOMES, parse_filter
    from pipeconsole.query import QueryError

    # "outcome=faild" used to select nothing, and the dry run said "0 request(s)".
    with pytest.raises(QueryError, match=r"outcome 'faild' is not one of .*did you mean 'failed'"):
        parse_filter("outcome=faild")
    for name in OUTCOMES:
        assert parse_filter(f"outcome={name.lower()}").matches({"outcome": name})
    assert "PENDING" in OUTCOMES and "DEADLINE_EXCEEDED" in OUTCOMES


@pytest.mark.parametrize(
    ("since", "until", "field", "message"),
    [
        ("10m", "20m", "until", "the window ends (20"),  # ages: --until's is the smaller
        ("10x", "", "since", "'10x' is neither an age (90s, 10m, 2h) nor an RFC 3339 time"),
        ("2999-01-01T00:00:00Z", "", "since", "is in the future"),
        ("1h", "2999-01-01T00:00:00+02:00", "until", "is in the future"),
    ],
)
def test_a_replay_window_that_selects_nothing_by_construction_is_refused(
    profile: Profile, layer_for, since: str, until: str, field: str, message: str
) -> None:
    # Each of these was a dry run of "0 request(s)" (or a parser's bare "expected a date").
    plan = layer_for(profile).plan_replay(since=since, until=until)
    assert isinstance(plan, Refused), plan
    assert [e.field for e in plan.errors] == [field]
    assert message in plan.errors[0].message
