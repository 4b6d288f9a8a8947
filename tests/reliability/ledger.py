"""The ledger: "nothing lost, counted" (DESIGN §3), rebuilt from the topics themselves.

The harness reads device-request-v1, device-control-v1, device-response-v1 and the DLQ with an
:class:`~pipeconsole.kafka.reader.AssignReader` on a background thread (never a group member,
never commits) and keeps every record. :meth:`Ledger.balance` then answers, per input:

- an **input** is a record of device-request-v1. Its key is its ``request_id`` when the actors'
  own codec decodes it and the id is not empty, else its position ``@partition:offset`` (an
  undecodable record has no id). Records repeating a ``request_id`` are one input (a duplicate
  joins the pending request at the actor, DESIGN §3);
- a **final state** is a DeviceResponse with outcome OK, FAILED, DEADLINE_EXCEEDED, MISFIRED,
  CANCELLED or REJECTED. A REJECTED response names its source partition and offset, so it is
  matched to the input at that position (whatever its id); the others by ``request_id``;
- **balanced** means: every input has a final state, none has two *different* final states,
  no final state answers an input that was never read, every REJECTED input has a DLQ record
  whose ``pipeconsole.dlq.offset`` header points at it, and — unless the test allows
  redelivery after a crash — no input has its final state published twice. Then
  ``inputs == sum(finals.values())``.

Device side: :func:`device_totals` sums the simulated devices' counters (the in-process Fleet
API; ``GET /_sim/counters`` serves the same numbers); :func:`check_devices` asserts that no
request was executed twice and that every OK was executed exactly once.

Use::

    with Ledger(profile) as ledger:
        ... produce, run the actors ...
        balance = ledger.wait_balanced(timeout=60)
        assert balance.ok, balance.explain()
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pipeconsole.actors.dlq import HEADER_PREFIX
from pipeconsole.config import Profile
from pipeconsole.kafka.reader import AssignReader
from pipeconsole.kafka.records import Record
from pipeconsole.wire.codec import DecodeFailure, decode
from pipeconsole.wire.gen.device_request_pb2 import CancelRequest, DeviceRequest
from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse

__all__ = [
    "FINAL",
    "Balance",
    "DeviceTotals",
    "Ledger",
    "check_devices",
    "device_totals",
    "wait_for",
]

FINAL: frozenset[int] = frozenset(
    {
        DeviceResponse.OK,
        DeviceResponse.FAILED,
        DeviceResponse.DEADLINE_EXCEEDED,
        DeviceResponse.MISFIRED,
        DeviceResponse.CANCELLED,
        DeviceResponse.REJECTED,
    }
)
"""Outcomes that end an input (SCHEDULED, DISPATCHED, CANCEL_TOO_LATE do not)."""


def _name(outcome: int) -> str:
    return DeviceResponse.Outcome.Name(outcome)  # type: ignore[arg-type]


def wait_for(cond: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    """Poll ``cond`` until true; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


@dataclass(frozen=True, slots=True)
class Balance:
    """The ledger's verdict at one moment."""

    records: int
    """Records read from the request topic."""
    inputs: int
    """Distinct inputs (request ids, or positions of records without one)."""
    finals: Counter[str]
    """Final outcome name -> inputs ending there."""
    missing: tuple[str, ...]
    """Inputs without a final state."""
    conflicting: dict[str, tuple[str, ...]]
    """Inputs with more than one distinct final state."""
    repeated: dict[str, int]
    """Inputs whose (single) final state was published more than once."""
    strangers: tuple[str, ...]
    """Final states for inputs never read from the request topic."""
    undead_lettered: tuple[str, ...]
    """REJECTED inputs without a DLQ record pointing at their position."""
    dlq_records: int
    allow_repeats: bool = False

    @property
    def ok(self) -> bool:
        return (
            not self.missing
            and not self.conflicting
            and not self.strangers
            and not self.undead_lettered
            and (self.allow_repeats or not self.repeated)
            and self.inputs == sum(self.finals.values())
        )

    def explain(self) -> str:
        parts = [
            f"records={self.records} inputs={self.inputs} finals={dict(self.finals)} "
            f"sum={sum(self.finals.values())} dlq={self.dlq_records}"
        ]
        if self.missing:
            parts.append(f"missing {len(self.missing)}: {list(self.missing[:5])}")
        if self.conflicting:
            parts.append(f"conflicting: {list(self.conflicting.items())[:5]}")
        if self.repeated and not self.allow_repeats:
            parts.append(f"repeated: {list(self.repeated.items())[:5]}")
        if self.strangers:
            parts.append(f"strangers: {list(self.strangers[:5])}")
        if self.undead_lettered:
            parts.append(f"REJECTED without DLQ record: {list(self.undead_lettered[:5])}")
        return "; ".join(parts)


class Ledger:
    """Reads the request, control, response and DLQ topics from the beginning, in a thread."""

    def __init__(self, profile: Profile) -> None:
        t = profile.topics
        self.profile = profile
        self._topics = {"request": t.request, "control": t.control, "response": t.response}
        self._dlq_topic = t.dlq
        self._reader = AssignReader(profile, [t.request, t.control, t.response, t.dlq])
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.requests: list[Record] = []
        self.controls: list[Record] = []
        self.responses: list[tuple[Record, DeviceResponse]] = []
        self.dlq: list[Record] = []
        self.undecodable_responses = 0
        self._thread = threading.Thread(target=self._run, name="ledger", daemon=True)
        self._thread.start()

    # -- reading --------------------------------------------------------------------------

    def _run(self) -> None:
        t = self._topics
        while not self._stop.is_set():
            batch = self._reader.poll_batch(timeout=0.1)
            if not batch:
                continue
            with self._lock:
                for r in batch:
                    if r.topic == t["request"]:
                        self.requests.append(r)
                    elif r.topic == t["control"]:
                        self.controls.append(r)
                    elif r.topic == t["response"]:
                        resp = decode(DeviceResponse, r.value, allow_unknown=True)
                        if isinstance(resp, DecodeFailure):
                            self.undecodable_responses += 1
                        else:
                            self.responses.append((r, resp))
                    elif r.topic == self._dlq_topic:
                        self.dlq.append(r)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._reader.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- views ----------------------------------------------------------------------------

    def response_values(self) -> list[DeviceResponse]:
        with self._lock:
            return [m for _, m in self.responses]

    def finals_by_request(self) -> dict[str, list[DeviceResponse]]:
        out: dict[str, list[DeviceResponse]] = defaultdict(list)
        for m in self.response_values():
            if m.outcome in FINAL and m.request_id:
                out[m.request_id].append(m)
        return out

    def dlq_records(self) -> list[Record]:
        with self._lock:
            return list(self.dlq)

    def request_records(self) -> list[Record]:
        with self._lock:
            return list(self.requests)

    # -- the verdict ----------------------------------------------------------------------

    def balance(self, *, allow_repeats: bool = False) -> Balance:
        with self._lock:
            requests = list(self.requests)
            responses = [m for _, m in self.responses]
            dlq = list(self.dlq)
        key_at: dict[tuple[int, int], str] = {}
        inputs: set[str] = set()
        for r in requests:
            req = decode(DeviceRequest, r.value)
            rid = "" if isinstance(req, DecodeFailure) else req.request_id
            key = rid or f"@{r.partition}:{r.offset}"
            key_at[(r.partition, r.offset)] = key
            inputs.add(key)
        dead: set[tuple[int, int]] = set()
        for r in dlq:
            if (r.header(HEADER_PREFIX + "topic") or b"").decode() != self._topics["request"]:
                continue
            part, off = r.header(HEADER_PREFIX + "partition"), r.header(HEADER_PREFIX + "offset")
            if part is not None and off is not None:
                dead.add((int(part), int(off)))
        finals: dict[str, list[int]] = defaultdict(list)
        strangers: list[str] = []
        undead: list[str] = []
        anonymous_used: set[tuple[int, int]] = set()
        for m in responses:
            if m.outcome not in FINAL:
                continue
            pos = (m.source_partition, m.source_offset)
            if m.outcome == DeviceResponse.REJECTED and not m.request_id:
                # No id: an undecodable request, or a refused cancel (whose response names a
                # control-topic position). A request-topic DLQ record at that position and a
                # request there without an id tell them apart.
                key = f"@{pos[0]}:{pos[1]}"
                if key_at.get(pos) == key and pos in dead and pos not in anonymous_used:
                    anonymous_used.add(pos)
                    finals[key].append(m.outcome)
                continue
            key = m.request_id
            if key not in inputs:
                strangers.append(key)
                continue
            if m.outcome == DeviceResponse.REJECTED and pos not in dead:
                undead.append(key)
            finals[key].append(m.outcome)
        tally: Counter[str] = Counter()
        conflicting: dict[str, tuple[str, ...]] = {}
        repeated: dict[str, int] = {}
        for key, outs in finals.items():
            distinct = sorted({_name(o) for o in outs})
            if len(distinct) > 1:
                conflicting[key] = tuple(distinct)
            elif len(outs) > 1:
                repeated[key] = len(outs)
            tally[distinct[0]] += 1
        return Balance(
            records=len(requests),
            inputs=len(inputs),
            finals=tally,
            missing=tuple(sorted(inputs - set(finals))),
            conflicting=conflicting,
            repeated=repeated,
            strangers=tuple(strangers),
            undead_lettered=tuple(undead),
            dlq_records=len(dlq),
            allow_repeats=allow_repeats,
        )

    def wait_balanced(
        self, timeout: float, *, expect_inputs: int | None = None, allow_repeats: bool = False
    ) -> Balance:
        """The balance once it is ok (and ``expect_inputs`` were read); else AssertionError
        with the last balance explained."""
        deadline = time.monotonic() + timeout
        while True:
            b = self.balance(allow_repeats=allow_repeats)
            if b.ok and (expect_inputs is None or b.inputs >= expect_inputs):
                return b
            if time.monotonic() > deadline:
                raise AssertionError(f"ledger not balanced after {timeout:g} s: {b.explain()}")
            time.sleep(0.2)

    def cancels_settled(self) -> list[str]:
        """Cancels read from the control topic that have no visible settlement: neither the
        request's CANCELLED nor a CANCEL_TOO_LATE answer nor a REJECTED of the cancel."""
        with self._lock:
            controls = list(self.controls)
            responses = [m for _, m in self.responses]
        cancelled = {m.request_id for m in responses if m.outcome == DeviceResponse.CANCELLED}
        too_late = {m.request_id for m in responses if m.outcome == DeviceResponse.CANCEL_TOO_LATE}
        finals = {m.request_id for m in responses if m.outcome in FINAL}
        open_: list[str] = []
        for r in controls:
            c = decode(CancelRequest, r.value)
            if isinstance(c, DecodeFailure):
                continue
            rid = c.request_id
            if rid not in cancelled and rid not in too_late and rid not in finals:
                open_.append(rid)
        return open_


@dataclass(frozen=True, slots=True)
class DeviceTotals:
    """What the simulated devices saw, summed over a fleet."""

    executed: int
    """Commands that ran; a device counts each request id at most once."""
    duplicates: int
    """Arrivals of a request id the device had seen already (absorbed by its de-duplication)."""
    internal_errors: int


def device_totals(devices: Iterable[Any]) -> DeviceTotals:
    """Sum ``counters()`` of fleet device handles (``Fleet.devices``)."""
    executed = duplicates = internal = 0
    for d in devices:
        c = d.counters()
        executed += c.executed
        duplicates += c.duplicates
        internal += c.internal_errors
    return DeviceTotals(executed, duplicates, internal)


def check_devices(ledger: Ledger, devices: Iterable[Any]) -> DeviceTotals:
    """Assert that the devices executed every OK request exactly once and nothing else: the
    number of executions equals the number of request ids whose final state is OK."""
    totals = device_totals(devices)
    ok = [
        rid for rid, ms in ledger.finals_by_request().items() if ms[0].outcome == DeviceResponse.OK
    ]
    assert totals.internal_errors == 0, "a simulated device hit a bug"
    assert totals.executed == len(ok), (
        f"devices executed {totals.executed} commands for {len(ok)} requests that ended OK"
    )
    return totals
