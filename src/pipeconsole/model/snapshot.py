"""The immutable picture of the pipeline that the UI, headless mode and ``status --json`` read.

A :class:`Snapshot` is built by :meth:`pipeconsole.model.Model.snapshot` at a bounded rate and
handed across threads as is: every type here is ``frozen=True, slots=True`` and holds tuples,
never lists or dicts, so a reader can keep one as long as it likes while the model moves on.

Map of the types (one section per screen):

- :class:`Connection`           is the console connected to Kafka, since when, the last error
- :class:`FleetSummary`         counts by health, ingest rate, lag, deadline-miss rate, per-topic
  :class:`TopicCounters`        consumed / undecodable (with a sample) / dropped / sampled
- :class:`DeviceView`           one device: registry facts, state, health, staleness, checks,
  :class:`CheckView`            metrics and :class:`DeviceHistory` ring buffers for sparklines
- :class:`GraphView`            nodes (layer = topological generation, order within the layer),
  :class:`GraphNode`            edges (rate, queue, ghost flag), islands, cycles, and
  :class:`GraphEdge`            :class:`StageGraph`, the stage-collapsed view for big fleets
- :class:`Incident`             root-cause candidates ranked by blast radius
- :class:`Bottleneck`           where rate in > rate out and the queue fills; time to full
- :class:`RequestRow`           one request's lifecycle; :class:`DeadlineMisses` per device/stage
- :class:`DlqEntry`             a dead-lettered record and why
- :class:`LagRow`               per consumer group and partition: messages and seconds behind
- :class:`ActorView`            a device-actor instance (devices, partitions, budget)
- :class:`ChaosView`, :class:`AuditView`, :class:`TimelineEvent`

Untrusted strings (names, check details, reasons, URIs, header values) stay raw ``str`` here:
the UI makes them safe at render time (``pipeconsole.ui.safe.safe_text``) and
:meth:`Snapshot.to_json` passes every string through ``pipeconsole.text.sanitize``.
Times are Unix milliseconds (``*_ms``); durations and ages are seconds (``*_s``) unless named.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from array import array
from dataclasses import dataclass
from typing import Any, TypeVar, cast

__all__ = [
    "AUDIT_OUTCOMES",
    "CHAOS_PHASES",
    "FINAL_STATES",
    "ActorView",
    "AuditView",
    "Bottleneck",
    "ChaosView",
    "CheckView",
    "Connection",
    "DeadlineMisses",
    "DeviceHistory",
    "DeviceState",
    "DeviceView",
    "DlqEntry",
    "FleetSummary",
    "GraphEdge",
    "GraphNode",
    "GraphView",
    "Health",
    "Incident",
    "LagRow",
    "PartitionView",
    "RequestRow",
    "RequestState",
    "Severity",
    "Snapshot",
    "StageEdge",
    "StageGraph",
    "StageNode",
    "TimelineEvent",
    "TopicCounters",
    "builder",
]


class Health(enum.StrEnum):
    """What the checks say. UNKNOWN is neither up nor down: no fresh telemetry."""

    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    FAILING = "FAILING"
    UNKNOWN = "UNKNOWN"


class DeviceState(enum.StrEnum):
    IDLE = "IDLE"
    BUSY = "BUSY"
    ERROR = "ERROR"
    UNKNOWN = "UNKNOWN"


class RequestState(enum.StrEnum):
    """Lifecycle of a request: SCHEDULED -> DISPATCHED -> one final state.

    SEEN means the console read the DeviceRequest but no actor has answered yet.
    """

    SEEN = "SEEN"
    SCHEDULED = "SCHEDULED"
    DISPATCHED = "DISPATCHED"
    OK = "OK"
    FAILED = "FAILED"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    MISFIRED = "MISFIRED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    DEAD_LETTERED = "DEAD_LETTERED"


FINAL_STATES: frozenset[RequestState] = frozenset(
    {
        RequestState.OK,
        RequestState.FAILED,
        RequestState.DEADLINE_EXCEEDED,
        RequestState.MISFIRED,
        RequestState.CANCELLED,
        RequestState.REJECTED,
        RequestState.DEAD_LETTERED,
    }
)
"""States after which a request never changes again."""


class Severity(enum.StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


# --------------------------------------------------------------------------- connection, fleet


@dataclass(frozen=True, slots=True)
class Connection:
    connected: bool
    """True while the reader gets metadata / records without errors."""
    since_ms: int
    """When the current connected/disconnected state began."""
    last_error: str = ""
    """The last error the reader saw (kept after reconnecting, for the record)."""
    bootstrap: str = ""
    caught_up: bool = True
    """The reader has read its start-up window: every record there was when it started.
    False while that backlog is read: counts and health then describe part of the fleet."""


@dataclass(frozen=True, slots=True)
class TopicCounters:
    """What the ingest did with one topic's records. Nothing is dropped silently."""

    topic: str
    consumed: int = 0
    undecodable: int = 0
    """Records the safe codec refused; never raised, counted here."""
    undecodable_sample: str = ""
    """The latest refused record: ``partition@offset code: reason | first bytes (hex)``."""
    dropped: int = 0
    """Records read but not kept because a bounded buffer was full (e.g. old requests evicted)."""
    sampled: int = 0
    """Records folded in only partially to keep up (e.g. history points skipped)."""


@dataclass(frozen=True, slots=True)
class FleetSummary:
    total: int
    healthy: int
    degraded: int
    failing: int
    unknown: int
    """Devices with no telemetry yet or stale (included in ``stale`` when stale)."""
    stale: int
    """Devices silent for more than 3 check intervals (they count as UNKNOWN)."""
    unhealthy_fraction: float
    """(total - healthy) / total; UNKNOWN counts as unhealthy. 0 when the fleet is empty."""
    ingest_rate: float
    """Records per second the console is folding in (all topics), over the last 5 s."""
    total_lag: int
    """Sum of lag (messages) of the watched consumer group."""
    max_lag_seconds: float
    deadline_miss_rate: float
    """Deadline-exceeded fraction of final outcomes over the sliding window."""
    in_flight: int
    topics: tuple[TopicCounters, ...] = ()


# --------------------------------------------------------------------------- devices


@dataclass(frozen=True, slots=True)
class CheckView:
    name: str
    status: Health
    detail: str


@dataclass(frozen=True, slots=True)
class DeviceHistory:
    """Recent samples, oldest first, bounded (a ring buffer's contents) for sparklines."""

    time_ms: tuple[int, ...] = ()
    rate_in: tuple[float, ...] = ()
    rate_out: tuple[float, ...] = ()
    queue_depth: tuple[int, ...] = ()
    in_flight: tuple[int, ...] = ()
    latency_p99_ms: tuple[float, ...] = ()

    @staticmethod
    def packed(
        values: array[float], times: array[int], size: int, pos: int, n: int
    ) -> DeviceHistory:
        """A history whose series are unpacked when first read (see :class:`_PackedHistory`)."""
        return _PackedHistory(values, times, size, pos, n)


_HISTORY_FIELDS = ("time_ms", "rate_in", "rate_out", "queue_depth", "in_flight", "latency_p99_ms")


class _PackedHistory(DeviceHistory):
    """A :class:`DeviceHistory` that keeps the device's ring buffers (``array``s) and turns
    them into tuples on first read.

    Why: a snapshot rebuilds the view of every changed device, and 60 points x 6 series is 360
    number objects per device: ~40 % of a view's cost and most of its memory, for sparklines
    that only the device detail screen (one device) and ``to_json`` read. The rings are the
    fleet's own, shared with the view rather than copied: the fleet never writes rings it has
    shared (its next write replaces them with a copy, ``DeviceRecord.hist_shared``), so they
    never change after the view is built, and the first read (from any thread) always finds
    the same tuples; to readers it is as immutable as the other snapshot types (equality,
    ``repr`` and JSON read the fields)."""

    __slots__ = ("_packed",)

    def __init__(
        self, values: array[float], times: array[int], size: int, pos: int, n: int
    ) -> None:
        object.__setattr__(self, "_packed", (values, times, size, pos, n))

    def __getattr__(self, name: str) -> Any:
        # Only called for a slot not set yet: the series, before their first read.
        if name not in _HISTORY_FIELDS:
            raise AttributeError(name)
        values, stamps, size, pos, n = object.__getattribute__(self, "_packed")
        flat = values.tolist()
        t = stamps.tolist()
        if n < size:
            cols = [flat[m * size : m * size + n] for m in range(5)]
            times = t[:n]
        else:
            cols = [
                flat[m * size + pos : (m + 1) * size] + flat[m * size : m * size + pos]
                for m in range(5)
            ]
            times = t[pos:] + t[:pos]
        unpacked = (
            tuple(times),
            tuple(cols[0]),
            tuple(cols[1]),
            tuple(map(int, cols[2])),
            tuple(map(int, cols[3])),
            tuple(cols[4]),
        )
        for field, value in zip(_HISTORY_FIELDS, unpacked, strict=True):
            object.__setattr__(self, field, value)
        return object.__getattribute__(self, name)


@dataclass(frozen=True, slots=True)
class DeviceView:
    device_id: str
    name: str
    stage: str
    kind: str
    base_url: str
    state: DeviceState
    health: Health
    """Effective health: UNKNOWN when stale, whatever the last report said."""
    reported_health: Health
    """What the last state event said."""
    stale: bool
    last_seen_ms: int
    """Time of the last state event; 0 when never seen."""
    last_seen_age_s: float | None
    """Seconds since ``last_seen_ms``; None when never seen."""
    reason: str
    """Why UNKNOWN / ERROR as the actor reported it, or why the console calls it stale."""
    checks: tuple[CheckView, ...]
    in_flight: int
    queue_depth: int
    queue_capacity: int
    rate_in: float
    rate_out: float
    latency_p50_ms: float
    latency_p99_ms: float
    deadline_misses: int
    restarts: int
    seq: int
    actor_id: str
    registered: bool
    """Seen on the registry (False: only state events mention it)."""
    labels: tuple[tuple[str, str], ...] = ()
    history: DeviceHistory = DeviceHistory()
    health_since_ms: int = 0
    """When the effective health last changed."""

    @property
    def queue_fill(self) -> float:
        return self.queue_depth / self.queue_capacity if self.queue_capacity > 0 else 0.0


# --------------------------------------------------------------------------- graph


@dataclass(frozen=True, slots=True)
class GraphNode:
    device_id: str
    stage: str
    layer: int
    """Topological generation (0 = sources); nodes on cycles share the layer of their entry."""
    order: int
    """Position within the layer (stable: sorted by stage then id)."""
    health: Health
    stale: bool
    island: int
    """Index into :attr:`GraphView.islands` of the weakly connected component."""
    in_cycle: bool = False


@dataclass(frozen=True, slots=True)
class GraphEdge:
    src: str
    dst: str
    rate: float
    queue_depth: int
    queue_capacity: int
    last_seen_ms: int
    ghost: bool
    """Reported by one side only, or not reported recently."""
    ghost_reason: str = ""
    reported_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StageNode:
    stage: str
    layer: int
    devices: int
    healthy: int
    degraded: int
    failing: int
    unknown: int
    rate_in: float
    rate_out: float
    queue_depth: int
    queue_capacity: int

    @property
    def health(self) -> Health:
        """The worst health among the stage's devices."""
        if self.failing:
            return Health.FAILING
        if self.degraded:
            return Health.DEGRADED
        if self.unknown:
            return Health.UNKNOWN
        return Health.HEALTHY


@dataclass(frozen=True, slots=True)
class StageEdge:
    src: str
    dst: str
    links: int
    rate: float
    queue_depth: int
    ghosts: int


@dataclass(frozen=True, slots=True)
class StageGraph:
    nodes: tuple[StageNode, ...] = ()
    edges: tuple[StageEdge, ...] = ()


@dataclass(frozen=True, slots=True)
class GraphView:
    nodes: tuple[GraphNode, ...] = ()
    edges: tuple[GraphEdge, ...] = ()
    layers: tuple[tuple[str, ...], ...] = ()
    """Device ids by layer, each in ``order``."""
    islands: tuple[tuple[str, ...], ...] = ()
    """Weakly connected components, largest first; a lone device is an island of one."""
    cycles: tuple[tuple[str, ...], ...] = ()
    """Simple cycles (bounded count); a healthy pipeline has none."""
    stages: StageGraph = StageGraph()
    computed_ms: int = 0
    """When the analyses were last recomputed (they run at a bounded rate)."""


# --------------------------------------------------------------------------- analyses


@dataclass(frozen=True, slots=True)
class Incident:
    """A root-cause candidate: an unhealthy device whose upstream is healthy."""

    rank: int
    """1 = the most likely root cause."""
    device_id: str
    stage: str
    health: Health
    blast_radius: tuple[str, ...]
    """Every device downstream of it (descendants), sorted."""
    blast_size: int
    weight: float
    """Traffic (rate) plus in-flight requests of the device and its blast radius."""
    failing_checks: tuple[str, ...]
    """``name: detail`` of each check that is not HEALTHY (raw, untrusted)."""
    reason: str
    since_ms: int
    behind: tuple[str, ...] = ()
    """Devices it feeds that are in a worse state than it (FAILING, or UNKNOWN under a
    DEGRADED one): its trouble is likely back-pressure from them, a symptom rather than a
    cause. Such a candidate ranks after the others of its severity."""


@dataclass(frozen=True, slots=True)
class Bottleneck:
    device_id: str
    stage: str
    rate_in: float
    rate_out: float
    queue_depth: int
    queue_capacity: int
    queue_fill: float
    fill_rate: float
    """Items per second the input queue grows by (rate in - rate out, or measured)."""
    time_to_full_s: float | None
    """None when the queue has no capacity or is not filling."""
    upstream_filling: tuple[str, ...] = ()
    """Upstream devices whose queues are filling too (the back-pressure wave)."""


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class RequestRow:
    request_id: str
    device_id: str
    method: str
    uri: str
    state: RequestState
    scheduled_for_ms: int
    """0 = now (no schedule time)."""
    deadline_ms: int
    """0 = unknown."""
    remaining_ms: int | None
    """Deadline budget left at snapshot time (negative = missed); None when final or unknown."""
    attempts: int
    reason: str
    replay_of: str
    status_code: int = 0
    updated_ms: int = 0
    issued_by: str = ""
    actor_id: str = ""

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True, slots=True)
class DeadlineMisses:
    """Deadline misses of one device or stage over the sliding window."""

    key: str
    misses: int
    finals: int
    rate: float


@dataclass(frozen=True, slots=True)
class DlqEntry:
    topic: str
    partition: int
    offset: int
    time_ms: int
    key: str
    reason: str
    """The device actors' ``pipeconsole.dlq.reason`` header, else a ``reason``-like one (raw,
    untrusted)."""
    code: str
    """The device actors' ``pipeconsole.dlq.code`` header, else an ``error.code``-like one."""
    headers: tuple[tuple[str, str], ...]
    size: int
    request_id: str = ""


# --------------------------------------------------------------------------- lag, actors


@dataclass(frozen=True, slots=True)
class LagRow:
    group: str
    topic: str
    partition: int
    committed: int
    high: int
    lag: int
    lag_seconds: float | None
    """Age of the oldest unconsumed record when known (from record timestamps)."""
    drain_rate: float | None
    """Messages per second the committed offset advanced between the last two polls (0 when
    stuck); None until two polls with a committed offset say it (one poll cannot: a console
    just started, ``pipeconsole status``)."""


@dataclass(frozen=True, slots=True)
class PartitionView:
    topic: str
    partition: int
    committed: int
    high_read: int
    pending: int
    paused: bool


@dataclass(frozen=True, slots=True)
class ActorView:
    actor_id: str
    host: str
    pid: int
    time_ms: int
    started_ms: int
    devices: tuple[str, ...]
    partitions: tuple[PartitionView, ...]
    scheduled: int
    in_flight: int
    in_flight_limit: int
    retry_budget_left: float
    executed: int
    rejected: int
    dead_lettered: int
    group: str
    dlq_alarm: bool
    stale: bool

    @property
    def paused(self) -> int:
        return sum(1 for p in self.partitions if p.paused)


# --------------------------------------------------------------------------- chaos, audit, timeline


CHAOS_PHASES = ("UNSPECIFIED", "STARTED", "STEP", "PROBE", "ABORTED", "ROLLED_BACK", "VERDICT")
""":attr:`ChaosView.phase` of each ``ChaosExperiment.Phase`` number (a number past them: its
digits)."""
AUDIT_OUTCOMES = ("UNSPECIFIED", "ACCEPTED", "REFUSED", "FAILED")
""":attr:`AuditView.outcome` of each ``AuditRecord.Outcome`` number (a number past them: its
digits)."""


@dataclass(frozen=True, slots=True)
class ChaosView:
    experiment_id: str
    name: str
    phase: str
    time_ms: int
    detail: str
    targets: tuple[str, ...]
    hypothesis_held: bool
    issued_by: str
    lease_expires_ms: int


@dataclass(frozen=True, slots=True)
class AuditView:
    audit_id: str
    time_ms: int
    principal: str
    os_user: str
    host: str
    action: str
    targets: tuple[str, ...]
    preview: str
    outcome: str
    reason: str
    profile: str
    request_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    time_ms: int
    kind: str
    """``health``, ``registry``, ``request``, ``dlq``, ``chaos``, ``audit``, ``connection``."""
    subject: str
    """Device id, request id, experiment id... (raw)."""
    text: str
    """One line, e.g. ``FAILING because input: no frames`` (raw)."""
    severity: Severity = Severity.INFO


# --------------------------------------------------------------------------- the snapshot


@dataclass(frozen=True, slots=True)
class Snapshot:
    time_ms: int
    seq: int
    """Increases with every snapshot the model builds."""
    connection: Connection
    fleet: FleetSummary
    devices: tuple[DeviceView, ...]
    """Sorted by stage, then device id."""
    graph: GraphView
    incidents: tuple[Incident, ...]
    bottlenecks: tuple[Bottleneck, ...]
    requests: tuple[RequestRow, ...]
    """Most recently updated first (bounded)."""
    at_risk: tuple[RequestRow, ...]
    """Non-final requests with a deadline, least budget first."""
    requests_total: int
    outcomes: tuple[tuple[str, int], ...]
    """Final-state name -> count since the console started reading."""
    deadline_misses: tuple[DeadlineMisses, ...]
    """Per device and per stage (key ``stage:<name>``), worst first."""
    dlq: tuple[DlqEntry, ...]
    """Newest first (bounded)."""
    dlq_total: int
    lag: tuple[LagRow, ...]
    actors: tuple[ActorView, ...]
    chaos: tuple[ChaosView, ...]
    audit: tuple[AuditView, ...]
    timeline: tuple[TimelineEvent, ...]
    """Newest first (bounded)."""
    dropped: tuple[tuple[str, int], ...] = ()
    """Buffer name -> entries evicted so far (timeline, requests, dlq, audit, ...)."""
    check_interval_s: float = 5.0

    def device(self, device_id: str) -> DeviceView | None:
        for d in self.devices:
            if d.device_id == device_id:
                return d
        return None

    def request(self, request_id: str) -> RequestRow | None:
        for r in self.requests:
            if r.request_id == request_id:
                return r
        return None

    @property
    def top_incident(self) -> Incident | None:
        return self.incidents[0] if self.incidents else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; every string is passed through ``pipeconsole.text.sanitize``."""
        from pipeconsole.text import sanitize

        out = _jsonable(self, sanitize)
        assert isinstance(out, dict)
        return out


def _jsonable(value: Any, sanitize: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, str):
        return sanitize(value)
    if isinstance(value, float):
        # The model reads NaN and infinities in as 0, but a sum of huge values (stage rates)
        # can still overflow; JSON has neither, and `status --json` must print.
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, tuple):
        return [_jsonable(v, sanitize) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if (type(value).__name__, f.name) in _PAIRS:
                out[f.name] = {sanitize(k): _jsonable(x, sanitize) for k, x in v}
            else:
                out[f.name] = _jsonable(v, sanitize)
        for prop in _PROPERTIES.get(type(value).__name__, ()):
            out[prop] = _jsonable(getattr(value, prop), sanitize)
        return out
    return sanitize(repr(value))


_PAIRS = frozenset(
    {
        ("Snapshot", "outcomes"),
        ("Snapshot", "dropped"),
        ("DeviceView", "labels"),
        ("DlqEntry", "headers"),
    }
)
"""Fields holding (name, value) pairs: objects in JSON, nicer for jq."""

_PROPERTIES: dict[str, tuple[str, ...]] = {
    "DeviceView": ("queue_fill",),
    "StageNode": ("health",),
    "RequestRow": ("final",),
    "ActorView": ("paused",),
}
"""Derived values worth having in JSON too."""


# --------------------------------------------------------------------------- fast construction

_T = TypeVar("_T")


def builder(cls: type[_T]) -> type[_T]:
    """A fast constructor for the frozen snapshot type ``cls``, for the types the model builds by
    the thousand per snapshot (device views, graph nodes and edges, check rows, timeline events).

    Why: a frozen dataclass's ``__init__`` sets every field through ``object.__setattr__`` (the
    class's own ``__setattr__`` refuses). For a :class:`DeviceView` (28 fields, by keyword) that
    is ~9 us, against ~2.6 us through the builder (a mutable slots class with the same fields,
    then a class change); at 10k devices the difference is ~60 ms of every complete snapshot.

    How: the builder is a mutable ``slots=True`` dataclass with ``cls``'s fields (names, order,
    defaults); its ``__post_init__`` turns the new instance into a ``cls``. The two layouts are
    identical, which is what CPython asks of a ``__class__`` assignment, and from then on the
    object *is* a ``cls``: frozen, equal to (and hashing like) one built by ``cls(...)``, with
    its repr. The builder is typed as ``type[cls]`` so that mypy checks each call's arguments
    against ``cls``'s fields; it is never seen as a type anywhere else.
    """
    fields = dataclasses.fields(cast(Any, cls))
    ns: dict[str, Any] = {
        "__annotations__": {f.name: f.type for f in fields},
        "__module__": cls.__module__,
        "__qualname__": f"builder({cls.__qualname__})",
    }
    for f in fields:
        if f.default is not dataclasses.MISSING:
            ns[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            ns[f.name] = dataclasses.field(default_factory=f.default_factory)

    def __post_init__(self: Any) -> None:
        self.__class__ = cls

    ns["__post_init__"] = __post_init__
    made: Any = dataclass(slots=True, eq=False, repr=False)(type(f"_{cls.__name__}Builder", (), ns))
    if getattr(cls, "__post_init__", None) is not None or made.__slots__ != getattr(
        cls, "__slots__", None
    ):
        raise TypeError(f"{cls.__name__}: not a plain frozen slots dataclass")
    return cast(type[_T], made)
