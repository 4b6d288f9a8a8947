"""Ingest and ``status`` against the real (Tansu) broker: hand-made events, garbage included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeconsole.config import Profile
from pipeconsole.ingest import Ingest, IngestOptions
from pipeconsole.kafka.producer import ConfirmingProducer
from pipeconsole.model import Health, Snapshot, pipeline
from pipeconsole.model.fixtures import added, downstream_of, response, state


def _wait(cond, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _publish_pipeline(profile: Profile, failed: str = "") -> None:
    t = profile.topics
    specs = pipeline(12)
    down = downstream_of(specs)
    now = int(time.time() * 1000)
    with ConfirmingProducer(profile) as p:
        futs = [p.send(t.registry, added(s).SerializeToString(), key=s.device_id) for s in specs]
        for s in specs:
            kw = {}
            if s.device_id == failed:
                kw = {"health": "FAILING", "checks": [("input", "FAILING", "no frames")]}
            ev = state(
                s.device_id,
                now,
                upstream=s.upstream,
                downstream=down[s.device_id],
                stage=s.stage,
                **kw,
            )
            futs.append(p.send(t.state, ev.SerializeToString(), key=s.device_id))
        futs.append(p.send(t.state, b"\x0a\xff\xff\xff", key=b"garbage"))  # truncated
        futs.append(p.send(t.state, b"\x12\x03\x0a\x01\xff", key=b"bad-utf8"))
        futs.append(p.send(t.response, b"\x00", key=b"junk"))
        futs.append(p.send(t.response, response("r1", "ingest-01", "OK", now).SerializeToString()))
        futs.append(
            p.send(t.dlq, b"\xde\xad", key=b"d", headers=[("reason", b"malformed: truncated")])
        )
        for f in futs:
            f.result(30)


def test_ingest_counts_undecodable_records_and_never_raises(profile: Profile) -> None:
    _publish_pipeline(profile, failed="ingest-01")
    got: list[Snapshot] = []
    ready = threading.Event()

    def on_snapshot(s: Snapshot) -> None:
        got.append(s)
        if s.fleet.total == 12 and s.dlq_total == 1 and s.requests_total == 1 and s.incidents:
            ready.set()

    ingest = Ingest(profile, on_snapshot=on_snapshot, options=IngestOptions(snapshot_hz=20))
    with ingest:
        assert ready.wait(30), got[-1].fleet if got else "no snapshot"
    snap = got[-1]
    assert snap.connection.connected
    topics = {t.topic: t for t in snap.fleet.topics}
    assert topics[profile.topics.state].undecodable == 2
    assert topics[profile.topics.state].consumed == 14
    assert topics[profile.topics.response].undecodable == 1
    assert topics[profile.topics.state].undecodable_sample
    assert snap.dlq[0].reason == "malformed: truncated"
    assert snap.incidents[0].device_id == "ingest-01"
    assert ingest.errors == 0


def test_unreachable_broker_is_shown_as_disconnected() -> None:
    profile = Profile(bootstrap="127.0.0.1:1", kafka={"socket.connection.setup.timeout.ms": "1000"})
    ingest = Ingest(profile, options=IngestOptions(snapshot_hz=20, lag_interval_s=60))
    with ingest:
        _wait(lambda: ingest.latest is not None and ingest.latest.connection.last_error, 30)
    assert ingest.latest is not None and not ingest.latest.connection.connected


def _config(tmp_path: Path, profile: Profile) -> dict[str, str]:
    t = profile.topics
    names = "\n".join(
        f'{a} = "{getattr(t, a)}"'
        for a in ("registry", "state", "request", "control", "response", "dlq", "chaos", "audit")
    )
    path = tmp_path / "config.toml"
    path.write_text(
        f'default_profile = "test"\n[profiles.test]\nbootstrap = "{profile.bootstrap}"\n'
        f"check_interval_s = {profile.check_interval_s}\n"
        f"[profiles.test.topics]\n{names}\n"
        f"request_partitions = {t.request_partitions}\npartitions = {t.partitions}\n"
    )
    return {**os.environ, "PIPECONSOLE_CONFIG": str(path)}


def test_status_json_names_the_failed_device_and_breaches_the_slo(
    profile: Profile, tmp_path: Path
) -> None:
    _publish_pipeline(profile, failed="ingest-01")
    env = _config(tmp_path, profile)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeconsole",
            "status",
            "--json",
            "--wait-for-fleet",
            "12",
            "--timeout",
            "60",
            "--max-unhealthy",
            "5%",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 5, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["incidents"][0]["device_id"] == "ingest-01"
    assert doc["incidents"][0]["blast_size"] >= 2
    assert doc["fleet"]["total"] == 12
    assert not doc["slo"]["ok"] and "unhealthy" in doc["slo"]["breaches"][0]
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeconsole",
            "status",
            "--wait-for-fleet",
            "12",
            "--max-unhealthy",
            "50%",
            "--timeout",
            "60",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert "SLO ok" in ok.stdout and "ingest-01 FAILING" in ok.stdout


def test_status_reports_an_unreachable_cluster(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeconsole",
            "status",
            "--bootstrap",
            "127.0.0.1:1",
            "--timeout",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PIPECONSOLE_CONFIG": str(tmp_path / "none.toml")},
    )
    assert proc.returncode == 1
    assert "cannot read the cluster" in proc.stderr


@pytest.mark.parametrize("silent", [True])
def test_ingest_sees_silence_as_unknown(profile: Profile, silent: bool) -> None:
    t = profile.topics
    spec = pipeline(4)[0]
    old = int(time.time() * 1000) - 60_000
    with ConfirmingProducer(profile) as p:
        p.send_sync(t.registry, added(spec).SerializeToString(), key=spec.device_id, timeout=30)
        p.send_sync(t.state, state(spec.device_id, old).SerializeToString(), timeout=30)
    ingest = Ingest(profile, options=IngestOptions(snapshot_hz=20, lag_interval_s=60))
    with ingest:
        _wait(
            lambda: (
                ingest.latest is not None
                and ingest.latest.fleet.total == 1
                and ingest.latest.devices[0].last_seen_ms > 0
            )
        )
    view = ingest.latest.devices[0]  # type: ignore[union-attr]
    assert view.health == Health.UNKNOWN and view.stale is silent
