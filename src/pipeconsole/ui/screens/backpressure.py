"""Back-pressure: consumer groups × partitions with lag (messages and seconds), drain rate and
time to drain; the bottlenecks; the device actors and their paused partitions.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from pipeconsole.model.snapshot import ActorView, LagRow, Snapshot
from pipeconsole.ui.records import LAG_FIELDS, lag_record
from pipeconsole.ui.render import age, bar, count, fill_style, plain, rate
from pipeconsole.ui.screens.base import ConsoleScreen
from pipeconsole.ui.screens.overview import bottlenecks_text
from pipeconsole.ui.widgets.panel import Panel

__all__ = ["BackpressureScreen"]

LAG_COLUMNS = ("group", "topic", "p", "lag", "behind", "drain", "drained in")
ACTOR_COLUMNS = ("actor", "host", "devices", "in-flight", "paused", "retries", "sched", "dlq")


def _lag_row(r: LagRow, slo_s: float) -> tuple[Text, ...]:
    behind = r.lag_seconds
    style = fill_style(min(1.0, (behind or 0.0) / slo_s)) if slo_s > 0 else Style()
    if r.lag <= 0:
        drain = "—"
    elif r.drain_rate is None:
        drain = "?"  # one poll so far: "stuck" would be a false alarm
    elif r.drain_rate > 0:
        drain = age(r.lag / r.drain_rate)
    else:
        drain = "stuck"
    return (
        plain(r.group, max_len=32),
        plain(r.topic, max_len=32),
        Text(str(r.partition)),
        Text(count(r.lag), style if r.lag else Style(dim=True)),
        Text(age(behind), style),
        Text(rate(r.drain_rate)) if r.drain_rate is not None else Text("?", Style(dim=True)),
        Text(drain, Style(color="red", bold=True) if drain == "stuck" else Style()),
    )


def _actor_row(a: ActorView) -> tuple[Text, ...]:
    paused = [f"{p.topic}/{p.partition}" for p in a.partitions if p.paused]
    limit = a.in_flight_limit or 1
    return (
        plain(a.actor_id + (" (stale)" if a.stale else ""), max_len=32),
        plain(a.host, max_len=24),
        Text(str(len(a.devices))),
        Text(
            f"{bar(a.in_flight / limit, 6)} {a.in_flight}/{a.in_flight_limit}",
            fill_style(a.in_flight / limit),
        ),
        plain(
            ", ".join(paused) or "—",
            max_len=80,
            style=Style(color="yellow") if paused else Style(dim=True),
        ),
        retries_left(a.retry_budget_left),
        Text(str(a.scheduled)),
        Text(
            f"{a.dead_lettered}{' ALARM' if a.dlq_alarm else ''}",
            Style(color="red", bold=True) if a.dlq_alarm else Style(),
        ),
    )


def retries_left(tokens: float) -> Text:
    """The actor's retry budget: how many retries it may start now (tokens, not a fraction:
    each request deposits ``--retry-ratio`` of one, 0.1 by default, up to the bucket's size).
    Under one, a failed attempt is final: "empty", in red."""
    if tokens < 1:
        return Text("empty", Style(color="red", bold=True))
    return Text(f"{tokens:.0f}" if tokens >= 10 else f"{tokens:.1f}")


class BackpressureScreen(ConsoleScreen):
    """Where the pipeline is backing up, and how fast it drains."""

    FILTER_FIELDS = LAG_FIELDS
    VIEW_TITLE = "Back-pressure"
    AUTO_FOCUS = "#lag-table"

    def compose_body(self) -> ComposeResult:
        with Vertical(id="bp-main"):
            yield DataTable(id="lag-table", cursor_type="row", zebra_stripes=True)
            yield Static("Bottlenecks", classes="panel-title")
            yield Panel(id="bp-bottlenecks")
            yield Static("Device actors", classes="panel-title")
            yield DataTable(id="actor-table", cursor_type="row")

    def on_mount(self) -> None:
        lag = self.query_one("#lag-table", DataTable)
        for c in LAG_COLUMNS:
            lag.add_column(c, key=c)
        actors = self.query_one("#actor-table", DataTable)
        for c in ACTOR_COLUMNS:
            actors.add_column(c, key=c)
        super().on_mount()

    def focus_main(self) -> None:
        self.query_one("#lag-table", DataTable).focus()

    def show(self, snapshot: Snapshot) -> None:
        slo = self.console_app.profile.slo.max_lag_seconds
        rows = sorted(
            (r for r in snapshot.lag if self.filter.matches(lag_record(r))),
            key=lambda r: (-(r.lag_seconds or 0.0), -r.lag, r.group, r.topic, r.partition),
        )
        with self.app.batch_update():
            _sync(
                self.query_one("#lag-table", DataTable),
                [(f"{r.group}|{r.topic}|{r.partition}", _lag_row(r, slo)) for r in rows],
                LAG_COLUMNS,
            )
            self.query_one("#bp-bottlenecks", Panel).show_text(bottlenecks_text(snapshot, limit=5))
            _sync(
                self.query_one("#actor-table", DataTable),
                [(a.actor_id, _actor_row(a)) for a in snapshot.actors],
                ACTOR_COLUMNS,
            )


def _sync(
    table: DataTable[Text], rows: list[tuple[str, tuple[Text, ...]]], columns: tuple[str, ...]
) -> None:
    """Update ``table`` in place by row key; rebuild only when the keys or their order change."""
    keys = [k for k, _ in rows]
    current = [rk.value for rk in table.rows]
    if keys != current:
        table.clear()
        for k, cells in rows:
            table.add_row(*cells, key=k)
        return
    for k, cells in rows:
        for col, cell in zip(columns, cells, strict=True):
            if table.get_cell(k, col) != cell:
                table.update_cell(k, col, cell)
