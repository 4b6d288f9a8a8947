"""One device in depth: checks with details, metrics and sparklines, links, requests, events,
and the *probe now* result beside the telemetry's view.

Attributes down: the screen calls :meth:`DeviceDetail.show` with the snapshot and a device id,
and :meth:`DeviceDetail.show_probe` with a probe result. Every network string goes through
``plain``/``sanitize``; check details may span lines and are shown in full (capped).
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Sparkline, Static

from pipeconsole.model.snapshot import DeviceView, Health, Snapshot
from pipeconsole.ui.probe import ProbeResult
from pipeconsole.ui.render import (
    HEALTH_MARK,
    HEALTH_STYLE,
    age,
    clock,
    health_text,
    plain,
    rate,
    state_text,
)
from pipeconsole.ui.widgets.panel import Panel
from pipeconsole.ui.widgets.timeline import event_text

__all__ = ["DeviceDetail", "checks_text", "probe_text"]

_DIM = Style(dim=True)
_HEAD = Style(bold=True, underline=True)


def header_text(d: DeviceView, now_ms: int) -> Text:
    out = Text(end="")
    out.append_text(health_text(d.health, stale=d.stale))
    out.append("  ")
    out.append_text(plain(d.device_id, max_len=64, style=Style(bold=True)))
    out.append(f"  {d.state.value}", _DIM)
    out.append("\n")
    out.append("stage ", _DIM)
    out.append_text(plain(d.stage, max_len=32))
    out.append("  kind ", _DIM)
    out.append_text(plain(d.kind, max_len=32))
    out.append("  actor ", _DIM)
    out.append_text(plain(d.actor_id or "—", max_len=32))
    out.append("\naddress ", _DIM)
    out.append_text(plain(d.base_url or "—", max_len=120))
    out.append("\nlast seen ", _DIM)
    out.append(f"{age(d.last_seen_age_s)} ago" if d.last_seen_age_s is not None else "never")
    if d.health_since_ms:
        out.append(
            f"  {d.health.value.lower()} for {age((now_ms - d.health_since_ms) / 1000)}", _DIM
        )
    if d.reported_health != d.health:
        out.append(f"  (last report: {d.reported_health.value})", _DIM)
    if d.reason:
        out.append("\nreason ", _DIM)
        out.append_text(plain(d.reason, max_len=300, style=Style(color="yellow")))
    return out


def checks_text(d: DeviceView) -> Text:
    out = Text(end="")
    out.append("Checks (telemetry)\n", _HEAD)
    if not d.checks:
        out.append("  no checks reported", _DIM)
    for c in d.checks:
        out.append(f"  {HEALTH_MARK[c.status]} ", HEALTH_STYLE[c.status])
        out.append_text(plain(c.name, max_len=40, style=Style(bold=True)))
        out.append("  ")
        out.append_text(
            plain(
                c.detail or "—",
                max_len=400,
                style=HEALTH_STYLE[c.status] if c.status != Health.HEALTHY else _DIM,
            )
        )
        out.append("\n")
    out.rstrip()
    return out


def metrics_text(d: DeviceView) -> Text:
    fill = f"{d.queue_fill * 100:.0f}%" if d.queue_capacity else "—"
    return Text.assemble(
        ("Metrics\n", _HEAD),
        (f"  in {rate(d.rate_in)}  out {rate(d.rate_out)}  in-flight {d.in_flight}\n", ""),
        (f"  queue {d.queue_depth}/{d.queue_capacity} ({fill})  ", ""),
        (f"p50 {d.latency_p50_ms:.1f}ms  p99 {d.latency_p99_ms:.1f}ms\n", ""),
        (f"  deadline misses {d.deadline_misses}  restarts {d.restarts}  seq {d.seq}", ""),
        end="",
    )


def links_text(s: Snapshot, device_id: str) -> Text:
    out = Text(end="")
    out.append("Links\n", _HEAD)
    n = 0
    for e in s.graph.edges:
        if device_id not in (e.src, e.dst):
            continue
        arrow, peer = ("↑ from ", e.src) if e.dst == device_id else ("↓ to   ", e.dst)
        out.append("  " + arrow)
        out.append_text(plain(peer, max_len=40, style=Style(bold=True)))
        q = f"{e.queue_depth}/{e.queue_capacity}" if e.queue_capacity else str(e.queue_depth)
        out.append(f"  {rate(e.rate)}  queue {q}")
        if e.ghost:
            out.append("  ghost ", Style(color="magenta"))
            out.append_text(plain(e.ghost_reason, max_len=80, style=_DIM))
        out.append("\n")
        n += 1
    if not n:
        out.append("  none reported\n", _DIM)
    out.rstrip()
    return out


def requests_text(s: Snapshot, device_id: str, limit: int = 6) -> Text:
    out = Text(end="")
    out.append("Recent requests\n", _HEAD)
    rows = [r for r in s.requests if r.device_id == device_id][:limit]
    if not rows:
        out.append("  none in the window", _DIM)
    for r in rows:
        out.append(f"  {clock(r.updated_ms)} ", _DIM)
        out.append_text(state_text(r.state))
        out.append(" ")
        out.append_text(plain(f"{r.method} {r.uri}", max_len=60))
        if r.reason:
            out.append("  ")
            out.append_text(plain(r.reason, max_len=80, style=_DIM))
        out.append("\n")
    out.rstrip()
    return out


def events_text(s: Snapshot, device_id: str, limit: int = 6) -> Text:
    out = Text(end="")
    out.append("Events\n", _HEAD)
    events = [e for e in s.timeline if e.subject == device_id][:limit]
    if not events:
        out.append("  none", _DIM)
    for e in events:
        out.append("  ")
        out.append_text(event_text(e))
        out.append("\n")
    out.rstrip()
    return out


def probe_text(result: ProbeResult | None, pending: bool, telemetry: DeviceView | None) -> Text:
    out = Text(end="")
    out.append("Probe now (direct GET /health)\n", _HEAD)
    if pending:
        out.append("  probing…", _DIM)
        return out
    if result is None:
        out.append("  press p to ask the device directly", _DIM)
        return out
    out.append("  ")
    out.append_text(plain(result.url, max_len=120, style=_DIM))
    out.append("\n")
    if not result.ok:
        out.append("  ✖ no answer: ", Style(color="red", bold=True))
        out.append_text(plain(result.error, max_len=200))
        if telemetry is not None:
            out.append(f"\n  telemetry says {telemetry.health.value}: ", _DIM)
            out.append(
                "the device itself is unreachable"
                if telemetry.health == Health.HEALTHY
                else "both agree something is wrong"
            )
        return out
    try:
        direct = Health(result.health.upper())
    except ValueError:
        direct = Health.UNKNOWN
    out.append(f"  {HEALTH_MARK[direct]} {direct.value}", HEALTH_STYLE[direct])
    out.append(f"  HTTP {result.status_code} in {result.elapsed_ms:.0f}ms  state ", _DIM)
    out.append_text(plain(result.state or "—", max_len=16))
    if telemetry is not None:
        verdict = (
            "agrees with telemetry"
            if telemetry.health == direct
            else f"telemetry says {telemetry.health.value}: suspect the telemetry path"
        )
        out.append(f"\n  {verdict}", Style(bold=telemetry.health != direct))
    for c in result.checks[:8]:
        try:
            st = Health(c.status.upper())
        except ValueError:
            st = Health.UNKNOWN
        out.append(f"\n  {HEALTH_MARK[st]} ", HEALTH_STYLE[st])
        out.append_text(plain(c.name, max_len=40, style=Style(bold=True)))
        out.append("  ")
        out.append_text(plain(c.detail or "—", max_len=200, style=_DIM))
    return out


class DeviceDetail(VerticalScroll, can_focus=True):
    """The detail pane of the devices screen."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.device_id: str | None = None
        """The device shown."""
        self.probe: ProbeResult | None = None
        self.probing = False

    def compose(self) -> ComposeResult:
        yield Panel(id="dd-header")
        with Horizontal(id="dd-body"):
            with Vertical(id="dd-left"):
                yield Panel(id="dd-checks")
                yield Panel(id="dd-probe")
            with Vertical(id="dd-right"):
                yield Panel(id="dd-metrics")
                yield Static("in/out rate", classes="spark-label")
                yield Sparkline([], id="dd-spark-rate")
                yield Static("queue depth", classes="spark-label")
                yield Sparkline([], id="dd-spark-queue")
                yield Static("latency p99", classes="spark-label")
                yield Sparkline([], id="dd-spark-latency")
        yield Panel(id="dd-links")
        yield Panel(id="dd-requests")
        yield Panel(id="dd-events")

    def show(self, snapshot: Snapshot | None, device_id: str | None) -> None:
        if device_id != self.device_id:
            self.probe, self.probing = None, False
        self.device_id = device_id
        d = snapshot.device(device_id) if snapshot and device_id else None
        header = self.query_one("#dd-header", Panel)
        if snapshot is None or d is None:
            header.show_text(Text("select a device", style="dim"))
            for sid in (
                "#dd-checks",
                "#dd-probe",
                "#dd-metrics",
                "#dd-links",
                "#dd-requests",
                "#dd-events",
            ):
                self.query_one(sid, Panel).show_text(Text(""))
            return
        header.show_text(header_text(d, snapshot.time_ms))
        self.query_one("#dd-checks", Panel).show_text(checks_text(d))
        self.query_one("#dd-metrics", Panel).show_text(metrics_text(d))
        self.query_one("#dd-spark-rate", Sparkline).data = list(d.history.rate_out)
        self.query_one("#dd-spark-queue", Sparkline).data = [
            float(q) for q in d.history.queue_depth
        ]
        self.query_one("#dd-spark-latency", Sparkline).data = list(d.history.latency_p99_ms)
        self.query_one("#dd-links", Panel).show_text(links_text(snapshot, d.device_id))
        self.query_one("#dd-requests", Panel).show_text(requests_text(snapshot, d.device_id))
        self.query_one("#dd-events", Panel).show_text(events_text(snapshot, d.device_id))
        self.query_one("#dd-probe", Panel).show_text(probe_text(self.probe, self.probing, d))
        self._telemetry = d

    def show_probe(
        self, result: ProbeResult | None, pending: bool, telemetry: DeviceView | None
    ) -> None:
        self.probe, self.probing = result, pending
        self.query_one("#dd-probe", Panel).show_text(probe_text(result, pending, telemetry))
