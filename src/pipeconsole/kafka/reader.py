"""Read every partition of some topics with ``assign()``: never a group member, never commits.

The console, replay and tests read this way: it starts at once (no group join), and it cannot
disturb the offsets of the device actors' consumer group.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from pipeconsole.config import Profile
from pipeconsole.kafka.client import LOG as LIBRDKAFKA_LOG
from pipeconsole.kafka.client import client_settings, outside_a_group
from pipeconsole.kafka.records import Record

__all__ = ["FETCH_SETTINGS", "AssignReader", "ReaderError", "Start"]

Start = Literal["beginning", "end"] | int
"""Where to start: the beginning, the end, or a timestamp in Unix milliseconds."""


Supersede = tuple[str, int]
"""(topic, tag): a record of ``topic`` whose value starts with the byte ``tag`` is replaceable
by a later record of the same key (see :meth:`AssignReader.poll_batch`)."""


FETCH_SETTINGS: Mapping[str, Any] = {
    "fetch.wait.max.ms": 100,
    # librdkafka pauses a partition's fetches this long once its local queue is over
    # queued.min.messages (default 1000 ms): a reader catching up on a backlog drains that
    # queue in well under a second, then waits on an idle fetcher. At 10 ms a 500k backlog
    # reads 2-3x faster (a plain consume loop too); the cost is a few more wakeups.
    "fetch.queue.backoff.ms": 10,
    # Up to 4 MiB per partition per fetch (default 1): a reader assigned the console's 7 topics
    # (24 partitions, most of them quiet) makes a fetch request per round trip for all of
    # them, and with 1 MiB its catch-up is bound by round trips: a raw loop over the same 7
    # topics read 500-580k msgs/s, 660-780k with 4 MiB (one topic: no difference); the
    # model's ingest of a 1M backlog, 6 pairs: +7 to +43 %, median +14 %. librdkafka's queue
    # stays capped by queued.max.messages.kbytes.
    "max.partition.fetch.bytes": 4 << 20,
}
"""librdkafka fetch settings of every reader (the ingest benchmark gives its raw loop these
too, so that its baseline is not slowed by a default the reader avoids)."""

_CHUNK = 10_000
"""Messages per ``consume()`` call of :meth:`AssignReader.poll_batch`."""

_GATHER_S = 1.0
"""Longest time one :meth:`AssignReader.poll_batch` gathers already-fetched messages, unless
the caller says otherwise (``gather_s``)."""


class ReaderError(Exception):
    """The reader cannot go on (topic missing, broker unreachable); the message says why."""


@dataclass(frozen=True, slots=True)
class _Pos:
    topic: str
    partition: int


class AssignReader:
    """Batches of :class:`Record` from every partition of ``topics``.

    ``start`` may differ per topic (``{"device-registry-v1": "beginning"}``); the default
    applies to the others.
    """

    def __init__(
        self,
        profile: Profile | str,
        topics: Sequence[str],
        start: Start | Mapping[str, Start] = "beginning",
        *,
        metadata_timeout_s: float = 10.0,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        settings = client_settings(
            profile,
            {
                "group.id": f"pipeconsole-reader-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": False,
                "client.id": "pipeconsole-reader",
                # Called from consume(), on the reader's thread.
                "error_cb": self._on_error,
                **FETCH_SETTINGS,
            },
        )
        if extra:
            settings.update(extra)
        self._brokers_down: str | None = None
        self._consumer = Consumer(outside_a_group(settings))
        self._topics = list(topics)
        self._closed = False
        self.superseded = 0
        """Records skipped because a later one of the same key superseded them (``supersede``)."""
        self.paused: tuple[tuple[str, int], ...] = ()
        """Partitions paused while a start-up gather runs (read to their marks already), else
        empty: see :meth:`poll_batch` (``startup``)."""
        try:
            self._assign(start, metadata_timeout_s)
        except Exception:
            self._consumer.close()
            raise

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._brokers_down = err.str()
        # Without an error callback librdkafka logs these itself (facility ERROR); with one it
        # leaves that to us (runs of them are held back by the logger's RepeatFilter).
        LIBRDKAFKA_LOG.error("ERROR [%s]: %s", err.name(), err.str())

    def take_brokers_down(self) -> str | None:
        """librdkafka's word, since the last call, that no broker of the cluster can be reached
        (it comes at once when a broker dies: connections reset, reconnects refused), or None.
        A frozen broker keeps its connections open and says nothing: the caller's probe is for
        that."""
        said, self._brokers_down = self._brokers_down, None
        return said

    def _assign(self, start: Start | Mapping[str, Start], timeout: float) -> None:
        try:
            md = self._consumer.list_topics(timeout=timeout)
        except KafkaException as exc:
            raise ReaderError(f"cannot read cluster metadata: {exc.args[0].str()}") from None
        assignment: list[TopicPartition] = []
        by_time: list[TopicPartition] = []
        beginning: list[TopicPartition] = []
        for topic in self._topics:
            meta = md.topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                raise ReaderError(
                    f"topic {topic!r} does not exist (run: pipeconsole topics ensure)"
                )
            where = start.get(topic, "beginning") if isinstance(start, Mapping) else start
            for p in sorted(meta.partitions):
                if where == "beginning":
                    beginning.append(TopicPartition(topic, p, OFFSET_BEGINNING))
                elif where == "end":
                    assignment.append(TopicPartition(topic, p, OFFSET_END))
                else:
                    by_time.append(TopicPartition(topic, p, int(where)))
        self._not_before: dict[tuple[str, int], int] = {
            (tp.topic, tp.partition): tp.offset for tp in by_time
        }
        """Partitions started by time -> that time: some brokers (Tansu) answer
        offsets_for_times with an earlier offset, so older records are skipped until the
        first one at or after the time."""
        if by_time:
            # The partitions read from the beginning are looked up in the same call (the
            # timestamp OFFSET_BEGINNING, -2, asks for the earliest offset), so that every
            # partition's start is known when assign() runs. Left to librdkafka, they became
            # fetchable a lookup later than the others: its first fetch request then often held
            # only partitions with nothing to read, the broker held it for fetch.wait.max.ms
            # (100 ms), and a console's start-up read was that much later in about half the
            # runs (the reader's 500k read: 0.36-0.47 s, then 0.36-0.37 s in 4 runs; a 0.1 s
            # first wait still shows in about one start of five, a race inside librdkafka).
            try:
                found = self._consumer.offsets_for_times(by_time + beginning, timeout=timeout)
            except KafkaException as exc:
                raise ReaderError(f"cannot look up offsets by time: {exc.args[0].str()}") from None
            for tp in found:
                if tp.offset >= 0:
                    off = tp.offset
                elif (tp.topic, tp.partition) in self._not_before:
                    off = OFFSET_END  # no record at or after the time: start at the end
                else:
                    off = OFFSET_BEGINNING  # not told: librdkafka looks it up
                assignment.append(TopicPartition(tp.topic, tp.partition, off))
        else:
            assignment += beginning
        self._consumer.assign(assignment)
        self.partitions = [(tp.topic, tp.partition) for tp in assignment]
        self._starts = {(tp.topic, tp.partition): tp.offset for tp in assignment}
        """Where each partition started: an offset, OFFSET_BEGINNING or OFFSET_END."""
        self._marks: dict[tuple[str, int], int] | None = None
        """Partition -> the high watermark it is to be read up to, until it is (None: no marks
        noted yet; see :meth:`reached_marks`)."""
        self._unmarked: set[tuple[str, int]] = set()
        """Partitions whose mark librdkafka's cache does not know yet."""

    def poll_batch(
        self,
        max_records: int = 5000,
        timeout: float = 0.1,
        *,
        supersede: Supersede | None = None,
        gather_s: float = _GATHER_S,
        stop: threading.Event | None = None,
        startup: bool = False,
    ) -> list[Record]:
        """Up to ``max_records`` records; empty when none came within ``timeout``.

        Errors of individual records (a partition EOF, a transient fetch error) are logged
        through librdkafka's logger and skipped; they never raise.

        ``supersede = (topic, tag)``: a record of ``topic`` whose value starts with the byte
        ``tag`` is skipped when a later record of ``topic`` in the same batch has the same key (a
        heartbeat superseded by a newer one); skipped records are counted in
        :attr:`superseded`, never silently lost. Superseded messages are dropped while the
        batch is gathered (as each ``consume()`` call returns them), so a large batch costs
        memory for its survivors only, and ``max_records`` counts survivors.

        ``gather_s``: once the first ``consume()`` comes back full (a backlog), how long at most
        to go on taking what librdkafka has already fetched; ``stop``, once set, ends it early.

        ``startup``: the caller is reading its start-up window (:meth:`reached_marks` has not
        said so yet). Then a first ``consume()`` that comes back short does not end the batch
        while the marks are not reached, nor does librdkafka running dry for a moment: the
        gather waits for the next fetch (``timeout`` at a time) until the marks are reached,
        ``gather_s`` has passed or ``stop`` is set. A backlog's first fetch response is often
        partial (6,670 of a 500k backlog), and ending the batch there cost a fold of those
        records (one heartbeat per device they hold) that the rest of the backlog supersedes.
        """
        if supersede is None:
            msgs = self._take(max_records, timeout, None, gather_s, stop, startup)
        else:
            compactor = _Compactor(*supersede)
            msgs = self._take(max_records, timeout, compactor, gather_s, stop, startup)
            self.superseded += compactor.dropped
        out: list[Record] = []
        append = out.append
        not_before = self._not_before
        # The hot loop of every reader: positional construction, no per-record helper calls
        # unless a record has headers. Without deserializers, keys and values are bytes.
        for m in msgs:
            if m.error() is not None:
                continue
            ts_type, ts = m.timestamp()
            if not_before:
                where = (m.topic() or "", m.partition() or 0)
                floor = not_before.get(where)
                if floor is not None:
                    if ts_type and ts < floor:
                        continue
                    del not_before[where]
            h = m.headers()
            append(
                Record(
                    m.topic(),
                    m.partition(),
                    m.offset(),
                    ts if ts_type else -1,
                    m.key(),
                    m.value(),
                    _headers(h) if h else (),
                )
            )
        return out

    def _take(
        self,
        max_records: int,
        timeout: float,
        compactor: _Compactor | None,
        gather_s: float = _GATHER_S,
        stop: threading.Event | None = None,
        startup: bool = False,
    ) -> list[Any]:
        """Up to ``max_records`` messages: one call that may wait ``timeout``; when it comes back
        full, more calls that take only what librdkafka has already fetched, until none is left
        or ``gather_s`` has passed. A single ``consume(50_000)`` waits for fetches to fill it
        and reads 3-4x slower than 10k calls; calls that take what is there never wait (10k
        calls that wait 50-100 ms read 2x slower, and waiting for a single message when the
        queue runs dry measured no better than stopping).
        The ``compactor`` (the supersede pass) takes each call's messages as they come, and
        ``max_records`` then counts the messages it keeps: superseded ones are gone, and the
        time a gather takes is bounded by ``gather_s`` (counting every message read ended a
        backlog of exactly ``max_records`` heartbeats one call short, and its last records,
        the registry's among them, then cost a fold of their own). ``startup``: see
        :meth:`poll_batch`."""
        consume = self._consumer.consume
        msgs = consume(num_messages=min(max_records, _CHUNK), timeout=timeout)
        read = len(msgs)
        startup = startup and read > 0 and not self.reached_marks()
        if read < _CHUNK and not startup:
            if compactor is None or read < 2:
                return msgs  # live traffic: what came within the timeout
            compactor.add(msgs)
            return compactor.survivors()
        if compactor is not None:
            compactor.add(msgs)
            msgs, read = [], compactor.size
        if startup:
            self._pause_read()
        try:
            return self._gather(
                msgs, read, max_records, timeout, compactor, gather_s, stop, startup
            )
        finally:
            if self.paused:
                self._consumer.resume([TopicPartition(t, p) for t, p in self.paused])
                self.paused = ()

    def _pause_read(self) -> None:
        """Pause the partitions already read to their marks (see :meth:`reached_marks`) and
        note them in :attr:`paused`: the start-up gather's fetch requests then hold only the
        partitions with something left to read. The console reads 24 partitions, most of
        them quiet, and each fetch request carried all of them: the start-up read of a 500k
        backlog took 0.28-0.41 s against 0.27-0.30 s with the quiet ones paused (6
        interleaved pairs). They are resumed when the gather ends; their positions stay, so
        nothing written meanwhile is missed."""
        marks, unmarked = self._marks or {}, self._unmarked
        quiet = tuple(k for k in self.partitions if k not in marks and k not in unmarked)
        if quiet:
            try:
                self._consumer.pause([TopicPartition(t, p) for t, p in quiet])
            except KafkaException as exc:
                LIBRDKAFKA_LOG.info("cannot pause the partitions read: %s", exc)
                return
            self.paused = quiet

    def _gather(
        self,
        msgs: list[Any],
        read: int,
        max_records: int,
        timeout: float,
        compactor: _Compactor | None,
        gather_s: float,
        stop: threading.Event | None,
        startup: bool,
    ) -> list[Any]:
        """The rest of :meth:`_take`, once its first call came back full (or ``startup``)."""
        consume = self._consumer.consume
        deadline = time.monotonic() + gather_s
        while read < max_records:
            more = consume(num_messages=min(_CHUNK, max_records - read), timeout=0)
            if not more and startup:
                # Dry for a moment while the start-up window is not read: wait for the next
                # fetch rather than end the batch (and pay a fold of its survivors). poll()
                # returns with the first message; consume() would wait to fill its count.
                startup = not self.reached_marks() and time.monotonic() < deadline
                if startup and not (stop is not None and stop.is_set()):
                    first = self._consumer.poll(timeout)
                    more = [first] if first is not None else []
            if not more:
                break
            if compactor is None:
                msgs += more
                read += len(more)
            else:
                compactor.add(more)
                read = compactor.size
            if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                break
        if compactor is None:
            return msgs
        return compactor.survivors()

    def batches(self, idle_timeout: float | None = None) -> Iterator[list[Record]]:
        """Yield non-empty batches; stop after ``idle_timeout`` seconds without records."""
        last = time.monotonic()
        while not self._closed:
            batch = self.poll_batch()
            if batch:
                last = time.monotonic()
                yield batch
            elif idle_timeout is not None and time.monotonic() - last > idle_timeout:
                return

    def watermarks(self, timeout: float = 10.0) -> dict[tuple[str, int], tuple[int, int]]:
        """(low, high) offsets of every assigned partition: a broker call each, all within
        ``timeout`` seconds (:class:`ReaderError` says which partition did not answer)."""
        deadline = time.monotonic() + timeout
        out = {}
        for topic, p in self.partitions:
            left = deadline - time.monotonic()
            try:
                got = (
                    self._consumer.get_watermark_offsets(
                        TopicPartition(topic, p), timeout=left, cached=False
                    )
                    if left > 0
                    else None
                )
            except KafkaException as exc:
                raise ReaderError(
                    f"cannot read the offsets of {topic} [{p}]: {exc.args[0].str()}"
                ) from None
            if got is None:  # confluent-kafka's answer to a timeout
                raise ReaderError(f"the offsets of {topic} [{p}] did not come in {timeout:g} s")
            out[(topic, p)] = got
        return out

    def behind(self) -> int:
        """Records not read yet, by what librdkafka knows locally (no broker call): the high
        watermark each fetch response carried minus the position. 0 while nothing is known.
        Cheap enough to ask after every batch: it tells a backlog from live traffic."""
        consumer = self._consumer
        total = 0
        try:
            tps = consumer.position([TopicPartition(t, p) for t, p in self.partitions])
            for tp in tps:
                pos = tp.offset if tp.offset >= 0 else self._starts[(tp.topic, tp.partition)]
                if pos < 0:
                    continue
                marks = consumer.get_watermark_offsets(tp, cached=True)
                if marks is not None and marks[1] > pos:
                    total += marks[1] - pos
        except KafkaException:
            return 0
        return total

    def mark_ends(self, timeout: float = 10.0) -> None:
        """Note every partition's high watermark now, as the broker says (a call per partition,
        see :meth:`watermarks`: each may wait behind a fetch in flight, ~0.1 s): the marks
        :meth:`reached_marks` waits for."""
        marks = self.watermarks(timeout)
        self._marks = {k: hi for k, (lo, hi) in marks.items() if not self._settled(k, lo, hi)}
        self._unmarked = set()

    def reached_marks(self) -> bool:
        """Whether every record below the marks has been read (superseded and skipped records
        count as read).

        The marks are the high watermarks :meth:`mark_ends` asked for or, without it, those
        each partition's first fetch response carried (librdkafka's cache, known ~0.1-0.3 s
        after the start: no broker call at all). A check is a local call per partition not yet
        read to its mark: cheap enough for every batch. Unlike "a poll came back empty", it is
        not fooled by a first fetch still on its way, nor kept waiting by a live fleet's
        traffic that never pauses."""
        consumer = self._consumer
        if self._marks is None:
            self._marks, self._unmarked = {}, set(self.partitions)
        marks = self._marks
        for k in list(self._unmarked):
            try:
                got = consumer.get_watermark_offsets(TopicPartition(*k), cached=True)
            except KafkaException:
                continue
            if got is None or got[1] < 0:
                continue  # no fetch response yet
            self._unmarked.discard(k)
            if not self._settled(k, *got):
                marks[k] = got[1]
        if marks:
            for tp in consumer.position([TopicPartition(t, p) for t, p in marks]):
                if tp.offset >= marks[(tp.topic, tp.partition)]:
                    del marks[(tp.topic, tp.partition)]
        return not marks and not self._unmarked

    def _settled(self, k: tuple[str, int], lo: int, hi: int) -> bool:
        """Nothing to read below ``hi`` from the partition's start: it is empty, or starts at
        (or past) its end. Such a partition reports no position until a record arrives, so it
        must be settled here rather than by position()."""
        start = self._starts[k]
        return lo >= hi or start == OFFSET_END or start >= hi

    def read_to_end(self, timeout: float = 30.0) -> list[Record]:
        """Everything from the start positions up to the high watermarks taken now."""
        deadline = time.monotonic() + timeout
        self.mark_ends(min(timeout, 10.0))
        out: list[Record] = []
        while not self.reached_marks():
            if time.monotonic() > deadline:
                raise ReaderError(f"read_to_end: timed out after {timeout} s")
            out.extend(self.poll_batch())
        return out

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._consumer.close()

    def __enter__(self) -> AssignReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _headers(raw: Any) -> tuple[tuple[str, bytes], ...]:
    if not raw:
        return ()
    out = []
    for k, v in raw:
        if v is None:
            v = b""
        elif isinstance(v, str):
            v = v.encode()
        out.append((str(k), bytes(v)))
    return tuple(out)


class _Compactor:
    """The supersede pass of one batch, fed the gathered messages chunk after chunk, in order:
    keeps every message except the ``topic`` records whose value starts with ``tag`` and whose
    key recurs in a later ``topic`` record (decided on the raw bytes, before any Record is
    built). Records with an error (librdkafka's have no key anyway) neither supersede nor are
    superseded. Survivors stay in order.

    One forward pass, each message visited once, as it comes out of ``consume()`` (still in the
    processor's cache): a heartbeat is stored under its key (``_beats``), replacing the one
    before, with its position in the batch (``_at``); any other ``topic`` record of the key drops
    the key's stored heartbeat; everything else is kept as it comes (``_others``, with its
    position). :meth:`survivors` merges the two by position. Since session 13; before, groups of
    20k gathered messages were read back to front and their survivors merged into those of
    earlier groups (three more loops over ~10k survivors a group at 10k devices): 0.100-0.105 s
    for a 500k backlog against 0.085-0.088 s now, and no group held in memory. (Passes of
    C-level ``map`` calls over each group measured no better: they touch every message once
    per pass.)
    """

    __slots__ = ("_at", "_beats", "_next", "_others", "tag", "topic")

    def __init__(self, topic: str, tag: int) -> None:
        self.topic = topic
        self.tag = tag
        self._beats: dict[bytes, Any] = {}
        """Key -> its latest heartbeat so far (not superseded yet)."""
        self._at: dict[bytes, int] = {}
        """Key -> that heartbeat's position in the batch (same keys, same order as ``_beats``)."""
        self._others: list[tuple[int, Any]] = []
        """(position, message) of every other message kept, in order."""
        self._next = 0
        """Messages added so far (the next one's position)."""

    @property
    def size(self) -> int:
        """Messages kept so far."""
        return len(self._beats) + len(self._others)

    @property
    def dropped(self) -> int:
        """Messages superseded so far."""
        return self._next - self.size

    def add(self, msgs: list[Any]) -> None:
        topic, tag = self.topic, self.tag
        beats, at, others = self._beats, self._at, self._others
        keep = others.append
        for i, m in enumerate(msgs, self._next):
            key = m.key()
            # The key first: an error event has none.
            if key and m.topic() == topic:
                value = m.value()
                if m.error() is None:
                    if value and value[0] == tag:
                        beats[key] = m
                        at[key] = i
                        continue
                    if key in beats:  # a later record of the key supersedes its heartbeat
                        del beats[key], at[key]
            keep((i, m))
        self._next += len(msgs)

    def survivors(self) -> list[Any]:
        kept = [*self._others, *zip(self._at.values(), self._beats.values(), strict=True)]
        kept.sort(key=itemgetter(0))
        return [m for _i, m in kept]
