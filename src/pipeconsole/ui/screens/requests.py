"""Requests: scheduled, in-flight and recent, at-risk first, with remaining-deadline bars;
outcome counts; and the DLQ with each entry's reason.

Rows are keyed by request id and updated in place while the order holds.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from pipeconsole.model.snapshot import DlqEntry, RequestRow, Snapshot
from pipeconsole.ui.records import REQUEST_FIELDS, request_record
from pipeconsole.ui.render import clock, count, deadline_bar, plain, state_style, state_text
from pipeconsole.ui.screens.base import ConsoleScreen
from pipeconsole.ui.widgets.panel import Panel

__all__ = ["RequestsScreen", "ordered_requests"]

REQ_COLUMNS = ("state", "deadline", "device", "request", "id", "att", "reason")
DLQ_COLUMNS = ("time", "where", "code", "reason", "request")


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
        plain(e.reason, max_len=200),
        plain(e.request_id[:8] or "—", max_len=8, style=Style(dim=True)),
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
    VIEW_TITLE = "Requests"
    AUTO_FOCUS = "#request-table"

    def __init__(self, *, initial_filter: str = "") -> None:
        super().__init__(initial_filter=initial_filter)
        self._order: tuple[str, ...] = ()
        self._dlq_order: tuple[tuple[str, int, int], ...] = ()

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
        table: DataTable[Text] = self.query_one("#request-table", DataTable)
        order = tuple(r.request_id for r in rows)
        with self.app.batch_update():
            if order != self._order:
                table.clear()
                for r in rows:
                    table.add_row(*_req_row(r), key=r.request_id)
                self._order = order
            else:
                for r in rows:
                    for col, cell in zip(REQ_COLUMNS, _req_row(r), strict=True):
                        if table.get_cell(r.request_id, col) != cell:
                            table.update_cell(r.request_id, col, cell)
            dlq = snapshot.dlq  # the filter's fields are the requests'; the DLQ is shown whole
            dlq_order = tuple((e.topic, e.partition, e.offset) for e in dlq)
            if dlq_order != self._dlq_order:
                dt: DataTable[Text] = self.query_one("#dlq-table", DataTable)
                dt.clear()
                for e in dlq:
                    dt.add_row(*_dlq_row(e), key=f"{e.topic}/{e.partition}@{e.offset}")
                self._dlq_order = dlq_order
