"""Requests: scheduled, in-flight and recent, at-risk first, with remaining-deadline bars;
outcome counts; and the DLQ with each entry's reason.

Rows are keyed by request id and updated in place while the order holds. Operator actions
(:mod:`pipeconsole.ui.actions`): ``n`` new request (on the highlighted row's device), ``e`` edit
and resend, ``C`` cancel, ``R`` replay (the marked rows, else every row the ``/`` filter shows
when one is set, else the highlighted one), ``space`` mark. Cancel and replay ask for a typed
confirmation; nothing is bound to a common destructive key. ``enter`` opens the highlighted
request's every field, its reason in full, or the highlighted dead letter's with its headers
(:mod:`~pipeconsole.ui.screens.detail`).
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from pipeconsole.model.snapshot import DlqEntry, RequestRow, Snapshot
from pipeconsole.ui.keymap import bind
from pipeconsole.ui.records import REQUEST_CHOICES, REQUEST_FIELDS, request_record
from pipeconsole.ui.render import clock, count, deadline_bar, plain, state_style, state_text
from pipeconsole.ui.screens.base import ConsoleScreen
from pipeconsole.ui.screens.detail import (
    DetailScreen,
    dlq_detail_text,
    live_request_detail,
    request_detail_text,
)
from pipeconsole.ui.widgets.panel import Panel

__all__ = ["RequestsScreen", "ordered_requests"]

REQ_COLUMNS = ("state", "deadline", "device", "request", "id", "att", "reason")
DLQ_COLUMNS = ("time", "where", "code", "request", "reason")
"""The reason last, as in the requests table: it is the long one (an actor's reason runs to 150
characters), and the request id before it stays on screen."""


def ordered_requests(s: Snapshot) -> list[RequestRow]:
    """At-risk (least budget first), then every other request, most recently updated first."""
    at_risk = list(s.at_risk)
    seen = {r.request_id for r in at_risk}
    return at_risk + [r for r in s.requests if r.request_id not in seen]


def _budget(r: RequestRow) -> int:
    if r.deadline_ms and r.scheduled_for_ms:
        return max(1, r.deadline_ms - r.scheduled_for_ms)
    return max(30_000, r.remaining_ms or 0)


def _req_row(r: RequestRow) -> tuple[Text, ...]:
    return (
        state_text(r.state),
        deadline_bar(r.remaining_ms, _budget(r), width=8),
        plain(r.device_id, max_len=24),
        plain(f"{r.method} {r.uri}", max_len=48),
        plain(r.request_id[:8], max_len=8, style=Style(dim=True)),
        Text(str(r.attempts)),
        plain(r.reason, max_len=120, style=Style(dim=True)),
    )


def _dlq_row(e: DlqEntry) -> tuple[Text, ...]:
    return (
        Text(clock(e.time_ms), Style(dim=True)),
        plain(f"{e.topic}/{e.partition}@{e.offset}", max_len=60),
        plain(e.code or "—", max_len=24, style=Style(color="red")),
        plain(e.request_id[:8] or "—", max_len=8, style=Style(dim=True)),
        plain(e.reason, max_len=200),
    )


def outcomes_text(s: Snapshot) -> Text:
    out = Text(f"{count(s.requests_total)} requests  ", Style(bold=True), end="")
    for name, n in s.outcomes:
        out.append(f"{name} {count(n)}  ", state_style(name))
    out.append(
        f"at risk {len(s.at_risk)}  DLQ {count(s.dlq_total)}",
        Style(color="red") if s.dlq_total else Style(),
    )
    return out


class RequestsScreen(ConsoleScreen):
    """Request lifecycles with deadline budgets, and the dead-letter queue."""

    FILTER_FIELDS = REQUEST_FIELDS
    FILTER_CHOICES = REQUEST_CHOICES
    VIEW_TITLE = "Requests"
    AUTO_FOCUS = "#request-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("n", "new", "New", "requests.new", tooltip="Schedule a new request"),
        bind("e", "resend", "Resend", "requests.resend", tooltip="Edit and resend this request"),
        bind(
            "C",
            "cancel_request",
            "Cancel",
            "requests.cancel",
            key_display="C",
            tooltip="Cancel this scheduled request (typed confirmation)",
        ),
        bind(
            "R",
            "replay",
            "Replay",
            "requests.replay",
            key_display="R",
            tooltip="Replay the marked / filtered / highlighted requests (dry run first)",
        ),
        bind("space", "mark", "Mark", "requests.mark"),
        bind("enter", "detail", "Detail", "requests.detail", show=False),
    ]

    def __init__(self, *, initial_filter: str = "") -> None:
        super().__init__(initial_filter=initial_filter)
        self._order: tuple[str, ...] = ()
        self.marked: set[str] = set()
        """Request ids marked with ``space`` (what ``R`` replays)."""
        self.shown: tuple[RequestRow, ...] = ()
        """The rows on screen, in order (after the filter)."""
        self._dlq_order: tuple[tuple[str, int, int], ...] = ()
        self.dlq_shown: tuple[DlqEntry, ...] = ()
        """The dead letters on screen, in order."""

    def compose_body(self) -> ComposeResult:
        yield Panel(id="outcomes")
        with Vertical(id="req-main"):
            yield DataTable(id="request-table", cursor_type="row", zebra_stripes=True)
            yield Static("Dead-letter queue (newest first)", classes="panel-title")
            yield DataTable(id="dlq-table", cursor_type="row")

    def on_mount(self) -> None:
        req = self.query_one("#request-table", DataTable)
        for c in REQ_COLUMNS:
            req.add_column(c, key=c)
        dlq = self.query_one("#dlq-table", DataTable)
        for c in DLQ_COLUMNS:
            dlq.add_column(c, key=c)
        super().on_mount()

    def focus_main(self) -> None:
        self.query_one("#request-table", DataTable).focus()

    def show(self, snapshot: Snapshot) -> None:
        self.query_one("#outcomes", Panel).show_text(outcomes_text(snapshot))
        rows = [r for r in ordered_requests(snapshot) if self.filter.matches(request_record(r))]
        cursor = self.selected  # before the rows change under the cursor
        self.shown = tuple(rows)
        table: DataTable[Text] = self.query_one("#request-table", DataTable)
        order = tuple(r.request_id for r in rows)
        with self.app.batch_update():
            if order != self._order:
                table.clear()
                for r in rows:
                    label = Text("●" if r.request_id in self.marked else " ")
                    table.add_row(*_req_row(r), key=r.request_id, label=label)
                table.show_row_labels = bool(self.marked)
                if cursor is not None and cursor.request_id in order:
                    table.move_cursor(row=order.index(cursor.request_id), animate=False)
                self._order = order
            else:
                for r in rows:
                    for col, cell in zip(REQ_COLUMNS, _req_row(r), strict=True):
                        if table.get_cell(r.request_id, col) != cell:
                            table.update_cell(r.request_id, col, cell)
            dlq = snapshot.dlq  # the filter's fields are the requests'; the DLQ is shown whole
            self.dlq_shown = dlq
            dlq_order = tuple((e.topic, e.partition, e.offset) for e in dlq)
            if dlq_order != self._dlq_order:
                dt: DataTable[Text] = self.query_one("#dlq-table", DataTable)
                dt.clear()
                for e in dlq:
                    dt.add_row(*_dlq_row(e), key=f"{e.topic}/{e.partition}@{e.offset}")
                self._dlq_order = dlq_order

    # ------------------------------------------------------------------ operator actions

    @property
    def selected(self) -> RequestRow | None:
        """The highlighted request, if any."""
        table: DataTable[Text] = self.query_one("#request-table", DataTable)
        if not self.shown or table.row_count == 0:
            return None
        row = table.cursor_row
        return self.shown[row] if 0 <= row < len(self.shown) else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "dlq-table":
            self._dlq_detail(event.cursor_row)
        else:
            self.action_detail()

    def action_detail(self) -> None:
        """Every field of the highlighted request (or dead letter, when the DLQ table has the
        focus), its reason in full."""
        dlq: DataTable[Text] = self.query_one("#dlq-table", DataTable)
        if dlq.has_focus:
            self._dlq_detail(dlq.cursor_row)
            return
        row = self._need_selection()
        if row is not None:
            self.app.push_screen(
                DetailScreen(
                    request_detail_text(row, self._as_of(), " · live"),
                    live=live_request_detail(row.request_id),
                )
            )

    def _dlq_detail(self, index: int) -> None:
        if 0 <= index < len(self.dlq_shown):
            entry = self.dlq_shown[index]
            self.app.push_screen(DetailScreen(dlq_detail_text(entry, self._as_of())))

    def _as_of(self) -> int:
        snapshot = self.console_app.snapshot
        return snapshot.time_ms if snapshot is not None else 0

    def _need_selection(self) -> RequestRow | None:
        row = self.selected
        if row is None:
            self.notify("no request selected", severity="warning", markup=False)
        return row

    def action_new(self) -> None:
        row = self.selected
        self.console_app.actions.new_request(row.device_id if row else "")

    def action_resend(self) -> None:
        row = self._need_selection()
        if row is not None:
            self.console_app.actions.edit_and_resend(row)

    def action_cancel_request(self) -> None:
        row = self._need_selection()
        if row is not None:
            self.console_app.actions.cancel(row)

    def action_replay(self) -> None:
        if self.marked:
            ids = [r.request_id for r in self.shown if r.request_id in self.marked]
            ids += sorted(self.marked - set(ids))
        elif not self.filter.is_empty:
            ids = [r.request_id for r in self.shown]
        else:
            row = self._need_selection()
            ids = [row.request_id] if row is not None else []
        if ids:
            self.console_app.actions.replay(ids)

    def action_mark(self) -> None:
        row = self._need_selection()
        if row is not None:
            self.marked ^= {row.request_id}
            self._order = ()
            snapshot = self.console_app.snapshot
            if snapshot is not None:
                self.show(snapshot)
