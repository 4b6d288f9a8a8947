"""Faults as leases: what ``POST /chaos`` accepts, and the set of faults active on one device.

A fault has a kind (see ``SPECS``), typed parameters and a duration; it expires by itself when
the simulated clock passes ``expires`` (:meth:`FaultSet.expire`, called every tick). Parsing a
request body never raises: :func:`parse_fault` returns a :class:`FaultRequest` or a
:class:`FieldProblem` naming the field and why.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "KINDS",
    "MAX_DURATION_S",
    "SPECS",
    "Fault",
    "FaultRequest",
    "FaultSet",
    "FieldProblem",
    "parse_fault",
    "sample_latency_ms",
]

MAX_DURATION_S = 86_400.0

Param = tuple[type, float, float, float | int | str]
"""(type, min, max, default); for ``str`` parameters min/max are unused and the choices are
listed in ``CHOICES``."""

SPECS: Mapping[str, Mapping[str, Param]] = {
    "latency": {
        "mean_ms": (float, 0.0, 600_000.0, 200.0),
        "jitter_ms": (float, 0.0, 600_000.0, 0.0),
        "distribution": (str, 0, 0, "normal"),
    },
    "error_rate": {"rate": (float, 0.0, 1.0, 0.5), "status": (int, 400, 599, 503)},
    "hang": {},
    "crash": {},
    "flap": {"period_s": (float, 0.01, 3600.0, 2.0)},
    "stall": {},
    "blackout": {},
}
"""Every fault kind and its parameters."""
KINDS = tuple(SPECS)
CHOICES: Mapping[str, tuple[str, ...]] = {"distribution": ("normal", "uniform", "exponential")}


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """Why a request body cannot be used."""

    field: str
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class FaultRequest:
    kind: str
    duration_s: float
    params: Mapping[str, float | int | str]


@dataclass(frozen=True, slots=True)
class Fault:
    """One active fault on one device."""

    id: str
    kind: str
    params: Mapping[str, float | int | str]
    started: float
    """Simulated time it began."""
    expires: float
    """Simulated time it ends by itself."""
    expires_unix_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fault": self.kind,
            "params": dict(self.params),
            "expires_unix_ms": self.expires_unix_ms,
        }


def parse_fault(body: Any) -> FaultRequest | FieldProblem:
    """``{"fault": F, "duration_s": S, ...params}`` -> a checked request, or the problem."""
    if not isinstance(body, dict):
        return FieldProblem("", "wrong_type", "the body must be a JSON object")
    kind = body.get("fault")
    if not isinstance(kind, str) or kind not in SPECS:
        return FieldProblem("fault", "unknown", f"fault must be one of {', '.join(KINDS)}")
    duration = body.get("duration_s")
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int | float)
        or not 0 < duration <= MAX_DURATION_S
    ):
        return FieldProblem(
            "duration_s", "range", f"duration_s must be a number in (0, {MAX_DURATION_S:.0f}]"
        )
    spec = SPECS[kind]
    extra = sorted(set(body) - {"fault", "duration_s"} - set(spec))
    if extra:
        allowed = ", ".join(spec) or "none"
        return FieldProblem(
            extra[0], "not_allowed", f"{kind} takes no parameter {extra[0]!r} (allowed: {allowed})"
        )
    params: dict[str, float | int | str] = {}
    for name, (typ, lo, hi, default) in spec.items():
        value = body.get(name, default)
        if typ is str:
            choices = CHOICES[name]
            if not isinstance(value, str) or value not in choices:
                return FieldProblem(name, "unknown", f"{name} must be one of {', '.join(choices)}")
            params[name] = value
            continue
        ok_type = int if typ is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok_type) or not lo <= value <= hi:
            what = "an integer" if typ is int else "a number"
            return FieldProblem(name, "range", f"{name} must be {what} in [{lo:g}, {hi:g}]")
        params[name] = typ(value)
    return FaultRequest(kind=kind, duration_s=float(duration), params=params)


@dataclass(slots=True)
class FaultSet:
    """The faults active on one device, by id."""

    prefix: str
    """Fault ids are ``<prefix>.f<n>``: unique within a fleet, readable in logs."""
    faults: dict[str, Fault] = field(default_factory=dict)
    _next: int = 1

    def add(self, req: FaultRequest, now: float, unix_ms: int) -> Fault:
        fault = Fault(
            id=f"{self.prefix}.f{self._next}",
            kind=req.kind,
            params=dict(req.params),
            started=now,
            expires=now + req.duration_s,
            expires_unix_ms=unix_ms + int(req.duration_s * 1000),
        )
        self._next += 1
        self.faults[fault.id] = fault
        return fault

    def remove(self, fault_id: str) -> Fault | None:
        return self.faults.pop(fault_id, None)

    def clear(self) -> list[Fault]:
        ended = list(self.faults.values())
        self.faults.clear()
        return ended

    def expire(self, now: float) -> list[Fault]:
        ended = [f for f in self.faults.values() if f.expires <= now]
        for f in ended:
            del self.faults[f.id]
        return ended

    def has(self, kind: str) -> bool:
        return any(f.kind == kind for f in self.faults.values())

    def has_any(self, kinds: Iterable[str]) -> bool:
        wanted = set(kinds)
        return any(f.kind in wanted for f in self.faults.values())

    def of(self, kind: str) -> list[Fault]:
        return [f for f in self.faults.values() if f.kind == kind]

    def active(self) -> list[Fault]:
        return list(self.faults.values())


def sample_latency_ms(fault: Fault, rng: random.Random) -> float:
    """One delay drawn from a latency fault's distribution (never negative)."""
    mean = float(fault.params.get("mean_ms", 0.0))
    jitter = float(fault.params.get("jitter_ms", 0.0))
    dist = fault.params.get("distribution", "normal")
    if dist == "uniform":
        value = rng.uniform(mean - jitter, mean + jitter)
    elif dist == "exponential":
        value = jitter + rng.expovariate(1.0 / mean) if mean > 0 else jitter
    else:
        value = rng.gauss(mean, jitter) if jitter > 0 else mean
    return max(0.0, value)
