"""Replay: re-issue past requests as new ones, planned first, paced, de-duplicated (DESIGN §3).

The map:

- :func:`read_window` reads device-request-v1 and device-response-v1 from a timestamp with
  ``assign()`` (never a consumer group: the actors' offsets are not touched) and
  :func:`index_window` folds the records into :class:`Original` rows: each request with its
  final outcome, if any;
- :func:`select` picks rows by id or by a ``/`` filter (:mod:`pipeconsole.query`, fields in
  :data:`FIELDS`), one row per original request id (de-duplication);
- :class:`ReplayPlan` is the dry run: count, targets, window, rate, estimated duration;
- :func:`reissue` makes the new request: new request_id and nonce, ``replay_of`` set, schedule
  cleared (fires now), the deadline re-based on now with the original's budget, no token (the
  layer signs it again); the original bytes are never re-sent;
- :class:`Pacer` spaces sends at least ``1/rate`` s apart (a token bucket of capacity one,
  measured from the previous *actual* send, never catching up), so no 1 s window holds more
  than ``rate`` sends.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipeconsole.kafka.records import Record
from pipeconsole.query import Query, parse
from pipeconsole.wire.codec import DecodeFailure, decode
from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest
from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse
from pipeconsole.wire.timefmt import format_rfc3339, parse_rfc3339

__all__ = [
    "FIELDS",
    "Original",
    "Pacer",
    "RateError",
    "ReplayPlan",
    "WindowRead",
    "index_window",
    "parse_filter",
    "parse_rate",
    "read_window",
    "reissue",
    "select",
]

FIELDS: tuple[str, ...] = (
    "request_id",
    "device",
    "method",
    "uri",
    "outcome",
    "status",
    "replay_of",
    "issued_by",
    "reason",
)
"""Fields a replay filter may name (``outcome=failed and device~'^transcode'``)."""

_FINAL = {
    DeviceResponse.OK,
    DeviceResponse.FAILED,
    DeviceResponse.DEADLINE_EXCEEDED,
    DeviceResponse.MISFIRED,
    DeviceResponse.CANCELLED,
    DeviceResponse.REJECTED,
}

OUTCOMES: tuple[str, ...] = (*(DeviceResponse.Outcome.Name(o) for o in sorted(_FINAL)), "PENDING")
"""Every ``outcome`` a replay row can have (PENDING: no final response in the window); the
filter refuses any other (``outcome=bogus`` would select nothing, silently)."""


@dataclass(frozen=True, slots=True)
class Original:
    """One past request in the window, with what became of it."""

    request: DeviceRequest
    timestamp_ms: int
    """Record timestamp of the request on device-request-v1."""
    partition: int
    offset: int
    outcome: str = "PENDING"
    """Name of the final outcome, or PENDING when none was seen."""
    status: int = 0
    reason: str = ""

    @property
    def request_id(self) -> str:
        return self.request.request_id

    def row(self) -> dict[str, str | int | float | bool | None]:
        """The record a filter sees."""
        r = self.request
        return {
            "request_id": r.request_id,
            "device": r.device_id,
            "method": r.method,
            "uri": r.uri,
            "outcome": self.outcome,
            "status": self.status,
            "replay_of": r.replay_of,
            "issued_by": r.issued_by,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class WindowRead:
    """What reading a window gave."""

    originals: list[Original]
    """Requests in the window, first record per request id, in timestamp order."""
    undecodable: int = 0
    """Records that could not be decoded (skipped, counted)."""
    duplicates: int = 0
    """Request records whose id was already seen (a re-send): folded into one."""


def index_window(
    requests: Iterable[Record],
    responses: Iterable[Record],
    since_ms: int,
    until_ms: int | None,
) -> WindowRead:
    """Fold raw records into rows. Pure: no Kafka."""
    finals: dict[str, DeviceResponse] = {}
    bad = 0
    for rec in responses:
        resp = decode(DeviceResponse, rec.value)
        if isinstance(resp, DecodeFailure):
            bad += 1
            continue
        if resp.outcome in _FINAL and resp.request_id not in finals:
            finals[resp.request_id] = resp
    seen: dict[str, Original] = {}
    dups = 0
    for rec in sorted(requests, key=lambda r: (r.timestamp_ms, r.partition, r.offset)):
        if rec.timestamp_ms < since_ms or (until_ms is not None and rec.timestamp_ms > until_ms):
            continue
        req = decode(DeviceRequest, rec.value)
        if isinstance(req, DecodeFailure):
            bad += 1
            continue
        if not req.request_id:
            bad += 1
            continue
        if req.request_id in seen:
            dups += 1
            continue
        fin = finals.get(req.request_id)
        seen[req.request_id] = Original(
            req,
            rec.timestamp_ms,
            rec.partition,
            rec.offset,
            DeviceResponse.Outcome.Name(fin.outcome) if fin else "PENDING",
            fin.status_code if fin else 0,
            fin.reason if fin else "",
        )
    return WindowRead(list(seen.values()), bad, dups)


def parse_filter(text: str) -> Query:
    """A replay filter; raises QueryError with the position and the known fields."""
    return parse(
        text,
        fields=FIELDS,
        text_fields=("device", "uri", "method", "reason"),
        choices={"outcome": OUTCOMES},
    )


def select(
    originals: Sequence[Original],
    *,
    ids: Sequence[str] = (),
    query: Query | None = None,
) -> tuple[list[Original], list[str]]:
    """Rows chosen by ``ids`` (in the order given) and/or ``query``; also the ids not found.

    Each original request id appears once, however often it was named or matched.
    """
    missing: list[str] = []
    pool: list[Original] = []
    if ids:
        by_id = {o.request_id: o for o in originals}
        for rid in dict.fromkeys(ids):
            o = by_id.get(rid)
            if o is None:
                missing.append(rid)
            else:
                pool.append(o)
    else:
        pool = list({o.request_id: o for o in originals}.values())
    if query is not None:
        pool = [o for o in pool if query.matches(o.row())]
    return pool, missing


class RateError(ValueError):
    """A rate the operator typed cannot be used."""


_RATE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(?:/\s*(s|sec|second|m|min|minute))?\s*")


def parse_rate(text: str) -> float:
    """``50/s``, ``50``, ``600/m`` -> requests per second (> 0, at most 10 000)."""
    m = _RATE.fullmatch(text)
    if m is None:
        raise RateError(f"rate {text!r}: expected N/s or N/m, e.g. 50/s")
    value = float(m.group(1))
    if m.group(2) and m.group(2).startswith("m"):
        value /= 60.0
    if value <= 0 or value > 10_000:
        raise RateError(f"rate {text!r}: must be above 0 and at most 10000/s")
    return value


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """The dry run: what ``--execute`` would send."""

    originals: tuple[Original, ...]
    since_ms: int
    until_ms: int | None
    rate: float
    """Requests per second, at most."""
    missing: tuple[str, ...] = ()
    """Ids asked for that are not in the window."""
    undecodable: int = 0
    filter_text: str = ""

    @property
    def count(self) -> int:
        return len(self.originals)

    @property
    def targets(self) -> Counter[str]:
        return Counter(o.request.device_id for o in self.originals)

    @property
    def estimated_s(self) -> float:
        return max(0, self.count - 1) / self.rate

    def summary(self) -> dict[str, object]:
        """Plain data for the CLI's JSON and the TUI's preview."""
        return {
            "count": self.count,
            "targets": dict(sorted(self.targets.items())),
            "since_unix_ms": self.since_ms,
            "until_unix_ms": self.until_ms,
            "rate_per_s": self.rate,
            "estimated_s": round(self.estimated_s, 3),
            "missing": list(self.missing),
            "undecodable": self.undecodable,
            "filter": self.filter_text,
            "outcomes": dict(sorted(Counter(o.outcome for o in self.originals).items())),
        }


def reissue(
    original: DeviceRequest,
    *,
    now: datetime,
    request_id: str | None = None,
    nonce: str | None = None,
    default_budget: timedelta = timedelta(seconds=30),
) -> DeviceRequest:
    """The new request that replays ``original`` (pure; the caller signs and sends it).

    The deadline keeps the original's budget (deadline minus issued_at) re-based on ``now``;
    without both times it is left empty (the QoS class default applies).
    """
    ptime, ftime = parse_rfc3339, format_rfc3339
    new = DeviceRequest()
    new.CopyFrom(original)
    new.request_id = request_id or str(uuid.uuid4())
    new.nonce = nonce or uuid.uuid4().hex
    new.replay_of = original.request_id
    new.schedule_time = ""
    new.token = ""
    new.issued_at = ftime(now)
    new.deadline = ""
    if original.deadline and original.issued_at:
        try:
            budget = ptime(original.deadline) - ptime(original.issued_at)
        except ValueError:
            budget = default_budget
        if budget.total_seconds() > 0:
            new.deadline = ftime(now + min(budget, timedelta(hours=1)))
    return new


@dataclass
class Pacer:
    """Spaces sends at least ``1/rate`` s apart (plus 1 ms of margin).

    The caller calls :meth:`wait` before each send and :meth:`sent` once the send has taken
    its timestamp (the producer's ``produce()`` returned). The gap is measured from that
    mark, never from a fixed grid: a send delayed after ``wait`` returned (a collection, a busy
    core) pushes the next one back rather than letting the two go out at once, and a late
    send is not followed by a burst that catches up. So any two sends' record timestamps are
    at least ``1/rate`` s apart, and no window of one second holds more than ``rate``.
    """

    rate: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    margin_s: float = 0.001
    _last: float | None = field(default=None, init=False)

    @property
    def interval(self) -> float:
        return 1.0 / self.rate + self.margin_s

    def wait(self) -> None:
        if self._last is not None:
            while True:
                left = self._last + self.interval - self.clock()
                if left <= 0:
                    break
                self.sleep(left)
        self._last = self.clock()

    def sent(self) -> None:
        """The send :meth:`wait` let through is done: the next gap is measured from now."""
        self._last = self.clock()


def read_window(
    profile: object,
    since_ms: int,
    *,
    timeout_s: float = 30.0,
) -> tuple[list[Record], list[Record]]:
    """(request records, response records) from ``since_ms`` to now, via ``assign()``."""
    from pipeconsole.config import Profile
    from pipeconsole.kafka.reader import AssignReader

    assert isinstance(profile, Profile)
    topics = profile.topics
    with AssignReader(profile, [topics.request, topics.response], start=max(0, since_ms)) as rd:
        records = rd.read_to_end(timeout_s)
    reqs = [r for r in records if r.topic == topics.request]
    resps = [r for r in records if r.topic == topics.response]
    return reqs, resps
