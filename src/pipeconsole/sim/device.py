"""One simulated device's own state: streams, bitrate, faults, request log and counters.

HTTP is not here (``server.py`` maps requests onto these methods) and neither is time
(``fleet.py`` steps the flow model and expires faults). The bodies built here are the ones
docs/device-api.md specifies.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pipeconsole.sim.checks import evaluate
from pipeconsole.sim.dedup import RequestLog, Result
from pipeconsole.sim.faults import FaultSet, sample_latency_ms
from pipeconsole.sim.flow import FlowModel, Node
from pipeconsole.sim.topology import DeviceSpec

__all__ = ["Attempt", "Counters", "SimDevice"]

STREAM_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PROFILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
KBPS_MIN, KBPS_MAX = 100, 100_000
MAX_STREAMS = 1000
"""Streams a device keeps (running or stopped); beyond it starting a new one is refused (429)."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One command attempt as the device saw it arrive."""

    request_id: str
    attempt: int | None
    started_unix_ms: int
    deadline_remaining_ms: int | None
    method: str
    path: str

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "attempt": self.attempt,
            "started_unix_ms": self.started_unix_ms,
            "deadline_remaining_ms": self.deadline_remaining_ms,
            "method": self.method,
            "path": self.path,
        }


@dataclass(frozen=True, slots=True)
class Counters:
    """A snapshot of what a device has seen, for assertions (``GET /_sim/counters``)."""

    device_id: str
    requests: int
    """Every request except chaos and debug ones."""
    commands: int
    executed: int
    """Commands that ran (each request id at most once)."""
    duplicates: int
    deadline_refused: int
    injected_errors: int
    rejected: int
    """4xx answers: malformed, invalid or unknown."""
    internal_errors: int
    """Bugs: an exception reached the handler's edge (tests assert 0)."""
    restarts: int
    faults_active: tuple[str, ...]
    """Kinds of the active faults."""
    attempts: tuple[Attempt, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "requests": self.requests,
            "commands": self.commands,
            "executed": self.executed,
            "duplicates": self.duplicates,
            "deadline_refused": self.deadline_refused,
            "injected_errors": self.injected_errors,
            "rejected": self.rejected,
            "internal_errors": self.internal_errors,
            "restarts": self.restarts,
            "faults_active": list(self.faults_active),
            "attempts": [a.to_json() for a in self.attempts],
        }


@dataclass(slots=True)
class SimDevice:
    """A device's state apart from its flow (which lives in the shared :class:`FlowModel`)."""

    spec: DeviceSpec
    flow: FlowModel
    rng: random.Random
    starve_after_s: float = 2.0
    blocked_after_s: float = 1.0
    faults: FaultSet = field(init=False)
    log: RequestLog = field(default_factory=RequestLog)
    streams: dict[str, str] = field(default_factory=dict)
    """Stream id -> "running" | "stopped"."""
    bitrate_kbps: int = 5000
    restarts: int = 0
    started: float = 0.0
    in_flight: int = 0
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=2048))
    """Handling time of recent requests, for the latency percentiles in /health."""
    latency_samples: int = 0
    """How many handling times were ever recorded."""
    _pct_cache: tuple[int, float, float] | None = None
    attempts: deque[Attempt] = field(default_factory=lambda: deque(maxlen=10_000))
    requests: int = 0
    commands: int = 0
    executed: int = 0
    duplicates: int = 0
    deadline_refused: int = 0
    injected_errors: int = 0
    rejected: int = 0
    internal_errors: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set (then replaced) whenever the faults change: held requests wait on it."""

    def __post_init__(self) -> None:
        self.faults = FaultSet(prefix=self.spec.device_id)

    @property
    def device_id(self) -> str:
        return self.spec.device_id

    def notify(self) -> None:
        """Wake the requests held by a fault so they look again."""
        self.changed.set()
        self.changed = asyncio.Event()

    @property
    def node(self) -> Node:
        return self.flow.nodes[self.spec.device_id]

    # ---- faults as the HTTP side feels them -------------------------------------------

    def latency_ms(self) -> float:
        """The delay to add to this answer (the largest of the active latency faults)."""
        return max((sample_latency_ms(f, self.rng) for f in self.faults.of("latency")), default=0.0)

    def injected_error(self) -> Result | None:
        for fault in self.faults.of("error_rate"):
            if self.rng.random() < float(fault.params["rate"]):
                self.injected_errors += 1
                status = int(fault.params["status"])
                return status, {
                    "error": "injected",
                    "detail": f"injected failure (fault {fault.id}, rate {fault.params['rate']})",
                }
        return None

    # ---- bodies -----------------------------------------------------------------------

    def health(self, now: float) -> dict[str, Any]:
        """The /health body; ``in_flight`` leaves out the health request being answered."""
        node = self.node
        verdict = evaluate(
            node,
            self.faults,
            now,
            starve_after_s=self.starve_after_s,
            blocked_after_s=self.blocked_after_s,
            cpu_noise=self.rng.uniform(-3.0, 3.0),
            in_flight=self.in_flight - 1,
        )
        p50, p99 = self._percentiles()
        return {
            "device_id": self.device_id,
            "state": verdict.state,
            "health": verdict.health,
            "checks": [
                {"name": c.name, "status": c.status, "detail": c.detail} for c in verdict.checks
            ],
            "metrics": {
                "in_flight": max(0, self.in_flight - 1),
                "queue_depth": round(node.queue),
                "queue_capacity": node.spec.queue_capacity,
                "rate_in": round(node.rate_in, 2),
                "rate_out": round(node.rate_out, 2),
                "latency_p50_ms": p50,
                "latency_p99_ms": p99,
                "restarts": self.restarts,
                "deadline_misses": self.deadline_refused,
                "uptime_s": round(now - self.started, 1),
                "streams_running": sum(1 for s in self.streams.values() if s == "running"),
                "bitrate_kbps": self.bitrate_kbps,
                "dropped": round(node.dropped),
            },
        }

    def topology(self) -> dict[str, Any]:
        node = self.node
        return {
            "device_id": self.device_id,
            "upstream": [
                {
                    "peer_id": u,
                    "rate": round(node.link_in[u], 2),
                    "queue_depth": round(node.queue),
                    "queue_capacity": node.spec.queue_capacity,
                }
                for u in node.spec.upstream
            ],
            "downstream": [
                {
                    "peer_id": d,
                    "rate": round(node.link_out[d], 2),
                    "queue_depth": round(node.seen_queue[d]),
                    "queue_capacity": node.peer_capacity[d],
                    "reachable": d not in node.unreachable,
                }
                for d in node.spec.downstream
            ],
        }

    def counters(self) -> Counters:
        return Counters(
            device_id=self.device_id,
            requests=self.requests,
            commands=self.commands,
            executed=self.executed,
            duplicates=self.duplicates,
            deadline_refused=self.deadline_refused,
            injected_errors=self.injected_errors,
            rejected=self.rejected,
            internal_errors=self.internal_errors,
            restarts=self.restarts,
            faults_active=tuple(f.kind for f in self.faults.active()),
            attempts=tuple(self.attempts),
        )

    def _percentiles(self) -> tuple[float, float]:
        """p50 and p99 of recent handling times, recomputed after every 64 new samples (a
        health check must stay cheap: 1,000 devices answer them in one process)."""
        seen = self.latency_samples
        if self._pct_cache is not None and seen - self._pct_cache[0] < 64:
            return self._pct_cache[1], self._pct_cache[2]
        data = sorted(self.latencies_ms)
        if not data:
            return 0.0, 0.0
        p50 = round(data[(len(data) - 1) // 2], 2)
        p99 = round(data[min(len(data) - 1, int(len(data) * 0.99))], 2)
        self._pct_cache = (seen, p50, p99)
        return p50, p99

    # ---- commands (bodies already parsed; ids are checked here) ----------------------

    def start_stream(self, stream_id: str, body: Any) -> Result:
        if (bad := _bad_stream_id(stream_id)) is not None:
            return bad
        profile = "default"
        if body is not None:
            if not isinstance(body, dict):
                return 422, _err("wrong_type", "the body must be a JSON object", "")
            extra = sorted(set(body) - {"profile"})
            if extra:
                return 422, _err("not_allowed", f"unknown field {extra[0]!r}", extra[0])
            profile = body.get("profile", profile)
            if not isinstance(profile, str) or not PROFILE_RE.fullmatch(profile):
                return 422, _err(
                    "grammar", "profile: 1-64 letters, digits, '.', '_' or '-'", "profile"
                )
        if self.streams.get(stream_id) == "running":
            return 409, _err("already_running", f"stream {stream_id} is already running", "")
        if stream_id not in self.streams and len(self.streams) >= MAX_STREAMS:
            return 429, _err("too_many_streams", f"at most {MAX_STREAMS} streams", "")
        self.streams[stream_id] = "running"
        self.executed += 1
        return 200, {"stream_id": stream_id, "state": "running", "profile": profile}

    def stop_stream(self, stream_id: str) -> Result:
        if (bad := _bad_stream_id(stream_id)) is not None:
            return bad
        if stream_id not in self.streams:
            return 404, _err("unknown_stream", f"no stream {stream_id} on this device", "")
        self.streams[stream_id] = "stopped"
        self.executed += 1
        return 200, {"stream_id": stream_id, "state": "stopped"}

    def set_bitrate(self, body: Any) -> Result:
        if not isinstance(body, dict):
            return 422, _err("wrong_type", "the body must be a JSON object", "")
        extra = sorted(set(body) - {"kbps"})
        if extra:
            return 422, _err("not_allowed", f"unknown field {extra[0]!r}", extra[0])
        kbps = body.get("kbps")
        if isinstance(kbps, bool) or not isinstance(kbps, int) or not KBPS_MIN <= kbps <= KBPS_MAX:
            return 422, _err(
                "range", f"kbps must be an integer in [{KBPS_MIN}, {KBPS_MAX}]", "kbps"
            )
        self.bitrate_kbps = kbps
        self.executed += 1
        return 200, {"kbps": kbps}


def _bad_stream_id(stream_id: str) -> Result | None:
    if STREAM_ID_RE.fullmatch(stream_id):
        return None
    return 400, _err(
        "bad_stream_id", "stream id: 1-64 letters, digits, '.', '_' or '-'", "stream_id"
    )


def _err(code: str, detail: str, field_name: str) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "detail": detail}
    if field_name:
        body["field"] = field_name
    return body
