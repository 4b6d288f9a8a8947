"""Hand-made pipelines for tests, demos and the UI's development: no Kafka, no devices.

:func:`pipeline` describes a 4-stage media pipeline (ingest encoders -> transcoders ->
packagers -> origins); :func:`demo_snapshot` gives a :class:`Snapshot` of it, healthy or with
an incident (a failed encoder whose packagers are in the blast radius, a stalled packager
whose upstream queues fill, a silent device that is UNKNOWN).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pipeconsole.model.model import Model
from pipeconsole.model.snapshot import Snapshot
from pipeconsole.wire.gen import device_response_pb2, device_state_pb2, registry_pb2

__all__ = [
    "FIXED_NOW_MS",
    "DeviceSpec",
    "FakeClock",
    "added",
    "demo_model",
    "demo_snapshot",
    "pipeline",
    "response",
    "state",
]

FIXED_NOW_MS = 1_790_000_000_000
"""A fixed "now" (2026-09-21) so fixtures are reproducible."""

HEALTH = {"UNKNOWN": 0, "HEALTHY": 1, "DEGRADED": 2, "FAILING": 3}
STATE = {"UNKNOWN": 0, "IDLE": 1, "BUSY": 2, "ERROR": 3}


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
    """A snapshot of :func:`pipeline`, built by folding hand-made events into a Model.

    ``incident=True``: ``ingest-01`` FAILING (its transcoders and packagers downstream are in
    the blast radius; it is the top root cause), ``package-03`` stalled (a bottleneck, its
    upstream queue filling), and ``origin-01`` silent (UNKNOWN). ``now_ms=0`` uses
    :data:`FIXED_NOW_MS`.
    """
    return demo_model(incident=incident, devices=devices, now_ms=now_ms).snapshot()


class FakeClock:
    """A clock for models in tests: ``clock()`` gives seconds; move it with ``advance``."""

    def __init__(self, now_ms: int = FIXED_NOW_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> float:
        return self.now_ms / 1000

    def advance(self, seconds: float) -> None:
        self.now_ms += int(seconds * 1000)


def added(spec: DeviceSpec, base_url: str = "", time_ms: int = 0, name: str = "") -> Any:
    """A RegistryEvent(added) for ``spec``."""
    return registry_pb2.RegistryEvent(
        added=registry_pb2.ServiceAdded(
            device_id=spec.device_id,
            stage=spec.stage,
            kind=spec.kind,
            base_url=base_url or "http://127.0.0.1:1",
            time_unix_ms=time_ms,
            name=name or spec.device_id,
        )
    )


def state(
    device_id: str,
    time_ms: int,
    *,
    health: str = "HEALTHY",
    upstream: Iterable[str] = (),
    downstream: Iterable[str] = (),
    checks: Iterable[tuple[str, str, str]] = (("input", "HEALTHY", "ok"),),
    rate_in: float = 40.0,
    rate_out: float = 40.0,
    queue_depth: int = 5,
    queue_capacity: int = 100,
    link_queue: dict[str, int] | None = None,
    in_flight: int = 1,
    restarts: int = 0,
    changed: bool = False,
    stage: str = "",
    reason: str = "",
    seq: int = 0,
) -> Any:
    """A StateEvent for one device as a device actor would publish it."""
    link_queue = link_queue or {}
    links = [
        device_state_pb2.Link(
            peer_id=p,
            direction=device_state_pb2.Link.UPSTREAM,
            rate=rate_in,
            queue_depth=queue_depth,
            queue_capacity=queue_capacity,
        )
        for p in upstream
    ] + [
        device_state_pb2.Link(
            peer_id=p,
            direction=device_state_pb2.Link.DOWNSTREAM,
            rate=rate_out,
            queue_depth=link_queue.get(p, 5),
            queue_capacity=100,
        )
        for p in downstream
    ]
    st = device_state_pb2.DeviceState(
        device_id=device_id,
        time_unix_ms=time_ms,
        state=STATE["ERROR" if health == "FAILING" else "BUSY"],  # type: ignore[arg-type]
        health=HEALTH[health],  # type: ignore[arg-type]
        checks=[
            device_state_pb2.Check(name=n, status=HEALTH[h], detail=d)  # type: ignore[arg-type]
            for n, h, d in checks
        ],
        links=links,
        in_flight=in_flight,
        queue_depth=queue_depth,
        queue_capacity=queue_capacity,
        rate_in=rate_in,
        rate_out=rate_out,
        latency_p50_ms=3.0,
        latency_p99_ms=9.5,
        restarts=restarts,
        seq=seq,
        stage=stage,
        reason=reason,
        actor_id="actor-1",
    )
    if changed:
        return device_state_pb2.StateEvent(changed=device_state_pb2.ServiceStateChanged(state=st))
    return device_state_pb2.StateEvent(unchanged=device_state_pb2.ServiceStateUnchanged(state=st))


def response(request_id: str, device_id: str, outcome: str, time_ms: int, **fields: Any) -> Any:
    """A DeviceResponse lifecycle event."""
    return device_response_pb2.DeviceResponse(
        request_id=request_id,
        device_id=device_id,
        outcome=device_response_pb2.DeviceResponse.Outcome.Value(outcome),
        time_unix_ms=time_ms,
        **fields,
    )


def downstream_of(specs: Iterable[DeviceSpec]) -> dict[str, list[str]]:
    specs = tuple(specs)
    out: dict[str, list[str]] = {s.device_id: [] for s in specs}
    for s in specs:
        for u in s.upstream:
            out[u].append(s.device_id)
    return out


def rounds(
    specs: Iterable[DeviceSpec],
    start_ms: int,
    count: int,
    interval_ms: int = 5000,
    *,
    failed: frozenset[str] = frozenset(),
    stalled: str = "",
    silent_after: dict[str, int] | None = None,
) -> Iterator[Any]:
    """``count`` rounds of health checks for the whole pipeline, ``interval_ms`` apart.

    ``failed`` devices report FAILING with no output; ``stalled``'s output stops and its input
    queue and its upstream devices' queues fill round by round; a device in ``silent_after``
    stops reporting after that many rounds.
    """
    specs = tuple(specs)
    down = downstream_of(specs)
    silent_after = silent_after or {}
    stalled_up = {u for s in specs if s.device_id == stalled for u in s.upstream}
    for k in range(count):
        t = start_ms + k * interval_ms
        for s in specs:
            if s.device_id in silent_after and k >= silent_after[s.device_id]:
                continue
            kw: dict[str, Any] = {}
            if s.device_id in failed:
                kw = {
                    "health": "FAILING",
                    "checks": (("input", "FAILING", "no frames for 12 s"),),
                    "rate_in": 0.0,
                    "rate_out": 0.0,
                    "reason": "encoder crashed",
                }
            elif s.device_id == stalled:
                kw = {
                    "health": "DEGRADED",
                    "checks": (("output", "DEGRADED", "output stalled"),),
                    "rate_in": 40.0,
                    "rate_out": 0.0,
                    "queue_depth": min(100, 10 + 15 * k),
                }
            elif s.device_id in stalled_up:
                kw = {
                    "rate_in": 40.0,
                    "rate_out": 30.0,
                    "queue_depth": min(100, 5 + 8 * k),
                    "link_queue": {stalled: min(100, 10 + 15 * k)},
                }
            yield state(
                s.device_id,
                t,
                upstream=s.upstream,
                downstream=down[s.device_id],
                stage=s.stage,
                seq=k,
                changed=k == 0,
                **kw,
            )


def demo_model(*, incident: bool = False, devices: int = 24, now_ms: int = 0) -> Model:
    """A Model of :func:`pipeline` after 6 rounds of health checks (see :func:`demo_snapshot`)."""
    now_ms = now_ms or FIXED_NOW_MS
    clock = FakeClock(now_ms)
    model = Model(clock=clock, bootstrap="127.0.0.1:9092")
    model.set_connection(True)
    specs = pipeline(devices)
    start = now_ms - 5 * 5000 - 1000
    model.apply(
        added(s, f"http://127.0.0.1:{18000 + i}", start - 1000) for i, s in enumerate(specs)
    )
    model.consumed("device-registry-v1", len(specs))
    events = list(
        rounds(
            specs,
            start,
            6,
            failed=frozenset({"ingest-01"}) if incident else frozenset(),
            stalled="package-03" if incident else "",
            silent_after={"origin-01": 1} if incident else None,
        )
    )
    model.apply(events)
    model.consumed("device-state-v1", len(events))
    rid = "6f1c2a9e-0000-4000-8000-00000000000"
    model.apply(
        [
            response(
                rid + "1",
                "transcode-02",
                "SCHEDULED",
                now_ms - 900,
                method="POST",
                uri="/streams/s1/start",
                deadline_unix_ms=now_ms + 4000,
            ),
            response(rid + "1", "transcode-02", "DISPATCHED", now_ms - 800, attempts=1),
            response(
                rid + "2",
                "package-01",
                "OK",
                now_ms - 2000,
                method="PUT",
                uri="/config/bitrate",
                status_code=200,
                attempts=1,
            ),
        ]
    )
    model.consumed("device-response-v1", 3)
    return model
