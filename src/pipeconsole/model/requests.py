"""Request lifecycles, outcome counts, deadline misses and the DLQ.

A request is followed by its ``request_id`` from the DeviceRequest (SEEN) and the actors'
DeviceResponse events (SCHEDULED -> DISPATCHED -> one final outcome). Every table is bounded:
at most ``max_requests`` lifecycles (the oldest are evicted, final ones first, and counted), a
sliding window of final outcomes for deadline-miss rates per device and per stage, and the
newest ``max_dlq`` dead-lettered records.

A response can arrive before its request (different topics and partitions): the row is created
from whichever comes first and completed by the other. A final state never goes back.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from pipeconsole.model.snapshot import (
    FINAL_STATES,
    DeadlineMisses,
    DlqEntry,
    RequestRow,
    RequestState,
)
from pipeconsole.wire.headers import DLQ_PREFIX

__all__ = ["DlqRecord", "RequestBook"]

_OUTCOMES: dict[int, RequestState] = {
    1: RequestState.SCHEDULED,
    2: RequestState.DISPATCHED,
    3: RequestState.OK,
    4: RequestState.FAILED,
    5: RequestState.DEADLINE_EXCEEDED,
    6: RequestState.MISFIRED,
    7: RequestState.CANCELLED,
    9: RequestState.REJECTED,
}
"""DeviceResponse.Outcome number -> state. CANCEL_TOO_LATE (8) answers a cancel: no change."""

_ORDER = {RequestState.SEEN: 0, RequestState.SCHEDULED: 1, RequestState.DISPATCHED: 2}


@dataclass(frozen=True, slots=True)
class DlqRecord:
    """A record read from the DLQ topic, as the ingest hands it to the model."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


class _Req:
    __slots__ = (
        "actor_id",
        "attempts",
        "deadline_ms",
        "device_id",
        "issued_by",
        "method",
        "reason",
        "replay_of",
        "scheduled_ms",
        "state",
        "status_code",
        "updated_ms",
        "uri",
    )

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self.method = ""
        self.uri = ""
        self.state = RequestState.SEEN
        self.scheduled_ms = 0
        self.deadline_ms = 0
        self.attempts = 0
        self.reason = ""
        self.replay_of = ""
        self.status_code = 0
        self.updated_ms = 0
        self.issued_by = ""
        self.actor_id = ""


class RequestBook:
    def __init__(
        self,
        *,
        max_requests: int = 20_000,
        max_dlq: int = 1000,
        window_ms: int = 300_000,
        max_window: int = 200_000,
    ) -> None:
        self.max_requests = max_requests
        self.window_ms = window_ms
        self._reqs: OrderedDict[str, _Req] = OrderedDict()
        self.outcomes: dict[str, int] = {}
        self.evicted = 0
        self.total = 0
        """Distinct request ids seen (including evicted ones)."""
        self._finals: deque[tuple[int, str, bool]] = deque(maxlen=max_window)
        """(time, device_id, missed) of final outcomes, for the sliding window."""
        self.dlq: deque[DlqEntry] = deque(maxlen=max_dlq)
        self.dlq_total = 0

    def __len__(self) -> int:
        return len(self._reqs)

    def _get(self, request_id: str, device_id: str) -> _Req:
        r = self._reqs.get(request_id)
        if r is None:
            r = _Req(device_id)
            self._reqs[request_id] = r
            self.total += 1
            if len(self._reqs) > self.max_requests:
                self._evict()
        else:
            self._reqs.move_to_end(request_id)
            if not r.device_id:
                r.device_id = device_id
        return r

    def _evict(self) -> None:
        # The oldest final request goes first; if the oldest 64 are all live, the oldest goes.
        for rid, r in list(itertools.islice(self._reqs.items(), 64)):
            if r.state in FINAL_STATES:
                del self._reqs[rid]
                break
        else:
            self._reqs.popitem(last=False)
        self.evicted += 1

    def request(self, req: Any, deadline_ms: int, scheduled_ms: int, time_ms: int) -> None:
        """A DeviceRequest read from the request topic (times already parsed by the caller)."""
        r = self._get(req.request_id, req.device_id)
        r.method = req.method
        r.uri = req.uri
        r.replay_of = req.replay_of
        r.issued_by = req.issued_by
        if deadline_ms and not r.deadline_ms:
            r.deadline_ms = deadline_ms
        if scheduled_ms and not r.scheduled_ms:
            r.scheduled_ms = scheduled_ms
        r.updated_ms = max(r.updated_ms, time_ms)

    def response(self, resp: Any) -> RequestState | None:
        """A DeviceResponse; returns the new state when this event changed it."""
        new = _OUTCOMES.get(resp.outcome)
        r = self._get(resp.request_id, resp.device_id)
        if resp.method:
            r.method = resp.method
        if resp.uri:
            r.uri = resp.uri
        if resp.deadline_unix_ms:
            r.deadline_ms = resp.deadline_unix_ms
        if resp.scheduled_for_unix_ms:
            r.scheduled_ms = resp.scheduled_for_unix_ms
        if resp.replay_of:
            r.replay_of = resp.replay_of
        if resp.actor_id:
            r.actor_id = resp.actor_id
        if resp.issued_by:
            r.issued_by = resp.issued_by
        r.updated_ms = max(r.updated_ms, resp.time_unix_ms)
        if resp.outcome == 8:  # CANCEL_TOO_LATE: say so, the request's own outcome follows
            # ... unless it is already there: a second cancel of a cancelled request answers
            # "already finished", and the row said CANCELLED with that as its reason.
            if r.state not in FINAL_STATES:
                r.reason = resp.reason or "cancel arrived too late"
            return None
        if new is None or r.state in FINAL_STATES:
            return None
        if new not in FINAL_STATES and _ORDER.get(new, 0) <= _ORDER.get(r.state, 0):
            return None
        r.state = new
        r.attempts = max(r.attempts, resp.attempts)
        r.status_code = resp.status_code or r.status_code
        if resp.reason:
            r.reason = resp.reason
        if new in FINAL_STATES:
            self._final(new, r.device_id, resp.time_unix_ms)
        return new

    def _final(self, state: RequestState, device_id: str, time_ms: int) -> None:
        self.outcomes[state.value] = self.outcomes.get(state.value, 0) + 1
        self._finals.append((time_ms, device_id, state == RequestState.DEADLINE_EXCEEDED))

    def dead_letter(self, rec: DlqRecord, request_id: str, device_id: str) -> DlqEntry:
        headers = tuple((k, v.decode("utf-8", "replace")[:512]) for k, v in rec.headers[:32])
        hmap = dict(headers)
        entry = DlqEntry(
            # Where the dead letter itself is (its partition and offset are): a ``topic`` header
            # is the source's, or a producer's word, and mixed the two positions before.
            topic=rec.topic,
            partition=rec.partition,
            offset=rec.offset,
            time_ms=rec.timestamp_ms,
            key=(rec.key or b"").decode("utf-8", "replace")[:256],
            reason=_reason(hmap),
            code=_code(hmap),
            headers=headers,
            size=len(rec.value or b""),
            request_id=request_id,
        )
        self.dlq.appendleft(entry)
        self.dlq_total += 1
        if request_id:
            r = self._get(request_id, device_id)
            if r.state not in FINAL_STATES:
                r.state = RequestState.DEAD_LETTERED
                r.reason = entry.reason or entry.code
                r.updated_ms = max(r.updated_ms, rec.timestamp_ms)
                self._final(RequestState.DEAD_LETTERED, r.device_id, rec.timestamp_ms)
        return entry

    # ------------------------------------------------------------------ reading

    def rows(self, now_ms: int, limit: int = 2000) -> tuple[RequestRow, ...]:
        """Most recently updated first."""
        out = []
        for rid in reversed(self._reqs):
            out.append(self._row(rid, self._reqs[rid], now_ms))
            if len(out) >= limit:
                break
        return tuple(out)

    def at_risk(self, now_ms: int, limit: int = 200) -> tuple[RequestRow, ...]:
        live = [
            (r.deadline_ms, rid, r)
            for rid, r in self._reqs.items()
            if r.deadline_ms and r.state not in FINAL_STATES
        ]
        live.sort(key=lambda x: (x[0], x[1]))
        return tuple(self._row(rid, r, now_ms) for _d, rid, r in live[:limit])

    def _row(self, rid: str, r: _Req, now_ms: int) -> RequestRow:
        final = r.state in FINAL_STATES
        return RequestRow(
            request_id=rid,
            device_id=r.device_id,
            method=r.method,
            uri=r.uri,
            state=r.state,
            scheduled_for_ms=r.scheduled_ms,
            deadline_ms=r.deadline_ms,
            remaining_ms=None if final or not r.deadline_ms else r.deadline_ms - now_ms,
            attempts=r.attempts,
            reason=r.reason,
            replay_of=r.replay_of,
            status_code=r.status_code,
            updated_ms=r.updated_ms,
            issued_by=r.issued_by,
            actor_id=r.actor_id,
        )

    def deadline_misses(
        self, now_ms: int, stage_of: dict[str, str]
    ) -> tuple[float, tuple[DeadlineMisses, ...]]:
        """(overall miss rate, per device and per stage worst first) over the window."""
        while self._finals and self._finals[0][0] < now_ms - self.window_ms:
            self._finals.popleft()
        per: dict[str, list[int]] = {}
        misses = 0
        for _t, device, missed in self._finals:
            for key in (device, "stage:" + stage_of.get(device, "?")):
                a = per.get(key)
                if a is None:
                    a = per[key] = [0, 0]
                a[0] += missed
                a[1] += 1
            misses += missed
        total = len(self._finals)
        rows = [DeadlineMisses(k, m, n, m / n) for k, (m, n) in per.items() if m]
        rows.sort(key=lambda r: (-r.rate, -r.misses, r.key))
        return (misses / total if total else 0.0), tuple(rows[:200])


def _reason(headers: dict[str, str]) -> str:
    """A DLQ record's reason: the device actors' header, a ``reason`` or ``error.reason``
    header, else any header named ``<prefix>.reason`` (before session 9 the console read only
    ``reason`` and ``error.reason``, and showed no reason for its own actors' records).

    The actors' headers go first: they drop any header of the source record with their prefix,
    while its other headers (a hostile producer's ``reason`` or ``x-code`` among them) are kept,
    ahead of theirs."""
    for k in (DLQ_PREFIX + "reason", "reason", "error.reason"):
        if k in headers:
            return headers[k]
    for k, v in headers.items():
        if k.lower().endswith(".reason"):
            return v
    return ""


def _code(headers: dict[str, str]) -> str:
    """A DLQ record's failure code: the actors' header, else an ``error.code``-like one."""
    ours = headers.get(DLQ_PREFIX + "code")
    if ours is not None:
        return ours
    for k, v in headers.items():
        lk = k.lower()
        if lk.endswith("code") or lk in ("error", "error.class", "failure"):
            return v
    return ""
