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
from pipeconsole.kafka.reader import AssignReader
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
        futs.append(p.send(t.registry, b"\x0a\xff\xff\xff", key=b"garbage"))  # truncated too
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
        # Caught up too: the counts below are exact only once every partition is read.
        whole = s.connection.caught_up and s.fleet.total == 12 and s.dlq_total == 1
        if whole and s.requests_total == 1 and s.incidents:
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
    # Registry garbage too: the console reads the registry from the beginning at every start.
    assert topics[profile.topics.registry].undecodable == 1
    assert "truncated" in topics[profile.topics.registry].undecodable_sample
    assert topics[profile.topics.state].undecodable_sample
    assert snap.dlq[0].reason == "malformed: truncated"
    assert snap.incidents[0].device_id == "ingest-01"
    assert ingest.errors == 0


def test_unreachable_broker_is_shown_as_disconnected() -> None:
    profile = Profile(bootstrap="127.0.0.1:1", kafka={"socket.connection.setup.timeout.ms": "1000"})
    options = IngestOptions(snapshot_hz=20, lag_interval_s=60, connect_timeout_s=2.0)
    ingest = Ingest(profile, options=options)
    with ingest:
        _wait(lambda: ingest.latest is not None and ingest.latest.connection.last_error, 30)
    assert ingest.latest is not None and not ingest.latest.connection.connected


def test_a_dead_broker_is_seen_by_the_reader_without_waiting_for_the_probe() -> None:
    """The probe polls every ``lag_interval_s`` (5 s) with a 5 s timeout: a dead broker showed
    as disconnected 5-10 s late. librdkafka says at once that no broker is reachable; the
    reader passes it on. Here the probe runs once, at start, and never again: only the reader
    can notice."""
    from pipeconsole.broker import EmbeddedBroker
    from pipeconsole.kafka.admin import ensure_topics

    broker = EmbeddedBroker().start()  # its own: this test kills it
    try:
        profile = Profile(name="dead", bootstrap=broker.bootstrap)
        ensure_topics(profile, profile.topics)
        ingest = Ingest(profile, options=IngestOptions(snapshot_hz=20, lag_interval_s=3600))
        with ingest:
            _wait(lambda: ingest.latest is not None and ingest.latest.connection.caught_up)
            assert ingest.latest is not None and ingest.latest.connection.connected
            broker.stop()
            _wait(lambda: ingest.latest is not None and not ingest.latest.connection.connected)
            snap = ingest.latest
        assert snap is not None
        assert snap.connection.last_error.startswith("no broker reachable: ")
        assert any("disconnected: no broker reachable" in e.text for e in snap.timeline)
    finally:
        broker.stop()


def test_a_probe_that_began_before_the_reader_saw_the_brokers_go_is_not_believed() -> None:
    """Its "up" can arrive after the reader's "down" (the probe ran while the broker died):
    the console stays disconnected until a probe that began afterwards says otherwise."""

    class Reader:
        said: str | None = None
        superseded = 0

        def poll_batch(self, *args: object, **kwargs: object) -> list[object]:
            return []

        def take_brokers_down(self) -> str | None:
            said, self.said = self.said, None
            return said

        def close(self) -> None:
            pass

    reader = Reader()
    ingest = Ingest(Profile(), reader_factory=lambda *a, **k: reader)
    assert ingest.connect()
    began = time.monotonic()
    reader.said = "1/1 brokers are down"
    ingest.step(timeout=0)
    assert not ingest.model.snapshot().connection.connected
    ingest._inbox.put(("up", began))  # a probe from before
    ingest.step(timeout=0)
    assert not ingest.model.snapshot().connection.connected
    ingest._inbox.put(("up", time.monotonic()))  # one from after
    ingest.step(timeout=0)
    assert ingest.model.snapshot().connection.connected


def _config(tmp_path: Path, profile: Profile) -> dict[str, str]:
    t = profile.topics
    names = "\n".join(
        f'{a} = "{getattr(t, a)}"'
        for a in ("registry", "state", "request", "control", "response", "dlq", "chaos", "audit")
    )
    path = tmp_path / "config.toml"
    # A long check interval: the hand-made state events are stamped once, when published, and
    # must not go stale (3 intervals) while ``status`` subprocesses start on a loaded machine.
    path.write_text(
        f'default_profile = "test"\n[profiles.test]\nbootstrap = "{profile.bootstrap}"\n'
        "check_interval_s = 60.0\n"
        f"[profiles.test.topics]\n{names}\n"
        f"request_partitions = {t.request_partitions}\npartitions = {t.partitions}\n"
    )
    return {**os.environ, "PIPECONSOLE_CONFIG": str(path)}


def _status(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``pipeconsole status ARGS`` in a fresh interpreter, as an operator's script runs it."""
    return subprocess.run(
        [sys.executable, "-m", "pipeconsole", "status", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_status_json_names_the_failed_device_and_breaches_the_slo(
    profile: Profile, tmp_path: Path
) -> None:
    _publish_pipeline(profile, failed="ingest-01")
    env = _config(tmp_path, profile)
    proc = _status(
        env, "--json", "--wait-for-fleet", "12", "--timeout", "60", "--max-unhealthy", "5%"
    )
    assert proc.returncode == 5, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["incidents"][0]["device_id"] == "ingest-01"
    assert doc["incidents"][0]["blast_size"] >= 2
    assert doc["fleet"]["total"] == 12
    assert not doc["slo"]["ok"] and "unhealthy" in doc["slo"]["breaches"][0]
    ok = _status(env, "--wait-for-fleet", "12", "--max-unhealthy", "50%", "--timeout", "60")
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
        env={**os.environ, "PIPECONSOLE_CONFIG": os.devnull},
    )
    assert proc.returncode == 1
    assert "cannot read the cluster" in proc.stderr
    # One line saying so, not librdkafka's every failed connect attempt (-v shows those).
    assert "Connect to" not in proc.stderr and len(proc.stderr.splitlines()) == 1


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


# ---------------------------------------------------------------- when the backlog is read
# ``pipeconsole status`` prints once ``Ingest.caught_up`` says so. It used to take the first
# empty poll for the end of the backlog: a first fetch still on its way gives one at once
# (status then reported an empty fleet, and every SLO held), and a large live fleet's steady
# traffic never gives one (status then waited out its timeout and failed).

DEVICES = 12


def _reported(ingest: Ingest) -> int:
    return sum(1 for r in ingest.model.fleet if r.last_seen_ms)


def _read_the_backlog(profile: Profile) -> tuple[int | None, int]:
    """Steps a new ``Ingest`` with polls that never wait until it says the backlog is read.

    Returns how many devices it had read then, and how many polls came back empty before it
    had read them all. Checks the snapshot's word and the timeline on the way out.
    """
    ingest = Ingest(profile, options=IngestOptions(snapshot_hz=20, lag_interval_s=3600))
    assert ingest.connect()
    assert not ingest.model.snapshot(analyse=False).connection.caught_up
    pause = threading.Event()
    try:
        said_read_at: int | None = None
        empty_before_the_end = 0
        for _ in range(100_000):
            got = ingest.step(timeout=0)  # never waits: polls often come back empty
            if not got and _reported(ingest) < DEVICES:
                empty_before_the_end += 1
            if ingest.caught_up:
                said_read_at = _reported(ingest)
                break
            pause.wait(0.001)  # no event to await: these polls are meant not to wait
        snap = ingest.snapshot_now()
        assert snap.connection.caught_up and snap.to_json()["connection"]["caught_up"] is True
        assert any(e.text == "start-up window read" for e in snap.timeline)
        return said_read_at, empty_before_the_end
    finally:
        ingest.close()


def test_an_empty_poll_is_not_the_end_of_the_backlog(profile: Profile) -> None:
    """The old rule fails this: its first instant poll is empty, and it said 0 of 12."""
    _publish_pipeline(profile)
    # Whether a poll comes back empty before the end is up to the broker's timing: the first
    # fetch has almost always not arrived at the first instant poll, but once in a while it
    # has. Each attempt must say "read" only at the end; one of them must also have met an
    # empty poll on the way, or the test would not show the old rule failing.
    empties: list[int] = []
    for _ in range(5):
        said_read_at, empty_before_the_end = _read_the_backlog(profile)
        assert said_read_at == DEVICES
        empties.append(empty_before_the_end)
        if empty_before_the_end:
            break
    assert any(empties), f"no attempt met an empty poll before the end: {empties}"


def test_the_backlog_is_read_while_a_live_stream_never_pauses(profile: Profile) -> None:
    """The marks are the watermarks of the start, not of now: a rule like "nothing behind the
    latest watermark" would never be met while a device keeps reporting."""
    _publish_pipeline(profile)
    t = profile.topics
    spec = pipeline(DEVICES)[0]
    stop = threading.Event()
    sent = [0]

    def stream() -> None:
        with ConfirmingProducer(profile, extra={"linger.ms": 1}) as p:
            while not stop.is_set():
                ev = state(spec.device_id, int(time.time() * 1000), stage=spec.stage)
                p.send(t.state, ev.SerializeToString(), key=spec.device_id)
                sent[0] += 1
                stop.wait(0.002)

    producer = threading.Thread(target=stream, daemon=True)
    producer.start()
    ingest = Ingest(profile, options=IngestOptions(snapshot_hz=20, lag_interval_s=3600))
    try:
        while sent[0] < 50:  # the stream is flowing before the console starts
            stop.wait(0.01)
        assert ingest.connect()
        steps = 0
        while not ingest.caught_up:
            steps += 1
            assert steps < 2_000, f"backlog never read ({_reported(ingest)} devices)"
            ingest.step()
        assert _reported(ingest) == DEVICES
    finally:
        stop.set()
        producer.join(30)
        ingest.close()


def test_marks_come_from_the_first_fetch_or_from_the_broker(profile: Profile) -> None:
    _publish_pipeline(profile)
    t = profile.topics
    with AssignReader(profile, [t.registry, t.state, t.dlq]) as reader:
        got = 0
        polls = 0
        while not reader.reached_marks():  # marks from librdkafka's cache: no broker call
            got += len(reader.poll_batch(timeout=0.1))
            polls += 1
            assert polls < 300, "the first fetch responses never came"
        assert got == 2 * DEVICES + 4  # registry, a state event per device, 3 garbage, 1 DLQ
        reader.mark_ends()  # the broker's answer now: nothing more was written
        assert reader.reached_marks()


def test_status_without_wait_for_fleet_reports_the_whole_backlog(
    profile: Profile, tmp_path: Path
) -> None:
    _publish_pipeline(profile, failed="ingest-01")
    proc = _status(_config(tmp_path, profile), "--json", "--timeout", "60", "--max-unhealthy", "5%")
    assert proc.returncode == 5, proc.stderr  # 1 of 12 failing: over 5 %
    doc = json.loads(proc.stdout)
    assert doc["fleet"]["total"] == DEVICES
    assert doc["incidents"][0]["device_id"] == "ingest-01"
