"""Crash loops: ``kill -9`` the dispatch process several times under load.

Requests keep arriving (some due now, some a few seconds ahead); the service is killed with
SIGKILL and restarted each time: twice in the default run, and in the soak run
(``python -m pytest -m soak tests/reliability``) every few seconds for a minute, each instance
killed as soon as it has finished a few requests of its own. Afterwards every input has its
final state (a final published twice is allowed: the offset of a request that finished just
before the kill was not committed yet, so the next instance runs it again), no device executed
any request twice, and every request partition is committed to its end: no offset gap.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from ledger import Ledger, check_devices, device_totals, wait_for
from relkit import Sender, at, dispatch_process, request, write_config

from pipeconsole.config import Profile
from pipeconsole.kafka.admin import group_lag
from pipeconsole.sim.fleet import Fleet

KILLS = 2
"""Kills in the default run."""
LOOP_S = float(os.environ.get("PIPECONSOLE_CRASH_LOOP_S", "60"))
"""How long the soak variant keeps killing."""


def test_kill_9_in_a_loop_under_load_loses_nothing_and_runs_nothing_twice(
    profile: Profile, fleet: Fleet, ledger: Ledger, sender: Sender, tmp_path: Path
) -> None:
    crash_loop(profile, fleet, ledger, sender, tmp_path, kills=KILLS, progress=20)


@pytest.mark.soak
@pytest.mark.timeout(int(LOOP_S) + 600)
def test_kill_9_every_few_seconds_for_a_minute(
    profile: Profile, fleet: Fleet, ledger: Ledger, sender: Sender, tmp_path: Path
) -> None:
    crash_loop(profile, fleet, ledger, sender, tmp_path, for_s=LOOP_S, progress=5)


def crash_loop(
    profile: Profile,
    fleet: Fleet,
    ledger: Ledger,
    sender: Sender,
    tmp_path: Path,
    *,
    kills: int = 0,
    for_s: float = 0.0,
    progress: int,
) -> None:
    """Kill after ``progress`` new finals of each instance: ``kills`` times, or for ``for_s``."""
    config = write_config(profile, tmp_path / "c.toml")
    group = f"crash-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "dispatch.log"
    devs = [d.device_id for d in fleet.devices]
    rng = random.Random(4)
    stop = threading.Event()
    produced: list[str] = []

    def load() -> None:  # ~40 requests/s until stopped
        while not stop.is_set():
            batch = [
                request(rng.choice(devs), schedule=at(rng.choice([0, 0, 0, 2, 4])), deadline=at(90))
                for _ in range(20)
            ]
            sender.requests(batch)
            produced.extend(r.request_id for r in batch)
            stop.wait(0.5)

    procs: list[subprocess.Popen[bytes]] = []
    loader = threading.Thread(target=load, daemon=True)
    try:
        procs.append(dispatch_process(profile, config, group, "crash-0", log))
        loader.start()
        started = time.monotonic()
        k = 0
        while k < kills or time.monotonic() - started < for_s:
            # kill once this instance has finished some work of its own
            done_before = len(ledger.finals_by_request())

            def progressed(n: int = done_before) -> bool:
                return len(ledger.finals_by_request()) > n + progress

            wait_for(progressed, 40, f"instance {k} to finish requests")
            os.kill(procs[-1].pid, signal.SIGKILL)
            procs[-1].wait(10)
            procs.append(dispatch_process(profile, config, group, f"crash-{k + 1}", log))
            k += 1
        stop.set()
        loader.join(30)
        b = ledger.wait_balanced(120, expect_inputs=len(produced), allow_repeats=True)
        assert b.inputs == len(produced)
        assert b.finals == {"OK": len(produced)}, b.explain()
        totals = check_devices(ledger, fleet.devices)  # executions == OK request ids
        ends: dict[int, int] = {}
        for r in ledger.request_records():
            ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)

        def committed_to_the_end() -> bool:
            rows = group_lag(profile, group, [profile.topics.request])
            got = {r.partition: r.committed for r in rows}
            return all(got.get(p, -1) >= end for p, end in ends.items())

        wait_for(committed_to_the_end, 30, "every request partition committed to its end")
        print(  # figures for docs/reliability.md
            f"crash loop: {len(produced)} requests, {k} kill -9, "
            f"{len(b.repeated)} finals published twice, {totals.duplicates} duplicate "
            f"arrivals absorbed by devices, {totals.executed} executions"
        )
        assert device_totals(fleet.devices).executed == len(produced)
    finally:
        stop.set()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
