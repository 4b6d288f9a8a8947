"""``pipeconsole chaos run FILE``: a chaos experiment, headless; the exit status is the verdict.

0 the steady-state hypothesis held; 3 it did not (or not even before the method); 4 aborted by
a guardrail or Ctrl-C (faults rolled back); 2 refused (bad file, role, blast radius); 1 the
cluster could not be reached. ``--dry-run`` prints the plan and injects nothing.

The command wires the parts together: an :class:`~pipeconsole.ingest.Ingest` (the state model
the probes read), a ConfirmingProducer (protocol chaos, ChaosExperiment events, audit) and a
:class:`~pipeconsole.chaos.runner.Runner`. Progress lines go to stderr, the summary to stdout.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click

from pipeconsole.chaos.experiment import ExperimentError, load_experiment
from pipeconsole.chaos.report import Report
from pipeconsole.chaos.runner import Progress, Runner
from pipeconsole.cli import FiniteFloat, fail, not_blank, profile_options
from pipeconsole.config import Profile

__all__ = ["chaos"]


@click.group()
def chaos() -> None:
    """Chaos experiments: protocol chaos and infrastructure faults with verdicts."""


@chaos.command("run")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--dry-run", is_flag=True, help="Print the plan (targets, blast radius); inject nothing."
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the JSON report here.",
)
@click.option(
    "--duration",
    type=FiniteFloat(min=0, min_open=True),
    default=None,
    help="Run the method for this many seconds instead (action times scale).",
)
@click.option(
    "--group",
    default="pipeconsole-dispatch",
    show_default=True,
    callback=not_blank,
    help="The device actors' consumer group (for the lag probe).",
)
@click.option("--settle", type=FiniteFloat(min=0), default=None, help="Override settle_s.")
@click.option("--warmup", type=FiniteFloat(min=0), default=None, help="Override warmup_s.")
@click.option("--experiment-id", default=None, help="Use this id (default: a new one).")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
@profile_options
def run(
    file: Path,
    dry_run: bool,
    report_path: Path | None,
    duration: float | None,
    settle: float | None,
    warmup: float | None,
    experiment_id: str | None,
    group: str,
    quiet: bool,
    profile: Profile,
) -> None:
    """Run the experiment in FILE against the profile's cluster."""
    try:
        exp = load_experiment(file)
    except ExperimentError as exc:
        click.echo(f"pipeconsole: error: {exc.source}:", err=True)
        for p in exc.problems:
            click.echo(f"  {p}", err=True)
        sys.exit(2)
    from dataclasses import replace

    if duration is not None:
        exp = exp.with_duration(duration)
    if settle is not None:
        exp = replace(exp, settle_s=settle)
    if warmup is not None:
        exp = replace(exp, warmup_s=warmup)
    if not dry_run:
        from pipeconsole.actions.access import check

        refusal = check(profile, "chaos.run")
        if refusal is not None:
            _audit_refusal(profile, str(file), refusal.message)
            fail(refusal.message, 2)
    report = _run(
        exp, profile, dry_run=dry_run, experiment_id=experiment_id, quiet=quiet, group=group
    )
    if report_path is not None:
        report_path.write_text(report.dumps() + "\n", encoding="utf-8")
    click.echo(report.summary())
    sys.exit(report.exit_code)


def _run(
    exp: Any,
    profile: Profile,
    *,
    dry_run: bool,
    experiment_id: str | None,
    quiet: bool,
    group: str,
) -> Report:
    from pipeconsole.ingest import Ingest, IngestOptions
    from pipeconsole.kafka.producer import ConfirmingProducer

    def progress(p: Progress) -> None:
        if not quiet:
            click.echo(f"[{p.elapsed_s:6.1f}s] {p.phase}: {p.text}", err=True)
            for r in p.probes:
                if not r.ok:
                    click.echo(f"    {r.phase} {r.name}: {r.value} not in {r.tolerance}", err=True)

    options = IngestOptions(snapshot_hz=10.0, window_s=300.0, lag_group=group, lag_interval_s=1.0)
    ingest = Ingest(profile, options=options)
    ingest.start()
    producer = None if dry_run else ConfirmingProducer(profile)
    sign = None
    if profile.key_id and profile.key_secret:
        from pipeconsole.actions.sign import sign as sign_msg

        def sign(m: Any) -> Any:
            return sign_msg(m, profile.key_id, profile.key_secret)

    runner = Runner(
        exp,
        snapshots=lambda: ingest.latest,
        topics=profile.topics,
        sink=producer,
        on_progress=progress,
        experiment_id=experiment_id,
        issued_by=profile.key_id or "chaos",
        sign=sign,
    )
    # Ctrl-C / SIGTERM abort and roll back instead of killing the process mid-injection.
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        runner.abort(f"signal {signal.Signals(signum).name}", by="operator")

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        # The run goes on the runner's own thread and this (main) thread only joins it. A
        # signal handler runs on the main thread between two bytecodes: were the main thread
        # inside runner.run(), it could be holding the lock inside the runner's abort Event
        # (Event.wait takes it on the way in and out), and abort()'s Event.set() in the
        # handler would then deadlock; the process would hang with its faults live until their
        # leases ended. Joining holds no lock of the runner's, so Ctrl-C/SIGTERM always abort.
        thread = runner.start(dry_run=dry_run)
        while thread.is_alive():
            thread.join(0.5)
        report = runner.report
        if not report.verdict:  # run() died on a bug outside its guard (traceback above)
            fail("the chaos runner stopped without a verdict (see the log above)", 1)
        if not dry_run:
            _audit(profile, producer, report)
        return report
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if producer is not None:
            producer.close()
        ingest.stop()


def _audit(profile: Profile, producer: Any, report: Report) -> None:
    try:
        from pipeconsole.actions.audit import Auditor

        outcome = "REFUSED" if report.verdict == "refused" else "ACCEPTED"
        Auditor(profile, producer).record(
            "chaos.run",
            outcome,  # type: ignore[arg-type]
            targets=report.plan.get("targets", []),
            preview=f"{report.title} ({report.experiment_id}): {report.verdict}",
            reason=report.reason,
        )
    except Exception as exc:  # the audit never changes the verdict; say so
        click.echo(f"pipeconsole: warning: audit not written: {exc}", err=True)


def _audit_refusal(profile: Any, target: str, reason: str) -> None:
    """A refused run is audited like every other refused action: locally, then on the topic."""
    from pipeconsole.actions.audit import Auditor
    from pipeconsole.kafka.producer import ConfirmingProducer

    producer = ConfirmingProducer(profile, delivery_timeout_s=5.0)
    try:
        note = Auditor(profile, producer, timeout_s=5.0).record(
            "chaos.run", "REFUSED", targets=[target], reason=reason
        )
    finally:
        producer.close(timeout=5.0)
    if note.error:
        click.echo(f"pipeconsole: warning: audit: {note.error}", err=True)
