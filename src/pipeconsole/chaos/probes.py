"""Steady-state probes: numbers read off the state model's :class:`Snapshot`.

:func:`measure` computes one probe (a key of :data:`pipeconsole.chaos.experiment.PROBES`) from
a snapshot, the :class:`Baseline` taken when the experiment started, and the :class:`Ledger`
of what the experiment itself sent. It never raises: a probe that cannot be computed (no
snapshot yet, an empty fleet) is NaN, and NaN is outside every tolerance.

Matching chaos records to the DLQ uses the actors' ``pipeconsole.dlq.{topic,partition,offset}``
headers against the deliveries the runner recorded; the model keeps a bounded list of DLQ
entries, so the match is exact for experiments that send fewer records than that bound.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from pipeconsole.model.snapshot import Health, Snapshot

__all__ = ["Baseline", "Ledger", "dlq_matches", "measure"]


@dataclass(frozen=True, slots=True)
class Baseline:
    """Counters at the start of the experiment, so probes measure growth."""

    dlq_total: int = 0
    undecodable: int = 0


def baseline_of(snap: Snapshot | None, request_topic: str) -> Baseline:
    if snap is None:
        return Baseline()
    return Baseline(snap.dlq_total, undecodable_of(snap, request_topic))


def undecodable_of(snap: Snapshot, topic: str) -> int:
    return sum(t.undecodable for t in snap.fleet.topics if t.topic == topic)


@dataclass(slots=True)
class Ledger:
    """What the experiment sent: written by publisher threads, read by the probe loop."""

    valid_ids: set[str] = field(default_factory=set)
    """request_id of every valid request delivered (class 3 included)."""
    chaos_at: dict[tuple[str, int, int], str] = field(default_factory=dict)
    """(topic, partition, offset) of every class-1/2 record delivered → its kind."""
    sent_by_kind: dict[str, int] = field(default_factory=dict)
    sent_by_class: dict[str, int] = field(default_factory=dict)
    undecodable_sent: int = 0
    """Class-1 records delivered: what the console's undecodable counter should grow by."""
    failed_sends: int = 0
    targets: tuple[str, ...] = ()
    lock: threading.Lock = field(default_factory=threading.Lock)

    def copy_counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self.sent_by_class)


def dlq_matches(snap: Snapshot, ledger: Ledger) -> dict[str, int]:
    """reason code → how many of the ledger's chaos records are in the DLQ with a reason."""
    out: dict[str, int] = {}
    with ledger.lock:
        wanted = set(ledger.chaos_at)
    for e in snap.dlq:
        h = dict(e.headers)
        try:
            key = (
                h.get("pipeconsole.dlq.topic", ""),
                int(h.get("pipeconsole.dlq.partition", "-1")),
                int(h.get("pipeconsole.dlq.offset", "-1")),
            )
        except ValueError:
            continue
        if key in wanted and (e.reason or h.get("pipeconsole.dlq.reason")):
            code = e.code or h.get("pipeconsole.dlq.code", "") or "unknown"
            out[code] = out.get(code, 0) + 1
    return out


def measure(
    probe: str,
    snap: Snapshot | None,
    baseline: Baseline,
    ledger: Ledger,
    request_topic: str,
) -> float:
    """The probe's value now; NaN when it cannot be known."""
    if snap is None:
        return math.nan
    fleet = snap.fleet
    if probe == "healthy_fraction":
        return fleet.healthy / fleet.total if fleet.total else math.nan
    if probe == "deadline_miss_rate":
        return fleet.deadline_miss_rate
    if probe == "lag_seconds":
        return fleet.max_lag_seconds
    if probe == "dlq_growth":
        return float(snap.dlq_total - baseline.dlq_total)
    if probe == "undecodable_growth":
        return float(undecodable_of(snap, request_topic) - baseline.undecodable)
    if probe == "undecodable_mismatch":
        with ledger.lock:
            sent = ledger.undecodable_sent
        return float(undecodable_of(snap, request_topic) - baseline.undecodable - sent)
    if probe == "requests_final":
        with ledger.lock:
            ids = set(ledger.valid_ids)
        if not ids:
            return 1.0
        final = {r.request_id for r in snap.requests if r.final}
        return len(ids & final) / len(ids)
    if probe == "chaos_dead_lettered":
        with ledger.lock:
            n = len(ledger.chaos_at)
        if not n:
            return 1.0
        return sum(dlq_matches(snap, ledger).values()) / n
    if probe == "actors_alive":
        return float(sum(1 for a in snap.actors if not a.stale))
    if probe == "targets_healthy":
        targets = ledger.targets
        if not targets:
            return math.nan
        healthy = sum(
            1 for t in targets if (d := snap.device(t)) is not None and d.health == Health.HEALTHY
        )
        return healthy / len(targets)
    return math.nan
