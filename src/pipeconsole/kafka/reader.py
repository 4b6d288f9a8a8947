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

_GROUP = 20_000
"""With ``supersede``: messages gathered before superseded ones are dropped, so a big batch
holds at most about this many messages (plus the survivors) however large it is. Small groups
also read faster: freed messages are reused by the allocator instead of new pages (100k: 180-210k
msgs/s into the model, 20k: 230-325k, on the same data). With many survivors (one per device:
10k at 10k devices) a group is ``_PER_SURVIVOR`` times the survivors instead: each pass costs a
lookup per distinct key, so a group should repeat its keys."""

_PER_SURVIVOR = 2

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
        for topic in self._topics:
            meta = md.topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                raise ReaderError(
                    f"topic {topic!r} does not exist (run: pipeconsole topics ensure)"
                )
            where = start.get(topic, "beginning") if isinstance(start, Mapping) else start
            for p in sorted(meta.partitions):
                if where == "beginning":
                    assignment.append(TopicPartition(topic, p, OFFSET_BEGINNING))
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
            try:
                found = self._consumer.offsets_for_times(by_time, timeout=timeout)
            except KafkaException as exc:
                raise ReaderError(f"cannot look up offsets by time: {exc.args[0].str()}") from None
            for tp in found:
                # -1: no record at or after the time -> start at the end.
                off = tp.offset if tp.offset >= 0 else OFFSET_END
                assignment.append(TopicPartition(tp.topic, tp.partition, off))
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
    ) -> list[Record]:
        """Up to ``max_records`` records; empty when none came within ``timeout``.

        Errors of individual records (a partition EOF, a transient fetch error) are logged
        through librdkafka's logger and skipped; they never raise.

        ``supersede = (topic, tag)``: a record of ``topic`` whose value starts with the byte
        ``tag`` is skipped when a later record of ``topic`` in the same batch has the same key (a
        heartbeat superseded by a newer one); skipped records are counted in
        :attr:`superseded`, never silently lost. Superseded messages are dropped while the
        batch is gathered (every ``_GROUP`` messages), so a large ``max_records`` costs memory
        for the survivors only.

        ``gather_s``: once the first ``consume()`` comes back full (a backlog), how long at most
        to go on taking what librdkafka has already fetched; ``stop``, once set, ends it early.
        """
        if supersede is None:
            msgs = self._take(max_records, timeout, None, gather_s, stop)
        else:
            compactor = _Compactor(*supersede)
            msgs = self._take(max_records, timeout, compactor, gather_s, stop)
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
    ) -> list[Any]:
        """Up to ``max_records`` messages: one call that may wait ``timeout``; when it comes back
        full, more calls that take only what librdkafka has already fetched, until none is left
        or ``gather_s`` has passed. A single ``consume(50_000)`` waits for fetches to fill it
        and reads 3-4x slower than 10k calls; calls that take what is there never wait (10k
        calls that wait 50-100 ms read 2x slower, and waiting for a single message when the
        queue runs dry measured no better than stopping).
        The ``compactor`` (the supersede pass) takes the messages every ``_GROUP`` gathered,
        or every twice its survivors when there are more."""
        consume = self._consumer.consume
        msgs = consume(num_messages=min(max_records, _CHUNK), timeout=timeout)
        read = len(msgs)
        if read < _CHUNK:
            if compactor is None or read < 2:
                return msgs  # live traffic: what came within the timeout
            compactor.add(msgs)
            return compactor.survivors()
        deadline = time.monotonic() + gather_s
        group = _GROUP
        while read < max_records:
            more = consume(num_messages=min(_CHUNK, max_records - read), timeout=0)
            if not more:
                break
            msgs += more
            read += len(more)
            if len(msgs) >= group:
                if compactor is not None:
                    compactor.add(msgs)
                    msgs = []
                    group = max(_GROUP, _PER_SURVIVOR * compactor.size)
                if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                    break
        if compactor is None:
            return msgs
        compactor.add(msgs)
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
    """The supersede pass of one batch, fed the gathered messages group after group, in order:
    keeps every message except the ``topic`` records whose value starts with ``tag`` and whose
    key recurs in a later ``topic`` record (decided on the raw bytes, before any Record is
    built). Records with an error (librdkafka's have no key anyway) neither supersede nor are
    superseded. Survivors stay in order.

    Each message is visited once. A group is read from its newest message back (the first
    record of a key met is its latest: most of a backlog's superseded heartbeats are skipped
    after four C calls: key, topic, value, error). The survivors of earlier groups are never scanned
    again: ``_pending`` holds, per key, the slot of its last kept record when that is a
    heartbeat, so a newer record of the key in a later group drops it with one lookup. (Earlier
    versions re-read the survivors every group: ~30 % more visits for a 10k-device backlog; and
    one pass touching each message once measured faster than several C-level ``map`` passes,
    which pay the cache misses of ~50 MB of messages again per pass.)
    """

    __slots__ = ("_kept", "_next", "_pending", "dropped", "tag", "topic")

    def __init__(self, topic: str, tag: int) -> None:
        self.topic = topic
        self.tag = tag
        self._kept: dict[int, Any] = {}
        """Slot -> message, in arrival order (a dict: dropping from the middle is O(1))."""
        self._next = 0
        self._pending: dict[bytes, int] = {}
        self.dropped = 0

    @property
    def size(self) -> int:
        return len(self._kept)

    def add(self, msgs: list[Any]) -> None:
        topic, tag = self.topic, self.tag
        # Key -> index in ``rev`` of its newest ``topic`` record here if a heartbeat, else -1.
        latest: dict[bytes, int] = {}
        rev: list[Any] = []
        keep = rev.append
        # The key first: an error event has none.
        for m in reversed(msgs):
            key = m.key()
            if key:
                if key in latest:
                    if m.topic() == topic:
                        value = m.value()
                        if value and value[0] == tag and m.error() is None:
                            continue
                elif m.topic() == topic and m.error() is None:
                    value = m.value()
                    latest[key] = len(rev) if value and value[0] == tag else -1
            keep(m)
        self.dropped += len(msgs) - len(rev)
        kept, pending = self._kept, self._pending
        for key in latest:
            slot = pending.pop(key, None)
            if slot is not None:
                del kept[slot]
                self.dropped += 1
        base = self._next + len(rev) - 1
        for key, i in latest.items():
            if i >= 0:
                pending[key] = base - i
        slot = self._next
        for m in reversed(rev):
            kept[slot] = m
            slot += 1
        self._next = slot

    def survivors(self) -> list[Any]:
        return list(self._kept.values())
