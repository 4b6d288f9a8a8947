"""Infrastructure faults on simulated devices: ``POST /chaos`` leases, ended by ``DELETE``.

Every fault is a **lease**: the device ends it by itself at ``expires_unix_ms``
(docs/device-api.md), so a runner that dies mid-experiment leaves nothing behind for longer
than the fault's duration (the dead-man switch the chaos tools' users ask for). Rolling back is
``DELETE /chaos/{id}``; halting a device is ``DELETE /chaos``. Both are idempotent: 404
(already gone) counts as done.

Faults go straight to the device over HTTP rather than as DeviceRequests through the actors:
the request path is what an experiment breaks (a ``hang`` fills the actor's in-flight slots),
and the way out must not queue behind the damage or depend on Kafka.

Nothing here raises on a network error: each call returns a value or a :class:`FaultError`.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["FAULTS", "FaultClient", "FaultError", "Lease", "Target"]

FAULTS: Mapping[str, frozenset[str]] = {
    "latency": frozenset({"mean_ms", "jitter_ms"}),
    "error_rate": frozenset({"rate", "status"}),
    "hang": frozenset(),
    "crash": frozenset(),
    "flap": frozenset({"period_s"}),
    "stall": frozenset(),
    "blackout": frozenset(),
}
"""Fault name → the parameters it takes (docs/device-api.md, "Chaos")."""


@dataclass(frozen=True, slots=True)
class Target:
    """A device a fault can be aimed at."""

    device_id: str
    base_url: str
    stage: str = ""


@dataclass(frozen=True, slots=True)
class Lease:
    """An injected fault; it ends by itself at ``expires_unix_ms``."""

    fault_id: str
    target: Target
    fault: str
    params: Mapping[str, Any] = field(default_factory=dict)
    expires_unix_ms: int = 0


@dataclass(frozen=True, slots=True)
class FaultError:
    """A chaos call that did not do what was asked; ``reason`` is one line."""

    device_id: str
    reason: str


class FaultClient:
    """Thread-safe (one pooled ``httpx.Client``); every call is bounded by ``timeout_s``.

    ``transport`` is the seam for tests that want an in-process device.
    """

    def __init__(
        self, *, timeout_s: float = 3.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._http = httpx.Client(timeout=timeout_s, transport=transport)

    def inject(
        self,
        target: Target,
        fault: str,
        duration_s: float,
        params: Mapping[str, Any] | None = None,
    ) -> Lease | FaultError:
        params = dict(params or {})
        if fault not in FAULTS:
            return FaultError(target.device_id, f"unknown fault {fault!r}")
        bad = sorted(set(params) - FAULTS[fault])
        if bad:
            return FaultError(target.device_id, f"fault {fault} takes no {', '.join(bad)}")
        body = {"fault": fault, "duration_s": duration_s, **params}
        try:
            resp = self._http.post(_url(target, "/chaos"), json=body)
        except httpx.HTTPError as exc:
            return FaultError(target.device_id, f"POST /chaos failed: {type(exc).__name__}")
        if resp.status_code != 201:
            return FaultError(
                target.device_id, f"POST /chaos answered {resp.status_code}: {_detail(resp)}"
            )
        try:
            data = resp.json()
            fault_id = str(data["id"])
            expires = int(data.get("expires_unix_ms", 0))
        except (ValueError, KeyError, TypeError):
            return FaultError(target.device_id, "POST /chaos answered an unreadable body")
        return Lease(fault_id, target, fault, params, expires)

    def end(self, lease: Lease) -> FaultError | None:
        """End one fault early (its rollback). 404 means it already ended: fine."""
        path = "/chaos/" + urllib.parse.quote(lease.fault_id, safe="")
        return self._delete(lease.target, path)

    def halt(self, target: Target) -> FaultError | None:
        """End every fault on ``target``."""
        return self._delete(target, "/chaos")

    def active(self, target: Target) -> list[dict[str, Any]] | FaultError:
        """The faults active on ``target`` now."""
        try:
            resp = self._http.get(_url(target, "/chaos"))
            data = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            return FaultError(target.device_id, f"GET /chaos failed: {type(exc).__name__}")
        items = data.get("faults", data) if isinstance(data, dict) else data
        if not isinstance(items, list):
            return FaultError(target.device_id, "GET /chaos answered an unreadable body")
        return [x for x in items if isinstance(x, dict)]

    def _delete(self, target: Target, path: str) -> FaultError | None:
        try:
            resp = self._http.delete(_url(target, path))
        except httpx.HTTPError as exc:
            return FaultError(target.device_id, f"DELETE {path} failed: {type(exc).__name__}")
        if resp.status_code in (200, 204, 404):
            return None
        return FaultError(target.device_id, f"DELETE {path} answered {resp.status_code}")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FaultClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _url(target: Target, path: str) -> str:
    return target.base_url.rstrip("/") + path


def _detail(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return "(no JSON body)"
    if isinstance(data, dict):
        return str(data.get("detail") or data.get("error") or "")[:200]
    return ""
