"""When has the start-up backlog been read? ``Ingest.backlog_read`` against the real broker.

``pipeconsole status`` prints once it says so. It used to take the first empty poll for the
end of the backlog: a first fetch still on its way gives one at once (status then reported an
empty fleet, and every SLO held), and a large live fleet's steady traffic never gives one
(status then waited out its timeout and failed).
"""

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
from pipeconsole.kafka.reader import AssignReader, ReaderError
from pipeconsole.model import pipeline
from pipeconsole.model.fixtures import added, downstream_of, state

DEVICES = 12


def _publish(profile: Profile, failed: str = "") -> None:
    t = profile.topics
    specs = pipeline(DEVICES)
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
        for f in futs:
            f.result(30)


def _reported(ingest: Ingest) -> int:
    return sum(1 for r in ingest.model.fleet if r.last_seen_ms)


def test_an_empty_poll_is_not_the_end_of_the_backlog(profile: Profile) -> None:
    """The old rule fails this: its first instant poll is empty, and it said 0 of 12."""
    _publish(profile)
    ingest = Ingest(profile, options=IngestOptions(snapshot_hz=20, lag_interval_s=3600))
    assert ingest.connect()
    pause = threading.Event()
    try:
        said_read_at: int | None = None
        empty_before_the_end = 0
        for _ in range(100_000):
            got = ingest.step(timeout=0)  # never waits: polls often come back empty
            if not got and _reported(ingest) < DEVICES:
                empty_before_the_end += 1
            if ingest.backlog_read():
                said_read_at = _reported(ingest)
                break
            pause.wait(0.001)  # no event to await: these polls are meant not to wait
        assert said_read_at == DEVICES
        # What the old rule took for the end: here at least the first, instant poll.
        assert empty_before_the_end >= 1
    finally:
        ingest.close()


def test_the_backlog_is_read_while_a_live_stream_never_pauses(profile: Profile) -> None:
    """The marks are the watermarks of the start, not of now: a rule like "nothing behind the
    latest watermark" would never be met while a device keeps reporting."""
    _publish(profile)
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
        while not ingest.backlog_read():
            steps += 1
            assert steps < 2_000, f"backlog never read ({_reported(ingest)} devices)"
            ingest.step()
        assert _reported(ingest) == DEVICES
    finally:
        stop.set()
        producer.join(30)
        ingest.close()


def test_marks_come_from_the_first_fetch_or_from_the_broker(profile: Profile) -> None:
    _publish(profile)
    t = profile.topics
    with AssignReader(profile, [t.registry, t.state, t.dlq]) as reader:
        got = 0
        polls = 0
        while not reader.reached_marks():  # marks from librdkafka's cache: no broker call
            got += len(reader.poll_batch(timeout=0.1))
            polls += 1
            assert polls < 300, "the first fetch responses never came"
        assert got == 2 * DEVICES  # the registry and one state event per device; empty DLQ
        reader.mark_ends()  # the broker's answer now: nothing more was written
        assert reader.reached_marks()
    with pytest.raises(ReaderError, match="does not exist"):
        AssignReader(profile, ["no-such-topic-" + t.state])


def test_status_without_wait_for_fleet_reports_the_whole_backlog(
    profile: Profile, tmp_path: Path
) -> None:
    _publish(profile, failed="ingest-01")
    t = profile.topics
    names = "\n".join(
        f'{a} = "{getattr(t, a)}"'
        for a in ("registry", "state", "request", "control", "response", "dlq", "chaos", "audit")
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'default_profile = "test"\n[profiles.test]\nbootstrap = "{profile.bootstrap}"\n'
        f"[profiles.test.topics]\n{names}\n"
        f"request_partitions = {t.request_partitions}\npartitions = {t.partitions}\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeconsole",
            "status",
            "--json",
            "--timeout",
            "60",
            "--max-unhealthy",
            "5%",
        ],
        env={**os.environ, "PIPECONSOLE_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 5, proc.stderr  # 1 of 12 failing: over 5 %
    doc = json.loads(proc.stdout)
    assert doc["fleet"]["total"] == DEVICES
    assert doc["incidents"][0]["device_id"] == "ingest-01"
