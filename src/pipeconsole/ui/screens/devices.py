"""Devices: a sortable, filterable table and the detail pane (checks, metrics, probe now).

Rows are keyed by device id and updated in place (only changed cells), so the cursor stays
put while telemetry streams. ``s`` cycles the sort column, ``S`` reverses it; ``p`` probes the
highlighted device directly over HTTP (an async worker with a timeout and a body cap) and
shows the answer beside what the telemetry says; ``enter`` moves focus into the detail pane;
``n`` opens the schedule form on the highlighted device (:mod:`pipeconsole.ui.actions`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable

from pipeconsole.model.snapshot import DeviceView, Health, Snapshot
from pipeconsole.ui.keymap import bind
from pipeconsole.ui.probe import ProbeResult, probe_health
from pipeconsole.ui.records import DEVICE_CHOICES, DEVICE_FIELDS, device_record
from pipeconsole.ui.render import age, count, fill_style, health_text, plain
from pipeconsole.ui.screens.base import ConsoleScreen
from pipeconsole.ui.widgets.device_detail import DeviceDetail

__all__ = ["SORTS", "DevicesScreen"]

_HEALTH_RANK = {Health.FAILING: 0, Health.DEGRADED: 1, Health.UNKNOWN: 2, Health.HEALTHY: 3}

SORTS: tuple[tuple[str, Callable[[DeviceView], Any]], ...] = (
    ("health", lambda d: (_HEALTH_RANK[d.health], d.stage, d.device_id)),
    ("id", lambda d: d.device_id),
    ("stage", lambda d: (d.stage, d.device_id)),
    ("queue", lambda d: (-d.queue_fill, d.device_id)),
    ("p99", lambda d: (-d.latency_p99_ms, d.device_id)),
    ("misses", lambda d: (-d.deadline_misses, d.device_id)),
    ("seen", lambda d: (-(d.last_seen_age_s or 1e12), d.device_id)),
)
"""Sort orders ``s`` cycles through: name and key function (worst first where it applies)."""

COLUMNS = ("health", "device", "stage", "state", "queue", "in", "out", "p99", "miss", "rst", "seen")


def _row(d: DeviceView) -> tuple[Text, ...]:
    fill = Text(
        f"{d.queue_fill * 100:3.0f}%" if d.queue_capacity else "  —", fill_style(d.queue_fill)
    )
    return (
        health_text(d.health, stale=d.stale),
        plain(d.device_id, max_len=24),
        plain(d.stage, max_len=20),
        Text(d.state.value),
        fill,
        Text(count(d.rate_in)),
        Text(count(d.rate_out)),
        Text(f"{d.latency_p99_ms:.0f}ms"),
        Text(str(d.deadline_misses), "red" if d.deadline_misses else ""),
        Text(str(d.restarts), "yellow" if d.restarts else ""),
        Text(age(d.last_seen_age_s)),
    )


class DevicesScreen(ConsoleScreen):
    """The fleet as a table, with the highlighted device in depth beside it."""

    FILTER_FIELDS = DEVICE_FIELDS
    FILTER_CHOICES = DEVICE_CHOICES
    VIEW_TITLE = "Devices"
    AUTO_FOCUS = "#device-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("p", "probe", "Probe now", "devices.probe"),
        bind("s", "sort", "Sort", "devices.sort"),
        bind("S", "reverse", "Reverse", "devices.reverse", show=False),
        bind("space", "mark", "Mark", "devices.mark"),
        bind("n", "new_request", "New req", "devices.new_request", tooltip="Schedule a request"),
        bind("enter", "detail", "Detail", "devices.detail", show=False),
    ]

    def __init__(self, *, device_id: str | None = None, initial_filter: str = "") -> None:
        super().__init__(initial_filter=initial_filter)
        self.device_id = device_id
        """The device in the detail pane (follows the table cursor)."""
        self.sort_index = 0
        self.reverse = False
        self.marked: set[str] = set()
        """Devices marked with ``space`` (for bulk actions by other parts)."""
        self._order: tuple[str, ...] = ()

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="dev-main"):
            table: DataTable[Text] = DataTable(
                id="device-table", cursor_type="row", zebra_stripes=True
            )
            yield table
            yield DeviceDetail(id="device-detail")

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#device-table", DataTable)

    @property
    def detail(self) -> DeviceDetail:
        return self.query_one(DeviceDetail)

    def on_mount(self) -> None:
        for c in COLUMNS:
            self.table.add_column(c, key=c)
        super().on_mount()
        if self.device_id:
            self.detail.focus()

    def show(self, snapshot: Snapshot) -> None:
        name, key = SORTS[self.sort_index]
        rows = [d for d in snapshot.devices if self.filter.matches(device_record(d))]
        rows.sort(key=key, reverse=self.reverse)
        order = tuple(d.device_id for d in rows)
        table = self.table
        with self.app.batch_update():
            if order != self._order:
                self._rebuild(rows)
            else:
                for d in rows:
                    new = _row(d)
                    for col, cell in zip(COLUMNS, new, strict=True):
                        if table.get_cell(d.device_id, col) != cell:
                            table.update_cell(d.device_id, col, cell)
            self._order = order
            arrow = " ↑" if self.reverse else ""
            table.border_title = f"{len(rows)} of {len(snapshot.devices)} · sort {name}{arrow}"
            if self.device_id is None and rows:
                self.device_id = rows[0].device_id
            self.detail.show(snapshot, self.device_id)

    def _rebuild(self, rows: list[DeviceView]) -> None:
        table = self.table
        table.clear()
        for d in rows:
            label = Text("●" if d.device_id in self.marked else " ")
            table.add_row(*_row(d), key=d.device_id, label=label)
        table.show_row_labels = bool(self.marked)
        if self.device_id is not None and self.device_id in {d.device_id for d in rows}:
            table.move_cursor(row=table.get_row_index(self.device_id), animate=False)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value and event.row_key.value != self.device_id:
            self.device_id = event.row_key.value
            self.detail.show(self.console_app.snapshot, self.device_id)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.detail.focus()

    def focus_main(self) -> None:
        self.table.focus()

    def action_detail(self) -> None:
        self.detail.focus()

    def action_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self._order = ()
        self.catch_up_now()

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self._order = ()
        self.catch_up_now()

    def action_mark(self) -> None:
        if self.device_id:
            self.marked ^= {self.device_id}
            self._order = ()
            self.catch_up_now()

    def catch_up_now(self) -> None:
        snapshot = self.console_app.snapshot
        if snapshot is not None:
            self.show(snapshot)

    def action_new_request(self) -> None:
        """Schedule a request on the highlighted device (the form; refused when read-only)."""
        self.console_app.actions.new_request(self.device_id or "")

    def action_probe(self) -> None:
        snapshot = self.console_app.snapshot
        d = snapshot.device(self.device_id) if snapshot and self.device_id else None
        if d is None:
            self.notify("no device selected", severity="warning")
            return
        self.detail.show_probe(None, True, d)
        self.run_probe(d)

    @work(exclusive=True, group="probe", exit_on_error=False, description="Probing a device")
    async def run_probe(self, device: DeviceView) -> ProbeResult:
        result = await probe_health(self.console_app.http, device.base_url)
        if self.device_id == device.device_id:
            snapshot = self.console_app.snapshot
            now = snapshot.device(device.device_id) if snapshot else device
            self.detail.show_probe(result, False, now)
        self.console_app.log_line(
            "INFO", "probe", f"{device.device_id}: {'ok' if result.ok else result.error}"
        )
        return result
