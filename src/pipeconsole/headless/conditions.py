"""Conditions over the model's Snapshot, for ``wait-for`` and ``assert`` in headless scripts.

::

    fleet.healthy >= 20                    fleet.unhealthy_fraction < 10%
    incident.top == "transcode-03"         incident.count >= 1
    bottleneck.top == package-02           device.transcode-03.health == failing
    device.ingest-01.stale == false        request <request-id> outcome OK
    dlq.total >= 100                       requests.total >= 10
    connection.connected == true           screen == devices

A path names a field of the Snapshot's plain data (no methods, nothing private); ``screen`` is
given by the runner. Evaluation never raises: a missing value makes the condition false, and
:meth:`Condition.explain` says what was found.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeconsole.model.snapshot import Snapshot

__all__ = ["Condition", "ConditionError", "parse_condition"]

_OPS = ("==", "!=", ">=", "<=", ">", "<", "~")
_PATH = re.compile(r"^[a-z_]+(\.[A-Za-z0-9_.-]+)?$")
_ROOTS = (
    "fleet",
    "incident",
    "bottleneck",
    "device",
    "request",
    "requests",
    "dlq",
    "connection",
    "screen",
    "lag",
    "actors",
)


class ConditionError(ValueError):
    """A condition that does not parse; the message says why."""


@dataclass(frozen=True, slots=True)
class Condition:
    text: str
    path: str
    op: str
    value: str

    def resolve(self, snap: Snapshot, extra: Mapping[str, Any] | None = None) -> Any:
        try:
            return _resolve(snap, self.path, extra or {})
        except (KeyError, AttributeError, IndexError, TypeError, ValueError):
            return None

    def holds(self, snap: Snapshot, extra: Mapping[str, Any] | None = None) -> bool:
        return _compare(self.resolve(snap, extra), self.op, self.value)

    def explain(self, snap: Snapshot, extra: Mapping[str, Any] | None = None) -> str:
        actual = self.resolve(snap, extra)
        return f"{self.path} is {_show(actual)} (wanted {self.op} {self.value})"


def parse_condition(text: str) -> Condition:
    text = text.strip()
    m = re.match(r"^request\s+(\S+)\s+outcome\s+(\S+)$", text)
    if m:
        return Condition(text, f"request.{m.group(1)}.state", "==", m.group(2))
    for op in _OPS:
        left, sep, right = text.partition(f" {op} ")
        if sep:
            break
    else:
        raise ConditionError(
            f"expected `<path> <op> <value>` with op one of {' '.join(_OPS)}: {text!r}"
        )
    path, value = left.strip(), right.strip()
    if not _PATH.match(path) or path.split(".")[0] not in _ROOTS:
        raise ConditionError(f"unknown path {path!r} (starts with one of: {', '.join(_ROOTS)})")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    if not value:
        raise ConditionError("the value is empty")
    if op == "~":
        try:
            re.compile(value)
        except re.error as exc:
            raise ConditionError(f"bad regular expression {value!r}: {exc}") from None
    return Condition(text, path, op, value)


def _field(obj: Any, name: str) -> Any:
    if name.startswith("_") or not dataclasses.is_dataclass(obj):
        raise AttributeError(name)
    names = {f.name for f in dataclasses.fields(obj)}
    if name not in names and not isinstance(getattr(type(obj), name, None), property):
        raise AttributeError(name)
    return getattr(obj, name)


def _resolve(snap: Snapshot, path: str, extra: Mapping[str, Any]) -> Any:
    root, _, rest = path.partition(".")
    if root == "screen":
        return extra.get("screen")
    if root == "fleet":
        return _field(snap.fleet, rest)
    if root == "connection":
        return _field(snap.connection, rest)
    if root == "incident":
        if rest == "count":
            return len(snap.incidents)
        top = snap.incidents[0] if snap.incidents else None
        if rest == "top":
            return top.device_id if top else None
        return _field(top, rest.removeprefix("top.")) if top else None
    if root == "bottleneck":
        if rest == "count":
            return len(snap.bottlenecks)
        return snap.bottlenecks[0].device_id if snap.bottlenecks and rest == "top" else None
    if root == "dlq":
        return {"total": snap.dlq_total, "count": len(snap.dlq)}[rest]
    if root == "requests":
        if rest == "total":
            return snap.requests_total
        if rest == "at_risk":
            return len(snap.at_risk)
        return dict(snap.outcomes).get(rest.upper(), 0)
    if root == "lag":
        return {"rows": len(snap.lag), "total": sum(r.lag for r in snap.lag)}[rest]
    if root == "actors":
        return {"count": len(snap.actors), "paused": sum(a.paused for a in snap.actors)}[rest]
    if root == "device":
        device_id, _, name = rest.rpartition(".")
        device = snap.device(device_id)
        return _field(device, name) if device else None
    if root == "request":
        request_id, _, name = rest.rpartition(".")
        row = snap.request(request_id)
        return _field(row, name) if row else None
    raise KeyError(root)


def _show(v: Any) -> str:
    if isinstance(v, enum.Enum):
        return str(v.value)
    return repr(v)


def _number(text: str) -> float | None:
    t = text.strip()
    try:
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        return None


def _compare(actual: Any, op: str, wanted: str) -> bool:
    if actual is None:
        return op == "!=" and wanted.lower() not in ("none", "null")
    if isinstance(actual, enum.Enum):
        actual = actual.value
    if isinstance(actual, bool):
        actual_text = "true" if actual else "false"
        if op in ("==", "!="):
            return (actual_text == wanted.lower()) == (op == "==")
        return False
    if op == "~":
        return re.search(wanted, str(actual)[:2000], re.IGNORECASE) is not None
    if isinstance(actual, int | float):
        n = _number(wanted)
        if n is None:
            return op == "!="
        return {
            "==": actual == n,
            "!=": actual != n,
            ">=": actual >= n,
            "<=": actual <= n,
            ">": actual > n,
            "<": actual < n,
        }[op]
    a, w = str(actual).lower(), wanted.lower()
    return {"==": a == w, "!=": a != w, ">=": a >= w, "<=": a <= w, ">": a > w, "<": a < w}[op]
