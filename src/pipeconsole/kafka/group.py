"""The device actors' group consumer: one thread that owns a ``confluent_kafka.Consumer``.

Everything that touches the consumer happens on its thread (librdkafka serves rebalance
callbacks from ``consume()``); other threads talk to it through a command queue:

- :meth:`GroupConsumer.commit` — explicit offsets, coalesced per partition, committed
  asynchronously between polls (synchronously on revoke and close);
- :meth:`GroupConsumer.pause` / :meth:`GroupConsumer.resume` — back-pressure. ``pause()``
  purges librdkafka's prefetched records, so ``resume()`` seeks each partition back to one past
  the last record this thread handed out: nothing is skipped. The thread keeps polling while
  partitions are paused, so ``max.poll.interval.ms`` never expires.

Records, assignments and revocations go to a :class:`GroupListener` (called on the consumer
thread; the device-actor service forwards them to its event loop). On revoke the listener
returns the offsets it may still commit for the revoked partitions, and they are committed
before the partitions move.

Assignment strategy is ``range``: device-request-v1 and device-control-v1 have the same partition
count, and range gives partition *n* of both to the same member, which is what routes a cancel
to the actor owning the request.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from pipeconsole.config import Profile
from pipeconsole.kafka.client import client_settings
from pipeconsole.kafka.reader import _headers
from pipeconsole.kafka.records import Record

__all__ = ["TP", "GroupConsumer", "GroupListener"]

log = logging.getLogger(__name__)

TP = tuple[str, int]
"""(topic, partition)."""


class GroupListener(Protocol):
    """Receives what the consumer thread sees. Every method runs on the consumer thread."""

    def on_records(self, records: list[Record]) -> None: ...

    def on_assigned(self, partitions: list[TP]) -> None: ...

    def on_revoked(self, partitions: list[TP], lost: bool) -> Mapping[TP, int]:
        """Forget ``partitions``; return offsets to commit for them (empty when ``lost``)."""
        ...


class GroupConsumer:
    """A consumer-group member on ``topics``, polled by its own thread."""

    def __init__(
        self,
        profile: Profile | str,
        group: str,
        topics: Sequence[str],
        listener: GroupListener,
        *,
        session_timeout_ms: int = 10000,
        max_batch: int = 500,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        settings = client_settings(
            profile,
            {
                "group.id": group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                "partition.assignment.strategy": "range",
                "session.timeout.ms": session_timeout_ms,
                "heartbeat.interval.ms": max(100, session_timeout_ms // 6),
                "fetch.wait.max.ms": 50,
                "client.id": "pipeconsole-dispatch",
            },
        )
        if extra:
            settings.update(extra)
        self.group = group
        self._consumer = Consumer(settings)
        self._topics = list(topics)
        self._listener = listener
        self._max_batch = max_batch
        self._commands: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._to_commit: dict[TP, int] = {}
        self._delivered: dict[TP, int] = {}
        """One past the last offset handed to the listener, per partition."""
        self._paused: set[TP] = set()
        self._assigned: set[TP] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kafka-group", daemon=True)
        self.commit_errors = 0
        """Commits the broker refused (logged; the next commit covers them)."""

    # -- any thread -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def commit(self, offsets: Mapping[TP, int]) -> None:
        """Commit ``offsets`` (next offset to read) soon; later values replace earlier ones."""
        self._commands.put(("commit", dict(offsets)))

    def pause(self, partitions: Sequence[TP]) -> None:
        self._commands.put(("pause", list(partitions)))

    def resume(self, partitions: Sequence[TP]) -> None:
        self._commands.put(("resume", list(partitions)))

    def partition_count(self, topic: str, timeout: float = 10.0) -> int:
        """Partitions of ``topic`` (0 when it does not exist or metadata fails)."""
        try:
            md = self._consumer.list_topics(topic, timeout=timeout)
        except KafkaException as exc:
            log.warning("metadata for %s failed: %s", topic, exc)
            return 0
        meta = md.topics.get(topic)
        return len(meta.partitions) if meta is not None and meta.error is None else 0

    @property
    def assignment(self) -> set[TP]:
        with self._lock:
            return set(self._assigned)

    @property
    def paused(self) -> set[TP]:
        with self._lock:
            return set(self._paused)

    def stop(self, timeout: float = 8.0) -> bool:
        """Commit what is pending, leave the group (revoking everything), close.

        Returns within ``timeout`` seconds whatever the broker does: leaving the group can wait
        on a rebalance the broker is slow to finish, so after ``timeout`` the consumer thread
        (a daemon) is left to finish on its own and ``False`` is returned. Nothing is lost by
        that: offsets not committed are re-read by the partitions' next owner."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the group consumer did not close within %.0f s; left behind", timeout)
            return False
        return True

    # -- consumer thread --------------------------------------------------------------------------

    def _run(self) -> None:
        c = self._consumer
        try:
            c.subscribe(
                self._topics,
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
            while not self._stop.is_set():
                self._apply_commands()
                try:
                    msgs = c.consume(num_messages=self._max_batch, timeout=0.05)
                except KafkaException as exc:
                    log.warning("consume failed: %s", exc)
                    continue
                batch = self._records(msgs)
                if batch:
                    self._listener.on_records(batch)
            self._apply_commands()
            self._flush_commits(asynchronous=False)
        except Exception:  # a bug here must not kill the process silently
            log.exception("group consumer thread failed")
        finally:
            try:
                c.close()
            except Exception:
                log.exception("closing the group consumer failed")

    def _records(self, msgs: list[Any]) -> list[Record]:
        out: list[Record] = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", err.str())
                continue
            tp = (m.topic() or "", m.partition() or 0)
            if tp in self._paused or tp not in self._assigned:
                continue  # raced with a pause or a revoke; re-read after resume/assign
            offset = m.offset() or 0
            self._delivered[tp] = offset + 1
            ts_type, ts = m.timestamp()
            key, value = m.key(), m.value()
            out.append(
                Record(
                    topic=tp[0],
                    partition=tp[1],
                    offset=offset,
                    timestamp_ms=ts if ts_type else -1,
                    key=key.encode() if isinstance(key, str) else key,
                    value=value.encode() if isinstance(value, str) else value,
                    headers=_headers(m.headers()),
                )
            )
        return out

    def _apply_commands(self) -> None:
        while True:
            try:
                cmd, arg = self._commands.get_nowait()
            except queue.Empty:
                break
            if cmd == "commit":
                for tp, off in arg.items():
                    if tp in self._assigned:
                        self._to_commit[tp] = max(off, self._to_commit.get(tp, -1))
            elif cmd == "pause":
                parts = [tp for tp in arg if tp in self._assigned and tp not in self._paused]
                if parts:
                    self._consumer.pause([TopicPartition(t, p) for t, p in parts])
                    with self._lock:
                        self._paused.update(parts)
            elif cmd == "resume":
                parts = [tp for tp in arg if tp in self._paused]
                if parts:
                    self._consumer.resume([TopicPartition(t, p) for t, p in parts])
                    with self._lock:
                        self._paused.difference_update(parts)
                    for tp in parts:
                        if tp in self._delivered:
                            self._seek(tp, self._delivered[tp])
        self._flush_commits(asynchronous=True)

    def _seek(self, tp: TP, offset: int) -> None:
        try:
            self._consumer.seek(TopicPartition(tp[0], tp[1], offset))
        except KafkaException as exc:
            log.warning("seek %s[%d] to %d failed: %s", tp[0], tp[1], offset, exc)

    def _flush_commits(self, asynchronous: bool) -> None:
        if not self._to_commit:
            return
        offsets = [TopicPartition(t, p, off) for (t, p), off in self._to_commit.items()]
        self._to_commit.clear()
        try:
            if asynchronous:
                self._consumer.commit(offsets=offsets, asynchronous=True)
            else:
                self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            self.commit_errors += 1
            log.warning("commit failed: %s", exc)

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        tps = [(tp.topic, tp.partition) for tp in partitions]
        with self._lock:
            self._assigned.update(tps)
            self._paused.difference_update(tps)  # paused state does not survive a rebalance
        for tp in tps:
            self._delivered.pop(tp, None)
        self._listener.on_assigned(tps)

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        self._release(partitions, lost=False)

    def _on_lost(self, consumer: Any, partitions: list[Any]) -> None:
        self._release(partitions, lost=True)

    def _release(self, partitions: list[Any], lost: bool) -> None:
        tps = [(tp.topic, tp.partition) for tp in partitions]
        try:
            final = self._listener.on_revoked(tps, lost)
        except Exception:
            log.exception("revoke handler failed")
            final = {}
        self._apply_commands()
        if not lost:
            for tp, off in final.items():
                self._to_commit[tp] = max(off, self._to_commit.get(tp, -1))
            mine = {tp: off for tp, off in self._to_commit.items() if tp in tps}
            if mine:
                try:
                    self._consumer.commit(
                        offsets=[TopicPartition(t, p, o) for (t, p), o in mine.items()],
                        asynchronous=False,
                    )
                except KafkaException as exc:
                    self.commit_errors += 1
                    log.warning("commit on revoke failed: %s", exc)
        for tp in tps:
            self._to_commit.pop(tp, None)
            self._delivered.pop(tp, None)
        with self._lock:
            self._assigned.difference_update(tps)
            self._paused.difference_update(tps)
