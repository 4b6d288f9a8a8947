"""The shipped experiments, a guardrail breach and a refused blast radius, against a real fleet
(Tansu + simulated devices + ``pipeconsole dispatch`` as a subprocess + the console's model)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipeconsole.chaos.experiment import Experiment, load_experiment, parse_experiment
from pipeconsole.chaos.faults import FaultClient, Target
from pipeconsole.chaos.report import Report
from pipeconsole.chaos.runner import Progress, Runner
from pipeconsole.ingest import Ingest, IngestOptions
from pipeconsole.kafka.producer import ConfirmingProducer
from pipeconsole.kafka.reader import AssignReader
from pipeconsole.wire.gen.chaos_pb2 import ChaosExperiment
from tests.chaos.conftest import Stack

pytestmark = pytest.mark.slow

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def run(stack: Stack, exp: Experiment, progress: list[Progress] | None = None) -> Report:
    assert stack.alive(), stack.log.read_text(errors="replace")[-2000:]
    opts = IngestOptions(snapshot_hz=10, window_s=300, lag_group=stack.group, lag_interval_s=1.0)
    ingest = Ingest(stack.profile, options=opts)
    ingest.start()
    producer = ConfirmingProducer(stack.profile)
    try:
        runner = Runner(
            exp,
            snapshots=lambda: ingest.latest,
            topics=stack.profile.topics,
            sink=producer,
            on_progress=progress.append if progress is not None else None,
        )
        return runner.run()
    finally:
        producer.close()
        ingest.stop()


def targets_of(stack: Stack, ids: list[str]) -> list[Target]:
    return [Target(d, stack.fleet.device(d).base_url) for d in ids]  # type: ignore[attr-defined]


def active_faults(stack: Stack, ids: list[str]) -> dict[str, Any]:
    with FaultClient() as fc:
        return {t.device_id: fc.active(t) for t in targets_of(stack, ids)}


@pytest.mark.parametrize(
    "name", ["encoder-crash", "slow-packager", "retry-storm", "telemetry-blackout"]
)
def test_shipped_infrastructure_experiment_holds_on_a_small_fleet(stack: Stack, name: str) -> None:
    exp = load_experiment(EXPERIMENTS / f"{name}.toml").with_duration(5.0)
    report = run(stack, exp)
    assert report.verdict == "held", report.dumps()
    assert report.exit_code == 0
    injected = [f for f in report.faults if f.fault_id]
    assert injected and all(f.ended_by for f in injected), report.faults
    assert {p.phase for p in report.probes} >= {"before", "after"}
    assert stack.alive()
    left = active_faults(stack, [f.device_id for f in injected])
    assert all(v == [] for v in left.values()), left


def test_protocol_chaos_requests_are_survived_and_dead_lettered(stack: Stack) -> None:
    exp = load_experiment(EXPERIMENTS / "protocol-chaos-requests.toml")
    seen: list[Progress] = []
    report = run(stack, exp, seen)
    assert report.verdict == "held", report.dumps()
    proto = report.protocol
    by_class = proto["by_class"]
    assert by_class.get("1", 0) > 50 and by_class.get("2", 0) > 0 and by_class.get("3", 0) > 0
    assert proto["failed_sends"] == 0
    # the device actors survived: the subprocess is running and kept reporting
    assert stack.alive()
    # every chaos record (classes 1 and 2) is in the DLQ with a reason, counted by reason code
    assert sum(report.dlq_by_reason.values()) == proto["chaos_records"] > 0
    assert {"empty", "too_deep"} <= set(report.dlq_by_reason) or len(report.dlq_by_reason) >= 2
    # the console's model is alive and counted exactly the undecodable records sent
    assert report.undecodable_seen == proto["undecodable_sent"] > 0
    after = {p.probe: p for p in report.probes if p.phase == "after"}
    assert after["requests_final"].value == 1.0
    assert any(p.phase == "verdict" for p in seen)
    # every record was tagged with the experiment id
    with AssignReader(stack.profile, [stack.profile.topics.request]) as reader:
        tagged = [
            r
            for r in reader.read_to_end()
            if r.header("chaos-experiment-id") == report.experiment_id.encode()
        ]
    assert len(tagged) == sum(by_class.values())


def test_guardrail_breach_aborts_and_rolls_back_every_fault(stack: Stack) -> None:
    victims = [d for d in ("transcode-01", "transcode-02", "transcode-03", "transcode-04",
                           "package-01", "package-02", "package-03", "package-04")]  # fmt: skip
    exp = parse_experiment(
        {
            "title": "Silence most of the fleet",
            "duration_s": 60,
            "probe_interval_s": 1.0,
            "settle_s": 30,
            "warmup_s": 30,
            "blast_radius": {"max_devices": 8, "max_stages": 2},
            "steady_state_hypothesis": {
                "probes": [
                    {"probe": "healthy_fraction", "tolerance": [0.75, 1.0]},
                ]
            },
            "method": [
                {"type": "fault", "fault": "blackout", "targets": victims, "duration_s": 60}
            ],
            "guardrails": [
                {"name": "half healthy", "probe": "healthy_fraction", "tolerance": [0.5, 1.0]}
            ],
        }
    )
    report = run(stack, exp)
    assert report.verdict == "aborted", report.dumps()
    assert report.exit_code == 4
    assert report.aborted["by"] == "half healthy"
    # How long the rollback took is measured and reported, not asserted (speed is for bench/):
    # the report must say it right.
    took_ms = report.aborted["rolled_back_ms"] - report.aborted["detected_ms"]
    assert took_ms >= 0 and report.aborted["rollback_s"] == took_ms / 1000
    assert report.aborted["within_probe_interval"] is (took_ms <= exp.probe_interval_s * 1000)
    assert all(f.ended_by == "rollback" for f in report.faults), report.faults
    assert any(p.phase == "guardrail" and not p.ok for p in report.probes)
    left = active_faults(stack, victims)
    assert all(v == [] for v in left.values()), left
    # the other consoles saw it: STARTED, ABORTED and VERDICT on chaos-experiment-v1
    with AssignReader(stack.profile, [stack.profile.topics.chaos]) as reader:
        phases = [
            ev.phase
            for r in reader.read_to_end()
            if r.value
            and (ev := ChaosExperiment.FromString(r.value)).experiment_id == report.experiment_id
        ]
    assert ChaosExperiment.STARTED in phases
    assert ChaosExperiment.ABORTED in phases
    assert phases[-1] == ChaosExperiment.VERDICT


def test_blast_radius_over_the_limit_is_refused_before_anything_is_injected(
    stack: Stack,
) -> None:
    base = load_experiment(EXPERIMENTS / "encoder-crash.toml")
    three = replace(
        base.method[0],  # type: ignore[type-var]
        select=replace(
            base.method[0].select, targets=("transcode-01", "transcode-02", "ingest-01")
        ),
    )
    exp = replace(base, method=(three,))
    report = run(stack, exp)
    assert report.verdict == "refused"
    assert report.exit_code == 2
    assert "max_devices = 1" in report.reason and "max_stages = 1" in report.reason
    assert report.faults == [] and report.probes == []
    left = active_faults(stack, ["transcode-01", "transcode-02", "ingest-01"])
    assert all(v == [] for v in left.values()), left


def test_cli_dry_run_prints_the_plan_and_injects_nothing(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    env = {**os.environ, "PIPECONSOLE_CONFIG": str(stack.config)}
    proc = subprocess.run(
        [sys.executable, "-m", "pipeconsole", "chaos", "run",
         str(EXPERIMENTS / "encoder-crash.toml"), "--dry-run", "--report", str(out)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "transcode-03" in proc.stderr
    assert "blast radius: 1 device(s) in 1 stage(s)" in proc.stderr
    assert '"verdict": "planned"' in out.read_text()
    assert active_faults(stack, ["transcode-03"]) == {"transcode-03": []}
