"""Log and audit: the event timeline, chaos experiments, operator audit records, and the
console's own log (librdkafka, workers, probes land here, never on the terminal).

Each list draws only its visible lines. ``/`` filters the active tab with that tab's fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import TabbedContent, TabPane

from pipeconsole.model.snapshot import AuditView, ChaosView, Snapshot
from pipeconsole.ui.keymap import bind
from pipeconsole.ui.records import (
    AUDIT_CHOICES,
    CHAOS_CHOICES,
    EVENT_CHOICES,
    EVENT_FIELDS,
    audit_record,
    chaos_record,
    event_record,
)
from pipeconsole.ui.render import clock, plain
from pipeconsole.ui.screens.base import ConsoleScreen
from pipeconsole.ui.widgets.lines import LineList
from pipeconsole.ui.widgets.timeline import Timeline

__all__ = ["LogLine", "LogScreen"]


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of the console's own log (raw text; rendered through ``plain``)."""

    time_ms: int
    level: str
    name: str
    text: str


_LEVEL_STYLE = {"ERROR": Style(color="red", bold=True), "WARNING": Style(color="yellow")}


def log_text(line: LogLine) -> Text:
    return Text.assemble(
        (clock(line.time_ms) + " ", Style(dim=True)),
        (f"{line.level:<7} ", _LEVEL_STYLE.get(line.level, Style(dim=True))),
        plain(line.name, max_len=24, style=Style(bold=True)),
        " ",
        plain(line.text, max_len=500),
        end="",
    )


def audit_text(a: AuditView) -> Text:
    ok = a.outcome.upper() in ("OK", "DONE", "ACCEPTED", "SUCCESS")
    return Text.assemble(
        (clock(a.time_ms) + " ", Style(dim=True)),
        plain(a.principal or a.os_user, max_len=24, style=Style(bold=True)),
        " ",
        plain(a.action, max_len=24, style=Style(color="cyan")),
        " ",
        plain(" ".join(a.targets), max_len=80),
        " → ",
        plain(a.outcome, max_len=16, style=Style(color="green" if ok else "red")),
        " ",
        plain(a.reason, max_len=120, style=Style(dim=True)),
        end="",
    )


def chaos_text(c: ChaosView) -> Text:
    return Text.assemble(
        (clock(c.time_ms) + " ", Style(dim=True)),
        "⚡ ",
        plain(c.name or c.experiment_id, max_len=32, style=Style(bold=True)),
        " ",
        plain(c.phase, max_len=16, style=Style(color="cyan")),
        " ",
        (
            "hypothesis held " if c.hypothesis_held else "hypothesis BROKEN ",
            Style(color="green") if c.hypothesis_held else Style(color="red", bold=True),
        ),
        plain(" ".join(c.targets), max_len=60),
        " ",
        plain(c.detail, max_len=160, style=Style(dim=True)),
        end="",
    )


TABS = ("timeline", "chaos", "audit", "console")


class LogScreen(ConsoleScreen):
    """Timeline, chaos, audit and the console's own log, in tabs."""

    FILTER_FIELDS = (*EVENT_FIELDS, "principal", "user", "action", "targets", "outcome",
                                    "reason", "profile", "id", "name", "phase", "detail",
                                    "held", "by", "level")  # fmt: skip
    FILTER_CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        **EVENT_CHOICES,
        **AUDIT_CHOICES,
        **CHAOS_CHOICES,
    }
    VIEW_TITLE = "Log and audit"
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("t", "tab('timeline')", "Timeline", "log.timeline"),
        bind("x", "tab('chaos')", "Chaos", "log.chaos"),
        bind("a", "tab('audit')", "Audit", "log.audit"),
        bind("o", "tab('console')", "Console log", "log.console"),
    ]

    def __init__(self, *, tab: str = "timeline", initial_filter: str = "") -> None:
        super().__init__(initial_filter=initial_filter)
        self.initial_tab = tab if tab in TABS else "timeline"

    def compose_body(self) -> ComposeResult:
        with TabbedContent(initial=self.initial_tab, id="log-tabs"):
            with TabPane("Timeline", id="timeline"):
                yield Timeline(id="log-timeline")
            with TabPane("Chaos", id="chaos"):
                yield LineList[ChaosView](
                    chaos_text, empty="(no chaos experiments)", id="log-chaos"
                )
            with TabPane("Audit", id="audit"):
                yield LineList[AuditView](audit_text, empty="(no operator actions)", id="log-audit")
            with TabPane("Console log", id="console"):
                yield LineList[LogLine](
                    log_text, empty="(the console has logged nothing)", id="log-console"
                )

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self.focus_main()

    def focus_main(self) -> None:
        active = self.query_one(TabbedContent).active
        self.query_one(f"#log-{active}").focus()

    def show(self, snapshot: Snapshot) -> None:
        f = self.filter
        if f.is_empty:
            self.query_one("#log-timeline", Timeline).set_items(snapshot.timeline)
            self.query_one("#log-chaos", LineList).set_items(snapshot.chaos)
            self.query_one("#log-audit", LineList).set_items(snapshot.audit)
        else:
            self.query_one("#log-timeline", Timeline).set_items(
                [e for e in snapshot.timeline if f.matches(event_record(e))]
            )
            self.query_one("#log-chaos", LineList).set_items(
                [c for c in snapshot.chaos if f.matches(chaos_record(c))]
            )
            self.query_one("#log-audit", LineList).set_items(
                [a for a in snapshot.audit if f.matches(audit_record(a))]
            )
        self.show_log()

    def show_log(self) -> None:
        if not self.drawable:
            return  # on_mount catches up
        lines = self.console_app.log_lines
        f = self.filter
        items = list(reversed(lines))
        if not f.is_empty:
            items = [
                x for x in items if f.matches({"level": x.level, "name": x.name, "text": x.text})
            ]
        self.query_one("#log-console", LineList).set_items(items)
