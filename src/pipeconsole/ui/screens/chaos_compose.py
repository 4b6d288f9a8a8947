"""Compose a one-fault chaos experiment: fault, targets, duration (and the hypothesis bound).

The form's values become an experiment document (:func:`pipeconsole.ui.chaos.compose_raw`)
that :func:`pipeconsole.chaos.experiment.parse_experiment` validates exactly like a file, so a
composed experiment has the same blast-radius limit, steady-state hypothesis, guardrail and
rollback as a shipped one. Problems are listed by field; only a valid experiment dismisses.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select, Static

from pipeconsole.chaos.experiment import Experiment, ExperimentError, parse_experiment
from pipeconsole.chaos.faults import FAULTS
from pipeconsole.ui.keymap import bind
from pipeconsole.ui.render import plain

__all__ = ["ComposeExperimentScreen", "parse_params"]


def parse_params(text: str) -> tuple[dict[str, Any], list[str]]:
    """``mean_ms=200, jitter_ms=50`` -> numbers where they parse; problems listed."""
    out: dict[str, Any] = {}
    problems: list[str] = []
    for part in text.split(","):
        if not part.strip():
            continue
        k, sep, v = part.partition("=")
        if not sep or not k.strip():
            problems.append(f"params: expected key=value, got {part.strip()[:40]!r}")
            continue
        try:
            out[k.strip()] = float(v) if "." in v else int(v)
        except ValueError:
            out[k.strip()] = v.strip()
    return out, problems


class ComposeExperimentScreen(ModalScreen[Experiment | None]):
    """Dismisses with a validated :class:`Experiment`, or None on ``esc``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("ctrl+s", "plan", "Plan it", "compose.plan"),
        bind("escape", "cancel", "Cancel", "compose.cancel", key_display="esc"),
    ]

    def __init__(self, *, targets: str = "") -> None:
        super().__init__()
        self.initial_targets = targets
        self.problems: list[str] = []

    def compose(self) -> ComposeResult:
        rows: list[tuple[str, str, Input | Select[str]]] = [
            (
                "Fault",
                "",
                Select([(f, f) for f in FAULTS], allow_blank=False, id="c-fault", compact=True),
            ),
            (
                "Targets",
                "device ids, comma-separated",
                Input(
                    self.initial_targets, placeholder="transcode-03", id="c-targets", compact=True
                ),
            ),
            ("Duration (s)", "the fault's lease", Input("10", id="c-duration", compact=True)),
            (
                "Params",
                "latency: mean_ms, jitter_ms · error_rate: rate, status · flap: period_s",
                Input("", placeholder="mean_ms=300, jitter_ms=50", id="c-params", compact=True),
            ),
            (
                "Min healthy",
                "steady-state hypothesis: healthy fraction of the fleet at least this",
                Input("0.5", id="c-healthy", compact=True),
            ),
            ("Title", "", Input("", placeholder="(generated)", id="c-title", compact=True)),
        ]
        with Vertical(id="compose-box"):
            yield Static(Text("Compose a chaos experiment", Style(bold=True)), id="compose-title")
            for label, help_, widget in rows:
                with Horizontal(classes="form-row"):
                    yield Static(label, classes="form-label")
                    yield widget
                if help_:
                    yield Static(Text(help_, Style(dim=True)), classes="form-help")
            yield Static("", id="compose-problems")
            with Horizontal(id="compose-buttons"):
                yield Button("Plan (ctrl+s)", variant="primary", id="compose-plan")
                yield Button("Cancel (esc)", id="compose-cancel")

    def on_mount(self) -> None:
        self.query_one("#c-targets", Input).focus()

    def build(self) -> Experiment | None:
        """The experiment from the form, or None with :attr:`problems` shown."""
        from pipeconsole.ui.chaos import compose_raw

        problems: list[str] = []
        fault = self.query_one("#c-fault", Select).value
        targets = [
            t.strip() for t in self.query_one("#c-targets", Input).value.split(",") if t.strip()
        ]
        if not targets:
            problems.append("targets: give at least one device id")
        duration = healthy = 0.0
        try:
            duration = float(self.query_one("#c-duration", Input).value)
        except ValueError:
            problems.append("duration: a number of seconds")
        try:
            healthy = float(self.query_one("#c-healthy", Input).value)
            if not 0.0 <= healthy <= 1.0:
                problems.append("min healthy: a fraction from 0 to 1")
        except ValueError:
            problems.append("min healthy: a fraction from 0 to 1")
        params, more = parse_params(self.query_one("#c-params", Input).value)
        problems += more
        title = self.query_one("#c-title", Input).value.strip() or (
            f"{fault} on {', '.join(targets)[:60]}"
        )
        exp: Experiment | None = None
        if not problems:
            raw = compose_raw(
                title=title,
                fault=str(fault),
                targets=targets,
                duration_s=duration,
                params=params,
                min_healthy=healthy,
            )
            try:
                exp = parse_experiment(raw, "composed")
            except ExperimentError as exc:
                problems += exc.problems
        self.problems = problems
        text = Text(end="")
        for n, p in enumerate(problems):
            if n:
                text.append("\n")
            text.append("✖ ", Style(color="red", bold=True))
            text.append_text(plain(p, max_len=300, style=Style(color="red")))
        self.query_one("#compose-problems", Static).update(text)
        return exp

    def action_plan(self) -> None:
        exp = self.build()
        if exp is not None:
            self.dismiss(exp)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_plan()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "compose-plan":
            self.action_plan()
        else:
            self.action_cancel()
