"""Flat records for the ``/`` filter: one per device, request, DLQ entry, lag row, event.

Field names are what operators type (``health=failing and queue>0.8``). Values are raw
(untrusted) strings and numbers: the query language only compares them, never renders them.
Headless scripts use the same records, so a filter means the same thing everywhere.
"""

from __future__ import annotations

from pipeconsole.model.snapshot import (
    AUDIT_OUTCOMES,
    CHAOS_PHASES,
    AuditView,
    ChaosView,
    DeviceState,
    DeviceView,
    DlqEntry,
    Health,
    LagRow,
    RequestRow,
    RequestState,
    Severity,
    TimelineEvent,
)
from pipeconsole.query import Value

__all__ = [
    "AUDIT_CHOICES",
    "AUDIT_FIELDS",
    "CHAOS_CHOICES",
    "CHAOS_FIELDS",
    "DEVICE_CHOICES",
    "DEVICE_FIELDS",
    "DLQ_FIELDS",
    "EVENT_CHOICES",
    "EVENT_FIELDS",
    "LAG_FIELDS",
    "REQUEST_CHOICES",
    "REQUEST_FIELDS",
    "audit_record",
    "chaos_record",
    "device_record",
    "dlq_record",
    "event_record",
    "lag_record",
    "request_record",
]

Record = dict[str, Value]
Choices = dict[str, tuple[str, ...]]
"""Field -> every value it can hold: the filter refuses any other (``health=failng``)."""

_BOOL = ("true", "false")

DEVICE_FIELDS = (
    "id", "name", "stage", "kind", "health", "state", "stale", "queue", "depth", "capacity",
    "rate_in", "rate_out", "in_flight", "p50", "p99", "misses", "restarts", "actor", "reason",
    "address", "seen",
)  # fmt: skip
"""``queue`` is the input-queue fill 0..1; ``seen`` the seconds since the last state event."""

DEVICE_CHOICES: Choices = {
    "health": tuple(h.value for h in Health),
    "state": tuple(s.value for s in DeviceState),
    "stale": _BOOL,
}


def device_record(d: DeviceView) -> Record:
    return {
        "id": d.device_id,
        "name": d.name,
        "stage": d.stage,
        "kind": d.kind,
        "health": d.health.value,
        "state": d.state.value,
        "stale": d.stale,
        "queue": round(d.queue_fill, 4),
        "depth": d.queue_depth,
        "capacity": d.queue_capacity,
        "rate_in": d.rate_in,
        "rate_out": d.rate_out,
        "in_flight": d.in_flight,
        "p50": d.latency_p50_ms,
        "p99": d.latency_p99_ms,
        "misses": d.deadline_misses,
        "restarts": d.restarts,
        "actor": d.actor_id,
        "reason": d.reason,
        "address": d.base_url,
        "seen": d.last_seen_age_s,
    }


REQUEST_FIELDS = (
    "id", "device", "state", "method", "uri", "remaining", "attempts", "reason", "replay_of",
    "status", "final", "by", "actor",
)  # fmt: skip
"""``remaining`` is the deadline budget left in seconds (negative: missed)."""

REQUEST_CHOICES: Choices = {"state": tuple(s.value for s in RequestState), "final": _BOOL}


def request_record(r: RequestRow) -> Record:
    return {
        "id": r.request_id,
        "device": r.device_id,
        "state": r.state.value,
        "method": r.method,
        "uri": r.uri,
        "remaining": None if r.remaining_ms is None else r.remaining_ms / 1000,
        "attempts": r.attempts,
        "reason": r.reason,
        "replay_of": r.replay_of,
        "status": r.status_code,
        "final": r.final,
        "by": r.issued_by,
        "actor": r.actor_id,
    }


DLQ_FIELDS = ("topic", "partition", "offset", "key", "reason", "code", "size", "request")


def dlq_record(e: DlqEntry) -> Record:
    return {
        "topic": e.topic,
        "partition": e.partition,
        "offset": e.offset,
        "key": e.key,
        "reason": e.reason,
        "code": e.code,
        "size": e.size,
        "request": e.request_id,
    }


LAG_FIELDS = ("group", "topic", "partition", "lag", "seconds", "drain", "committed", "high")


def lag_record(r: LagRow) -> Record:
    return {
        "group": r.group,
        "topic": r.topic,
        "partition": r.partition,
        "lag": r.lag,
        "seconds": r.lag_seconds,
        "drain": r.drain_rate,
        "committed": r.committed,
        "high": r.high,
    }


EVENT_FIELDS = ("kind", "subject", "text", "severity")
EVENT_CHOICES: Choices = {"severity": tuple(s.value for s in Severity)}


def event_record(e: TimelineEvent) -> Record:
    return {"kind": e.kind, "subject": e.subject, "text": e.text, "severity": e.severity.value}


AUDIT_FIELDS = ("principal", "user", "action", "targets", "outcome", "reason", "profile")
AUDIT_CHOICES: Choices = {"outcome": AUDIT_OUTCOMES}


def audit_record(a: AuditView) -> Record:
    return {
        "principal": a.principal,
        "user": a.os_user,
        "action": a.action,
        "targets": " ".join(a.targets),
        "outcome": a.outcome,
        "reason": a.reason,
        "profile": a.profile,
    }


CHAOS_FIELDS = ("id", "name", "phase", "detail", "targets", "held", "by")
CHAOS_CHOICES: Choices = {"phase": CHAOS_PHASES, "held": _BOOL}


def chaos_record(c: ChaosView) -> Record:
    return {
        "id": c.experiment_id,
        "name": c.name,
        "phase": c.phase,
        "detail": c.detail,
        "targets": " ".join(c.targets),
        "held": c.hypothesis_held,
        "by": c.issued_by,
    }
