"""A small local journal of in-flight actions, so a crash mid-send is never a silent gap.

Every request or cancel is journalled *before* it is produced (``pending``) and marked when
the broker answers (``acked`` with partition/offset, or ``failed`` with the reason). After a
crash (``kill -9`` between produce and ack) the journal still names the action. On the next
start, :func:`reconcile` reads the topic (``assign()``, from a little before the journal time)
and settles each open entry by what is really there: ``present`` (it was written: do not
re-send) or ``absent`` (it never reached the broker: safe to issue again, which is the
operator's call, never automatic).

The file is JSON lines at ``state_dir()/outbox.jsonl`` (``PIPECONSOLE_STATE_DIR``
overrides). It is bounded: once nothing is open it is truncated, and :meth:`Outbox.compact`
rewrites it with only the open entries.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pipeconsole.actions.audit import state_dir

__all__ = ["Outbox", "OutboxEntry", "Reconciled", "reconcile"]

Kind = Literal["request", "cancel"]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One action whose delivery was not settled when last seen."""

    request_id: str
    """The request's id (for a cancel: the id of the request being cancelled)."""
    kind: Kind
    device_id: str
    topic: str
    time_ms: int
    """When it was journalled (Unix ms): where reconcile starts reading."""
    nonce: str = ""
    """Tells this issue apart from another one for the same request id (cancels)."""
    possibly_persisted: bool = False
    """A delivery timeout in flight: the broker may have it."""
    cluster: str = ""
    """Bootstrap servers it was sent to: reconcile reads only the cluster it went to."""


@dataclass(frozen=True, slots=True)
class Reconciled:
    entry: OutboxEntry
    state: Literal["present", "absent"]
    partition: int = -1
    offset: int = -1


class Outbox:
    """The journal. Thread-safe; every line is written with one ``write`` and fsynced."""

    def __init__(self, path: Path | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path or (state_dir() / "outbox.jsonl")
        self._lock = threading.Lock()
        self._clock = clock

    def _append(self, lines: Iterable[dict[str, Any]]) -> None:
        data = "".join(json.dumps(x, ensure_ascii=True, sort_keys=True) + "\n" for x in lines)
        if not data:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                end = os.lseek(fd, 0, os.SEEK_END)
                if end > 0 and os.pread(fd, 1, end - 1) != b"\n":
                    data = "\n" + data  # a torn last line from a crash stays on its own
                os.write(fd, data.encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)

    def pending(self, entries: Iterable[OutboxEntry]) -> None:
        """Journal actions about to be produced (one fsync for the lot)."""
        self._append(_pending_line(e) for e in entries)

    def entry(
        self,
        request_id: str,
        kind: Kind,
        device_id: str,
        topic: str,
        nonce: str = "",
        cluster: str = "",
    ) -> OutboxEntry:
        now_ms = int(self._clock() * 1000)
        return OutboxEntry(request_id, kind, device_id, topic, now_ms, nonce, cluster=cluster)

    def acked(self, settled: Iterable[tuple[OutboxEntry, int, int]]) -> None:
        self._append(
            {
                "op": "acked",
                "request_id": e.request_id,
                "kind": e.kind,
                "nonce": e.nonce,
                "partition": p,
                "offset": o,
            }
            for e, p, o in settled
        )

    def failed(self, entry: OutboxEntry, reason: str, possibly_persisted: bool) -> None:
        self._append(
            [
                {
                    "op": "failed",
                    "request_id": entry.request_id,
                    "kind": entry.kind,
                    "nonce": entry.nonce,
                    "reason": reason,
                    "possibly_persisted": possibly_persisted,
                }
            ]
        )

    def settle(self, results: Iterable[Reconciled]) -> None:
        self._append(
            {
                "op": "reconciled",
                "request_id": r.entry.request_id,
                "kind": r.entry.kind,
                "nonce": r.entry.nonce,
                "state": r.state,
            }
            for r in results
        )

    def open_entries(self, cluster: str | None = None) -> list[OutboxEntry]:
        """Entries still open: pending with no answer, or failed while possibly persisted
        (only those sent to ``cluster`` when given)."""
        try:
            lines = self.path.read_text(encoding="ascii", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        open_: dict[tuple[str, str, str], OutboxEntry] = {}
        for line in lines:
            try:
                x = json.loads(line)
            except ValueError:
                continue  # a torn last line after a crash
            if not isinstance(x, dict):
                continue
            k = (str(x.get("request_id", "")), str(x.get("kind", "")), str(x.get("nonce", "")))
            op = x.get("op")
            if op == "pending":
                open_[k] = OutboxEntry(
                    k[0],
                    "cancel" if k[1] == "cancel" else "request",
                    str(x.get("device_id", "")),
                    str(x.get("topic", "")),
                    int(x.get("time_ms", 0)),
                    k[2],
                    bool(x.get("possibly_persisted", False)),
                    str(x.get("cluster", "")),
                )
            elif op in ("acked", "reconciled"):
                open_.pop(k, None)
            elif op == "failed" and k in open_:
                if x.get("possibly_persisted"):
                    e = open_[k]
                    open_[k] = replace(e, possibly_persisted=True)
                else:
                    open_.pop(k, None)
        return [e for e in open_.values() if cluster is None or e.cluster == cluster]

    def compact(self) -> int:
        """Rewrite the journal with only the open entries; returns how many remain."""
        with self._lock:
            if not self.path.exists():
                return 0
            still = self.open_entries()
            tmp = self.path.with_suffix(".tmp")
            body = "".join(
                json.dumps(_pending_line(e), ensure_ascii=True, sort_keys=True) + "\n"
                for e in still
            )
            tmp.write_text(body, encoding="ascii")
            os.replace(tmp, self.path)
            return len(still)


def _pending_line(e: OutboxEntry) -> dict[str, Any]:
    return {
        "op": "pending",
        "request_id": e.request_id,
        "kind": e.kind,
        "device_id": e.device_id,
        "topic": e.topic,
        "time_ms": e.time_ms,
        "nonce": e.nonce,
        "cluster": e.cluster,
        "possibly_persisted": e.possibly_persisted,
    }


def reconcile(
    outbox: Outbox,
    read_keys: Callable[[str, int], Iterable[tuple[str, str, int, int]]],
    *,
    cluster: str | None = None,
) -> list[Reconciled]:
    """Settle every open entry by reading its topic; returns what was found.

    ``read_keys(topic, since_ms)`` yields ``(request_id, nonce, partition, offset)`` of the
    records on ``topic`` from ``since_ms`` on (the action layer passes a reader over Kafka).
    An open entry is ``present`` when a record with its request id (and nonce, if journalled)
    is there, else ``absent``. The journal is compacted afterwards.
    """
    entries = outbox.open_entries(cluster)
    if not entries:
        return []
    out: list[Reconciled] = []
    by_topic: dict[str, list[OutboxEntry]] = {}
    for e in entries:
        by_topic.setdefault(e.topic, []).append(e)
    for topic, group in by_topic.items():
        since = min(e.time_ms for e in group) - 5_000
        found: dict[tuple[str, str], tuple[int, int]] = {}
        for rid, nonce, p, o in read_keys(topic, since):
            found.setdefault((rid, nonce), (p, o))
            found.setdefault((rid, ""), (p, o))
        for e in group:
            hit = found.get((e.request_id, e.nonce))
            if hit is None:
                out.append(Reconciled(e, "absent"))
            else:
                out.append(Reconciled(e, "present", hit[0], hit[1]))
    outbox.settle(out)
    outbox.compact()
    return out
