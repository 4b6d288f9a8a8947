"""The Chaos view (``6``, ``:chaos``): pick or compose an experiment, see its plan and blast
radius, run it with a typed confirmation, watch the steady state live, abort with ``x``, read
the report. Experiments other consoles run (chaos-experiment-v1) are listed beside it.

The view draws :class:`~pipeconsole.ui.chaos.ChaosState` (owned by the app's
:class:`~pipeconsole.ui.chaos.ChaosController`, so a run survives switching views) and the
snapshot; every key forwards to the controller.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from pipeconsole.chaos.experiment import Experiment
from pipeconsole.chaos.probes import undecodable_of
from pipeconsole.model.snapshot import ChaosView, Snapshot
from pipeconsole.ui.blast import blast_of, blast_text
from pipeconsole.ui.chaos import ChaosController, ChaosState, experiment_files
from pipeconsole.ui.keymap import bind
from pipeconsole.ui.records import CHAOS_CHOICES, CHAOS_FIELDS, chaos_record
from pipeconsole.ui.render import age, plain
from pipeconsole.ui.screens.base import ConsoleScreen
from pipeconsole.ui.screens.chaos_compose import ComposeExperimentScreen
from pipeconsole.ui.screens.log import chaos_text
from pipeconsole.ui.widgets.lines import LineList
from pipeconsole.ui.widgets.panel import Panel

__all__ = ["ChaosScreen", "live_text", "plan_text", "report_text"]

_OK = Style(color="green")
_BAD = Style(color="red", bold=True)
_TITLE = Style(bold=True, underline=True)


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3g}"


def plan_text(st: ChaosState, snapshot: Snapshot | None) -> Text:
    out = Text(end="")
    exp = st.experiment
    if exp is None and not st.problems:
        out.append("No experiment chosen.\n", Style(bold=True))
        out.append(
            "Pick a file on the left (enter), type a path, or press c to compose one.",
            Style(dim=True),
        )
        return out
    if st.problems:
        out.append("Cannot use ", _BAD)
        out.append_text(plain(st.source, max_len=120, style=_BAD))
        for p in st.problems[:20]:
            out.append("\n  ✖ ", _BAD)
            out.append_text(plain(p, max_len=300))
        return out
    assert exp is not None
    out.append_text(plain(exp.title, max_len=80, style=Style(bold=True)))
    out.append("  ")
    out.append_text(plain(st.source, max_len=80, style=Style(dim=True)))
    if exp.description:
        out.append("\n")
        out.append_text(plain(exp.description, max_len=300, style=Style(dim=True)))
    out.append(
        f"\nmethod {exp.duration_s:g} s · probe every {exp.probe_interval_s:g} s · "
        f"settle {exp.settle_s:g} s · limit {exp.blast_radius.max_devices} device(s), "
        f"{exp.blast_radius.max_stages} stage(s), {exp.blast_radius.max_fraction:g} of the fleet"
    )
    out.append_text(_method_text(exp))
    plan = st.plan
    if plan is not None:
        out.append("\n")
        out.append_text(blast_text(blast_of(snapshot, plan.targets)))
        if plan.refusal:
            out.append("\nREFUSED: ", _BAD)
            out.append_text(plain(plan.refusal, max_len=400, style=_BAD))
        else:
            out.append("\nr runs it (typed confirmation) · x aborts a run", Style(dim=True))
    return out


def _method_text(exp: Experiment) -> Text:
    out = Text(end="")
    for a in exp.method:
        sel = ", ".join(a.select.targets) or f"{a.select.count or 'all'} of stage {a.select.stage}"
        what = getattr(a, "fault", "") or f"protocol x{getattr(a, 'count', 0)}"
        out.append("\n  ▸ ")
        out.append_text(plain(f"{a.name}: {what} on {sel} at {a.at_s:g} s", max_len=200))
    for p in exp.hypothesis:
        out.append("\n  hypothesis ")
        out.append_text(plain(f"{p.name}: {p.probe} in [{p.low:g}, {p.high:g}]", max_len=200))
    for g in exp.guardrails:
        out.append("\n  guardrail  ", Style(color="yellow"))
        out.append_text(
            plain(f"{g.name}: {g.probe} in [{g.low:g}, {g.high:g}] x{g.consecutive}", max_len=200)
        )
    return out


def live_text(st: ChaosState, snapshot: Snapshot | None, request_topic: str) -> Text:
    out = Text(end="")
    if st.running:
        out.append("● RUNNING " if not st.aborting else "● ABORTING ", _BAD)
        out.append(f"{st.experiment_id}  phase {st.phase or 'starting'}  t={st.elapsed_s:.1f}s")
        out.append("   x: abort and roll back", Style(bold=True, color="yellow"))
    elif st.report is not None:
        out.append(f"finished: {st.report.verdict}", Style(bold=True))
    else:
        out.append("Steady state (live)", _TITLE)
    if snapshot is not None:
        f = snapshot.fleet
        frac = f.healthy / f.total if f.total else 0.0
        alive = sum(1 for a in snapshot.actors if not a.stale)
        lag = f.max_lag_seconds
        out.append(
            f"\n  fleet healthy {f.healthy}/{f.total} ({frac:.0%})  degraded {f.degraded}  "
            f"failing {f.failing}  unknown {f.unknown}"
        )
        out.append(
            f"\n  DLQ {snapshot.dlq_total}  undecodable {undecodable_of(snapshot, request_topic)}"
            f"  lag {age(lag)}  actors alive {alive}"
        )
    for r in sorted(st.probes.values(), key=lambda r: (r.phase, r.name)):
        out.append("\n  ")
        out.append("✔ " if r.ok else "✖ ", _OK if r.ok else _BAD)
        out.append_text(plain(f"{r.phase:<9} {r.name}", max_len=60))
        out.append(
            f"  {r.probe} = {_fmt(r.value)} in [{r.tolerance[0]:g}, {r.tolerance[1]:g}]",
            Style() if r.ok else _BAD,
        )
    steps = list(st.steps)[-8:]
    if steps:
        out.append("\n")
    for s in steps:
        out.append("\n  ")
        out.append_text(plain(s, max_len=200, style=Style(dim=True)))
    return out


def report_text(st: ChaosState) -> Text:
    rep = st.report
    if rep is None:
        return Text("(the report appears here when the experiment ends)", Style(dim=True), end="")
    out = Text("Report", _TITLE, end="")
    style = _OK if rep.verdict == "held" else _BAD
    for n, line in enumerate(rep.summary().splitlines()):
        out.append("\n")
        out.append_text(plain(line, max_len=300, style=style if n == 0 else Style()))
    for fr in rep.faults[:20]:
        out.append("\n  ")
        out.append_text(
            plain(f"{fr.fault} on {fr.device_id}: ended by {fr.ended_by or '—'}", max_len=200)
        )
        if fr.error:
            out.append_text(plain(f" ({fr.error})", max_len=200, style=_BAD))
    return out


class ChaosScreen(ConsoleScreen):
    """Chaos experiments: plan, confirm, run, watch, abort, report."""

    FILTER_FIELDS = CHAOS_FIELDS
    FILTER_CHOICES = CHAOS_CHOICES
    VIEW_TITLE = "Chaos"
    AUTO_FOCUS = "#chaos-files"
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("r", "run", "Run…", "chaos.run"),
        bind("x", "abort", "Abort", "chaos.abort"),
        bind("c", "compose", "Compose", "chaos.compose"),
        bind("p", "replan", "Re-plan", "chaos.plan"),
    ]

    def __init__(self, *, initial_filter: str = "") -> None:
        super().__init__(initial_filter=initial_filter)
        self._files: list[Path] = []

    @property
    def controller(self) -> ChaosController:
        return self.console_app.chaos

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="chaos-main"):
            with Vertical(id="chaos-side"):
                yield Panel("Experiments (enter: plan)", classes="panel-title")
                yield OptionList(id="chaos-files")
                yield Input(placeholder="or a path to a .toml (enter)", id="chaos-path")
                yield Panel("Seen on the cluster", classes="panel-title")
                yield LineList[ChaosView](
                    chaos_text, empty="(no experiment events)", id="chaos-others"
                )
            with VerticalScroll(id="chaos-body"):
                yield Panel(id="chaos-plan")
                yield Panel(id="chaos-live")
                yield Panel(id="chaos-report")

    def on_mount(self) -> None:
        self.refresh_files()
        super().on_mount()
        self.show_state()

    def refresh_files(self) -> None:
        self._files = experiment_files(examples=self.console_app.example_experiments)
        ol = self.query_one("#chaos-files", OptionList)
        ol.clear_options()
        ol.add_options([Option(Text(p.name), id=str(n)) for n, p in enumerate(self._files)])
        if not self._files:
            ol.add_option(Option(Text("(no experiments/*.toml here)", Style(dim=True)), id="none"))
        ol.highlighted = 0

    def focus_main(self) -> None:
        self.query_one("#chaos-files", OptionList).focus()

    def show(self, snapshot: Snapshot) -> None:
        items = [c for c in snapshot.chaos if self.filter.matches(chaos_record(c))]
        self.query_one("#chaos-others", LineList).set_items(items)
        self.show_state()

    def show_state(self) -> None:
        """Redraw from the controller's state and the latest snapshot."""
        if not self.drawable:
            return
        st = self.controller.state
        snapshot = self.console_app.snapshot
        topic = self.console_app.profile.topics.request
        self.query_one("#chaos-plan", Panel).show_text(plan_text(st, snapshot))
        self.query_one("#chaos-live", Panel).show_text(live_text(st, snapshot, topic))
        self.query_one("#chaos-report", Panel).show_text(report_text(st))
        self.set_class(st.running, "-running")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        oid = event.option.id
        if oid is None or not oid.isdigit():
            return
        self.controller.load(self._files[int(oid)])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "chaos-path":
            return
        event.stop()
        if event.value.strip():
            self.controller.load(Path(event.value.strip()))
        self.focus_main()

    def action_run(self) -> None:
        self.controller.run()

    def action_abort(self) -> None:
        self.controller.abort()

    def action_replan(self) -> None:
        self.controller.replan()

    def action_compose(self) -> None:
        plan = self.controller.state.plan
        targets = ", ".join(plan.targets) if plan is not None else ""

        def done(exp: Experiment | None) -> None:
            if exp is not None:
                self.controller.use(exp, "composed")

        self.app.push_screen(ComposeExperimentScreen(targets=targets), done)
