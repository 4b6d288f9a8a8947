"""Chaos experiments from the console: pick or compose, plan, confirm, run, abort, report.

:class:`ChaosController` lives on the app (so a run survives switching views) and keeps the
plain state the Chaos screen draws (:class:`ChaosState`). The engine is
:class:`pipeconsole.chaos.runner.Runner`, the same one ``pipeconsole chaos run`` uses:

- **plan** — ``Runner.plan(app.snapshot)``: targets, stages, downstream devices and any refusal
  (blast-radius limit, unknown targets), before anything else happens;
- **run** — the access rules first (``chaos.run`` needs role ``chaos`` and a writable
  profile; a refusal is shown and audited), then a typed confirmation with the blast radius
  on the graph, then ``Runner.run()`` in one fully declared thread worker (group ``chaos``).
  The runner's ``on_progress`` runs on that thread and only posts
  :class:`~pipeconsole.ui.messages.ChaosProgressed`; the verdict comes back as
  :class:`~pipeconsole.ui.messages.ChaosFinished`, and the run is audited (``chaos.run``);
- **abort** — ``x``: ``Runner.abort`` (thread-safe, idempotent); the runner rolls every fault
  back within one probe interval. Leaving the console aborts a running experiment and waits
  for its rollback (:meth:`ChaosController.shutdown`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeconsole.chaos.experiment import Experiment, ExperimentError, load_experiment
from pipeconsole.chaos.faults import FaultClient
from pipeconsole.chaos.report import ProbeResult, Report
from pipeconsole.chaos.runner import Plan, Progress, Runner
from pipeconsole.chaos.traffic import Sink
from pipeconsole.text import sanitize
from pipeconsole.ui.blast import blast_of, confirmation_word
from pipeconsole.ui.messages import ChaosFinished, ChaosProgressed
from pipeconsole.ui.screens.confirm import CONFIRMED, ConfirmResult, ConfirmScreen

if TYPE_CHECKING:
    from pipeconsole.ui.app import PipeConsoleApp
    from pipeconsole.ui.operator import Operator

__all__ = ["EXPERIMENTS_DIR", "ChaosController", "ChaosState", "experiment_files"]

EXPERIMENTS_DIR = Path("experiments")
"""Listed relative to the console's working directory."""
FILES_MAX = 200
STEPS_KEPT = 200


def experiment_files(base: Path | None = None, examples: Path | None = None) -> list[Path]:
    """``experiments/*.toml`` under ``base`` (default: the working directory, as relative
    paths), sorted, bounded; when there are none, ``examples/*.toml`` (the demo passes the
    examples shipped with pipeconsole, so that its Chaos view has them wherever it runs)."""
    folder = base / EXPERIMENTS_DIR if base is not None else EXPERIMENTS_DIR  # relative: shorter
    for where in (folder, examples):
        if where is None:
            continue
        try:
            found = sorted(where.glob("*.toml"))[:FILES_MAX]
        except OSError:
            found = []
        if found:
            return found
    return []


@dataclass(slots=True)
class ChaosState:
    """What the Chaos screen draws. Changed on the UI thread only."""

    experiment: Experiment | None = None
    source: str = ""
    """Where the experiment came from (a path, or "composed")."""
    problems: tuple[str, ...] = ()
    """Why the last file could not be used."""
    plan: Plan | None = None
    running: bool = False
    aborting: bool = False
    experiment_id: str = ""
    phase: str = ""
    elapsed_s: float = 0.0
    probes: dict[str, ProbeResult] = field(default_factory=dict)
    """The latest measurement of each probe and guardrail, by name."""
    steps: deque[str] = field(default_factory=lambda: deque(maxlen=STEPS_KEPT))
    """Progress lines, newest last (bounded)."""
    report: Report | None = None


class ChaosController:
    """The console's chaos flows; the app routes the runner's messages here."""

    def __init__(self, app: PipeConsoleApp, operator: Operator) -> None:
        self.app = app
        self.operator = operator
        self.state = ChaosState()
        self.runner: Runner | None = None
        self._faults: FaultClient | None = None
        self._finished = threading.Event()
        self._finished.set()

    @property
    def faults(self) -> FaultClient:
        if self._faults is None:
            self._faults = FaultClient()
        return self._faults

    def _changed(self) -> None:
        from pipeconsole.ui.screens.chaos import ChaosScreen

        screen = self.app.drawable_screen()
        if isinstance(screen, ChaosScreen):
            screen.show_state()

    # ------------------------------------------------------------------ choosing

    def load(self, path: Path | str) -> bool:
        """Read an experiment file and plan it; problems are shown, never raised."""
        if self.state.running:
            self.app.notify("an experiment is running: abort it first (x)", markup=False)
            return False
        try:
            exp = load_experiment(path)
        except ExperimentError as exc:
            self.state = ChaosState(source=str(path), problems=tuple(exc.problems))
            self._changed()
            return False
        self.use(exp, str(path))
        return True

    def use(self, exp: Experiment, source: str) -> None:
        if self.state.running:
            return
        self.state = ChaosState(experiment=exp, source=source)
        self.replan()

    def _runner(self, exp: Experiment, sink: Sink | None = None) -> Runner:
        app = self.app
        profile = self.operator.profile
        sign = None
        if profile.key_id and profile.key_secret:
            from pipeconsole.actions.sign import sign as sign_msg

            def sign(m: Any) -> Any:
                return sign_msg(m, profile.key_id, profile.key_secret)

        def progress(p: Progress) -> None:  # the runner's thread: post, never touch widgets
            app.post_message(ChaosProgressed(p))

        return Runner(
            exp,
            snapshots=lambda: app.snapshot,  # an immutable object: safe to read from a thread
            topics=profile.topics,
            faults=self.faults,
            sink=sink,
            on_progress=progress,
            issued_by=profile.key_id or f"console:{profile.name}",
            sign=sign,
        )

    def replan(self) -> None:
        """Plan against the snapshot on screen now (nothing is injected)."""
        exp = self.state.experiment
        if exp is None or self.state.running:
            return
        self.state.plan = self._runner(exp).plan(self.app.snapshot)
        self._changed()

    # ------------------------------------------------------------------ running

    def run(self) -> None:
        """``r``: access rules, plan refusal, typed confirmation, then the worker."""
        st = self.state
        exp = st.experiment
        if st.running:
            self.app.notify("an experiment is already running (x aborts it)", markup=False)
            return
        if exp is None:
            self.app.notify("pick or compose an experiment first", severity="warning", markup=False)
            return
        self.replan()
        plan = st.plan
        assert plan is not None
        refusal = self.operator.check("chaos.run")
        why = refusal.message if refusal is not None else plan.refusal
        if why:
            self._refuse(exp, plan, why)
            return
        snapshot = self.app.snapshot
        blast = blast_of(snapshot, plan.targets)

        def done(result: ConfirmResult | None) -> None:
            if result == CONFIRMED:
                self._start(exp)
            elif result is not None:
                text = "chaos.run refused: the typed confirmation did not match; nothing injected"
                self.app.log_line("WARNING", "chaos", text)
                self.app.notify(text, severity="error", markup=False)

        self.app.push_screen(
            ConfirmScreen(
                f"Run chaos experiment: {sanitize(exp.title, max_len=60)}",
                plan.describe().splitlines(),
                blast,
                confirmation_word(blast.targets),
                snapshot=snapshot,
            ),
            done,
        )

    def _refuse(self, exp: Experiment, plan: Plan, why: str) -> None:
        text = f"chaos.run refused: {why}; nothing injected"
        self.state.steps.append(text)
        self.app.log_line("WARNING", "chaos", text)
        self.app.notify(
            sanitize(text, max_len=400), title="Refused", severity="error", markup=False
        )
        self._changed()
        targets = list(plan.targets)
        preview = f"{exp.title} ({self.state.source})"

        def job() -> None:
            def write(layer: Any) -> None:
                _ = layer.sender  # attaches the producer: the refusal goes to the topic too
                layer.auditor.record(
                    "chaos.run", "REFUSED", targets=targets, preview=preview, reason=why
                )

            self.operator.run(write)

        self.app.run_worker(
            job,
            thread=True,
            exclusive=False,
            exit_on_error=False,
            group="actions",
            name="audit",
            description="Auditing a refused chaos run",
        )

    def _start(self, exp: Experiment) -> None:
        # The sink is the action layer's confirming producer, shared (building it is local).
        runner = self._runner(exp, self.operator.producer())
        self.runner = runner
        st = self.state
        st.running, st.aborting, st.report = True, False, None
        st.experiment_id = runner.experiment_id
        st.probes.clear()
        st.steps.append(f"starting {runner.experiment_id}")
        self._finished.clear()
        operator, finished = self.operator, self._finished
        app = self.app
        source = st.source

        def job() -> None:
            try:
                report = runner.run()
            finally:
                finished.set()
            error = ""
            try:

                def write(layer: Any) -> None:
                    layer.auditor.record(
                        "chaos.run",
                        "REFUSED" if report.verdict == "refused" else "ACCEPTED",
                        targets=report.plan.get("targets", []),
                        preview=f"{report.title} ({report.experiment_id}, {source}): "
                        f"{report.verdict}",
                        reason=report.reason,
                    )

                operator.run(write)
            except Exception as exc:  # the audit never changes the verdict; say so
                error = f"audit not written: {exc}"
            app.post_message(ChaosFinished(report, error))

        self.app.run_worker(
            job,
            thread=True,
            exclusive=True,
            exit_on_error=False,
            group="chaos",
            name="chaos-run",
            description=f"Chaos experiment {runner.experiment_id}",
        )
        self._changed()

    def abort(self) -> None:
        """``x``: abort and roll back (idempotent: a second press only says so)."""
        runner = self.runner
        if runner is None or not self.state.running:
            self.app.notify("no experiment is running", markup=False)
            return
        if self.state.aborting:
            self.app.notify("already aborting: rolling the faults back", markup=False)
            return
        runner.abort("operator abort (console)", by=self.operator.profile.key_id or "operator")
        self.state.aborting = True
        self.state.steps.append("abort requested: rolling back")
        self.app.log_line("WARNING", "chaos", f"abort requested for {runner.experiment_id}")
        self._changed()

    # ------------------------------------------------------------------ messages

    def progressed(self, message: ChaosProgressed) -> None:
        p: Progress = message.progress
        st = self.state
        st.phase, st.elapsed_s = p.phase, p.elapsed_s
        for r in p.probes:
            st.probes[r.name] = r
        for line in p.text.splitlines()[:20]:
            st.steps.append(f"[{p.elapsed_s:6.1f}s] {p.phase}: {line}")
        self._changed()

    def finished(self, message: ChaosFinished) -> None:
        st = self.state
        st.running = False
        st.report = message.report
        st.phase = "verdict"
        st.steps.append(f"verdict: {message.report.verdict}")
        self.app.log_line("INFO", "chaos", message.report.summary().splitlines()[0])
        if message.audit_error:
            self.app.log_line("WARNING", "audit", message.audit_error)
        severity = "information" if message.report.verdict == "held" else "warning"
        self.app.notify(
            sanitize(message.report.summary().splitlines()[0], max_len=200),
            title="Chaos experiment finished",
            severity=severity,  # type: ignore[arg-type]
            markup=False,
        )
        self._changed()

    def shutdown(self, timeout: float = 15.0) -> None:
        """Leaving the console: abort a running experiment and wait for its rollback."""
        if self.runner is not None and not self._finished.is_set():
            self.runner.abort("console closed", by="console")
            self._finished.wait(timeout)
        if self._faults is not None:
            self._faults.close()
            self._faults = None


def compose_raw(
    *,
    title: str,
    fault: str,
    targets: list[str],
    duration_s: float,
    params: Mapping[str, Any],
    min_healthy: float,
) -> dict[str, Any]:
    """An experiment document for one fault on explicit targets (the compose form's output;
    :func:`pipeconsole.chaos.experiment.parse_experiment` validates it like a file)."""
    n = max(1, len(targets))
    return {
        "version": 1,
        "title": title,
        "description": f"{fault} on {', '.join(targets)} for {duration_s:g} s (composed)",
        "tags": ["composed"],
        "duration_s": duration_s,
        "probe_interval_s": 1.0,
        "settle_s": 30.0,
        "warmup_s": 10.0,
        "blast_radius": {"max_devices": n, "max_stages": n},
        "steady_state_hypothesis": {
            "title": "fleet healthy",
            "probes": [
                {
                    "name": "fleet healthy",
                    "probe": "healthy_fraction",
                    "tolerance": [min_healthy, 1.0],
                }
            ],
        },
        "method": [
            {
                "type": "fault",
                "name": f"{fault} on {len(targets)} device(s)",
                "fault": fault,
                "targets": targets,
                "at_s": 0,
                "duration_s": duration_s,
                "params": dict(params),
            }
        ],
        "guardrails": [
            {
                "name": "fleet not collapsing",
                "probe": "healthy_fraction",
                "tolerance": [max(0.0, min_healthy - 0.25), 1.0],
                "consecutive": 2,
            }
        ],
        "rollbacks": [{"type": "end_faults"}],
    }
