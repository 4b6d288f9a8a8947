"""The overview (default view): graph, incidents, bottlenecks, timeline.

Designed for the 3 a.m. question "what is wrong, where, what does it affect": the incidents
panel has focus and its top incident highlighted from the first frame, so ``enter`` opens
the most likely root cause (one keystroke from launch). ``g`` jumps into the graph; ``/``
filters the graph's devices (same fields as the devices view).
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from pipeconsole.model.snapshot import Snapshot
from pipeconsole.ui.keymap import bind
from pipeconsole.ui.records import DEVICE_CHOICES, DEVICE_FIELDS, device_record
from pipeconsole.ui.render import age, plain
from pipeconsole.ui.screens.base import ConsoleScreen
from pipeconsole.ui.widgets.incidents import IncidentList
from pipeconsole.ui.widgets.panel import Panel
from pipeconsole.ui.widgets.pipeline_graph import PipelineGraph
from pipeconsole.ui.widgets.timeline import Timeline

__all__ = ["OverviewScreen", "bottlenecks_text"]


def bottlenecks_text(s: Snapshot, limit: int = 3) -> Text:
    out = Text(end="")
    if not s.bottlenecks:
        pending = not s.graph.computed_ms and s.fleet.total > 0
        out.append("… reading the backlog" if pending else "✔ no queue is filling", Style(dim=True))
        return out
    for b in s.bottlenecks[:limit]:
        out.append("» ", Style(color="yellow", bold=True))
        out.append_text(plain(b.device_id, max_len=24, style=Style(bold=True)))
        full = f"full in {age(b.time_to_full_s)}" if b.time_to_full_s is not None else "full"
        out.append(f"  queue {b.queue_fill * 100:.0f}% +{b.fill_rate:.0f}/s, {full}\n")
    out.rstrip()
    return out


class OverviewScreen(ConsoleScreen):
    """Pipeline graph, incidents ranked by blast radius, bottlenecks and the event timeline."""

    FILTER_FIELDS = DEVICE_FIELDS
    FILTER_CHOICES = DEVICE_CHOICES
    VIEW_TITLE = "Overview"
    AUTO_FOCUS = "#incidents"
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("g", "focus_graph", "Graph", "overview.graph"),
        bind("i", "focus_incidents", "Incidents", "overview.incidents"),
    ]

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="ov-main"):
            yield PipelineGraph(id="graph")
            with Vertical(id="ov-side"):
                yield Static("Incidents (root-cause candidates)", classes="panel-title")
                yield IncidentList(id="incidents")
                yield Static("Bottlenecks", classes="panel-title")
                yield Panel(id="bottlenecks")
        yield Timeline(id="timeline")

    @property
    def graph(self) -> PipelineGraph:
        return self.query_one(PipelineGraph)

    @property
    def incidents(self) -> IncidentList:
        return self.query_one(IncidentList)

    def show(self, snapshot: Snapshot) -> None:
        devices = {d.device_id: d for d in snapshot.devices}
        visible: frozenset[str] | None = None
        if not self.filter.is_empty:
            visible = frozenset(
                d.device_id for d in snapshot.devices if self.filter.matches(device_record(d))
            )
        self.graph.set_graph(snapshot.graph, devices, visible)
        # No analysis yet while a backlog is read: say so instead of "no incidents".
        pending = snapshot.graph.computed_ms == 0 and snapshot.fleet.total > 0
        self.incidents.show(snapshot.incidents, pending=pending)
        self.query_one("#bottlenecks", Panel).show_text(bottlenecks_text(snapshot))
        self.query_one(Timeline).set_items(snapshot.timeline)

    def focus_main(self) -> None:
        self.graph.focus()

    def action_focus_graph(self) -> None:
        self.graph.focus()

    def action_focus_incidents(self) -> None:
        self.incidents.focus()

    def on_incident_list_incident_opened(self, event: IncidentList.IncidentOpened) -> None:
        self.console_app.open_device(event.device_id)

    def on_pipeline_graph_node_opened(self, event: PipelineGraph.NodeOpened) -> None:
        self.console_app.open_device(event.device_id)

    def on_pipeline_graph_stage_opened(self, event: PipelineGraph.StageOpened) -> None:
        self.graph.collapsed = False
        self.set_filter(f"stage={_quote(event.stage)}")

    def on_option_list_option_highlighted(self, event: IncidentList.OptionHighlighted) -> None:
        device = self.incidents.highlighted_device
        if device:
            self.graph.select(device)


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
