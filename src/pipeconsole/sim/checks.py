"""Health follows the checks: named checks computed from a device's flow state and faults.

Checks (each HEALTHY, DEGRADED or FAILING with a one-line detail):

- ``input``   an upstream that has delivered nothing for ``starve_after_s`` while this
  device's queue is not full -> DEGRADED ("no input from transcode-03 for 2.0 s");
- ``output``  stalled -> FAILING; limited by a full downstream queue for ``blocked_after_s``
  -> DEGRADED (back-pressure); a downstream peer down -> DEGRADED;
- ``queue``   at or above 90 % of capacity -> DEGRADED;
- ``cpu``     utilisation (seeded jitter added) at or above 95 % -> DEGRADED;
- ``process`` a ``flap`` fault alternates it FAILING / HEALTHY every ``period_s``.

Health is the worst check; state is ERROR when FAILING, BUSY when work flows, else IDLE.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeconsole.sim.faults import FaultSet
from pipeconsole.sim.flow import Node

__all__ = ["HEALTHY", "Check", "Verdict", "evaluate"]

HEALTHY, DEGRADED, FAILING = "HEALTHY", "DEGRADED", "FAILING"
_RANK = {HEALTHY: 0, DEGRADED: 1, FAILING: 2}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str
    detail: str


@dataclass(frozen=True, slots=True)
class Verdict:
    state: str
    health: str
    checks: tuple[Check, ...]


def evaluate(
    node: Node,
    faults: FaultSet,
    now: float,
    *,
    starve_after_s: float,
    blocked_after_s: float,
    cpu_noise: float = 0.0,
    in_flight: int = 0,
) -> Verdict:
    checks = (
        _input(node, now, starve_after_s),
        _output(node, now, blocked_after_s),
        _queue(node),
        _cpu(node, cpu_noise),
        _process(faults, now),
    )
    health = max((c.status for c in checks), key=_RANK.__getitem__)
    if health == FAILING:
        state = "ERROR"
    elif node.rate_out > 0.01 or in_flight > 0:
        state = "BUSY"
    else:
        state = "IDLE"
    return Verdict(state=state, health=health, checks=checks)


def _input(node: Node, now: float, starve_after_s: float) -> Check:
    spec = node.spec
    if not spec.upstream:
        return Check("input", HEALTHY, f"source {spec.source_rate:.1f}/s")
    if node.queue >= spec.queue_capacity * 0.9:
        return Check("input", HEALTHY, f"{node.rate_in:.1f}/s from {len(spec.upstream)} peer(s)")
    silent = sorted(
        ((now - t, u) for u, t in node.last_input.items() if now - t >= starve_after_s),
        reverse=True,
    )
    if silent:
        gap, peer = silent[0]
        more = f" (and {len(silent) - 1} more)" if len(silent) > 1 else ""
        return Check("input", DEGRADED, f"no input from {peer} for {gap:.1f} s{more}")
    return Check("input", HEALTHY, f"{node.rate_in:.1f}/s from {len(spec.upstream)} peer(s)")


def _output(node: Node, now: float, blocked_after_s: float) -> Check:
    spec = node.spec
    if node.stalled:
        return Check("output", FAILING, "output stalled: nothing leaves the queue")
    if node.blocked_since is not None and now - node.blocked_since >= blocked_after_s:
        peer = node.blocked_by or "?"
        seen = node.seen_queue.get(peer, 0.0)
        cap = node.peer_capacity.get(peer, spec.queue_capacity)
        return Check(
            "output",
            DEGRADED,
            f"back-pressure: {peer} queue full ({seen:.0f}/{cap}) for "
            f"{now - node.blocked_since:.1f} s",
        )
    if node.unreachable:
        return Check("output", DEGRADED, f"{', '.join(node.unreachable)} unreachable")
    if not spec.downstream:
        return Check("output", HEALTHY, f"{node.rate_out:.1f}/s to viewers")
    return Check("output", HEALTHY, f"{node.rate_out:.1f}/s to {len(spec.downstream)} peer(s)")


def _queue(node: Node) -> Check:
    cap = node.spec.queue_capacity
    pct = 100.0 * node.queue / cap
    status = DEGRADED if pct >= 90.0 else HEALTHY
    return Check("queue", status, f"{node.queue:.0f}/{cap} ({pct:.0f} %)")


def _cpu(node: Node, noise: float) -> Check:
    pct = min(100.0, max(0.0, 10.0 + 85.0 * node.utilisation + noise))
    return Check("cpu", DEGRADED if pct >= 95.0 else HEALTHY, f"{pct:.0f} %")


def _process(faults: FaultSet, now: float) -> Check:
    for fault in faults.of("flap"):
        period = float(fault.params.get("period_s", 2.0))
        if int((now - fault.started) / period) % 2 == 0:
            return Check("process", FAILING, f"health flapping (fault {fault.id})")
    return Check("process", HEALTHY, "running")
