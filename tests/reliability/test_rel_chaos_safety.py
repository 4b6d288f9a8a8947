"""Chaos safety: faults are leases, halt is bounded and idempotent, rollback on every exit path.

Against the session's Tansu broker and a small simulated fleet (6 devices, registered on the
test's own topics); no device actors are needed, since the hypothesis here is one that holds
at once (no new dead letters), so each run is about the faults alone.

- ``pipeconsole chaos run`` as a real subprocess, killed with SIGKILL mid-experiment: its fault
  is gone from the device within its lease + 5 s (the dead-man switch);
- the same subprocess sent SIGTERM or SIGINT: the fault is rolled back at once (long before its
  60 s lease), the exit status is 4 (aborted), the summary and the report say so, and the
  chaos-experiment-v1 topic gets ROLLED_BACK, ABORTED and VERDICT;
- an in-process :class:`Runner` whose second step fails (the device refuses the fault, or it
  cannot be reached mid-run): the first step's fault is rolled back, the verdict says why;
- :meth:`Runner.abort` twice, from two threads at once, and again after the end: both calls
  return at once, one rollback (one ``DELETE /chaos/{id}``, one ROLLED_BACK, one ABORTED);
- an abort while one target cannot be reached (crashed): the rollback still ends, the other
  target's fault is rolled back, and the unreachable one is left to its lease, as documented.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from relkit import cli_env, write_config

from pipeconsole.chaos.experiment import Experiment, parse_experiment
from pipeconsole.chaos.faults import FaultClient, FaultError, Lease, Target
from pipeconsole.chaos.report import Report
from pipeconsole.chaos.runner import Progress, Runner
from pipeconsole.config import Profile
from pipeconsole.ingest import Ingest, IngestOptions
from pipeconsole.kafka.producer import ConfirmingProducer
from pipeconsole.kafka.reader import AssignReader
from pipeconsole.sim.fleet import Fleet
from pipeconsole.wire.gen.chaos_pb2 import ChaosExperiment

pytestmark = pytest.mark.slow

VICTIM = "package-01"
"""The device the experiments inject into (the 6-device fleet of the suite's conftest)."""
OTHER = "transcode-01"
"""A second target, for the failed-step tests."""
START_S = 45.0
"""Bound on a ``chaos run`` getting as far as its first injection (imports, the console's
first snapshot, the plan, the hypothesis)."""


def experiment_toml(*, lease_s: float, method_s: float = 60.0) -> str:
    """One ``stall`` fault on :data:`VICTIM` at the start of a long method; the hypothesis
    (no new dead letters) holds at once, so the method starts as soon as the fleet is seen."""
    return f"""
version = 1
title = "Chaos safety: stall {VICTIM}"
duration_s = {method_s}
probe_interval_s = 0.5
settle_s = 2
warmup_s = 30

[blast_radius]
max_devices = 1
max_stages = 1
max_fraction = 0.5

[steady_state_hypothesis]
title = "no new dead letters"
[[steady_state_hypothesis.probes]]
name = "dlq quiet"
probe = "dlq_growth"
tolerance = [0, 1000]

[[method]]
type = "fault"
name = "stall the packager"
fault = "stall"
targets = ["{VICTIM}"]
at_s = 0
duration_s = {lease_s}
"""


def faults_on(fleet: Fleet, device_id: str) -> tuple[str, ...]:
    return fleet.device(device_id).counters().faults_active


def poll(cond: Callable[[], bool], timeout: float, what: str, proc: Any = None) -> float:
    """Poll ``cond`` every 50 ms until it holds; returns when (monotonic). Fails after
    ``timeout`` or when ``proc`` (a subprocess that should still be running) has exited."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return time.monotonic()
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited first ({proc.returncode})")
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def target(fleet: Fleet, device_id: str) -> Target:
    return Target(device_id, fleet.device(device_id).base_url)


def chaos_phases(profile: Profile, experiment_id: str) -> list[int]:
    with AssignReader(profile, [profile.topics.chaos]) as reader:
        return [
            ev.phase
            for r in reader.read_to_end()
            if r.value
            and (ev := ChaosExperiment.FromString(r.value)).experiment_id == experiment_id
        ]


class ChaosRun:
    """``pipeconsole chaos run FILE`` as a subprocess with its output in files."""

    def __init__(self, profile: Profile, tmp: Path, lease_s: float) -> None:
        self.experiment_id = f"exp-rel-{uuid.uuid4().hex[:10]}"
        self.report_path = tmp / "report.json"
        self.out = tmp / "stdout.txt"
        self.err = tmp / "stderr.txt"
        exp = tmp / "exp.toml"
        exp.write_text(experiment_toml(lease_s=lease_s), encoding="utf-8")
        config = write_config(profile, tmp / "config.toml", role="chaos", check_interval_s=0.5)
        cmd = [
            sys.executable, "-m", "pipeconsole", "chaos", "run", str(exp),
            "--report", str(self.report_path), "--experiment-id", self.experiment_id,
        ]  # fmt: skip
        env = {**cli_env(config, tmp / "state"), "PYTHONUNBUFFERED": "1"}
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env
            )

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def chaos_run(
    profile: Profile, fleet: Fleet, tmp_path: Path
) -> Iterator[Callable[[float], ChaosRun]]:
    runs: list[ChaosRun] = []

    def start(lease_s: float) -> ChaosRun:
        run = ChaosRun(profile, tmp_path, lease_s)
        runs.append(run)
        return run

    yield start
    for r in runs:
        r.stop()


def test_kill_9_mid_experiment_leaves_no_fault_beyond_its_lease(
    fleet: Fleet, chaos_run: Callable[[float], ChaosRun]
) -> None:
    lease_s = 4.0
    run = chaos_run(lease_s)
    assert faults_on(fleet, VICTIM) == ()
    seen = poll(lambda: "stall" in faults_on(fleet, VICTIM), START_S, "the fault", run.proc)
    run.proc.send_signal(signal.SIGKILL)
    assert run.proc.wait(10) == -signal.SIGKILL
    # nobody rolled it back: the runner is dead and the fault is still there ...
    with FaultClient() as fc:
        active = fc.active(target(fleet, VICTIM))
    assert not isinstance(active, FaultError), active
    assert [f["fault"] for f in active] == ["stall"], active
    assert active[0]["expires_unix_ms"] > time.time() * 1000, "killed after the lease ended"
    # ... until its lease ends it (the dead-man switch)
    gone = poll(lambda: faults_on(fleet, VICTIM) == (), lease_s + 5.0, "the lease to end")
    assert gone - seen <= lease_s + 5.0
    assert not run.report_path.exists()  # it really died mid-run: no report, no rollback


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_sigterm_and_ctrl_c_roll_back_at_once_and_exit_aborted(
    profile: Profile,
    fleet: Fleet,
    chaos_run: Callable[[float], ChaosRun],
    sig: signal.Signals,
) -> None:
    lease_s = 60.0  # only a rollback can end it within this test
    run = chaos_run(lease_s)
    poll(lambda: "stall" in faults_on(fleet, VICTIM), START_S, "the fault", run.proc)
    run.proc.send_signal(sig)
    poll(lambda: faults_on(fleet, VICTIM) == (), 15.0, "the rollback")
    assert run.proc.wait(30) == 4, run.stderr()[-3000:]
    out, err = run.stdout(), run.stderr()
    assert "aborted (exit 4)" in out, out
    assert f"reason: signal {sig.name}" in out, out
    assert "aborted by operator" in out, out
    assert "rollback: rolled back 1 fault(s)" in err, err[-3000:]
    report = json.loads(run.report_path.read_text())
    assert report["verdict"] == "aborted" and report["exit_code"] == 4
    assert report["aborted"]["by"] == "operator"
    assert report["aborted"]["reason"] == f"signal {sig.name}"
    [fault] = report["faults"]
    assert fault["device_id"] == VICTIM and fault["fault_id"]
    assert fault["ended_by"] == "rollback"
    assert fault["ended_ms"] < fault["expires_ms"] - 30_000  # ended by us, not by the lease
    phases = chaos_phases(profile, run.experiment_id)
    assert phases[0] == ChaosExperiment.STARTED
    assert phases.count(ChaosExperiment.ROLLED_BACK) == 1
    assert phases.count(ChaosExperiment.ABORTED) == 1
    assert phases.index(ChaosExperiment.ROLLED_BACK) < phases.index(ChaosExperiment.ABORTED)
    assert phases[-1] == ChaosExperiment.VERDICT
    assert phases.count(ChaosExperiment.VERDICT) == 1


# -- in-process runner ------------------------------------------------------------------------


class CountingFaults(FaultClient):
    """A real FaultClient (real HTTP to the simulated devices) that counts the rollbacks."""

    def __init__(self) -> None:
        super().__init__()
        self.ended: list[str] = []
        self._lock = threading.Lock()

    def end(self, lease: Lease) -> FaultError | None:
        with self._lock:
            self.ended.append(lease.fault_id)
        return super().end(lease)


def quick_experiment(
    title: str, method: list[dict[str, Any]], *, devices: int, **extra: Any
) -> Experiment:
    """A 60 s in-process experiment whose hypothesis (no new dead letters) holds at once."""
    return parse_experiment(
        {
            "title": title,
            "duration_s": 60,
            "probe_interval_s": 0.5,
            "settle_s": 2,
            "warmup_s": 30,
            "blast_radius": {"max_devices": devices, "max_stages": devices, "max_fraction": 0.5},
            "steady_state_hypothesis": {
                "probes": [{"name": "dlq quiet", "probe": "dlq_growth", "tolerance": [0, 1000]}]
            },
            "method": method,
            **extra,
        }
    )


def two_step_experiment(second: dict[str, Any]) -> Experiment:
    """A long stall on :data:`VICTIM` at once, then ``second`` on :data:`OTHER` at 1 s."""
    return quick_experiment(
        "Chaos safety: two steps",
        [
            {
                "type": "fault",
                "name": "stall",
                "fault": "stall",
                "targets": [VICTIM],
                "duration_s": 60,
            },
            {"type": "fault", "targets": [OTHER], "at_s": 1.0, "duration_s": 60, **second},
        ],
        devices=2,
    )


class InProcess:
    """A Runner with its own console model (Ingest) and event producer, on the test's topics."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        opts = IngestOptions(snapshot_hz=10, window_s=300, lag_interval_s=1.0)
        self.ingest = Ingest(profile, options=opts)
        self.ingest.start()
        self.producer = ConfirmingProducer(profile)
        self.faults = CountingFaults()
        self.progress: list[Progress] = []

    def runner(
        self, exp: Experiment, on_progress: Callable[[Progress], None] | None = None
    ) -> Runner:
        def progress(p: Progress) -> None:
            self.progress.append(p)
            if on_progress is not None:
                on_progress(p)

        return Runner(
            exp,
            snapshots=lambda: self.ingest.latest,
            topics=self.profile.topics,
            faults=self.faults,
            sink=self.producer,
            on_progress=progress,
        )

    def close(self) -> None:
        self.faults.close()
        self.producer.close()
        self.ingest.stop()


@pytest.fixture
def inproc(profile: Profile, fleet: Fleet) -> Iterator[InProcess]:
    ip = InProcess(profile)
    try:
        yield ip
    finally:
        ip.close()


@pytest.mark.parametrize("how", ["refused", "unreachable"])
def test_a_failed_step_rolls_back_the_faults_already_started(
    profile: Profile, fleet: Fleet, inproc: InProcess, how: str
) -> None:
    if how == "refused":
        # the file's checks pass (error_rate takes `rate`), the device refuses rate = 5 (422)
        second = {"name": "bad error rate", "fault": "error_rate", "params": {"rate": 5.0}}
        hook = None
    else:
        second = {"name": "latency", "fault": "latency", "params": {"mean_ms": 10.0}}

        def hook(p: Progress) -> None:
            # the second target goes away after the plan, before its step: connection refused
            if p.phase == "method" and p.text.startswith("method starts"):
                fleet.device(OTHER).inject("crash", 30.0)

    runner = inproc.runner(two_step_experiment(second), hook)
    runner.start()
    # No poll for the first step's fault here: it lives only until the second step fails
    # (~1 s). The report's fault id and the fleet's record of the ended fault prove it was on.
    report = runner.wait(45.0)
    assert report.verdict == "aborted", report.dumps()
    assert report.exit_code == 4
    assert "bad error rate" in report.reason or "latency" in report.reason, report.reason
    assert OTHER in report.reason, report.reason
    why = "answered 422" if how == "refused" else "POST /chaos failed"
    assert why in report.reason, report.reason
    stall, failed = report.faults
    assert (stall.device_id, stall.ended_by) == (VICTIM, "rollback"), report.faults
    assert failed.device_id == OTHER and failed.error and not failed.fault_id
    assert faults_on(fleet, VICTIM) == ()  # rolled back, 59 s before its lease would end it
    assert inproc.faults.ended == [stall.fault_id]
    assert inproc.producer.flush(10.0) == 0  # the events are sent asynchronously
    phases = chaos_phases(profile, report.experiment_id)
    assert ChaosExperiment.ROLLED_BACK in phases and ChaosExperiment.ABORTED in phases
    assert phases[-1] == ChaosExperiment.VERDICT


def test_abort_is_bounded_and_idempotent_even_from_two_threads_at_once(
    profile: Profile, fleet: Fleet, inproc: InProcess
) -> None:
    exp = quick_experiment(
        "Chaos safety: abort twice",
        [{"type": "fault", "fault": "stall", "targets": [VICTIM], "duration_s": 60}],
        devices=1,
        rollbacks=[{"type": "halt"}],
    )
    runner = inproc.runner(exp)
    thread = runner.start()
    poll(lambda: "stall" in faults_on(fleet, VICTIM), START_S, "the fault")
    barrier = threading.Barrier(2)
    returned: list[str] = []

    def abort(name: str) -> None:
        barrier.wait(5.0)
        runner.abort(f"abort from {name}", by=name)
        returned.append(name)

    callers = [threading.Thread(target=abort, args=(n,)) for n in ("ui", "signal")]
    for c in callers:
        c.start()
    for c in callers:
        c.join(5.0)
    assert sorted(returned) == ["signal", "ui"]  # both returned, neither waited for the rollback
    report: Report = runner.wait(30.0)
    assert not thread.is_alive(), "the runner did not finish after the abort"
    runner.abort("once more, after the end")  # idempotent after the end too
    assert report.verdict == "aborted" and report.exit_code == 4
    assert report.aborted["by"] in {"ui", "signal"}
    assert report.aborted["reason"] == f"abort from {report.aborted['by']}"
    assert report.reason == report.aborted["reason"]
    [fault] = report.faults
    assert fault.ended_by == "rollback"
    assert inproc.faults.ended == [fault.fault_id]  # one DELETE /chaos/{id}
    assert [r["device_id"] for r in report.rollbacks] == [VICTIM]  # one halt
    assert all(r["ok"] for r in report.rollbacks), report.rollbacks
    assert faults_on(fleet, VICTIM) == ()
    assert inproc.producer.flush(10.0) == 0  # the events are sent asynchronously
    phases = chaos_phases(profile, report.experiment_id)
    assert phases.count(ChaosExperiment.ROLLED_BACK) == 1
    assert phases.count(ChaosExperiment.ABORTED) == 1
    assert phases.count(ChaosExperiment.VERDICT) == 1
    assert [p.phase for p in inproc.progress].count("abort") == 1
    assert [p.phase for p in inproc.progress].count("rollback") == 1


def test_abort_with_an_unreachable_target_still_rolls_back_the_others(
    profile: Profile, fleet: Fleet, inproc: InProcess
) -> None:
    exp = quick_experiment(
        "Chaos safety: one target gone at rollback",
        [{"type": "fault", "fault": "stall", "targets": [VICTIM, OTHER], "duration_s": 60}],
        devices=2,
        rollbacks=[{"type": "halt"}],
    )
    runner = inproc.runner(exp)
    thread = runner.start()

    def both() -> bool:
        return all("stall" in faults_on(fleet, d) for d in (VICTIM, OTHER))

    poll(both, START_S, "both faults")
    fleet.device(VICTIM).inject("crash", 60.0)  # its listener is closed: rollback is refused
    runner.abort("operator abort")
    report = runner.wait(30.0)
    assert not thread.is_alive(), "the rollback did not finish"
    assert report.verdict == "aborted" and report.exit_code == 4
    gone, other = report.faults
    assert gone.device_id == VICTIM and gone.ended_by.startswith("lease (rollback failed:")
    assert (other.device_id, other.ended_by) == (OTHER, "rollback")  # not stopped by the first
    assert inproc.faults.ended == [gone.fault_id, other.fault_id]
    assert [(r["device_id"], r["ok"]) for r in report.rollbacks] == [(VICTIM, False), (OTHER, True)]
    assert faults_on(fleet, OTHER) == ()
    assert "stall" in faults_on(fleet, VICTIM)  # left to its lease, as documented
