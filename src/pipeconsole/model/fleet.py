"""The fleet: devices from the registry, their last state, staleness, and metric history.

One :class:`DeviceRecord` per device id, mutable, owned by the model (the single writer).
State events are folded in with as little work as possible, because they are ~80 % of the
traffic: the decoded ``DeviceState`` message itself is kept (no copy of its fields), a few
scalars are compared to notice transitions, and one history point is written into a fixed-size
``array`` ring at most every ``history_step_ms`` per device (skipped points are counted as
sampled). Views for snapshots are rebuilt only for devices that changed (or whose "last seen"
age moved by a second).

Staleness: a device with no state event for more than ``3 x check_interval`` is UNKNOWN,
whatever its last report said ("silence is not health").
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from typing import Any

from pipeconsole.model.snapshot import (
    CheckView,
    DeviceHistory,
    DeviceState,
    DeviceView,
    Health,
    builder,
)

__all__ = ["HEALTH_NAMES", "RECONNECT_GRACE_MS", "STATE_NAMES", "DeviceRecord", "Fleet"]

HEALTH_NAMES: tuple[Health, ...] = (
    Health.UNKNOWN,
    Health.HEALTHY,
    Health.DEGRADED,
    Health.FAILING,
)
"""Wire enum number -> Health (device_state.proto numbering)."""

STATE_NAMES: tuple[DeviceState, ...] = (
    DeviceState.UNKNOWN,
    DeviceState.IDLE,
    DeviceState.BUSY,
    DeviceState.ERROR,
)

_METRICS = 5
"""Metrics per history point: rate_in, rate_out, queue_depth, in_flight, latency_p99_ms."""


_View = builder(DeviceView)
_Check = builder(CheckView)
"""Fast constructors (see :func:`~pipeconsole.model.snapshot.builder`): a complete snapshot
builds a view of every device."""


def _health(n: int) -> Health:
    return HEALTH_NAMES[n] if 0 <= n < len(HEALTH_NAMES) else Health.UNKNOWN


def _state(n: int) -> DeviceState:
    return STATE_NAMES[n] if 0 <= n < len(STATE_NAMES) else DeviceState.UNKNOWN


RECONNECT_GRACE_MS = 30_000
"""After the console's own outage, how long devices have to be heard again before silence
counts: the device actors lose the broker too, and come back with librdkafka's reconnect backoff
(up to 10 s) and a consumer-group rejoin. In the demo, with 3 s of allowed silence, every
device went UNKNOWN a few seconds after the broker returned."""

_INF = float("inf")


class DeviceRecord:
    """Everything the model knows about one device. Mutable; never leaves the model."""

    __slots__ = (
        "base_url",
        "dirty",
        "health_since_ms",
        "hist",
        "hist_len",
        "hist_pos",
        "hist_shared",
        "hist_t",
        "kind",
        "labels",
        "last_health",
        "last_point_ms",
        "last_seen_ms",
        "name",
        "registered",
        "removed",
        "restarts",
        "stage",
        "state",
        "view",
        "view_ms",
    )

    def __init__(self, device_id: str, hist: array[float], hist_t: array[int]) -> None:
        self.name = device_id
        self.stage = ""
        self.kind = ""
        self.base_url = ""
        self.labels: tuple[tuple[str, str], ...] = ()
        self.registered = False
        self.removed = False
        self.state: Any = None
        """The last ``DeviceState`` message (kept as decoded; read lazily for views)."""
        self.last_seen_ms = 0
        self.last_health = -1
        """Wire number of the last reported health (-1: none yet)."""
        self.restarts = 0
        self.health_since_ms = 0
        self.hist = hist
        """The metrics rings: one run of ``history`` points per metric (:meth:`Fleet.series`)."""
        self.hist_t = hist_t
        self.hist_shared = False
        """A view holds the rings (:meth:`Fleet.history_of`): the next write copies them first."""
        self.hist_pos = 0
        self.hist_len = 0
        self.last_point_ms = 0
        self.dirty = True
        self.view: DeviceView | None = None
        self.view_ms = 0


class Fleet:
    """Devices by id, with bounded history. ``on_transition`` receives timeline entries."""

    def __init__(
        self,
        *,
        check_interval_s: float = 5.0,
        history: int = 60,
        history_step_ms: int = 1000,
        max_devices: int = 50_000,
        view_refresh_ms: int = 1000,
        max_links: int = 256,
    ) -> None:
        self.view_refresh_ms = view_refresh_ms
        """Minimum period between rebuilds of a view whose health and staleness did not change
        (scaled up to devices/2 ms for big fleets)."""
        self.check_interval_s = check_interval_s
        self.stale_after_ms = int(3 * check_interval_s * 1000)
        self.outage: tuple[int, int | None] | None = None
        """The console's last outage (it could not read Kafka): (the last time it heard from
        Kafka before, when it could read again or None while it still cannot). A device's
        silence during it is the console's, not the device's: see :meth:`stale_at`."""
        self.history = history
        self.history_step_ms = history_step_ms
        self.max_devices = max_devices
        self.devices: dict[str, DeviceRecord] = {}
        self._gone: dict[str, int] = {}
        """Removed devices -> when (oldest first; at most ``max_devices``): see :meth:`gone`."""
        # Zeroed rings, copied for each new device (a copy is a memcpy: 4x cheaper than zeroing).
        self._hist0 = array("d", bytes(8 * _METRICS * history))
        self._hist_t0 = array("q", bytes(8 * history))
        self.sampled = 0
        """History points skipped (more than one state event per step)."""
        self.refused = 0
        """Devices not tracked because ``max_devices`` was reached."""
        self.max_links = max_links
        """Links kept of one device's state (a 1 MiB state event holds ~35k)."""
        self.links_dropped = 0
        """Links beyond ``max_links`` dropped from state events."""
        self.bad_numbers = 0
        """Rates and latencies that were NaN, infinite or negative, read as 0."""
        self.structure_version = 0
        """Bumped when the set of devices or any device's reported links change."""

    def __iter__(self) -> Iterator[DeviceRecord]:
        return iter(self.devices.values())

    def __len__(self) -> int:
        return len(self.devices)

    def get_or_add(self, device_id: str) -> DeviceRecord | None:
        rec = self.devices.get(device_id)
        if rec is None:
            if len(self.devices) >= self.max_devices:
                self.refused += 1
                return None
            rec = DeviceRecord(device_id, self._hist0[:], self._hist_t0[:])
            self.devices[device_id] = rec
            self.structure_version += 1
        return rec

    # ------------------------------------------------------------------ registry

    def added(self, msg: Any) -> DeviceRecord | None:
        """Fold a ``ServiceAdded`` in."""
        device_id = msg.device_id
        rec = self.get_or_add(device_id)
        if rec is None:
            return None
        rec.name = msg.name or device_id
        rec.stage = msg.stage or rec.stage
        rec.kind = msg.kind
        rec.base_url = msg.base_url
        labels = msg.labels
        rec.labels = tuple(sorted(labels.items()))[:32] if labels else ()
        rec.registered = True
        rec.removed = False
        self._gone.pop(device_id, None)
        rec.dirty = True
        self.structure_version += 1  # stage may have changed: order and layers move
        return rec

    def _fix_numbers(self, st: Any) -> None:
        """Read every rate and latency of ``st`` that is not a finite number >= 0 as 0 (link
        rates: see ``Topology._edges``)."""
        for name in ("rate_in", "rate_out", "latency_p50_ms", "latency_p99_ms"):
            if not 0.0 <= getattr(st, name) < _INF:
                setattr(st, name, 0.0)
                self.bad_numbers += 1

    def removed(self, device_id: str, time_ms: int) -> bool:
        """Fold a removal in (``time_ms``: when it was removed). The device's state events up
        to that time are refused from now on (:meth:`gone`), until it is registered again."""
        gone = self._gone
        gone.pop(device_id, None)
        gone[device_id] = time_ms
        if len(gone) > self.max_devices:
            del gone[next(iter(gone))]
        rec = self.devices.pop(device_id, None)
        if rec is None:
            return False
        self.structure_version += 1
        return True

    def gone(self, device_id: str, time_ms: int) -> bool:
        """Whether a state event of ``device_id`` at ``time_ms`` predates its removal. Records
        of different topics come in no set order (Kafka orders a partition, not a cluster): the
        heartbeat a device sent just before it was removed may be read after the removal, and
        it made the device reappear, unregistered, soon UNKNOWN, for good."""
        if device_id in self.devices:
            return False
        removed = self._gone.get(device_id)
        return removed is not None and time_ms <= removed

    # ------------------------------------------------------------------ state

    def state(
        self,
        st: Any,
        on_transition: Callable[[DeviceRecord, str, int, int], None] | None = None,
    ) -> DeviceRecord | None:
        """Fold one ``DeviceState`` in; returns the record (None when refused).

        ``on_transition(record, device_id, old_health, time_ms)`` is called when the reported
        health changes (old_health is -1 the first time).
        """
        device_id = st.device_id
        rec = self.devices.get(device_id)
        if rec is None:
            rec = self.get_or_add(device_id)
            if rec is None:
                return None
        t = st.time_unix_ms
        if t < rec.last_seen_ms:
            return rec  # older than what we have (replayed window, reordering): ignore
        old = rec.state
        if old is None:
            self.structure_version += 1
        links = st.links
        if len(links) > self.max_links:
            # One state event could otherwise put ~35k peers in the graph, and every analysis
            # of a 24-device fleet then took 0.3 s (and the graph view a layer of 20k nodes).
            self.links_dropped += len(links) - self.max_links
            del links[self.max_links :]
        # A hostile or broken producer's NaN made stage sums NaN, a bottleneck of NaN rates,
        # and `status --json` refuse to print (JSON has no NaN). Every comparison with NaN is
        # false, so each chain below is false for NaN, infinities and negatives alike.
        if not (
            0.0 <= st.rate_in < _INF
            and 0.0 <= st.rate_out < _INF
            and 0.0 <= st.latency_p50_ms < _INF
            and 0.0 <= st.latency_p99_ms < _INF
        ):
            self._fix_numbers(st)
        # Link changes are noticed by the topology, which compares edge sets per analysis.
        rec.state = st
        rec.last_seen_ms = t
        rec.dirty = True
        if not rec.stage and st.stage:
            rec.stage = st.stage
            self.structure_version += 1
        h = st.health
        if h != rec.last_health:
            if on_transition is not None:
                on_transition(rec, device_id, rec.last_health, t)
            rec.last_health = h
            rec.health_since_ms = t
        if t - rec.last_point_ms >= self.history_step_ms:
            rec.last_point_ms = t
            pos = rec.hist_pos
            size = self.history
            hist = rec.hist
            if rec.hist_shared:  # copy on write: a view holds these rings
                hist = rec.hist = hist[:]
                rec.hist_t = rec.hist_t[:]
                rec.hist_shared = False
            hist[pos] = st.rate_in
            hist[size + pos] = st.rate_out
            hist[2 * size + pos] = st.queue_depth
            hist[3 * size + pos] = st.in_flight
            hist[4 * size + pos] = st.latency_p99_ms
            rec.hist_t[pos] = t
            rec.hist_pos = (pos + 1) % self.history
            if rec.hist_len < self.history:
                rec.hist_len += 1
        else:
            self.sampled += 1
        return rec

    # ------------------------------------------------------------------ reading

    def stale_at(self, last_ms: int, now_ms: int) -> bool:
        """Whether something last heard of at ``last_ms`` (0: never) counts as silent at
        ``now_ms``: more than 3 check intervals without a word.

        Except around an outage of the console's own (:attr:`outage`): while it cannot read
        Kafka, and for :data:`RECONNECT_GRACE_MS` (or 3 check intervals, if longer) after it can
        again, only what was already silent when the outage began is. Before, a broker outage
        turned the fleet UNKNOWN device by device, each one a "silent" root-cause candidate,
        and after it every device whose actor had not reported again yet."""
        if last_ms == 0:
            return True
        limit = self.stale_after_ms
        if now_ms - last_ms <= limit:
            return False
        outage = self.outage
        if outage is not None:
            start, end = outage
            if end is None or now_ms < end + max(limit, RECONNECT_GRACE_MS):
                return start - last_ms > limit
        return True

    def is_stale(self, rec: DeviceRecord, now_ms: int) -> bool:
        return self.stale_at(rec.last_seen_ms, now_ms)

    def health_and_staleness(self, rec: DeviceRecord, now_ms: int) -> tuple[Health, bool]:
        """(effective health, stale) at once: the analyses ask both of every device."""
        last = rec.last_seen_ms
        if last == 0 or (now_ms - last > self.stale_after_ms and self.stale_at(last, now_ms)):
            return Health.UNKNOWN, True
        if rec.state is None:
            return Health.UNKNOWN, False
        return _health(rec.last_health), False

    def series(self, rec: DeviceRecord, metric: int) -> list[float]:
        """One metric's history, oldest first (the ring is one contiguous run per metric)."""
        n, size, pos = rec.hist_len, self.history, rec.hist_pos
        base = metric * size
        hist = rec.hist
        if n < size:
            return hist[base : base + n].tolist()
        return hist[base + pos : base + size].tolist() + hist[base : base + pos].tolist()

    def times(self, rec: DeviceRecord) -> list[int]:
        n, size, pos = rec.hist_len, self.history, rec.hist_pos
        ht = rec.hist_t
        if n < size:
            return ht[:n].tolist()
        return ht[pos:].tolist() + ht[:pos].tolist()

    def history_of(self, rec: DeviceRecord) -> DeviceHistory:
        if rec.hist_len == 0:
            return DeviceHistory()
        # The rings themselves, unpacked when first read (most views never are). Shared, not
        # copied: the record's next write copies them first (:meth:`state`), so what the view
        # holds never changes. A cold 10k-device snapshot copied ~30 MB of rings (20-35 ms of
        # its ~120 ms of views); live, a device is written about as often as its view is built.
        rec.hist_shared = True
        return DeviceHistory.packed(rec.hist, rec.hist_t, self.history, rec.hist_pos, rec.hist_len)

    def history_now(self, rec: DeviceRecord) -> DeviceHistory:
        """The history as tuples at once (what :meth:`history_of` unpacks lazily)."""
        if rec.hist_len == 0:
            return DeviceHistory()
        series = self.series
        return DeviceHistory(
            time_ms=tuple(self.times(rec)),
            rate_in=tuple(series(rec, 0)),
            rate_out=tuple(series(rec, 1)),
            queue_depth=tuple(map(int, series(rec, 2))),
            in_flight=tuple(map(int, series(rec, 3))),
            latency_p99_ms=tuple(series(rec, 4)),
        )

    def view(self, device_id: str, rec: DeviceRecord, now_ms: int) -> DeviceView:
        """The device's view at ``now_ms``, rebuilt only when it changed or aged a second."""
        age_ms = now_ms - rec.last_seen_ms if rec.last_seen_ms else -1
        view = rec.view
        if view is not None:
            # Rebuilt at once when what an operator acts on changed (staleness, health);
            # otherwise (metrics, the "last seen" age) at most every refresh period, which grows
            # with the fleet (10k devices: 5 s, their check interval). The exact age is always
            # ``snapshot.time_ms - view.last_seen_ms``.
            refresh = max(self.view_refresh_ms, len(self.devices) // 2)
            if (
                view.stale == self.is_stale(rec, now_ms)
                and view.reported_health
                == (_health(rec.last_health) if rec.state else view.reported_health)
                and now_ms - rec.view_ms < refresh
            ):
                return view
        view = self._build_view(device_id, rec, now_ms, age_ms)
        rec.view = view
        rec.view_ms = now_ms
        rec.dirty = False
        return view

    def _build_view(
        self, device_id: str, rec: DeviceRecord, now_ms: int, age_ms: int
    ) -> DeviceView:
        st = rec.state
        stale = self.is_stale(rec, now_ms)
        reported = _health(rec.last_health) if st is not None else Health.UNKNOWN
        reason = st.reason if st is not None else ""
        if st is None:
            reason = "no state event yet"
        elif stale:
            reason = (
                f"no state event for {age_ms / 1000:.0f} s "
                f"(> 3 x {self.check_interval_s:g} s check interval)"
            )
        health = Health.UNKNOWN if stale else reported
        if st is None:
            return _View(
                device_id=device_id,
                name=rec.name,
                stage=rec.stage,
                kind=rec.kind,
                base_url=rec.base_url,
                state=DeviceState.UNKNOWN,
                health=Health.UNKNOWN,
                reported_health=Health.UNKNOWN,
                stale=True,
                last_seen_ms=0,
                last_seen_age_s=None,
                reason=reason,
                checks=(),
                in_flight=0,
                queue_depth=0,
                queue_capacity=0,
                rate_in=0.0,
                rate_out=0.0,
                latency_p50_ms=0.0,
                latency_p99_ms=0.0,
                deadline_misses=0,
                restarts=0,
                seq=0,
                actor_id="",
                registered=rec.registered,
                labels=rec.labels,
            )
        return _View(
            device_id=device_id,
            name=rec.name,
            stage=rec.stage or st.stage,
            kind=rec.kind,
            base_url=rec.base_url,
            state=_state(st.state),
            health=health,
            reported_health=reported,
            stale=stale,
            last_seen_ms=rec.last_seen_ms,
            last_seen_age_s=max(0.0, age_ms / 1000),
            reason=reason,
            checks=tuple([_Check(c.name, _health(c.status), c.detail) for c in st.checks[:32]]),
            in_flight=st.in_flight,
            queue_depth=st.queue_depth,
            queue_capacity=st.queue_capacity,
            rate_in=st.rate_in,
            rate_out=st.rate_out,
            latency_p50_ms=st.latency_p50_ms,
            latency_p99_ms=st.latency_p99_ms,
            deadline_misses=st.deadline_misses,
            restarts=st.restarts,
            seq=st.seq,
            actor_id=st.actor_id,
            registered=rec.registered,
            labels=rec.labels,
            history=self.history_of(rec),
            health_since_ms=rec.health_since_ms,
        )
