"""Hand-made pipelines for tests, demos and the UI's development: no Kafka, no devices.

:func:`pipeline` describes a 4-stage media pipeline (ingest encoders -> transcoders ->
packagers -> origins); :func:`demo_snapshot` gives a :class:`Snapshot` of it, healthy or with
an incident (a failed encoder whose packagers are in the blast radius, a stalled packager
whose upstream queues fill, a silent device that is UNKNOWN).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeconsole.model.snapshot import (
    Bottleneck,
    CheckView,
    Connection,
    DeviceHistory,
    DeviceState,
    DeviceView,
    FleetSummary,
    GraphEdge,
    GraphNode,
    GraphView,
    Health,
    Incident,
    LagRow,
    RequestRow,
    RequestState,
    Severity,
    Snapshot,
    StageEdge,
    StageGraph,
    StageNode,
    TimelineEvent,
    TopicCounters,
)

__all__ = ["DeviceSpec", "demo_snapshot", "pipeline"]

STAGES: tuple[tuple[str, str], ...] = (
    ("ingest", "encoder"),
    ("transcode", "transcoder"),
    ("package", "packager"),
    ("origin", "origin"),
)
"""(stage, kind) in pipeline order."""


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    device_id: str
    stage: str
    kind: str
    upstream: tuple[str, ...]
    """Device ids that feed this one."""


def pipeline(devices: int = 24) -> tuple[DeviceSpec, ...]:
    """A layered pipeline of ``devices`` devices (at least 4), split 1:2:2:1 between stages.

    Each device of a stage is fed by one or two devices of the previous stage, so the graph is
    one island without cycles, and a failed encoder has a fan-out of transcoders and packagers.
    """
    devices = max(4, devices)
    share = (1, 2, 2, 1)
    counts = [max(1, devices * s // 6) for s in share]
    counts[1] += devices - sum(counts)
    specs: list[DeviceSpec] = []
    previous: list[str] = []
    for (stage, kind), n in zip(STAGES, counts, strict=True):
        ids = [f"{stage}-{i + 1:02d}" for i in range(n)]
        for i, device_id in enumerate(ids):
            up: tuple[str, ...] = ()
            if previous:
                first = previous[i * len(previous) // n]
                second = previous[(i * len(previous) // n + 1) % len(previous)]
                up = (first,) if len(previous) == 1 or i % 2 == 0 else (first, second)
                up = tuple(dict.fromkeys(up))
            specs.append(DeviceSpec(device_id, stage, kind, up))
        previous = ids
    return tuple(specs)


def demo_snapshot(*, incident: bool = False, devices: int = 24, now_ms: int = 0) -> Snapshot:
    """A snapshot of :func:`pipeline`.

    ``incident=True``: ``ingest-01`` FAILING (its transcoders and packagers downstream are in
    the blast radius; it is the top root cause), ``package-03`` stalled (a bottleneck), and
    ``origin-01`` silent (UNKNOWN). ``now_ms=0`` uses a fixed, reproducible time.
    """
    return _hand_built(incident=incident, devices=devices, now_ms=now_ms or FIXED_NOW_MS)


FIXED_NOW_MS = 1_790_000_000_000
"""2026-09-21T...: a fixed "now" so fixtures are reproducible."""


def _hand_built(*, incident: bool, devices: int, now_ms: int) -> Snapshot:
    # Provisional: built directly until the Model folds the same events (same shape).
    specs = pipeline(devices)
    failed = {"ingest-01"} if incident else set()
    stalled = "package-03" if incident else ""
    silent = {"origin-01"} if incident else set()
    downstream: dict[str, list[str]] = {s.device_id: [] for s in specs}
    for s in specs:
        for u in s.upstream:
            downstream[u].append(s.device_id)

    def descendants(d: str) -> set[str]:
        out: set[str] = set()
        todo = list(downstream[d])
        while todo:
            x = todo.pop()
            if x not in out:
                out.add(x)
                todo.extend(downstream[x])
        return out

    views: list[DeviceView] = []
    for s in specs:
        health = Health.HEALTHY
        checks = (
            CheckView("input", Health.HEALTHY, "ok"),
            CheckView("output", Health.HEALTHY, "ok"),
        )
        qd, rin, rout = 5, 40.0, 40.0
        reason = ""
        if s.device_id in failed:
            health = Health.FAILING
            checks = (CheckView("input", Health.FAILING, "no frames for 12 s"), checks[1])
            rin = rout = 0.0
        if s.device_id == stalled:
            health = Health.DEGRADED
            checks = (checks[0], CheckView("output", Health.DEGRADED, "output stalled"))
            qd, rout = 90, 0.0
        stale = s.device_id in silent
        age = 21.0 if stale else 1.5
        if stale:
            reason = "no state event for 21 s (> 3 x 5 s)"
        views.append(
            DeviceView(
                device_id=s.device_id,
                name=s.device_id.replace("-", " ").title(),
                stage=s.stage,
                kind=s.kind,
                base_url=f"http://127.0.0.1:{18000 + len(views)}",
                state=DeviceState.ERROR if s.device_id in failed else DeviceState.BUSY,
                health=Health.UNKNOWN if stale else health,
                reported_health=health,
                stale=stale,
                last_seen_ms=now_ms - int(age * 1000),
                last_seen_age_s=age,
                reason=reason,
                checks=checks,
                in_flight=1,
                queue_depth=qd,
                queue_capacity=100,
                rate_in=rin,
                rate_out=rout,
                latency_p50_ms=3.0,
                latency_p99_ms=9.5,
                deadline_misses=0,
                restarts=0,
                seq=100,
                actor_id="actor-1",
                registered=True,
                history=DeviceHistory(
                    time_ms=tuple(now_ms - 5000 * (9 - i) for i in range(10)),
                    rate_in=tuple(rin for _ in range(10)),
                    rate_out=tuple(rout for _ in range(10)),
                    queue_depth=tuple(min(qd, 5 + 10 * i) for i in range(10)),
                    in_flight=tuple(1 for _ in range(10)),
                    latency_p99_ms=tuple(9.5 for _ in range(10)),
                ),
            )
        )
    by_id = {v.device_id: v for v in views}
    layer_of = {st: i for i, (st, _k) in enumerate(STAGES)}
    layers: list[list[str]] = [[] for _ in STAGES]
    for v in views:
        layers[layer_of[v.stage]].append(v.device_id)
    nodes = tuple(
        GraphNode(
            v.device_id,
            v.stage,
            layer_of[v.stage],
            layers[layer_of[v.stage]].index(v.device_id),
            v.health,
            v.stale,
            0,
        )
        for v in views
    )
    edges = tuple(
        GraphEdge(
            u,
            s.device_id,
            by_id[u].rate_out / max(1, len(downstream[u])),
            by_id[s.device_id].queue_depth,
            100,
            now_ms - 1500,
            False,
            "",
            (u, s.device_id),
        )
        for s in specs
        for u in s.upstream
    )
    incidents: tuple[Incident, ...] = ()
    if failed:
        radius = tuple(sorted(descendants("ingest-01")))
        incidents = (
            Incident(
                1,
                "ingest-01",
                "ingest",
                Health.FAILING,
                radius,
                len(radius),
                float(40 * len(radius)),
                ("input: no frames for 12 s",),
                "",
                now_ms - 12000,
            ),
            Incident(
                2,
                stalled,
                "package",
                Health.DEGRADED,
                tuple(sorted(descendants(stalled))),
                len(descendants(stalled)),
                40.0,
                ("output: output stalled",),
                "",
                now_ms - 8000,
            ),
        )
    bottlenecks: tuple[Bottleneck, ...] = ()
    if stalled:
        ups = tuple(u for s in specs if s.device_id == stalled for u in s.upstream)
        bottlenecks = (Bottleneck(stalled, "package", 40.0, 0.0, 90, 100, 0.9, 40.0, 0.25, ups),)
    counts = {h: sum(1 for v in views if v.health == h) for h in Health}
    stage_nodes = tuple(
        StageNode(
            st,
            i,
            len(layers[i]),
            sum(1 for d in layers[i] if by_id[d].health == Health.HEALTHY),
            sum(1 for d in layers[i] if by_id[d].health == Health.DEGRADED),
            sum(1 for d in layers[i] if by_id[d].health == Health.FAILING),
            sum(1 for d in layers[i] if by_id[d].health == Health.UNKNOWN),
            sum(by_id[d].rate_in for d in layers[i]),
            sum(by_id[d].rate_out for d in layers[i]),
            sum(by_id[d].queue_depth for d in layers[i]),
            100 * len(layers[i]),
        )
        for i, (st, _k) in enumerate(STAGES)
    )
    stage_edges = tuple(
        StageEdge(
            STAGES[i][0],
            STAGES[i + 1][0],
            sum(1 for e in edges if by_id[e.src].stage == STAGES[i][0]),
            sum(e.rate for e in edges if by_id[e.src].stage == STAGES[i][0]),
            0,
            0,
        )
        for i in range(len(STAGES) - 1)
    )
    req = RequestRow(
        "6f1c2a9e-0000-4000-8000-000000000001",
        "transcode-02",
        "POST",
        "/streams/s1/start",
        RequestState.DISPATCHED,
        0,
        now_ms + 4000,
        4000,
        1,
        "",
        "",
        0,
        now_ms - 100,
        "operator",
        "actor-1",
    )
    done = RequestRow(
        "6f1c2a9e-0000-4000-8000-000000000002",
        "package-01",
        "PUT",
        "/config/bitrate",
        RequestState.OK,
        0,
        now_ms - 1000,
        None,
        1,
        "",
        "",
        200,
        now_ms - 2000,
        "operator",
        "actor-1",
    )
    timeline = tuple(
        TimelineEvent(
            now_ms - 12000, "health", d, "FAILING because input: no frames for 12 s", Severity.ERROR
        )
        for d in sorted(failed)
    )
    return Snapshot(
        time_ms=now_ms,
        seq=1,
        connection=Connection(True, now_ms - 60000, "", "127.0.0.1:9092"),
        fleet=FleetSummary(
            total=len(views),
            healthy=counts[Health.HEALTHY],
            degraded=counts[Health.DEGRADED],
            failing=counts[Health.FAILING],
            unknown=counts[Health.UNKNOWN],
            stale=len(silent),
            unhealthy_fraction=(len(views) - counts[Health.HEALTHY]) / len(views),
            ingest_rate=120.0,
            total_lag=0,
            max_lag_seconds=0.0,
            deadline_miss_rate=0.0,
            in_flight=len(views),
            topics=(TopicCounters("device-state-v1", 5000),),
        ),
        devices=tuple(views),
        graph=GraphView(
            nodes,
            edges,
            tuple(tuple(x) for x in layers),
            (tuple(v.device_id for v in views),),
            (),
            StageGraph(stage_nodes, stage_edges),
            now_ms,
        ),
        incidents=incidents,
        bottlenecks=bottlenecks,
        requests=(req, done),
        at_risk=(req,),
        requests_total=2,
        outcomes=(("OK", 1),),
        deadline_misses=(),
        dlq=(),
        dlq_total=0,
        lag=(LagRow("pipeconsole-actors", "device-request-v1", 0, 10, 10, 0, 0.0, 0.0),),
        actors=(),
        chaos=(),
        audit=(),
        timeline=timeline,
    )
