"""Registration on the real broker: ServiceAdded for every device, ServiceRemoved after stop,
from the in-process fleet and from ``pipeconsole simulate`` as a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pipeconsole.config import Profile
from pipeconsole.kafka.reader import AssignReader
from pipeconsole.sim import Fleet
from pipeconsole.wire.gen.registry_pb2 import RegistryEvent


def registry_events(profile: Profile) -> list[tuple[str, RegistryEvent]]:
    with AssignReader(profile, [profile.topics.registry]) as reader:
        records = reader.read_to_end(timeout=30)
    out = []
    for r in sorted(records, key=lambda r: (r.timestamp_ms, r.partition, r.offset)):
        assert r.key is not None and r.value is not None
        out.append((r.key.decode(), RegistryEvent.FromString(r.value)))
    return out


def test_fleet_registers_every_device_and_unregisters_on_stop(
    profile: Profile, http: httpx.Client
) -> None:
    with Fleet.start(devices=8, stages=["ingest", "transcode", "origin"], profile=profile) as f:
        urls = {d.device_id: d.base_url for d in f.devices}
        added = {k: ev.added for k, ev in registry_events(profile) if ev.HasField("added")}
        assert set(added) == set(urls)
        for device_id, ev in added.items():
            assert ev.device_id == device_id and ev.base_url == urls[device_id]
            assert ev.stage == f.device(device_id).stage
            assert ev.kind == f.device(device_id).kind
            assert ev.labels["sim"] == "true" and ev.name and ev.time_unix_ms > 0
            assert http.get(f"{ev.base_url}/health").json()["device_id"] == device_id
    events = registry_events(profile)
    removed = {k for k, ev in events if ev.HasField("removed")}
    assert removed == set(urls)
    last = {k: ev.WhichOneof("event") for k, ev in events}
    assert set(last.values()) == {"removed"}


def test_simulate_process_registers_and_exits_cleanly_on_sigterm(
    profile: Profile, tmp_path: Path
) -> None:
    env = {**os.environ, "PIPECONSOLE_CONFIG": os.devnull}
    topics = profile.topics
    # The per-test topic name comes in through a profile file.
    cfg = f"""
[profiles.t]
bootstrap = "{profile.bootstrap}"
[profiles.t.topics]
registry = "{topics.registry}"
"""
    path = tmp_path / "pipeconsole.toml"
    path.write_text(cfg, encoding="utf-8")
    env["PIPECONSOLE_CONFIG"] = str(path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeconsole", "simulate", "--profile", "t", "-n", "6"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            if line.strip() == "ready":
                break
            lines.append(line.split())
            assert time.monotonic() < deadline
        assert len(lines) == 6, lines
        ids = {row[0] for row in lines}
        added = {k for k, ev in registry_events(profile) if ev.HasField("added")}
        assert added == ids
        health = httpx.get(f"{lines[0][2]}/health", timeout=5).json()
        assert health["device_id"] == lines[0][0]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    removed = {k for k, ev in registry_events(profile) if ev.HasField("removed")}
    assert removed == ids
    try:
        httpx.get(f"{lines[0][2]}/health", timeout=2)
        raise AssertionError("the devices must be gone after exit")
    except httpx.ConnectError:
        pass


def test_simulate_without_a_broker_fails_with_a_hint() -> None:
    env = {**os.environ, "PIPECONSOLE_CONFIG": os.devnull}
    argv = ["simulate", "--bootstrap", "127.0.0.1:1", "-n", "4", "--register-timeout-s", "2"]
    proc = subprocess.run(
        [sys.executable, "-m", "pipeconsole", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "--no-register" in proc.stderr
