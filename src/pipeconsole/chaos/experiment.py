"""The experiment file: TOML in Chaos Toolkit's words, plus a blast-radius limit and guardrails.

:func:`load_experiment` / :func:`parse_experiment` turn a file into a frozen
:class:`Experiment` or raise :class:`ExperimentError`, whose ``problems`` name every bad field
(``method[2].fault: unknown fault 'explode'``) at once. The format is documented in
docs/chaos.md; the short version::

    version = 1
    title = "..."
    duration_s = 20            # how long the method runs
    probe_interval_s = 1.0     # steady-state probes and guardrails are evaluated this often

    [blast_radius]             # checked before anything is injected
    max_devices = 1
    max_stages = 1

    [steady_state_hypothesis]  # also spelled "steady-state-hypothesis"
    title = "..."
    [[steady_state_hypothesis.probes]]
    name = "fleet healthy"
    probe = "healthy_fraction"
    tolerance = [0.9, 1.0]     # [low, high] range, or a number that must match exactly

    [[method]]                 # actions, in order, each at ``at_s`` seconds into the method
    type = "fault"             # fault | protocol
    ...

    [[guardrails]]             # crossing one aborts and rolls back (exit 4)
    probe = "healthy_fraction"
    tolerance = [0.5, 1.0]

    [[rollbacks]]              # run on every exit path; faults are always ended anyway
    type = "halt"
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeconsole.chaos.faults import FAULTS
from pipeconsole.chaos.mangle import KINDS as CLASS1_KINDS

__all__ = [
    "PROBES",
    "BlastRadius",
    "Experiment",
    "ExperimentError",
    "FaultAction",
    "Probe",
    "ProtocolAction",
    "Rollback",
    "Selector",
    "example_dir",
    "load_experiment",
    "parse_experiment",
]

PROBES: Mapping[str, str] = {
    "healthy_fraction": "fraction of the fleet that is HEALTHY (UNKNOWN counts as not)",
    "deadline_miss_rate": "deadline-exceeded fraction of final outcomes (the model's window)",
    "lag_seconds": "the device actors' consumer lag, in seconds behind",
    "dlq_growth": "records dead-lettered since the experiment started",
    "undecodable_growth": "records the console could not decode since the experiment started",
    "undecodable_mismatch": "undecodable growth minus the class-1 records this experiment sent",
    "requests_final": "fraction of the valid requests this experiment sent that are final",
    "chaos_dead_lettered": "fraction of the chaos records (classes 1, 2) found in the DLQ",
    "actors_alive": "device-actor instances reporting (not stale)",
    "targets_healthy": "fraction of the experiment's targets that are HEALTHY",
}
"""Probe name → what it measures (see :mod:`pipeconsole.chaos.probes`)."""

PROTOCOL_KINDS = (*CLASS1_KINDS, "class2", "class3")


class ExperimentError(ValueError):
    """The experiment file cannot be used; ``problems`` lists every field that is wrong."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source}: " + "; ".join(self.problems))


@dataclass(frozen=True, slots=True)
class Probe:
    """A measurement with a tolerance (Chaos Toolkit's probe + tolerance)."""

    name: str
    probe: str
    """A key of :data:`PROBES`."""
    low: float
    high: float
    """The tolerance as a closed range; a scalar tolerance is ``low == high``."""
    during: bool = False
    """Must it also hold while the method runs (else: before and after only)."""
    consecutive: int = 1
    """Guardrails: breaches in a row before aborting (Chaos Mesh's failureThreshold)."""

    def within(self, value: float) -> bool:
        return not math.isnan(value) and self.low <= value <= self.high


@dataclass(frozen=True, slots=True)
class Selector:
    """Which devices an action touches: explicit ids, or ``count`` devices of a ``stage``."""

    targets: tuple[str, ...] = ()
    stage: str = ""
    count: int = 0
    """With ``stage``: how many of its devices (0 = all), the first ones by id."""

    @property
    def empty(self) -> bool:
        return not self.targets and not self.stage


@dataclass(frozen=True, slots=True)
class FaultAction:
    name: str
    fault: str
    select: Selector
    duration_s: float
    params: Mapping[str, Any] = field(default_factory=dict)
    at_s: float = 0.0
    """Seconds into the method when it starts."""
    type: str = "fault"


@dataclass(frozen=True, slots=True)
class ProtocolAction:
    """Valid requests with protocol chaos mixed in at ``rates`` (empty rates: plain load)."""

    name: str
    select: Selector
    """Devices the valid requests are for (and whose keys the chaos records carry)."""
    count: int
    rate_per_s: float
    rates: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0
    method: str = "POST"
    uri: str = "/streams/chaos-{n}/start"
    """``{n}`` is the record's sequence number."""
    deadline_s: float = 30.0
    topic: str = "request"
    """A key of the profile's topics (request, control) or a topic name."""
    at_s: float = 0.0
    type: str = "protocol"


Action = FaultAction | ProtocolAction


@dataclass(frozen=True, slots=True)
class Rollback:
    """``halt`` ends every fault on the targets; ``end_faults`` only the experiment's own."""

    type: str = "end_faults"
    name: str = ""


@dataclass(frozen=True, slots=True)
class BlastRadius:
    max_devices: int = 1
    """Devices targeted directly, over all actions."""
    max_stages: int = 1
    max_fraction: float = 1.0
    """Targeted devices as a fraction of the fleet."""


@dataclass(frozen=True, slots=True)
class Experiment:
    title: str
    description: str
    duration_s: float
    probe_interval_s: float
    hypothesis_title: str
    hypothesis: tuple[Probe, ...]
    method: tuple[Action, ...]
    guardrails: tuple[Probe, ...]
    rollbacks: tuple[Rollback, ...]
    blast_radius: BlastRadius
    settle_s: float = 10.0
    """After the method: how long the hypothesis may take to hold again."""
    warmup_s: float = 10.0
    """Before the method: how long to wait for the first full snapshot and a holding hypothesis."""
    tags: tuple[str, ...] = ()
    version: int = 1
    source: str = ""

    def with_duration(self, duration_s: float) -> Experiment:
        """The same experiment compressed to ``duration_s`` (tests, quick runs): action start
        times and durations scale with it."""
        if self.duration_s <= 0:
            return replace(self, duration_s=duration_s)
        k = duration_s / self.duration_s
        method: list[Action] = []
        for a in self.method:
            if isinstance(a, FaultAction):
                method.append(replace(a, at_s=a.at_s * k, duration_s=max(0.5, a.duration_s * k)))
            else:
                method.append(replace(a, at_s=a.at_s * k))
        return replace(self, duration_s=duration_s, method=tuple(method))


# ------------------------------------------------------------------------------------ parsing


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, why: str) -> None:
        self.items.append(f"{where}: {why}")


def _get(raw: Mapping[str, Any], *names: str) -> Any:
    for n in names:
        if n in raw:
            return raw[n]
    return None


def _num(p: _Problems, where: str, v: Any, default: float, *, lo: float = 0.0) -> float:
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(v) or v < lo:
        p.add(where, f"must be a number >= {lo:g}")
        return default
    return float(v)


def _int(p: _Problems, where: str, v: Any, default: int, *, lo: int = 0) -> int:
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        p.add(where, f"must be an integer >= {lo}")
        return default
    return v


def _str(p: _Problems, where: str, v: Any, default: str = "") -> str:
    if v is None:
        return default
    if not isinstance(v, str) or "\x00" in v:
        p.add(where, "must be a string")
        return default
    return v


def _unknown(p: _Problems, where: str, raw: Mapping[str, Any], known: set[str]) -> None:
    extra = sorted(set(raw) - known)
    if extra:
        p.add(where, f"unknown key(s) {', '.join(extra)}")


def _tolerance(p: _Problems, where: str, v: Any) -> tuple[float, float]:
    if isinstance(v, bool):
        return (1.0, 1.0) if v else (0.0, 0.0)
    if isinstance(v, int | float) and not math.isnan(v):
        return float(v), float(v)
    if (
        isinstance(v, list)
        and len(v) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
        and v[0] <= v[1]
    ):
        return float(v[0]), float(v[1])
    p.add(where, "must be a number, true/false, or a [low, high] range with low <= high")
    return (0.0, 0.0)


def _probe(p: _Problems, where: str, raw: Any, *, guardrail: bool) -> Probe | None:
    if not isinstance(raw, dict):
        p.add(where, "must be a table")
        return None
    known = {"name", "probe", "tolerance", "during", "consecutive", "type"}
    _unknown(p, where, raw, known)
    kind = _str(p, f"{where}.probe", raw.get("probe"))
    if kind not in PROBES:
        p.add(f"{where}.probe", f"{kind!r} is not one of {', '.join(PROBES)}")
    if "tolerance" not in raw:
        p.add(f"{where}.tolerance", "required (every probe needs a tolerance)")
    low, high = _tolerance(p, f"{where}.tolerance", raw.get("tolerance", 0))
    during = raw.get("during", guardrail)
    if not isinstance(during, bool):
        p.add(f"{where}.during", "must be true or false")
        during = False
    return Probe(
        name=_str(p, f"{where}.name", raw.get("name"), kind),
        probe=kind,
        low=low,
        high=high,
        during=during,
        consecutive=_int(p, f"{where}.consecutive", raw.get("consecutive"), 1, lo=1),
    )


def _selector(p: _Problems, where: str, raw: Mapping[str, Any]) -> Selector:
    targets = raw.get("targets", [])
    if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
        p.add(f"{where}.targets", "must be a list of device ids")
        targets = []
    sel = raw.get("select", {})
    if not isinstance(sel, dict):
        p.add(f"{where}.select", 'must be a table like { stage = "encode", count = 1 }')
        sel = {}
    _unknown(p, f"{where}.select", sel, {"stage", "count"})
    s = Selector(
        targets=tuple(targets),
        stage=_str(p, f"{where}.select.stage", sel.get("stage")),
        count=_int(p, f"{where}.select.count", sel.get("count"), 0),
    )
    if s.empty:
        p.add(where, "needs explicit targets = [...] or select = { stage = ..., count = ... }")
    return s


def _action(p: _Problems, where: str, raw: Any) -> Action | None:
    if not isinstance(raw, dict):
        p.add(where, "must be a table")
        return None
    kind = raw.get("type")
    name = _str(p, f"{where}.name", raw.get("name"), f"{where}")
    common = {"type", "name", "targets", "select", "at_s", "pauses"}
    at_s = _num(p, f"{where}.at_s", raw.get("at_s"), 0.0)
    if kind == "fault":
        _unknown(p, where, raw, common | {"fault", "duration_s", "params"})
        fault = _str(p, f"{where}.fault", raw.get("fault"))
        if fault not in FAULTS:
            p.add(f"{where}.fault", f"{fault!r} is not one of {', '.join(FAULTS)}")
        params = raw.get("params", {})
        if not isinstance(params, dict):
            p.add(f"{where}.params", "must be a table")
            params = {}
        elif fault in FAULTS:
            bad = sorted(set(params) - FAULTS[fault])
            if bad:
                p.add(f"{where}.params", f"fault {fault} takes no {', '.join(bad)}")
        if "duration_s" not in raw:
            p.add(f"{where}.duration_s", "required: every fault is a lease with a duration")
        return FaultAction(
            name=name,
            fault=fault,
            select=_selector(p, where, raw),
            duration_s=_num(p, f"{where}.duration_s", raw.get("duration_s"), 1.0, lo=0.1),
            params=dict(params),
            at_s=at_s,
        )
    if kind == "protocol":
        known = {"count", "rate_per_s", "rates", "seed", "method", "uri", "deadline_s", "topic"}
        _unknown(p, where, raw, common | known)
        rates = raw.get("rates", {})
        if not isinstance(rates, dict):
            p.add(f"{where}.rates", "must be a table of kind = fraction")
            rates = {}
        for k, v in rates.items():
            if k not in PROTOCOL_KINDS:
                p.add(f"{where}.rates.{k}", f"unknown kind (known: {', '.join(PROTOCOL_KINDS)})")
            _num(p, f"{where}.rates.{k}", v, 0.0)
        clean = {
            k: float(v)
            for k, v in rates.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        if sum(clean.values()) > 1.0 + 1e-9:
            p.add(f"{where}.rates", "fractions add up to more than 1")
        return ProtocolAction(
            name=name,
            select=_selector(p, where, raw),
            count=_int(p, f"{where}.count", raw.get("count"), 100, lo=1),
            rate_per_s=_num(p, f"{where}.rate_per_s", raw.get("rate_per_s"), 50.0, lo=0.1),
            rates=clean,
            seed=_int(p, f"{where}.seed", raw.get("seed"), 0),
            method=_str(p, f"{where}.method", raw.get("method"), "POST"),
            uri=_str(p, f"{where}.uri", raw.get("uri"), "/streams/chaos-{n}/start"),
            deadline_s=_num(p, f"{where}.deadline_s", raw.get("deadline_s"), 30.0, lo=0.1),
            topic=_str(p, f"{where}.topic", raw.get("topic"), "request"),
            at_s=at_s,
        )
    p.add(f"{where}.type", f"{kind!r} is not one of fault, protocol")
    return None


def parse_experiment(raw: Mapping[str, Any], source: str = "<experiment>") -> Experiment:
    """Validate a parsed TOML document; raise :class:`ExperimentError` listing every problem."""
    p = _Problems()
    known = {
        "version", "title", "description", "duration_s", "probe_interval_s", "settle_s",
        "warmup_s", "tags", "blast_radius", "blast-radius", "steady_state_hypothesis",
        "steady-state-hypothesis", "method", "guardrails", "rollbacks",
    }  # fmt: skip
    _unknown(p, "experiment", raw, known)
    version = _int(p, "version", raw.get("version"), 1, lo=1)
    if version != 1:
        p.add("version", "only version 1 is known")
    title = _str(p, "title", raw.get("title"))
    if not title:
        p.add("title", "required")

    hyp_raw = _get(raw, "steady_state_hypothesis", "steady-state-hypothesis")
    hypothesis: list[Probe] = []
    hyp_title = ""
    if not isinstance(hyp_raw, dict):
        p.add("steady_state_hypothesis", "required: a table with probes")
    else:
        _unknown(p, "steady_state_hypothesis", hyp_raw, {"title", "probes"})
        hyp_title = _str(p, "steady_state_hypothesis.title", hyp_raw.get("title"))
        probes = hyp_raw.get("probes", [])
        if not isinstance(probes, list) or not probes:
            p.add("steady_state_hypothesis.probes", "needs at least one probe")
            probes = []
        for i, pr in enumerate(probes):
            got = _probe(p, f"steady_state_hypothesis.probes[{i}]", pr, guardrail=False)
            if got:
                hypothesis.append(got)

    method_raw = raw.get("method", [])
    method: list[Action] = []
    if not isinstance(method_raw, list) or not method_raw:
        p.add("method", "needs at least one action ([[method]])")
        method_raw = []
    for i, a in enumerate(method_raw):
        act = _action(p, f"method[{i}]", a)
        if act:
            method.append(act)

    guardrails: list[Probe] = []
    g_raw = raw.get("guardrails", [])
    if not isinstance(g_raw, list):
        p.add("guardrails", "must be a list of tables ([[guardrails]])")
        g_raw = []
    for i, g in enumerate(g_raw):
        got = _probe(p, f"guardrails[{i}]", g, guardrail=True)
        if got:
            guardrails.append(got)

    rollbacks: list[Rollback] = []
    r_raw = raw.get("rollbacks", [])
    if not isinstance(r_raw, list):
        p.add("rollbacks", "must be a list of tables ([[rollbacks]])")
        r_raw = []
    for i, r in enumerate(r_raw):
        if not isinstance(r, dict):
            p.add(f"rollbacks[{i}]", "must be a table")
            continue
        _unknown(p, f"rollbacks[{i}]", r, {"type", "name"})
        rtype = _str(p, f"rollbacks[{i}].type", r.get("type"), "end_faults")
        if rtype not in ("end_faults", "halt"):
            p.add(f"rollbacks[{i}].type", f"{rtype!r} is not one of end_faults, halt")
        rollbacks.append(Rollback(rtype, _str(p, f"rollbacks[{i}].name", r.get("name"))))

    br_raw = _get(raw, "blast_radius", "blast-radius")
    if not isinstance(br_raw, dict):
        p.add("blast_radius", "required: a table with max_devices (the limit is not optional)")
        br_raw = {}
    _unknown(p, "blast_radius", br_raw, {"max_devices", "max_stages", "max_fraction"})
    blast = BlastRadius(
        max_devices=_int(p, "blast_radius.max_devices", br_raw.get("max_devices"), 1, lo=0),
        max_stages=_int(p, "blast_radius.max_stages", br_raw.get("max_stages"), 1, lo=0),
        max_fraction=_num(p, "blast_radius.max_fraction", br_raw.get("max_fraction"), 1.0),
    )
    tags = raw.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        p.add("tags", "must be a list of strings")
        tags = []
    exp = Experiment(
        title=title,
        description=_str(p, "description", raw.get("description")),
        duration_s=_num(p, "duration_s", raw.get("duration_s"), 30.0, lo=0.1),
        probe_interval_s=_num(p, "probe_interval_s", raw.get("probe_interval_s"), 1.0, lo=0.05),
        hypothesis_title=hyp_title,
        hypothesis=tuple(hypothesis),
        method=tuple(method),
        guardrails=tuple(guardrails),
        rollbacks=tuple(rollbacks),
        blast_radius=blast,
        settle_s=_num(p, "settle_s", raw.get("settle_s"), 10.0),
        warmup_s=_num(p, "warmup_s", raw.get("warmup_s"), 10.0),
        tags=tuple(tags),
        version=version,
        source=source,
    )
    if p.items:
        raise ExperimentError(source, p.items)
    return exp


def example_dir() -> Path | None:
    """The example experiments shipped with pipeconsole: ``pipeconsole/experiments`` in an
    installed wheel, ``experiments/`` at the top of a source checkout; None without either."""
    package = Path(__file__).resolve().parent.parent
    for folder in (package / "experiments", package.parent.parent / "experiments"):
        if folder.is_dir():
            return folder
    return None


def load_experiment(path: Path | str) -> Experiment:
    """Read and validate an experiment file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ExperimentError(str(path), [f"cannot read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(str(path), [f"not valid TOML: {exc}"]) from None
    return parse_experiment(raw, str(path))
