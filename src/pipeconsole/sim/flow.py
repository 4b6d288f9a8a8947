"""The seeded flow model: units of media moving through bounded queues, one tick at a time.

Every device has an input queue of finite capacity and a processing rate. Each tick (``dt``
seconds of simulated time) devices are visited sinks first, so a downstream device frees room
before its upstream pushes into it:

- a source (no upstream) receives ``source_rate * dt`` from outside; what does not fit is dropped
  and counted;
- a device that is up and not stalled takes ``min(queue, rate * dt)`` and sends it to its
  downstream devices in equal shares (a tee: every output rendition goes to its own peer). It
  can send only as much as the fullest reachable peer can take, so **a full downstream queue
  slows its upstream**, whose own queue then fills: back-pressure travels up;
- the share for a peer that is down (crashed) is lost, and that peer receives nothing: **a dead
  upstream starves its downstream**, which notices by the time since each upstream last
  delivered (``Node.last_input``).

Rates are exponentially weighted (time constant ``TAU_S``) per device and per link. The model
is pure and deterministic: no I/O, no randomness, time only from the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipeconsole.sim.topology import DeviceSpec, Layout

__all__ = ["EPS", "TAU_S", "FlowModel", "Node"]

TAU_S = 1.0
"""Time constant of the rate averages, in simulated seconds."""
EPS = 1e-6
"""Amounts below this are treated as nothing (no delivery, not blocked)."""


@dataclass(slots=True)
class Node:
    """The flow state of one device."""

    spec: DeviceSpec
    queue: float = 0.0
    up: bool = True
    """False while crashed: receives nothing, processes nothing, its queue is lost."""
    stalled: bool = False
    """True while the ``stall`` fault holds: receives, but its output stops."""
    last_input: dict[str, float] = field(default_factory=dict)
    """Upstream id -> simulated time it last delivered anything."""
    link_in: dict[str, float] = field(default_factory=dict)
    """Upstream id -> units/s received (averaged)."""
    link_out: dict[str, float] = field(default_factory=dict)
    """Downstream id -> units/s sent (averaged)."""
    seen_queue: dict[str, float] = field(default_factory=dict)
    """Downstream id -> that peer's queue depth as this device last saw it (while reachable)."""
    peer_capacity: dict[str, int] = field(default_factory=dict)
    """Downstream id -> that peer's queue capacity."""
    unreachable: tuple[str, ...] = ()
    """Downstream peers that were down at the last tick."""
    rate_in: float = 0.0
    rate_out: float = 0.0
    utilisation: float = 0.0
    """Processed / what the rate would allow, averaged (0..1)."""
    blocked_since: float | None = None
    """When output first became limited by a full downstream queue (None: not blocked)."""
    blocked_by: str | None = None
    processed: float = 0.0
    dropped: float = 0.0
    """Units lost: source overflow, shares for unreachable peers, queue lost in a crash."""


class FlowModel:
    """All devices' flow state; :meth:`step` moves it to a new simulated time."""

    def __init__(self, layout: Layout, *, start: float = 0.0) -> None:
        self.layout = layout
        self.now = start
        self.nodes: dict[str, Node] = {}
        for spec in layout.devices:
            self.nodes[spec.device_id] = Node(
                spec=spec,
                last_input=dict.fromkeys(spec.upstream, start),
                link_in=dict.fromkeys(spec.upstream, 0.0),
                link_out=dict.fromkeys(spec.downstream, 0.0),
                seen_queue=dict.fromkeys(spec.downstream, 0.0),
                peer_capacity={d: layout.get(d).queue_capacity for d in spec.downstream},
            )
        self._reverse = [self.nodes[d.device_id] for d in reversed(layout.devices)]

    def crash(self, device_id: str) -> None:
        node = self.nodes[device_id]
        node.up = False
        node.dropped += node.queue
        node.queue = 0.0

    def restart(self, device_id: str, now: float) -> None:
        """Back up with an empty queue; silence before the restart is not held against peers."""
        node = self.nodes[device_id]
        node.up = True
        node.queue = 0.0
        node.blocked_since = None
        node.blocked_by = None
        for u in node.last_input:
            node.last_input[u] = now

    def step(self, now: float) -> None:
        dt = now - self.now
        if dt <= 0:
            return
        self.now = now
        alpha = 1.0 - math.exp(-dt / TAU_S)
        tick = _Tick(dt=dt, now=now, alpha=alpha, received=dict.fromkeys(self.nodes, 0.0))
        for node in self._reverse:
            spec = node.spec
            if not node.up:
                self._fade(node, alpha)
                continue
            if spec.source_rate > 0:
                arrival = spec.source_rate * dt
                take = min(arrival, max(0.0, spec.queue_capacity - node.queue))
                node.queue += take
                node.dropped += arrival - take
                tick.received[spec.device_id] += take
            can = 0.0 if node.stalled else min(node.queue, spec.rate * dt)
            out = self._send(node, can, tick)
            node.queue = max(0.0, node.queue - out)
            node.processed += out
            node.rate_out += alpha * (out / dt - node.rate_out)
            budget = spec.rate * dt
            node.utilisation += alpha * ((out / budget if budget > 0 else 0.0) - node.utilisation)
        for node in self.nodes.values():
            node.rate_in += alpha * (tick.received[node.spec.device_id] / dt - node.rate_in)
            for u in node.link_in:
                got = tick.links.get((u, node.spec.device_id), 0.0)
                node.link_in[u] += alpha * (got / dt - node.link_in[u])

    def _send(self, node: Node, can: float, tick: _Tick) -> float:
        """Push up to ``can`` units downstream in equal shares; returns what left the queue."""
        downs = node.spec.downstream
        if not downs:
            return can
        share = 1.0 / len(downs)
        node.unreachable = tuple(d for d in downs if not self.nodes[d].up)
        out = can
        tightest: str | None = None
        for d in downs:
            peer = self.nodes[d]
            if peer.up:
                room = max(0.0, peer.spec.queue_capacity - peer.queue) / share
                if room < out:
                    out, tightest = room, d
        if tightest is not None and can - out > EPS:
            if node.blocked_since is None:
                node.blocked_since = tick.now
            node.blocked_by = tightest
        else:
            node.blocked_since = None
            node.blocked_by = None
        amount = out * share
        me = node.spec.device_id
        for d in downs:
            peer = self.nodes[d]
            sent = 0.0
            if peer.up:
                sent = amount
                peer.queue += sent
                node.seen_queue[d] = peer.queue
                tick.received[d] += sent
                tick.links[(me, d)] = sent
                if sent > EPS:
                    peer.last_input[me] = tick.now
            else:
                node.dropped += amount
            node.link_out[d] += tick.alpha * (sent / tick.dt - node.link_out[d])
        return out

    @staticmethod
    def _fade(node: Node, alpha: float) -> None:
        node.rate_in -= alpha * node.rate_in
        node.rate_out -= alpha * node.rate_out
        node.utilisation -= alpha * node.utilisation
        for k in node.link_in:
            node.link_in[k] -= alpha * node.link_in[k]
        for k in node.link_out:
            node.link_out[k] -= alpha * node.link_out[k]


@dataclass(slots=True)
class _Tick:
    """What one step accumulates while visiting the devices."""

    dt: float
    now: float
    alpha: float
    received: dict[str, float]
    links: dict[tuple[str, str], float] = field(default_factory=dict)
