"""The state model: the single writer that folds decoded events in and builds snapshots.

Threading: a :class:`Model` belongs to one thread (the ingest's reader thread, a test, a
benchmark). Nothing in it locks; other threads only ever see the immutable :class:`Snapshot`
that :meth:`Model.snapshot` returns.

Inputs (see :meth:`Model.apply`): decoded protobuf messages (``RegistryEvent``, ``StateEvent``,
``DeviceRequest``, ``DeviceResponse``, ``ChaosExperiment``, ``AuditRecord``), dead-lettered
records (:class:`DlqRecord`, raw bytes and headers), :class:`Undecodable` notes from the safe
codec, plus :meth:`consumed`, :meth:`mark_offset`, :meth:`set_lag` and :meth:`set_connection`
from the ingest. Parts: :mod:`.fleet`, :mod:`.topology`, :mod:`.requests`, :mod:`.lag`,
:mod:`.timeline`.

Cost model: applying a state event is a dict lookup and a few assignments; graph analyses run
in :meth:`snapshot` at most every ``analysis_interval_s`` (default 1 s) and device views are
rebuilt only for devices that changed.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pipeconsole.model.fleet import HEALTH_NAMES, DeviceRecord, Fleet
from pipeconsole.model.lag import LagBook, LagSample
from pipeconsole.model.requests import DlqRecord, RequestBook
from pipeconsole.model.snapshot import (
    AUDIT_OUTCOMES,
    CHAOS_PHASES,
    ActorView,
    AuditView,
    ChaosView,
    Connection,
    FleetSummary,
    GraphView,
    Health,
    PartitionView,
    RequestState,
    Severity,
    Snapshot,
    TopicCounters,
)
from pipeconsole.model.timeline import Timeline
from pipeconsole.model.topology import Analysis, Topology
from pipeconsole.wire.gen import (
    audit_pb2,
    chaos_pb2,
    device_request_pb2,
    device_response_pb2,
    device_state_pb2,
    registry_pb2,
)

__all__ = ["DlqRecord", "LagSample", "Limits", "Model", "Undecodable"]

_PENDING = Analysis(GraphView(), (), ())
"""The analyses of a model not analysed yet (``GraphView.computed_ms == 0``)."""

RATE_WINDOW_MS = 5000
"""The summary's ingest rate is measured over this long. It was over the last second: telemetry
comes in waves (a fleet's checks, a burst of requests), and at 1,000 devices it read 40 and
850/s by turns while 200/s came in."""

ACTOR_STATUS_INTERVAL_MS = 5000
"""How often a device actor publishes its status until the model has measured it: the
dispatcher's default (``pipeconsole dispatch --status-interval``). An actor is stale after 3
of its status intervals without one (or 3 check intervals, if longer); before, the bound was 3
check intervals alone, and with the demo's 1 s checks every actor went stale for 2 s of each
5, and with it the chaos probe ``actors_alive``."""

_BAD_FINALS = {
    RequestState.FAILED: Severity.WARNING,
    RequestState.DEADLINE_EXCEEDED: Severity.WARNING,
    RequestState.REJECTED: Severity.WARNING,
    RequestState.MISFIRED: Severity.WARNING,
}


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A record the safe codec refused: counted per topic, the latest kept as a sample."""

    topic: str
    partition: int
    offset: int
    code: str
    reason: str
    head: bytes = b""
    """The first bytes of the payload (at most 32), shown as hex."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of every table the model keeps (habit 4: bound everything, count the drops)."""

    history: int = 60
    """History points per device (sparklines)."""
    history_step_ms: int = 1000
    max_devices: int = 50_000
    max_links: int = 256
    """Links kept per device state event (the rest dropped and counted)."""
    max_foreign_peers: int = 1000
    """Peers outside the fleet that the graph shows (as ghost edges); edges to more are left
    out of the graph and counted."""
    max_requests: int = 20_000
    max_dlq: int = 1000
    max_timeline: int = 2000
    max_actors: int = 1000
    max_chaos: int = 200
    max_audit: int = 1000
    snapshot_requests: int = 2000
    """Request rows put in a snapshot (most recent first)."""
    snapshot_timeline: int = 500
    deadline_window_s: float = 300.0
    """Sliding window of final outcomes for deadline-miss rates."""


class _Topic:
    __slots__ = ("consumed", "dropped", "sample", "sampled", "undecodable")

    def __init__(self) -> None:
        self.consumed = 0
        self.undecodable = 0
        self.sample = ""
        self.dropped = 0
        self.sampled = 0


class Model:
    """The console's state. Single writer; :meth:`snapshot` is the only way out."""

    def __init__(
        self,
        *,
        check_interval_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        limits: Limits = Limits(),
        analysis_interval_s: float = 1.0,
        bootstrap: str = "",
    ) -> None:
        self.clock = clock
        self.limits = limits
        self.check_interval_s = check_interval_s
        self.analysis_interval_ms = int(analysis_interval_s * 1000)
        self.fleet = Fleet(
            check_interval_s=check_interval_s,
            history=limits.history,
            history_step_ms=limits.history_step_ms,
            max_devices=limits.max_devices,
            max_links=limits.max_links,
        )
        self.topology = Topology(self.fleet, max_foreign_peers=limits.max_foreign_peers)
        self.requests = RequestBook(
            max_requests=limits.max_requests,
            max_dlq=limits.max_dlq,
            window_ms=int(limits.deadline_window_s * 1000),
        )
        self.lag = LagBook()
        self.timeline = Timeline(limits.max_timeline)
        self._topics: dict[str, _Topic] = {}
        self._actors: OrderedDict[str, tuple[Any, int, int]] = OrderedDict()
        """Actor id -> (its latest status, that status's time, its status interval in ms as
        measured, see :meth:`on_actor`)."""
        self._chaos: OrderedDict[str, ChaosView] = OrderedDict()
        self._audit: deque[AuditView] = deque(maxlen=limits.max_audit)
        self._dropped: dict[str, int] = {}
        now = self._now()
        self._connection = Connection(False, now, "", bootstrap)
        self._heard_ms = now
        """When the console last heard from Kafka: records read, or a reachability probe."""
        self._analysis: Analysis | None = None
        self._analysis_ms = 0
        self._analysis_cost_ms = 0
        self._analysis_dirty = True
        self._order: list[tuple[str, DeviceRecord]] = []
        self._order_version = -1
        self._stale: set[str] = set()
        self._seq = 0
        self._rate = 0.0
        self._rate_marks: deque[tuple[int, int]] = deque([(now, 0)])
        """(time, records consumed so far) at snapshots, over the last ``RATE_WINDOW_MS``."""
        self._consumed_total = 0
        self._handlers: dict[type, Callable[[Any], None]] = {
            registry_pb2.RegistryEvent: self.on_registry,
            device_state_pb2.StateEvent: self.on_state,
            device_request_pb2.DeviceRequest: self.on_request,
            device_response_pb2.DeviceResponse: self.on_response,
            chaos_pb2.ChaosExperiment: self.on_chaos,
            audit_pb2.AuditRecord: self.on_audit,
            DlqRecord: self.on_dlq,
            Undecodable: self.on_undecodable,
        }

    def _now(self) -> int:
        return int(self.clock() * 1000)

    # ------------------------------------------------------------------ inputs

    def apply(self, events: Iterable[Any]) -> None:
        """Fold a batch of decoded events in (unknown types are counted, never raised)."""
        handlers = self._handlers
        for ev in events:
            h = handlers.get(type(ev))
            if h is None:
                self._drop("unknown-event-type")
            else:
                h(ev)

    def consumed(self, topic: str, n: int) -> None:
        """The ingest read ``n`` records of ``topic`` (decodable or not)."""
        t = self._topic(topic)
        t.consumed += n
        self._consumed_total += n
        self._heard_ms = self._now()

    def sampled(self, topic: str, n: int) -> None:
        """The ingest skipped ``n`` records of ``topic`` that later ones superseded."""
        self._topic(topic).sampled += n

    def mark_offset(self, topic: str, partition: int, offset: int, timestamp_ms: int) -> None:
        """Offset/timestamp pair of a record read, for lag in seconds."""
        self.lag.mark(topic, partition, offset, timestamp_ms)

    def set_lag(self, samples: list[LagSample]) -> None:
        self.lag.update(samples, self._now())

    def set_connection(self, connected: bool, error: str = "") -> None:
        """The reader's or the reachability probe's verdict (asked again and again). An
        outage runs from the last time the console heard from Kafka to the first verdict that
        it can read again (``Fleet.outage``: silence during it is not the devices')."""
        c = self._connection
        now = self._now()
        outage = self.fleet.outage
        if connected:
            self._heard_ms = now
            if outage is not None and outage[1] is None:
                self.fleet.outage = (outage[0], now)
        elif c.connected:  # contact lost (a console that never had it has no outage to discount)
            self.fleet.outage = (self._heard_ms, None)
        if connected != c.connected:
            self.timeline.add(
                now,
                "connection",
                c.bootstrap,
                "connected"
                if connected
                else f"disconnected: {error}; the fleet is shown as last heard of",
                Severity.INFO if connected else Severity.ERROR,
            )
            c = Connection(connected, now, error or c.last_error, c.bootstrap, c.caught_up)
        elif error and error != c.last_error:
            c = Connection(connected, c.since_ms, error, c.bootstrap, c.caught_up)
        self._connection = c

    @property
    def caught_up(self) -> bool:
        """Whether the reader has read its start-up window (``Connection.caught_up``)."""
        return self._connection.caught_up

    def set_caught_up(self, caught_up: bool) -> None:
        """Whether the reader has read its start-up window (see ``Connection.caught_up``)."""
        c = self._connection
        if caught_up == c.caught_up:
            return
        if caught_up:
            self.timeline.add(self._now(), "connection", c.bootstrap, "start-up window read")
        self._connection = replace(c, caught_up=caught_up)

    def _topic(self, topic: str) -> _Topic:
        t = self._topics.get(topic)
        if t is None:
            t = self._topics[topic] = _Topic()
        return t

    def _drop(self, what: str, n: int = 1) -> None:
        self._dropped[what] = self._dropped.get(what, 0) + n

    def on_undecodable(self, u: Undecodable) -> None:
        t = self._topic(u.topic)
        t.undecodable += 1
        t.sample = f"{u.partition}@{u.offset} {u.code}: {u.reason} | {u.head[:32].hex(' ')}"

    def on_registry(self, ev: Any) -> None:
        kind = ev.WhichOneof("event")
        if kind == "added":
            a = ev.added
            device_id = a.device_id
            rec = self.fleet.devices.get(device_id)
            known = rec is not None and rec.registered
            rec = self.fleet.added(a)
            if rec is None:
                self._drop("devices")
                return
            self._analysis_dirty = True
            if not known:
                self.timeline.add(
                    a.time_unix_ms or self._now(),
                    "registry",
                    device_id,
                    f"added ({rec.stage or '?'} {rec.kind or 'device'} at {rec.base_url})",
                )
        elif kind == "removed":
            r = ev.removed
            if self.fleet.removed(
                r.device_id, r.time_unix_ms if r.time_unix_ms > 0 else self._now()
            ):
                self._analysis_dirty = True
                self.timeline.add(
                    r.time_unix_ms or self._now(),
                    "registry",
                    r.device_id,
                    f"removed{': ' + r.reason if r.reason else ''}",
                    Severity.WARNING,
                )

    def on_state(self, ev: Any) -> None:
        kind = ev.WhichOneof("event")
        if kind == "unchanged":
            st = ev.unchanged.state
        elif kind == "changed":
            st = ev.changed.state
        elif kind == "actor":
            self.on_actor(ev.actor)
            return
        else:
            self._drop("empty-state-event")
            return
        if not st.device_id:
            self._drop("state-without-device")
            return
        # Only a device the fleet does not hold can be one removed since (one lookup a state).
        if st.device_id not in self.fleet.devices and self.fleet.gone(
            st.device_id, st.time_unix_ms
        ):
            self._drop("state-before-removal-sampled")  # superseded, not lost: no warning
            return
        rec = self.fleet.state(st, self._on_transition)
        if rec is None:
            self._drop("devices")
            return
        if st.restarts != rec.restarts:
            if st.restarts > rec.restarts and rec.last_seen_ms and rec.restarts >= 0:
                self.timeline.add(
                    st.time_unix_ms,
                    "health",
                    st.device_id,
                    f"restarted (restarts {rec.restarts} -> {st.restarts})",
                    Severity.WARNING,
                )
            rec.restarts = st.restarts
        self._analysis_dirty = True

    def _on_transition(self, rec: DeviceRecord, device_id: str, old: int, t: int) -> None:
        st = rec.state
        new = HEALTH_NAMES[st.health] if 0 <= st.health < 4 else Health.UNKNOWN
        if old < 0 and new == Health.HEALTHY:
            return
        bad = [f"{c.name}: {c.detail}" for c in st.checks[:8] if c.status != 1]
        because = f" because {'; '.join(bad)}" if bad else (f": {st.reason}" if st.reason else "")
        sev = {
            Health.HEALTHY: Severity.INFO,
            Health.DEGRADED: Severity.WARNING,
        }.get(new, Severity.ERROR)
        self.timeline.add(t, "health", device_id, f"{new.value}{because}", sev)

    def on_actor(self, a: Any) -> None:
        if not a.actor_id:
            self._drop("actor-without-id")
            return
        prev = self._actors.get(a.actor_id)
        t = a.time_unix_ms
        interval = ACTOR_STATUS_INTERVAL_MS
        if prev is not None:
            if t < prev[1]:
                return
            # The gap between its statuses; an early one (after a rebalance) halves the
            # estimate at most, so one short gap does not make the actor stale in between.
            interval = max(t - prev[1], prev[2] // 2)
        if not 0.0 <= a.retry_budget_left < float("inf"):
            a.retry_budget_left = 0.0  # NaN printed "retries nan"
            self._drop("bad-numbers")
        self._actors[a.actor_id] = (a, t, interval)
        self._actors.move_to_end(a.actor_id)
        while len(self._actors) > self.limits.max_actors:
            self._actors.popitem(last=False)
            self._drop("actors")

    def on_request(self, req: Any) -> None:
        if not req.request_id:
            self._drop("request-without-id")
            return
        self.requests.request(
            req,
            _rfc3339_ms(req.deadline),
            _rfc3339_ms(req.schedule_time),
            _rfc3339_ms(req.issued_at),
        )

    def on_response(self, resp: Any) -> None:
        if not resp.request_id:
            if resp.outcome == device_response_pb2.DeviceResponse.REJECTED and resp.actor_id:
                # An actor's answer to a record it could not decode (so no id): it sends it only
                # once the record is in the DLQ, whose entry the model shows with the reason.
                # Counted as "dropped" before, it put "dropped N" in the summary bar's warning
                # colour for every poison record, as if the console had lost data.
                return
            self._drop("response-without-id")
            return
        new = self.requests.response(resp)
        sev = _BAD_FINALS.get(new) if new is not None else None
        if sev is not None and new is not None:
            self.timeline.add(
                resp.time_unix_ms,
                "request",
                resp.request_id,
                f"{new.value} on {resp.device_id}"
                + (f" ({resp.status_code})" if resp.status_code else "")
                + (f": {resp.reason}" if resp.reason else ""),
                sev,
            )

    def on_dlq(self, rec: DlqRecord) -> None:
        request_id = device_id = ""
        if rec.value:
            from pipeconsole.wire.codec import DecodeFailure, decode

            got = decode(device_request_pb2.DeviceRequest, rec.value, allow_unknown=True)
            if not isinstance(got, DecodeFailure):
                request_id, device_id = got.request_id, got.device_id
        entry = self.requests.dead_letter(rec, request_id, device_id)
        self.timeline.add(
            rec.timestamp_ms,
            "dlq",
            request_id or f"{rec.topic}:{rec.partition}@{rec.offset}",
            f"dead-lettered: {entry.reason or entry.code or 'no reason given'}",
            Severity.ERROR,
        )

    def on_chaos(self, ev: Any) -> None:
        phase = CHAOS_PHASES[ev.phase] if 0 <= ev.phase < len(CHAOS_PHASES) else str(ev.phase)
        view = ChaosView(
            experiment_id=ev.experiment_id,
            name=ev.name,
            phase=phase,
            time_ms=ev.time_unix_ms,
            detail=ev.detail,
            targets=tuple(ev.targets[:100]),
            hypothesis_held=ev.hypothesis_held,
            issued_by=ev.issued_by,
            lease_expires_ms=ev.lease_expires_unix_ms,
        )
        self._chaos[ev.experiment_id] = view
        self._chaos.move_to_end(ev.experiment_id)
        while len(self._chaos) > self.limits.max_chaos:
            self._chaos.popitem(last=False)
            self._drop("chaos")
        sev = Severity.ERROR if phase == "ABORTED" else Severity.WARNING
        if phase in ("STEP", "PROBE"):
            sev = Severity.INFO
        self.timeline.add(
            ev.time_unix_ms,
            "chaos",
            ev.experiment_id,
            f"{ev.name or 'experiment'} {phase}" + (f": {ev.detail}" if ev.detail else ""),
            sev,
        )

    def on_audit(self, rec: Any) -> None:
        outcome = (
            AUDIT_OUTCOMES[rec.outcome]
            if 0 <= rec.outcome < len(AUDIT_OUTCOMES)
            else str(rec.outcome)
        )
        if len(self._audit) == self._audit.maxlen:
            self._drop("audit")
        self._audit.appendleft(
            AuditView(
                audit_id=rec.audit_id,
                time_ms=rec.time_unix_ms,
                principal=rec.principal,
                os_user=rec.os_user,
                host=rec.host,
                action=rec.action,
                targets=tuple(rec.targets[:100]),
                preview=rec.preview,
                outcome=outcome,
                reason=rec.reason,
                profile=rec.profile,
                request_ids=tuple(rec.request_ids[:100]),
            )
        )
        self.timeline.add(
            rec.time_unix_ms,
            "audit",
            rec.principal,
            f"{rec.action} {outcome}" + (f": {rec.reason}" if rec.reason else ""),
            Severity.INFO if outcome == "ACCEPTED" else Severity.WARNING,
        )

    # ------------------------------------------------------------------ output

    def analyse(self, now_ms: int | None = None) -> Analysis:
        """Run the graph analyses now (the snapshot does so at a bounded rate)."""
        now = self._now() if now_ms is None else now_ms
        t0 = time.perf_counter()
        self._analysis = self.topology.analyse(now)
        self._analysis_cost_ms = int((time.perf_counter() - t0) * 1000)
        self._analysis_ms = now
        self._analysis_dirty = False
        return self._analysis

    def snapshot(self, *, analyse: bool | None = None) -> Snapshot:
        """An immutable picture of now. ``analyse=None``: recompute the graph analyses when
        something changed and ``analysis_interval_s`` has passed since the last time;
        ``analyse=False`` keeps the last analyses (or none yet: pending)."""
        now = self._now()
        if analyse is None:
            # Adaptive bound: at most every interval, and never more than ~20 % of the time.
            gap = max(self.analysis_interval_ms, 5 * self._analysis_cost_ms)
            analyse = self._analysis is None or (
                now - self._analysis_ms >= gap
                and (self._analysis_dirty or self._stale_changed(now))
            )
        if analyse:
            self.analyse(now)
        # Not analysed yet and told not to (a backlog is being read): no graph, no incidents,
        # and ``graph.computed_ms == 0`` says the analyses are pending, not that all is well.
        analysis = self._analysis or _PENDING
        self._seq += 1
        fleet = self.fleet
        if self._order_version != fleet.structure_version:
            self._order = sorted(fleet.devices.items(), key=lambda kv: (kv[1].stage, kv[0]))
            self._order_version = fleet.structure_version
        view = fleet.view
        devices = tuple(view(d, rec, now) for d, rec in self._order)
        self._note_stale(devices, now)
        counts = {h: 0 for h in Health}
        stale = in_flight = 0
        for v in devices:
            counts[v.health] += 1
            stale += v.stale
            in_flight += v.in_flight
        total = len(devices)
        stage_of = {v.device_id: v.stage for v in devices}
        miss_rate, misses = self.requests.deadline_misses(now, stage_of)
        lag_rows = self.lag.rows()
        self._update_rate(now)
        dropped = dict(self._dropped)
        dropped.update(
            {
                "timeline": self.timeline.dropped,
                "requests": self.requests.evicted,
                "history-points-sampled": fleet.sampled,
                "devices": fleet.refused + self._dropped.get("devices", 0),
                "links": fleet.links_dropped,
                "bad-numbers": fleet.bad_numbers + self._dropped.get("bad-numbers", 0),
                "bad-link-rates": self.topology.bad_rates,
                "foreign-peers": self.topology.foreign_dropped,
            }
        )
        stale_actor_ms = 3 * int(self.check_interval_s * 1000)
        return Snapshot(
            time_ms=now,
            seq=self._seq,
            connection=self._connection,
            fleet=FleetSummary(
                total=total,
                healthy=counts[Health.HEALTHY],
                degraded=counts[Health.DEGRADED],
                failing=counts[Health.FAILING],
                unknown=counts[Health.UNKNOWN],
                stale=stale,
                unhealthy_fraction=(total - counts[Health.HEALTHY]) / total if total else 0.0,
                ingest_rate=round(self._rate, 1),
                total_lag=sum(r.lag for r in lag_rows),
                max_lag_seconds=max((r.lag_seconds or 0.0 for r in lag_rows), default=0.0),
                deadline_miss_rate=miss_rate,
                in_flight=in_flight,
                topics=tuple(
                    TopicCounters(name, t.consumed, t.undecodable, t.sample, t.dropped, t.sampled)
                    for name, t in sorted(self._topics.items())
                ),
            ),
            devices=devices,
            graph=analysis.graph,
            incidents=analysis.incidents,
            bottlenecks=analysis.bottlenecks,
            requests=self.requests.rows(now, self.limits.snapshot_requests),
            at_risk=self.requests.at_risk(now),
            requests_total=self.requests.total,
            outcomes=tuple(sorted(self.requests.outcomes.items())),
            deadline_misses=misses,
            dlq=tuple(self.requests.dlq),
            dlq_total=self.requests.dlq_total,
            lag=lag_rows,
            actors=tuple(
                _actor_view(a, now - t > max(stale_actor_ms, 3 * interval))
                for a, t, interval in self._actors.values()
            ),
            chaos=tuple(reversed(self._chaos.values())),
            audit=tuple(self._audit),
            timeline=self.timeline.newest_first(self.limits.snapshot_timeline),
            dropped=tuple(sorted((k, v) for k, v in dropped.items())),
            check_interval_s=self.check_interval_s,
        )

    def _stale_changed(self, now: int) -> bool:
        stale_at = self.fleet.stale_at
        return any(
            stale_at(rec.last_seen_ms, now) != (d in self._stale)
            for d, rec in self.fleet.devices.items()
        )

    def _note_stale(self, devices: tuple[Any, ...], now: int) -> None:
        """A device falling silent goes on the timeline, unless its last report already said
        UNKNOWN (that report's transition is there): a device whose actor reports UNKNOWN
        after each timed-out check, slower than 3 check intervals, flaps between silent and
        reported, and put "UNKNOWN: no state event for 3 s" on the timeline every few
        seconds for as long as the fault lasted."""
        stale = {v.device_id: v for v in devices if v.stale and v.last_seen_ms}
        for d in sorted(stale.keys() - self._stale):
            v = stale[d]
            if v.reported_health != Health.UNKNOWN:
                self.timeline.add(now, "health", d, f"UNKNOWN: {v.reason}", Severity.ERROR)
        outage = self.fleet.outage
        if outage is not None and outage[1] is None:
            # Noticed late (the probe polls every few seconds): devices that fell silent since
            # the console last heard from Kafka are as last known again. Say so once, so the
            # timeline's "UNKNOWN" lines before "disconnected" are not left unexplained.
            back = [d for d in self._stale - stale.keys() if d in self.fleet.devices]
            if back:
                self.timeline.add(
                    now,
                    "connection",
                    self._connection.bootstrap,
                    f"{len(back)} device(s) no longer counted silent: the silence was the "
                    "console's own outage (shown as last heard of)",
                    Severity.INFO,
                )
        self._stale = set(stale)

    def _update_rate(self, now: int) -> None:
        """Records per second over the last ``RATE_WINDOW_MS`` (at least a second of them)."""
        marks = self._rate_marks
        total = self._consumed_total
        while len(marks) > 1 and now - marks[1][0] >= RATE_WINDOW_MS:
            marks.popleft()
        t0, n0 = marks[0]
        if now - t0 >= 1000:
            self._rate = (total - n0) / ((now - t0) / 1000)
        if now - marks[-1][0] >= 250:  # at most ~21 marks
            marks.append((now, total))


def _actor_view(a: Any, stale: bool) -> ActorView:
    return ActorView(
        actor_id=a.actor_id,
        host=a.host,
        pid=a.pid,
        time_ms=a.time_unix_ms,
        started_ms=a.started_unix_ms,
        devices=tuple(a.devices[:10_000]),
        partitions=tuple(
            PartitionView(p.topic, p.partition, p.committed, p.high_read, p.pending, p.paused)
            for p in a.partitions[:1000]
        ),
        scheduled=a.scheduled,
        in_flight=a.in_flight,
        in_flight_limit=a.in_flight_limit,
        retry_budget_left=a.retry_budget_left,
        executed=a.executed,
        rejected=a.rejected,
        dead_lettered=a.dead_lettered,
        group=a.group,
        dlq_alarm=a.dlq_alarm,
        stale=stale,
    )


def _rfc3339_ms(text: str) -> int:
    """Unix ms of an RFC 3339 time, 0 when empty or unreadable (display only; the actors
    parse strictly and reject bad times with a reason the console shows)."""
    if not text or len(text) > 64:
        return 0
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return 0
    if dt.tzinfo is None:
        return 0
    return int(dt.timestamp() * 1000)
