"""The pipeline graph (networkx ``DiGraph``) and its analyses.

Edges come from the links devices report in their state events: an ``UPSTREAM`` link on
device D with peer P is the edge P -> D (D's input queue); a ``DOWNSTREAM`` link is D -> P
(P's input queue as D last saw it). An edge reported by one side only, or not reported for
more than 3 check intervals, is a **ghost edge**.

Analyses (recomputed at a bounded rate by the model, never per message):

- **layers**: topological generations of the condensation (so cycles do not break layering);
  order within a layer by (stage, id), stable between frames.
- **islands**: weakly connected components, largest first.
- **cycles**: simple cycles, at most ``MAX_CYCLES`` (a healthy pipeline has none).
- **root causes**: unhealthy devices none of whose direct upstream devices is at least as
  unhealthy (FAILING above UNKNOWN above DEGRADED: a device degraded by back-pressure from a
  failed one downstream does not hide it, nor does an upstream device whose telemetry is
  late hide one that reports failing). Ranked by severity, then by
  blast-radius weight: the device and its descendants, each counting 1 + its normal traffic
  (peak input rate in the history window) + its in-flight requests.
- **bottlenecks**: a device is congested when its input grows (rate in > rate out and the queue
  depth rising, or no history yet) or its queue is nearly full; the bottleneck is a congested
  device with no congested successor (the first one on the path from the sink side), and the
  congested devices upstream of it are the back-pressure wave. Time to full from the measured
  queue growth.
- **stage collapse**: one node per stage, edges aggregated, for fleets too big to draw.

The structure (graph, layers, islands, cycles) is rebuilt only when the fleet's
``structure_version`` moves; edge attributes and health are refreshed every analysis.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import networkx as nx

from pipeconsole.model.fleet import Fleet
from pipeconsole.model.snapshot import (
    Bottleneck,
    GraphEdge,
    GraphNode,
    GraphView,
    Health,
    Incident,
    StageEdge,
    StageGraph,
    StageNode,
    builder,
)

__all__ = ["MAX_CYCLES", "MAX_INCIDENTS", "Analysis", "Topology", "severity"]

MAX_CYCLES = 20
MAX_INCIDENTS = 20
MAX_BOTTLENECKS = 20
_UPSTREAM, _DOWNSTREAM = 1, 2
_INF = float("inf")
_Node = builder(GraphNode)
_EdgeView = builder(GraphEdge)
"""Fast constructors (see :func:`~pipeconsole.model.snapshot.builder`): an analysis builds a
node per device and a view per edge."""


def severity(health: Health) -> int:
    """0 healthy, 1 degraded, 2 unknown, 3 failing.

    No telemetry is not health, so UNKNOWN is severe; but a device that *reports* failing is
    evidence, where silence is only its absence: between the two, the failing one is the
    likelier root cause (a crashed encoder outranks a bigger device whose telemetry is late).
    """
    if health == Health.HEALTHY:
        return 0
    if health == Health.DEGRADED:
        return 1
    if health == Health.UNKNOWN:
        return 2
    return 3


@dataclass(frozen=True, slots=True)
class Analysis:
    graph: GraphView
    incidents: tuple[Incident, ...]
    bottlenecks: tuple[Bottleneck, ...]


class _Edge:
    __slots__ = ("by_dst", "by_src", "capacity", "depth", "last_ms", "rate")

    def __init__(self) -> None:
        self.by_src = False
        self.by_dst = False
        self.rate = 0.0
        self.depth = 0
        self.capacity = 0
        self.last_ms = 0


class Topology:
    """Builds the graph from a :class:`Fleet` and analyses it. Owned by the model."""

    def __init__(self, fleet: Fleet, *, max_foreign_peers: int = 1000) -> None:
        self.fleet = fleet
        self.max_foreign_peers = max_foreign_peers
        self.foreign_dropped = 0
        """Peers outside the fleet left out of the last analysed graph (beyond
        ``max_foreign_peers``)."""
        self.bad_rates = 0
        """Edges of the last analysed graph whose reported rate was not a finite number >= 0
        (read as 0)."""
        self.graph: Any = nx.DiGraph()
        self._version = -1
        self._layer_ids: tuple[tuple[str, ...], ...] = ()
        self._islands: tuple[tuple[str, ...], ...] = ()
        self._island_of: dict[str, int] = {}
        self._cycles: tuple[tuple[str, ...], ...] = ()
        self._in_cycle: frozenset[str] = frozenset()
        self._desc_count: dict[str, int] | None = None
        """Descendants per node; computed on first use after a rebuild (only a fleet with
        unhealthy devices needs it)."""
        self._edge_keys: set[tuple[str, str]] = set()
        self._edge_order: list[tuple[str, str]] = []
        self._cond: Any = self.graph
        self._mapping: dict[Any, Any] = {}
        self._generations: list[list[Any]] = []

    # ------------------------------------------------------------------ structure

    def _edges(self) -> dict[tuple[str, str], _Edge]:
        edges: dict[tuple[str, str], _Edge] = {}
        get = edges.get
        devices = self.fleet.devices
        for device_id, rec in devices.items():
            st = rec.state
            if st is None:
                continue
            t = rec.last_seen_ms
            for link in st.links:
                peer = link.peer_id
                if not peer:
                    continue
                direction = link.direction
                if direction == _UPSTREAM:
                    key = (peer, device_id)
                    e = get(key)
                    if e is None:
                        e = edges[key] = _Edge()
                    # The destination's own report of its input queue wins over the source's.
                    e.by_dst = True
                    e.depth, e.capacity, e.rate = link.queue_depth, link.queue_capacity, link.rate
                elif direction == _DOWNSTREAM:
                    key = (device_id, peer)
                    e = get(key)
                    if e is None:
                        e = edges[key] = _Edge()
                    e.by_src = True
                    if not e.by_dst:
                        e.depth, e.capacity = link.queue_depth, link.queue_capacity
                        e.rate = link.rate
                else:
                    continue
                if t > e.last_ms:
                    e.last_ms = t
        # A peer outside the fleet is a node of its own (a ghost edge's far end): bounded, so
        # made-up peer ids cannot grow the graph without end. Checked here, on the edges'
        # ends (hashed already), not per link in the loop above (+30 % on it at 10k devices).
        # Link rates that are NaN, infinite or negative are read as 0 here, once per edge (a
        # NaN made stage sums NaN, and `status --json` refuse to print).
        foreign: dict[str, None] = {}
        bad = 0
        for (src, dst), e in edges.items():
            if src not in devices:
                foreign[src] = None
            if dst not in devices:
                foreign[dst] = None
            if not 0.0 <= e.rate < _INF:
                e.rate = 0.0
                bad += 1
        self.bad_rates = bad
        self.foreign_dropped = max(0, len(foreign) - self.max_foreign_peers)
        if self.foreign_dropped:
            refused = set(list(foreign)[self.max_foreign_peers :])
            edges = {k: e for k, e in edges.items() if k[0] not in refused and k[1] not in refused}
        return edges

    def _rebuild(self, edges: dict[tuple[str, str], _Edge]) -> None:
        g: Any = nx.DiGraph()
        g.add_nodes_from(self.fleet.devices)
        g.add_edges_from(edges)
        self.graph = g
        # The edge set the graph was built from, and its sorted order (the edge views' order):
        # kept until the next rebuild, so that an analysis compares a key view with a set and
        # sorts nothing (a set of the graph's 12.5k edges and a sort, 4 ms of every analysis of
        # a 10k fleet before).
        self._edge_keys = set(edges)
        self._edge_order = sorted(edges)
        # A healthy pipeline is a DAG: it is its own condensation (every node a component of
        # one), which saves the strongly-connected-components pass (a third of a rebuild). The
        # generations say whether it is one (a cycle raises), so no separate acyclicity pass.
        cond: Any = g
        mapping: dict[Any, Any]
        try:
            generations = [list(gen) for gen in nx.topological_generations(g)]
            acyclic = True
            mapping = {d: d for d in g}
        except nx.NetworkXUnfeasible:
            acyclic = False
            cond = nx.condensation(g)
            mapping = cond.graph["mapping"]
            generations = [list(gen) for gen in nx.topological_generations(cond)]
        gen_of = {c: i for i, gen in enumerate(generations) for c in gen}
        by_layer: dict[int, list[str]] = {}
        for node in g:
            by_layer.setdefault(gen_of[mapping[node]], []).append(node)
        devices = self.fleet.devices
        self._layer_ids = tuple(
            tuple(
                sorted(
                    by_layer[layer],
                    key=lambda d: (devices[d].stage if d in devices else "~", d),
                )
            )
            for layer in sorted(by_layer)
        )
        islands = sorted(
            (tuple(sorted(c)) for c in nx.weakly_connected_components(g)),
            key=lambda c: (-len(c), c[0] if c else ""),
        )
        self._islands = tuple(islands)
        self._island_of = {d: i for i, c in enumerate(islands) for d in c}
        if acyclic:
            self._cycles = ()
        else:
            self._cycles = tuple(
                tuple(c) for c in itertools.islice(nx.simple_cycles(g), MAX_CYCLES)
            )
        self._in_cycle = frozenset(d for c in self._cycles for d in c)
        self._cond, self._mapping, self._generations = cond, mapping, generations
        self._desc_count = None

    def _descendant_counts(self) -> dict[str, int]:
        """Descendant counts for every node at once: bitsets (Python ints) OR-ed up the
        condensation in reverse topological order. Lets the root-cause ranking preselect by
        blast size without one BFS per candidate (a 10k fleet gone silent has ~2k candidates).
        Cached until the next rebuild; a healthy fleet never asks (a third of a cold rebuild)."""
        if self._desc_count is not None:
            return self._desc_count
        g, cond, members = self.graph, self._cond, self._mapping
        index = {d: i for i, d in enumerate(g)}
        member_bits: dict[int, int] = {}
        for d, c in members.items():
            member_bits[c] = member_bits.get(c, 0) | (1 << index[d])
        below: dict[int, int] = {}
        # Generation after generation is a topological order: walked backwards, every
        # successor comes before its predecessors.
        for c in reversed([c for gen in self._generations for c in gen]):
            bits = 0
            for succ in cond.successors(c):
                bits |= below[succ] | member_bits[succ]
            below[c] = bits
        self._desc_count = {
            d: (below[c] | (member_bits[c] & ~(1 << index[d]))).bit_count()
            for d, c in members.items()
        }
        return self._desc_count

    # ------------------------------------------------------------------ analyses

    def analyse(self, now_ms: int) -> Analysis:
        fleet = self.fleet
        edges = self._edges()
        if self._version != fleet.structure_version or edges.keys() != self._edge_keys:
            self._rebuild(edges)
            self._version = fleet.structure_version
        devices = fleet.devices
        health: dict[str, Health] = {}
        status = fleet.health_and_staleness
        island_of, in_cycle = self._island_of, self._in_cycle
        nodes: list[GraphNode] = []
        # The stage-collapsed view is summed up in the same passes over nodes and edges (a
        # separate pass read every node and device again: ~10 % of a cold 10k-device analysis).
        # Per stage: [first layer, devices, healthy, degraded, failing, unknown, rate in,
        # rate out, queue depth, queue capacity]; layers come in ascending order, so the first
        # layer a stage is met in is its lowest.
        by_stage: dict[str, list[Any]] = {}
        stage_of: dict[str, str] = {}
        # ``_layer_ids[layer][order]``: generations are numbered from 0 without gaps, and the
        # layers hold every node of the graph.
        for layer, ids in enumerate(self._layer_ids):
            for order, d in enumerate(ids):
                rec = devices.get(d)
                if rec is None:
                    h, stale, stage, st = Health.UNKNOWN, True, "", None
                else:
                    h, stale = status(rec, now_ms)
                    stage, st = rec.stage, rec.state
                health[d] = h
                # Positional (device_id, stage, layer, order, health, stale, island,
                # in_cycle): half the cost of keywords, 10k times per analysis.
                nodes.append(
                    _Node(d, stage, layer, order, h, stale, island_of.get(d, 0), d in in_cycle)
                )
                key = stage_of[d] = stage or "?"
                a = by_stage.get(key)
                if a is None:
                    a = by_stage[key] = [layer, 0, 0, 0, 0, 0, 0.0, 0.0, 0, 0]
                a[1] += 1
                a[2 + _HEALTH_INDEX[h]] += 1
                if st is not None:
                    a[6] += st.rate_in
                    a[7] += st.rate_out
                    a[8] += st.queue_depth
                    a[9] += st.queue_capacity
        stale_at = fleet.stale_at  # silence during the console's own outage does not count
        edge_views = []
        # Per pair of stages: [edges, rate, queue depth, ghosts].
        stage_edges: dict[tuple[str, str], list[Any]] = {}
        for edge_key in self._edge_order:
            src, dst = edge_key
            e = edges[edge_key]
            reason = ""
            if src not in devices or dst not in devices:
                reason = f"{dst if src in devices else src} is not in the fleet"
            elif not (e.by_src and e.by_dst):
                reason = f"reported by {src if e.by_src else dst} only"
            elif stale_at(e.last_ms, now_ms):
                reason = f"not reported for {(now_ms - e.last_ms) / 1000:.0f} s"
            # Positional (src, dst, rate, queue_depth, queue_capacity, last_seen_ms, ghost,
            # ghost_reason, reported_by), as the nodes'.
            edge_views.append(
                _EdgeView(
                    src,
                    dst,
                    e.rate,
                    e.depth,
                    e.capacity,
                    e.last_ms,
                    bool(reason),
                    reason,
                    (src, dst) if e.by_src and e.by_dst else (src,) if e.by_src else (dst,),
                )
            )
            pair = (stage_of.get(src, "?"), stage_of.get(dst, "?"))
            a = stage_edges.get(pair)
            if a is None:
                a = stage_edges[pair] = [0, 0.0, 0, 0]
            a[0] += 1
            a[1] += e.rate
            a[2] += e.depth
            a[3] += bool(reason)
        view = GraphView(
            nodes=tuple(nodes),
            edges=tuple(edge_views),
            layers=self._layer_ids,
            islands=self._islands,
            cycles=self._cycles,
            stages=StageGraph(
                nodes=tuple(
                    StageNode(s, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9])
                    for s, a in sorted(by_stage.items(), key=lambda kv: (kv[1][0], kv[0]))
                ),
                edges=tuple(
                    StageEdge(s, d, a[0], a[1], a[2], a[3])
                    for (s, d), a in sorted(stage_edges.items())
                ),
            ),
            computed_ms=now_ms,
        )
        return Analysis(
            graph=view,
            incidents=self._root_causes(health, now_ms),
            bottlenecks=self._bottlenecks(health),
        )

    def _traffic(self, d: str, memo: dict[str, float]) -> float:
        w = memo.get(d)
        if w is None:
            rec = self.fleet.devices.get(d)
            w = 1.0
            if rec is not None and rec.state is not None:
                peak = max(self.fleet.series(rec, 0), default=0.0)
                w += max(peak, rec.state.rate_in, rec.state.rate_out) + rec.state.in_flight
            memo[d] = w
        return w

    def _root_causes(self, health: dict[str, Health], now_ms: int) -> tuple[Incident, ...]:
        g = self.graph
        devices = self.fleet.devices
        memo: dict[str, float] = {}
        candidates: list[tuple[int, bool, int, str, tuple[str, ...]]] = []
        desc_count: dict[str, int] | None = None
        for d, h in health.items():
            sev = severity(h)
            if sev == 0 or d not in devices:
                continue
            if any(severity(health[p]) >= sev for p in g.predecessors(d) if p in devices):
                continue
            if desc_count is None:
                desc_count = self._descendant_counts()
            # Back-pressure travels upstream: an encoder whose transcoder failed reports its
            # output blocked. Its upstream is healthy, so it is a candidate, but one the
            # operator should read as a symptom of the worse device it feeds.
            behind = tuple(
                sorted(s for s in g.successors(d) if s in devices and severity(health[s]) > sev)
            )
            candidates.append((sev, bool(behind), desc_count.get(d, 0), d, behind))
        # Exact radius and weight only for the likeliest (by severity, then blast size).
        candidates.sort(key=lambda c: (-c[0], c[1], -c[2], c[3]))
        found: list[tuple[float, int, int, str, tuple[str, ...], tuple[str, ...]]] = []
        for sev, _blocked, _size, d, behind in candidates[: 3 * MAX_INCIDENTS]:
            radius = tuple(sorted(nx.descendants(g, d)))
            weight = self._traffic(d, memo) + sum(self._traffic(x, memo) for x in radius)
            found.append((weight, len(radius), sev, d, radius, behind))
        found.sort(key=lambda f: (-f[2], bool(f[5]), -f[0], -f[1], f[3]))
        out = []
        for rank, (weight, size, _sev, d, radius, behind) in enumerate(found[:MAX_INCIDENTS], 1):
            rec = devices[d]
            st = rec.state
            checks: tuple[str, ...] = ()
            reason = ""
            if st is not None:
                checks = tuple(f"{c.name}: {c.detail}" for c in st.checks[:32] if c.status != 1)
                reason = st.reason
            if self.fleet.is_stale(rec, now_ms):
                reason = (
                    "no state event yet"
                    if rec.last_seen_ms == 0
                    else f"silent for {(now_ms - rec.last_seen_ms) / 1000:.0f} s"
                ) + (f"; last reason: {reason}" if reason else "")
            out.append(
                Incident(
                    rank=rank,
                    device_id=d,
                    stage=rec.stage,
                    health=health[d],
                    blast_radius=radius,
                    blast_size=size,
                    weight=round(weight, 3),
                    failing_checks=checks,
                    reason=reason,
                    since_ms=rec.health_since_ms,
                    behind=behind,
                )
            )
        return tuple(out)

    def _bottlenecks(self, health: dict[str, Health]) -> tuple[Bottleneck, ...]:
        fleet = self.fleet
        g = self.graph
        congested: dict[str, tuple[float, float | None]] = {}
        for d, rec in fleet.devices.items():
            st = rec.state
            if st is None or health.get(d) == Health.UNKNOWN:
                continue
            cap, depth = st.queue_capacity, st.queue_depth
            fill = depth / cap if cap > 0 else 0.0
            rin, rout = st.rate_in, st.rate_out
            if not (rin > rout * 1.05 + 0.01 and depth > 0) and not (cap > 0 and fill >= 0.9):
                continue
            depths = fleet.series(rec, 2)[-6:]
            times = fleet.times(rec)[-6:]
            slope = 0.0
            if len(depths) >= 2 and times[-1] > times[0]:
                slope = (depths[-1] - depths[0]) / ((times[-1] - times[0]) / 1000)
            growing = st.rate_in > st.rate_out * 1.05 + 0.01 and (slope > 0 or len(depths) < 2)
            if not (growing and depth > 0) and not (cap > 0 and fill >= 0.9):
                continue
            rate = slope if slope > 0 else max(0.0, st.rate_in - st.rate_out)
            ttf: float | None = None
            if cap > 0:
                ttf = 0.0 if depth >= cap else ((cap - depth) / rate if rate > 0 else None)
            congested[d] = (rate, ttf)
        out = []
        for d, (rate, ttf) in congested.items():
            if any(s in congested for s in g.successors(d)) if d in g else False:
                continue
            st = fleet.devices[d].state
            ups = (
                tuple(sorted(a for a in nx.ancestors(g, d) if a in congested))[:50]
                if d in g
                else ()
            )
            cap = st.queue_capacity
            out.append(
                Bottleneck(
                    device_id=d,
                    stage=fleet.devices[d].stage,
                    rate_in=st.rate_in,
                    rate_out=st.rate_out,
                    queue_depth=st.queue_depth,
                    queue_capacity=cap,
                    queue_fill=st.queue_depth / cap if cap > 0 else 0.0,
                    fill_rate=round(rate, 3),
                    time_to_full_s=None if ttf is None else round(ttf, 3),
                    upstream_filling=ups,
                )
            )
        out.sort(
            key=lambda b: (
                b.time_to_full_s if b.time_to_full_s is not None else float("inf"),
                -len(b.upstream_filling),
                b.device_id,
            )
        )
        return tuple(out[:MAX_BOTTLENECKS])


_HEALTH_INDEX = {Health.HEALTHY: 0, Health.DEGRADED: 1, Health.FAILING: 2, Health.UNKNOWN: 3}
