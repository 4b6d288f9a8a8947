"""Snapshots for the UI tests: the model's fixtures, plus lagging, disconnected and hostile ones.

All times come from the fixture's fixed clock, so screens are reproducible (frozen clocks).
"""

from __future__ import annotations

from dataclasses import replace

from pipeconsole.model.fixtures import demo_snapshot
from pipeconsole.model.snapshot import (
    CheckView,
    Connection,
    GraphEdge,
    GraphNode,
    Health,
    Incident,
    LagRow,
    Snapshot,
    TimelineEvent,
)

EVIL = (
    "[bold red]x[/] [link=https://evil.example]y[/link] [@click=app.quit]z[/]"
    " \x1b]0;pwned\x07 \x1b[2J \u202eevil"
)
"""Markup, an OSC title change, a clear-screen and a bidi override in one device string."""


def healthy() -> Snapshot:
    return demo_snapshot(incident=False)


def incident() -> Snapshot:
    return demo_snapshot(incident=True)


def lagging() -> Snapshot:
    s = incident()
    rows = tuple(
        LagRow(
            "pipeconsole-actors", "device-request-v1", p, 1000 + p, 1000 + p + lag, lag, sec, drain
        )
        for p, lag, sec, drain in ((0, 4200, 95.0, 12.0), (1, 12, 0.4, 30.0), (2, 900, 41.0, 0.0))
    )
    fleet = replace(s.fleet, total_lag=sum(r.lag for r in rows), max_lag_seconds=95.0)
    return replace(s, lag=rows, fleet=fleet)


def disconnected() -> Snapshot:
    s = incident()
    conn = Connection(
        False, s.time_ms - 12_000, "broker transport failure: connection refused", "127.0.0.1:9092"
    )
    return replace(s, connection=conn, seq=s.seq + 1)


def catching_up() -> Snapshot:
    """Connected, the start-up window still being read: part of the fleet, none failing yet."""
    s = healthy()
    return replace(s, connection=replace(s.connection, caught_up=False), seq=s.seq + 1)


def reconnected() -> Snapshot:
    s = incident()
    conn = Connection(True, s.time_ms - 3_000, "broker transport failure", "127.0.0.1:9092")
    return replace(s, connection=conn, seq=s.seq + 2)


def rename_device(s: Snapshot, old: str, new: str) -> Snapshot:
    """``s`` with device ``old`` called ``new`` everywhere (devices, graph, incidents)."""

    def r(x: str) -> str:
        return new if x == old else x

    devices = tuple(replace(d, device_id=r(d.device_id), name=r(d.name)) for d in s.devices)
    nodes = tuple(replace(n, device_id=r(n.device_id)) for n in s.graph.nodes)
    edges = tuple(replace(e, src=r(e.src), dst=r(e.dst)) for e in s.graph.edges)
    layers = tuple(tuple(r(x) for x in layer) for layer in s.graph.layers)
    graph = replace(s.graph, nodes=nodes, edges=edges, layers=layers)
    incidents = tuple(
        replace(i, device_id=r(i.device_id), blast_radius=tuple(r(x) for x in i.blast_radius))
        for i in s.incidents
    )
    timeline = tuple(replace(e, subject=r(e.subject)) for e in s.timeline)
    return replace(s, devices=devices, graph=graph, incidents=incidents, timeline=timeline)


def hostile() -> Snapshot:
    """The top incident's device is named EVIL, and its check detail and reason are EVIL too."""
    s = incident()
    top = s.incidents[0].device_id
    s = rename_device(s, top, EVIL)
    devices = tuple(
        replace(d, reason=EVIL, stage=d.stage, checks=(CheckView("input", Health.FAILING, EVIL),))
        if d.device_id == EVIL
        else d
        for d in s.devices
    )
    incidents = (replace(s.incidents[0], failing_checks=(f"input: {EVIL}",)), *s.incidents[1:])
    timeline = (TimelineEvent(s.time_ms, "health", EVIL, EVIL), *s.timeline)
    return replace(s, devices=devices, incidents=incidents, timeline=timeline)


def big(devices: int = 2000) -> Snapshot:
    return demo_snapshot(incident=True, devices=devices)


__all__ = [
    "EVIL",
    "GraphEdge",
    "GraphNode",
    "Incident",
    "big",
    "disconnected",
    "healthy",
    "hostile",
    "incident",
    "lagging",
    "reconnected",
    "rename_device",
]
