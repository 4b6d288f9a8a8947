"""``pipeconsole doctor`` says what runs: devices registered, device actors and device states of
the last 30 s (it said only "topics: all present", and a cluster without a dispatcher shows
every device UNKNOWN in the console). Real broker, per-test topics, the CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from pipeconsole.config import Profile
from pipeconsole.kafka.producer import ConfirmingProducer
from pipeconsole.model import pipeline
from pipeconsole.model.fixtures import added, state
from pipeconsole.wire.gen import device_state_pb2 as ds
from pipeconsole.wire.gen import registry_pb2


def _doctor(profile: Profile, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    t = profile.topics
    names = "\n".join(
        f'{a} = "{getattr(t, a)}"'
        for a in ("registry", "state", "request", "control", "response", "dlq", "chaos", "audit")
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'[profiles.t]\nbootstrap = "{profile.bootstrap}"\n[profiles.t.topics]\n{names}\n'
        f"request_partitions = {t.request_partitions}\npartitions = {t.partitions}\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "pipeconsole", "doctor"],
        env={**os.environ, "PIPECONSOLE_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_doctor_counts_the_registry_and_names_the_actors_that_reported(
    profile: Profile, tmp_path: Path
) -> None:
    t = profile.topics
    now = int(time.time() * 1000)
    specs = pipeline(6)
    gone = registry_pb2.RegistryEvent(removed=registry_pb2.ServiceRemoved(device_id="ingest-01"))
    status = ds.ActorStatus(actor_id="\x1b[31mdispatch-1", time_unix_ms=now, in_flight=2)
    status.devices.extend(s.device_id for s in specs[1:])
    with ConfirmingProducer(profile) as p:
        for s in specs:
            p.send(t.registry, added(s).SerializeToString(), key=s.device_id)
        p.send(t.registry, gone.SerializeToString(), key="ingest-01")
        p.send(t.registry, None, key=specs[1].device_id)  # a tombstone: gone too
        p.send(t.state, state(specs[2].device_id, now).SerializeToString(), key="x")
        p.send(t.state, ds.StateEvent(actor=status).SerializeToString(), key="dispatch-1")
        p.send(t.state, b"\xff\xff", key="junk")
        p.flush(30)
    got = _doctor(profile, tmp_path)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert "registry: 4 device(s) registered" in lines
    (actors,) = [ln for ln in lines if ln.startswith("device actors:")]
    assert "1 reported in the last 30 s" in actors and "(5 devices, 2 in flight" in actors
    assert "\x1b" not in got.stdout and "dispatch-1" in actors
    assert any(ln.startswith("device states: the newest") for ln in lines)
    assert "warning: 1 record(s) could not be decoded" in lines


def test_doctor_warns_when_no_device_actor_runs(profile: Profile, tmp_path: Path) -> None:
    got = _doctor(profile, tmp_path)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert "registry: 0 device(s) registered" in lines
    assert any(
        ln.startswith("warning: no device actor reported in the last 30 s (is `pipeconsole "
                      "dispatch` running?")
        for ln in lines
    )  # fmt: skip
    assert "warning: no device state in the last 30 s" in lines
