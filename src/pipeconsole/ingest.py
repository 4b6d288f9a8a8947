"""Kafka -> safe decode -> the model, on a reader thread; snapshots out through a callback.

The map:

- :class:`Ingest` owns a :class:`~pipeconsole.model.Model` (it is its single writer) and one
  :class:`~pipeconsole.kafka.reader.AssignReader` over the seven topics the console watches
  (registry, state, request, response, DLQ, chaos, audit). It never joins a group and never
  commits. Start-up is *snapshot then follow*: the compacted registry from the beginning, every
  other topic from ``now - snapshot_window_s`` (``offsets_for_times``), then follow.
- :func:`decode_batch` turns records into model events. Every payload goes through the size
  cap; low-volume topics go through the safe codec (``pipeconsole.wire.codec.decode``); the
  state topic (~80 % of the traffic) is parsed by upb directly, whose parser is bounded (depth
  100, UTF-8 checked, no recursion in Python), and only a payload upb refuses is handed to the
  codec to classify the failure. What cannot be decoded becomes an ``Undecodable`` note
  (counted per topic, the latest kept as a sample) — never an exception.
- A small side thread polls consumer-group lag (``group_lag``) and the cluster's reachability at
  a bounded rate and hands the results to the reader thread through a queue, so a slow admin
  call never stalls ingest and the model still has one writer.
- Snapshots are posted through ``on_snapshot`` at most ``snapshot_hz`` times a second. A
  failing callback is logged, never raised into the loop.

Connection loss: a reader that cannot be created (no metadata) or a probe that fails marks the
model disconnected with the reason; the loop retries with a bounded backoff.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pipeconsole.config import Profile
from pipeconsole.kafka.records import Record
from pipeconsole.model import DlqRecord, LagSample, Model, Snapshot, Undecodable
from pipeconsole.wire.codec import DEFAULT_MAX_BYTES, UPB, DecodeFailure, decode
from pipeconsole.wire.gen import (
    audit_pb2,
    chaos_pb2,
    device_request_pb2,
    device_response_pb2,
    device_state_pb2,
    registry_pb2,
)

__all__ = [
    "DEFAULT_LAG_GROUP",
    "HEARTBEAT_TAG",
    "Ingest",
    "IngestOptions",
    "decode_batch",
    "message_types",
]

LOG = logging.getLogger("pipeconsole.ingest")

DEFAULT_LAG_GROUP = "pipeconsole-dispatch"
"""The device actors' consumer group (`pipeconsole dispatch --group` default), whose lag the
console shows."""


def message_types(profile: Profile) -> dict[str, Any]:
    """Topic name -> message type (None for the DLQ: raw bytes and headers)."""
    t = profile.topics
    return {
        t.registry: registry_pb2.RegistryEvent,
        t.state: device_state_pb2.StateEvent,
        t.request: device_request_pb2.DeviceRequest,
        t.response: device_response_pb2.DeviceResponse,
        t.dlq: None,
        t.chaos: chaos_pb2.ChaosExperiment,
        t.audit: audit_pb2.AuditRecord,
    }


def decode_batch(
    records: Iterable[Record],
    types: dict[str, Any],
    *,
    fast_topics: frozenset[str] = frozenset(),
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[Any]:
    """Model events for ``records``; never raises. ``fast_topics`` are parsed by upb directly."""
    out: list[Any] = []
    append = out.append
    for r in records:
        topic = r.topic
        mtype = types.get(topic, False)
        value = r.value
        if mtype is None:
            append(DlqRecord(topic, r.partition, r.offset, r.timestamp_ms, r.key, value, r.headers))
            continue
        if mtype is False:
            continue
        if value is None and mtype is registry_pb2.RegistryEvent and r.key:
            # A tombstone on the compacted registry: the device is gone.
            key = r.key.decode("utf-8", "replace")
            append(
                registry_pb2.RegistryEvent(
                    removed=registry_pb2.ServiceRemoved(
                        device_id=key, time_unix_ms=r.timestamp_ms, reason="tombstone"
                    )
                )
            )
            continue
        if topic in fast_topics and value and len(value) <= max_bytes:
            try:
                append(mtype.FromString(value))
                continue
            except Exception:
                pass  # let the codec say why
        got = decode(mtype, value, max_bytes=max_bytes, allow_unknown=True)
        if isinstance(got, DecodeFailure):
            append(
                Undecodable(topic, r.partition, r.offset, got.code, got.reason, (value or b"")[:32])
            )
        else:
            append(got)
    return out


_BACKLOG = 10_000
"""Records known to be waiting after a batch (``AssignReader.behind``) that make a backlog."""

_GATHER_MIN_S, _GATHER_MAX_S = 1.0, 5.0
"""Shortest and longest time one poll gathers while a backlog is read (:meth:`Ingest.step`)."""

_NEARLY_CAUGHT_UP_S = 1.0
"""While a backlog is read, a snapshot due when the rest would be read within this long (at the
rate just measured) waits for the rest: the analysed snapshot that follows replaces it."""

HEARTBEAT_TAG = 0x12
"""First byte of a serialized ``StateEvent`` whose oneof is ``unchanged`` (field 2, wire type 2):
the reader's supersede tag for the state topic.

A ``ServiceStateUnchanged`` says "nothing changed, here are fresh metrics"; when a batch holds a
later event of the same device, the earlier heartbeat adds nothing the console shows but a
sparkline point, so the reader skips it undecoded and the model counts it as sampled. Changes
(``ServiceStateChanged``), actor statuses and undecodable records are always kept. This only
bites while catching up on a backlog: live batches rarely repeat a device."""


@dataclass(frozen=True, slots=True)
class IngestOptions:
    snapshot_hz: float = 4.0
    """Snapshots posted per second, at most."""
    window_s: float = 900.0
    """How far back state, requests and responses are read at start-up."""
    lag_group: str = DEFAULT_LAG_GROUP
    lag_interval_s: float = 5.0
    """How often lag and reachability are polled."""
    probe_timeout_s: float = 5.0
    """How long one lag/reachability poll may take before the broker counts as unreachable
    (a frozen broker shows as an outage within about this long)."""
    batch: int = 500_000
    """Records per poll, at most, superseded heartbeats not counted (a poll also stops after
    about a second, or when librdkafka has nothing more fetched; until the start-up window is
    read, only when it is read or the gather's time is up). Superseded heartbeats are dropped
    while a batch is gathered, so a big batch costs memory for its survivors only; the bigger
    the batch, the more of a backlog's heartbeats are superseded undecoded."""
    retry_max_s: float = 5.0
    """Longest wait between reconnection attempts."""
    connect_timeout_s: float = 10.0
    """How long one attempt to create the reader (cluster metadata, offsets by time) may take
    before it counts as failed and the snapshot says why."""


class Ingest:
    """The reader thread. ``start()``, then snapshots arrive via ``on_snapshot``; ``stop()``."""

    def __init__(
        self,
        profile: Profile,
        *,
        on_snapshot: Callable[[Snapshot], None] | None = None,
        options: IngestOptions | None = None,
        model: Model | None = None,
        reader_factory: Callable[..., Any] | None = None,
        lag_fn: Callable[[Profile, str, list[str], float], list[Any]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.profile = profile
        self.options = options or IngestOptions(
            snapshot_hz=profile.refresh_hz, window_s=profile.snapshot_window_s
        )
        self.model = model or Model(
            check_interval_s=profile.check_interval_s, clock=clock, bootstrap=profile.bootstrap
        )
        self.model.set_caught_up(False)  # until its reader has read the start-up window
        self.on_snapshot = on_snapshot
        self._clock = clock
        if reader_factory is None:
            from pipeconsole.kafka.reader import AssignReader

            reader_factory = AssignReader
        self._reader_factory = reader_factory
        if lag_fn is None:
            from pipeconsole.kafka.admin import group_lag

            lag_fn = group_lag
        self._lag_fn = lag_fn
        self.types = message_types(profile)
        self.fast_topics = frozenset({profile.topics.state}) if UPB else frozenset()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lag_thread: threading.Thread | None = None
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._reader: Any = None
        self._snapshot_cost = 0.0
        """Seconds the last snapshot took to build."""
        self._backlog = False
        """The last step read a backlog."""
        self._last_post = 0.0
        self._down_at = -math.inf
        """When the reader last said no broker can be reached (monotonic): a probe that began
        before it and answered "up" is not believed."""
        self.latest: Snapshot | None = None
        """The last snapshot posted (read from any thread: it is immutable)."""
        self.errors = 0
        """Exceptions caught in the loop (bugs, not network errors): logged and counted."""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="pipeconsole-ingest", daemon=True)
        self._thread.start()
        self._lag_thread = threading.Thread(
            target=self._lag_loop, name="pipeconsole-lag", daemon=True
        )
        self._lag_thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for t in (self._thread, self._lag_thread):
            if t is not None:
                t.join(timeout)

    def __enter__(self) -> Ingest:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the reader loop

    def connect(self) -> bool:
        """Create the reader; on failure mark the model disconnected and return False."""
        t = self.profile.topics
        since = int((self._clock() - self.options.window_s) * 1000)
        start: dict[str, Any] = {name: since for name in self.types}
        start[t.registry] = "beginning"
        try:
            self._reader = self._reader_factory(
                self.profile,
                list(self.types),
                start,
                metadata_timeout_s=self.options.connect_timeout_s,
            )
        except Exception as exc:  # ReaderError, KafkaException: the reason goes on screen
            self.model.set_connection(False, str(exc) or type(exc).__name__)
            return False
        self.model.set_connection(True)
        # The first snapshot waits a period like any other: a backlog is read first (at 10k
        # devices a snapshot costs 0.2-0.4 s); the UI says "waiting for the first snapshot".
        self._last_post = time.monotonic()
        return True

    def run(self) -> None:
        """The loop: connect, then fold batches in until ``stop()``. Never raises."""
        backoff = 0.2
        while not self._stop.is_set():
            if self._reader is None and not self.connect():
                self._post(force=True)
                self._stop.wait(backoff)
                backoff = min(self.options.retry_max_s, backoff * 2)
                continue
            backoff = 0.2
            try:
                self.step()
            except Exception:
                self.errors += 1
                LOG.exception("ingest step failed (continuing)")
                self._stop.wait(0.1)
        self.close()

    def step(self, timeout: float = 0.1) -> int:
        """Read one batch, fold it in, maybe post a snapshot. Returns the records read."""
        self._drain_inbox()
        reader = self._reader
        before = getattr(reader, "superseded", None)
        skipped = 0
        started = time.monotonic()
        if before is None:  # an injected reader without the supersede option
            records = reader.poll_batch(self.options.batch, timeout)
        else:
            state = self.profile.topics.state
            records = reader.poll_batch(
                self.options.batch,
                timeout,
                supersede=(state, HEARTBEAT_TAG),
                gather_s=self._gather_s(started),
                stop=self._stop,
                # Until the start-up window is read, a short first read or a dry moment does
                # not end the batch (the reader waits for its marks): one fold for the window.
                startup=not self.model.caught_up,
            )
            skipped = reader.superseded - before
            if skipped:
                self.model.sampled(state, skipped)
        read_s = time.monotonic() - started
        take = getattr(reader, "take_brokers_down", None)  # an injected reader may not say
        down = take() if take is not None else None
        if down is not None:
            # At once, where the probe would take up to its interval plus its timeout (5-10 s)
            # to notice a dead broker; the probe says when it is back.
            self._down_at = time.monotonic()
            self.model.set_connection(False, f"no broker reachable: {down}")
        if records:
            self.fold(records)
        if not self.model.caught_up and self._window_read():
            self.model.set_caught_up(True)
        # A backlog (a full batch, or records known to be waiting): snapshot at most at 1 Hz,
        # without the graph analyses, until caught up, so reading wins.
        behind = getattr(reader, "behind", None)
        waiting = behind() if behind is not None else 0
        got = len(records) + skipped
        backlog = got >= self.options.batch or waiting >= _BACKLOG
        self._backlog = backlog
        # Nearly caught up: the rest takes less than a second to read, and a snapshot of the
        # half-read fleet would only delay the complete, analysed one that follows.
        nearly = backlog and got > 0 and waiting * read_s < _NEARLY_CAUGHT_UP_S * got
        self._post(slow=backlog, hold=nearly)
        return len(records)

    @property
    def caught_up(self) -> bool:
        """The reader has read its start-up window: :meth:`_window_read`, asked after every
        step until it says so (the snapshots carry it as ``connection.caught_up``)."""
        return self.model.caught_up

    def _window_read(self) -> bool:
        """Whether every record there was when the reader started has been read: up to each
        partition's high watermark as its first fetch response reported it
        (``AssignReader.reached_marks``, no broker call). False while it cannot tell yet.

        It used to be "a poll came back empty", which a first fetch still on its way also
        gives (``status`` then reported an empty fleet, every SLO held), and which a large live
        fleet's steady traffic may never give (``status`` then waited out its timeout).
        """
        reached = getattr(self._reader, "reached_marks", None)
        if reached is None:  # not connected, or an injected reader that cannot tell
            return False
        try:
            return bool(reached())
        except Exception as exc:  # e.g. the reader closed under us: ask again after a step
            LOG.info("cannot tell yet whether the start-up window is read: %s", exc)
            return False

    def _gather_s(self, now: float) -> float:
        """How long the next poll may gather a backlog: until the next snapshot is due (its
        survivors are folded in once per snapshot, not once a second: at 10k devices a fold of
        one heartbeat per device costs ~0.1 s), between ``_GATHER_MIN_S`` and ``_GATHER_MAX_S``."""
        if not self._backlog:
            return _GATHER_MIN_S
        due = self._last_post + self._period(slow=True) - now
        return min(_GATHER_MAX_S, max(_GATHER_MIN_S, due))

    def fold(self, records: list[Record]) -> None:
        """Decode ``records`` and apply them to the model (counts per topic included)."""
        model = self.model
        counts: dict[str, int] = {}
        request_topic = self.profile.topics.request
        for r in records:
            counts[r.topic] = counts.get(r.topic, 0) + 1
            if r.topic == request_topic and r.timestamp_ms >= 0:
                model.mark_offset(r.topic, r.partition, r.offset, r.timestamp_ms)
        for topic, n in counts.items():
            model.consumed(topic, n)
        model.apply(decode_batch(records, self.types, fast_topics=self.fast_topics))

    def _period(self, slow: bool) -> float:
        period = (
            max(1.0, 1.0 / self.options.snapshot_hz) if slow else 1.0 / self.options.snapshot_hz
        )
        # Building a snapshot of a big fleet takes a while; never let it take more than about
        # a tenth of the reader's time (a twentieth while reading a backlog), so reading keeps
        # up whatever the fleet size.
        return max(period, (19.0 if slow else 9.0) * self._snapshot_cost)

    def _post(self, force: bool = False, slow: bool = False, hold: bool = False) -> None:
        """Post a snapshot if one is due. ``hold``: nearly caught up on a backlog, so a due
        snapshot waits for the rest, unless it is already a period late."""
        now = time.monotonic()
        period = self._period(slow)
        since = now - self._last_post
        if not force and (since < period or (hold and since < 2 * period)):
            return
        self._last_post = now
        # While a backlog is read the graph analyses wait (root causes of a half-read backlog
        # would mislead, and they cost most of a snapshot at 10k devices): the snapshot keeps
        # the last ones, or says they are pending (``graph.computed_ms == 0``).
        snap = self.model.snapshot(analyse=False if slow else None)
        self._snapshot_cost = time.monotonic() - now
        self.latest = snap
        if self.on_snapshot is not None:
            try:
                self.on_snapshot(snap)
            except Exception:
                self.errors += 1
                LOG.exception("snapshot callback failed (continuing)")

    def snapshot_now(self) -> Snapshot:
        """Fold in pending side results and build a snapshot at once (reader thread only)."""
        self._drain_inbox()
        snap = self.model.snapshot(analyse=True)
        self.latest = snap
        return snap

    def _drain_inbox(self) -> None:
        while True:
            try:
                kind, value = self._inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "lag":
                self.model.set_lag(value)
            elif kind == "up":
                # Reachable, and our reader has its topics; unless the reader said otherwise
                # after this probe began.
                if self._reader is not None and value > self._down_at:
                    self.model.set_connection(True)
            elif kind == "down":
                self.model.set_connection(False, value)

    def close(self) -> None:
        if self._reader is not None:
            try:
                self._reader.close()
            except Exception:
                LOG.debug("reader close failed", exc_info=True)
            self._reader = None

    # ------------------------------------------------------------------ the side thread

    def _lag_loop(self) -> None:
        while not self._stop.is_set():
            self.poll_lag()
            self._stop.wait(self.options.lag_interval_s)

    def poll_lag(self) -> None:
        """Poll lag and reachability once; results go to the reader thread's inbox."""
        topic = self.profile.topics.request
        began = time.monotonic()
        try:
            rows = self._lag_fn(
                self.profile, self.options.lag_group, [topic], self.options.probe_timeout_s
            )
        except Exception as exc:
            self._inbox.put(("down", f"lag poll failed: {exc}"))
            return
        self._inbox.put(("up", began))
        self._inbox.put(
            (
                "lag",
                [LagSample(r.group, r.topic, r.partition, r.committed, r.high) for r in rows],
            )
        )
