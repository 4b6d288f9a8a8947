"""Who feeds whom: the layout of a simulated pipeline.

A :class:`Layout` is an acyclic graph of :class:`DeviceSpec` in topological order. It comes
either from :func:`default_layout` (N devices over named stages, fan-out and fan-in chosen by a
seeded RNG, so the same seed gives the same pipeline) or from a TOML file read by
:func:`load_topology` (see ``examples/topology.toml``). Errors in a file are
:class:`TopologyError` with the file, the device and the reason.

Processing rates not given explicitly are derived from the expected flow (sources' rates split
evenly over each device's outputs) with seeded headroom, so a fleet without faults is healthy.
"""

from __future__ import annotations

import itertools
import random
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_STAGES",
    "KINDS",
    "DeviceSpec",
    "Layout",
    "TopologyError",
    "default_layout",
    "load_topology",
]

DEFAULT_STAGES = ("ingest", "transcode", "package", "origin")
KINDS = {"ingest": "encoder", "transcode": "transcoder", "package": "packager", "origin": "origin"}
"""Device kind by stage; other stages get the kind ``processor``."""

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""Device ids and stage names: they end up in URLs, Kafka keys and the console."""

DEFAULT_SOURCE_RATE = 40.0
DEFAULT_CAPACITY = 100
HEADROOM = 1.5
"""Derived processing rate = expected input x HEADROOM (x seeded jitter of +-10 %)."""


class TopologyError(ValueError):
    """A topology cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One simulated device as laid out: identity, links and flow parameters."""

    device_id: str
    stage: str
    kind: str
    name: str
    """Display name; published in ServiceAdded (consumers treat it as untrusted text)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    upstream: tuple[str, ...] = ()
    downstream: tuple[str, ...] = ()
    queue_capacity: int = DEFAULT_CAPACITY
    """Input queue size in units (think: segments)."""
    rate: float = 0.0
    """Units processed per second at most (0: derive from the expected flow)."""
    source_rate: float = 0.0
    """Units per second arriving from outside; only devices without upstream have one."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Devices in topological order (every device after all its upstreams)."""

    devices: tuple[DeviceSpec, ...]
    by_id: Mapping[str, DeviceSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {d.device_id: d for d in self.devices})

    def get(self, device_id: str) -> DeviceSpec:
        return self.by_id[device_id]

    @property
    def ids(self) -> list[str]:
        return [d.device_id for d in self.devices]

    def stages(self) -> list[str]:
        return list(dict.fromkeys(d.stage for d in self.devices))


def _counts(n: int, stages: Sequence[str]) -> list[int]:
    """Split n devices over stages; the middle stages weigh twice the ends (fan-out, fan-in)."""
    k = len(stages)
    weights = [1 if i in (0, k - 1) else 2 for i in range(k)] if k > 2 else [1] * k
    total = sum(weights)
    counts = [max(1, n * w // total) for w in weights]
    i = 0
    while sum(counts) < n:  # give the remainder to the middle stages first
        counts[(k // 2 + i) % k] += 1
        i += 1
    while sum(counts) > n:
        j = max(range(k), key=lambda x: counts[x])
        counts[j] -= 1
    return counts


def default_layout(
    devices: int = 24, stages: Sequence[str] = DEFAULT_STAGES, seed: int = 1
) -> Layout:
    """N devices over ``stages`` (at least one per stage), linked stage to stage."""
    stages = [s.strip() for s in stages if s.strip()]
    if not stages:
        raise TopologyError("at least one stage is needed")
    for s in stages:
        if not ID_RE.fullmatch(s):
            raise TopologyError(f"stage {s!r}: use letters, digits, '.', '_' or '-'")
    if len(set(stages)) != len(stages):
        raise TopologyError("stage names must be unique")
    if devices < len(stages):
        raise TopologyError(f"{devices} devices cannot fill {len(stages)} stages")
    rng = random.Random(seed)
    counts = _counts(devices, stages)
    width = max(2, len(str(max(counts))))
    ids = [
        [f"{s}-{i + 1:0{width}d}" for i in range(c)] for s, c in zip(stages, counts, strict=True)
    ]
    links: set[tuple[str, str]] = set()
    for ups, downs in itertools.pairwise(ids):
        n, m = len(ups), len(downs)
        for j, d in enumerate(downs):
            links.add((ups[j * n // m], d))
        for i, u in enumerate(ups):
            links.add((u, downs[i * m // n]))
        for d in downs:  # seeded extra fan-in: about half the devices read from a second peer
            if n > 1 and rng.random() < 0.5:
                links.add((ups[rng.randrange(n)], d))
    regions = ("eu-west", "eu-central", "us-east")
    ups_of: dict[str, list[str]] = {}
    downs_of: dict[str, list[str]] = {}
    for u, d in links:  # once, not a scan of every link per device (2,000 devices: 1-2 s)
        ups_of.setdefault(d, []).append(u)
        downs_of.setdefault(u, []).append(d)
    specs = []
    for stage, group in zip(stages, ids, strict=True):
        kind = KINDS.get(stage, "processor")
        for did in group:
            number = did.rsplit("-", 1)[1]
            specs.append(
                DeviceSpec(
                    device_id=did,
                    stage=stage,
                    kind=kind,
                    name=f"{kind} {number} ({stage}, simulated)",
                    labels={"sim": "true", "seed": str(seed), "region": rng.choice(regions)},
                    upstream=tuple(sorted(ups_of.get(did, ()))),
                    downstream=tuple(sorted(downs_of.get(did, ()))),
                )
            )
    return _finish(specs, seed)


def _finish(specs: list[DeviceSpec], seed: int) -> Layout:
    """Order topologically, reject cycles, derive source and processing rates."""
    by_id = {s.device_id: s for s in specs}
    sorter: TopologicalSorter[str] = TopologicalSorter({s.device_id: s.upstream for s in specs})
    try:
        order = list(sorter.static_order())
    except CycleError as exc:
        raise TopologyError(f"the pipeline has a cycle: {' -> '.join(exc.args[1])}") from None
    # Readable and still topological: by depth from the sources, then as given.
    depth: dict[str, int] = {}
    for did in order:
        depth[did] = max((depth[u] + 1 for u in by_id[did].upstream), default=0)
    position = {s.device_id: i for i, s in enumerate(specs)}
    order.sort(key=lambda d: (depth[d], position[d]))
    rng = random.Random(seed * 7919 + 17)
    inflow: dict[str, float] = dict.fromkeys(order, 0.0)
    out: list[DeviceSpec] = []
    for did in order:
        s = by_id[did]
        if not s.upstream and s.source_rate <= 0:
            s = replace(s, source_rate=DEFAULT_SOURCE_RATE)
        expected = inflow[did] + s.source_rate
        if s.rate <= 0:
            s = replace(s, rate=round(max(1.0, expected * HEADROOM * rng.uniform(0.9, 1.1)), 1))
        for d in s.downstream:
            inflow[d] += min(expected, s.rate) / len(s.downstream)
        out.append(s)
    return Layout(tuple(out))


def load_topology(path: Path | str, seed: int = 1) -> Layout:
    """Read a TOML topology file (``[[devices]]`` with ``id``, ``stage`` and ``feeds``)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TopologyError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TopologyError(f"{path}: not valid TOML: {exc}") from None
    return parse_topology(raw, where=str(path), seed=seed)


def parse_topology(raw: Mapping[str, Any], *, where: str = "topology", seed: int = 1) -> Layout:
    """Build a layout from already-parsed TOML (see :func:`load_topology`)."""
    unknown = sorted(set(raw) - {"defaults", "devices"})
    if unknown:
        raise TopologyError(f"{where}: unknown key(s) {', '.join(unknown)}")
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        raise TopologyError(f"{where}: 'defaults' must be a table")
    items = raw.get("devices")
    if not isinstance(items, list) or not items:
        raise TopologyError(f"{where}: needs at least one [[devices]] table")
    allowed = {"id", "stage", "kind", "name", "labels", "feeds", "queue_capacity", "rate"}
    allowed |= {"source_rate"}
    unknown = sorted(set(defaults) - (allowed - {"id", "feeds", "name"}))
    if unknown:
        raise TopologyError(f"{where}: defaults: unknown key(s) {', '.join(unknown)}")
    feeds: dict[str, list[str]] = {}
    base: list[DeviceSpec] = []
    for i, item in enumerate(items):
        at = f"{where}: devices[{i}]"
        if not isinstance(item, dict):
            raise TopologyError(f"{at}: must be a table")
        item = {**defaults, **item}
        bad = sorted(set(item) - allowed)
        if bad:
            raise TopologyError(f"{at}: unknown key(s) {', '.join(bad)}")
        did, stage = item.get("id"), item.get("stage")
        if not isinstance(did, str) or not ID_RE.fullmatch(did):
            raise TopologyError(f"{at}.id: 1-64 letters, digits, '.', '_' or '-' required")
        at = f"{where}: device {did}"
        if did in feeds:
            raise TopologyError(f"{at}: defined twice")
        if not isinstance(stage, str) or not ID_RE.fullmatch(stage):
            raise TopologyError(f"{at}.stage: 1-64 letters, digits, '.', '_' or '-' required")
        kind = _str(at, "kind", item.get("kind", KINDS.get(stage, "processor")))
        name = _str(at, "name", item.get("name", did))
        labels = item.get("labels", {})
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise TopologyError(f"{at}.labels: must be a table of strings")
        out = item.get("feeds", [])
        if not isinstance(out, list) or not all(isinstance(x, str) for x in out):
            raise TopologyError(f"{at}.feeds: must be a list of device ids")
        feeds[did] = list(dict.fromkeys(out))
        cap = item.get("queue_capacity", DEFAULT_CAPACITY)
        if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= 1_000_000:
            raise TopologyError(f"{at}.queue_capacity: an integer 1..1000000")
        base.append(
            DeviceSpec(
                device_id=did,
                stage=stage,
                kind=kind,
                name=name,
                labels={str(k): v for k, v in labels.items()},
                queue_capacity=cap,
                rate=_num(at, "rate", item.get("rate", 0.0)),
                source_rate=_num(at, "source_rate", item.get("source_rate", 0.0)),
            )
        )
    for did, outs in feeds.items():
        for d in outs:
            if d not in feeds:
                raise TopologyError(f"{where}: device {did}.feeds: no device named {d!r}")
            if d == did:
                raise TopologyError(f"{where}: device {did}.feeds: a device cannot feed itself")
    specs = [
        replace(
            s,
            upstream=tuple(u for u, outs in feeds.items() if s.device_id in outs),
            downstream=tuple(feeds[s.device_id]),
        )
        for s in base
    ]
    for s in specs:
        if s.upstream and s.source_rate > 0:
            raise TopologyError(f"{where}: device {s.device_id}: source_rate needs no upstream")
    return _finish(specs, seed)


def _str(at: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 200:
        raise TopologyError(f"{at}.{key}: a string of 1-200 characters")
    return value


def _num(at: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1e6:
        raise TopologyError(f"{at}.{key}: a number 0..1000000")
    return float(value)
