"""HealthCheck: ``GET /health`` and ``GET /topology`` under one deadline -> a DeviceState.

Device bodies are untrusted. Each body is read as a stream and abandoned past
:data:`MAX_BODY_BYTES`; JSON is checked for nesting depth before parsing, ``NaN``/``Infinity``
and duplicate keys are refused, numbers must be finite and in range for their proto field, and
every exception is caught. The outcome is always a ``DeviceState``:

- reachable, good body: state and health as the device reports them;
- connection refused / reset: ``STATE_ERROR`` + ``HEALTH_FAILING`` with the reason (it is down);
- timed out, bad status, bad body: ``STATE_UNKNOWN`` + ``HEALTH_UNKNOWN`` with the reason (we
  cannot tell);
- ``/topology`` failing alone keeps the health and says so in ``reason``.

Text fields (check names, details, peer ids) are kept as text and capped in length; they are
made safe where they are shown (``pipeconsole.text``), never here.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
from yarl import URL

from pipeconsole.actors.http import NO_CEIL as _NO_CEIL
from pipeconsole.actors.http import read_capped
from pipeconsole.wire.gen import device_state_pb2 as ds

__all__ = ["MAX_BODY_BYTES", "MAX_DEPTH", "BodyError", "HealthChecker", "parse_json_body"]

MAX_BODY_BYTES = 256 * 1024
"""Largest health or topology body read; longer ones make the device UNKNOWN."""
MAX_DEPTH = 16
"""Deepest JSON nesting accepted (the documented bodies need 3)."""
_MAX_TEXT = 512
_MAX_ITEMS = 256
_U32 = 2**32 - 1

_STATES = {"IDLE": ds.STATE_IDLE, "BUSY": ds.STATE_BUSY, "ERROR": ds.STATE_ERROR}
_HEALTHS = {
    "HEALTHY": ds.HEALTH_HEALTHY,
    "DEGRADED": ds.HEALTH_DEGRADED,
    "FAILING": ds.HEALTH_FAILING,
}


class BodyError(ValueError):
    """A device body cannot be used; the message says why (one line)."""


def _depth_ok(text: str, limit: int) -> bool:
    depth = 0
    in_str = False
    esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def _no_constant(name: str) -> Any:
    raise BodyError(f"non-finite number {name}")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise BodyError(f"duplicate key {k[:40]!r}")
        out[k] = v
    return out


def parse_json_body(raw: bytes, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """A JSON object from ``raw``, or :class:`BodyError` with the reason. Never anything else."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("body is not UTF-8") from None
    if not _depth_ok(text, max_depth):
        raise BodyError(f"JSON nested deeper than {max_depth}")
    try:
        value = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_pairs)
    except BodyError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, int too long
        raise BodyError(f"not JSON: {str(exc)[:120]}") from None
    if not isinstance(value, dict):
        raise BodyError("body is not a JSON object")
    return value


def _text(obj: dict[str, Any], key: str, default: str = "") -> str:
    v = obj.get(key, default)
    if v is None:
        return default
    if not isinstance(v, str):
        raise BodyError(f"{key} is not a string")
    return v[:_MAX_TEXT]


def _num(obj: dict[str, Any], key: str) -> float:
    v = obj.get(key, 0)
    if v is None:
        return 0.0
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise BodyError(f"{key} is not a number")
    try:
        f = float(v)
    except OverflowError:  # an int of 309+ digits
        raise BodyError(f"{key} is out of range") from None
    if not math.isfinite(f) or abs(f) > 1e15:
        raise BodyError(f"{key} is out of range")
    return f


def _u32(obj: dict[str, Any], key: str) -> int:
    f = _num(obj, key)
    if f < 0 or f > _U32:
        raise BodyError(f"{key} is out of range")
    return int(f)


def _enum(obj: dict[str, Any], key: str, table: Mapping[str, int]) -> Any:
    v = _text(obj, key)
    if v not in table:
        raise BodyError(f"{key} {v[:40]!r} is not one of {', '.join(table)}")
    return table[v]


def apply_health(state: ds.DeviceState, body: dict[str, Any]) -> None:
    """Fill ``state`` from a ``/health`` body; :class:`BodyError` when it does not fit."""
    state.state = _enum(body, "state", _STATES)
    state.health = _enum(body, "health", _HEALTHS)
    checks = body.get("checks", [])
    if not isinstance(checks, list) or len(checks) > _MAX_ITEMS:
        raise BodyError("checks is not a list (or too long)")
    for c in checks:
        if not isinstance(c, dict):
            raise BodyError("a check is not an object")
        state.checks.add(
            name=_text(c, "name"), status=_enum(c, "status", _HEALTHS), detail=_text(c, "detail")
        )
    m = body.get("metrics", {})
    if not isinstance(m, dict):
        raise BodyError("metrics is not an object")
    state.in_flight = _u32(m, "in_flight")
    state.queue_depth = _u32(m, "queue_depth")
    state.queue_capacity = _u32(m, "queue_capacity")
    state.rate_in = _num(m, "rate_in")
    state.rate_out = _num(m, "rate_out")
    state.latency_p50_ms = _num(m, "latency_p50_ms")
    state.latency_p99_ms = _num(m, "latency_p99_ms")
    state.restarts = _u32(m, "restarts")
    state.deadline_misses = _u32(m, "deadline_misses")


def apply_topology(state: ds.DeviceState, body: dict[str, Any]) -> None:
    """Add the links of a ``/topology`` body to ``state``."""
    for key, direction in (("upstream", ds.Link.UPSTREAM), ("downstream", ds.Link.DOWNSTREAM)):
        links = body.get(key, [])
        if not isinstance(links, list) or len(links) > _MAX_ITEMS:
            raise BodyError(f"{key} is not a list (or too long)")
        for link in links:
            if not isinstance(link, dict):
                raise BodyError(f"a {key} link is not an object")
            state.links.add(
                peer_id=_text(link, "peer_id"),
                direction=direction,
                rate=_num(link, "rate"),
                queue_depth=_u32(link, "queue_depth"),
                queue_capacity=_u32(link, "queue_capacity"),
            )


HttpClient = aiohttp.ClientSession | httpx.AsyncClient
"""The service passes an aiohttp session; an httpx client is still accepted (the reliability
tests drive the checker with one)."""


@dataclass(frozen=True, slots=True)
class _Fetch:
    body: dict[str, Any] | None
    reason: str
    down: bool = False
    """The device refused the connection: it is down, not merely unknown."""


async def _get_json(session: HttpClient, url: str, timeout_s: float) -> _Fetch:
    if isinstance(session, httpx.AsyncClient):
        return await _get_json_httpx(session, url, timeout_s)
    try:
        async with asyncio.timeout(timeout_s):
            async with session.get(
                URL(url, encoded=True),
                timeout=aiohttp.ClientTimeout(total=timeout_s, ceil_threshold=_NO_CEIL),
                allow_redirects=False,
            ) as resp:
                if resp.status != 200:
                    return _Fetch(None, f"{url.rsplit('/', 1)[-1]}: HTTP {resp.status}")
                raw, complete = await read_capped(resp.content, MAX_BODY_BYTES)
                if not complete:
                    resp.close()
                    return _Fetch(None, f"body larger than {MAX_BODY_BYTES} bytes")
        return _Fetch(parse_json_body(raw), "")
    except TimeoutError:  # includes aiohttp.ServerTimeoutError
        return _Fetch(None, f"no answer within {timeout_s * 1000:.0f} ms")
    except BodyError as exc:
        return _Fetch(None, f"bad body: {exc}")
    except aiohttp.ClientConnectorError as exc:
        return _Fetch(None, f"unreachable: {_connect_why(exc)}", down=True)
    except aiohttp.ClientError as exc:
        return _Fetch(None, f"{type(exc).__name__}: {_why(exc)}", down=True)
    except Exception as exc:  # nothing from the network may raise through the loop
        return _Fetch(None, f"{type(exc).__name__}: {_why(exc)}")


async def _get_json_httpx(client: httpx.AsyncClient, url: str, timeout_s: float) -> _Fetch:
    """The same fetch through an httpx client (callers that still pass one)."""
    try:
        async with asyncio.timeout(timeout_s):
            async with client.stream("GET", url, timeout=timeout_s) as resp:
                if resp.status_code != 200:
                    return _Fetch(None, f"{url.rsplit('/', 1)[-1]}: HTTP {resp.status_code}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.aiter_raw():
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        return _Fetch(None, f"body larger than {MAX_BODY_BYTES} bytes")
                    chunks.append(chunk)
        return _Fetch(parse_json_body(b"".join(chunks)), "")
    except TimeoutError:
        return _Fetch(None, f"no answer within {timeout_s * 1000:.0f} ms")
    except BodyError as exc:
        return _Fetch(None, f"bad body: {exc}")
    except httpx.ConnectError as exc:
        return _Fetch(None, f"unreachable: {_why(exc)}", down=True)
    except httpx.TimeoutException:
        return _Fetch(None, f"no answer within {timeout_s * 1000:.0f} ms")
    except httpx.HTTPError as exc:
        return _Fetch(None, f"{type(exc).__name__}: {_why(exc)}", down=True)
    except Exception as exc:  # nothing from the network may raise through the loop
        return _Fetch(None, f"{type(exc).__name__}: {_why(exc)}")


def _why(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:200]


def _connect_why(exc: aiohttp.ClientConnectorError) -> str:
    """``connection refused (127.0.0.1:44777)``: what the operator needs first, not aiohttp's
    "Cannot connect to host 127.0.0.1:44777 ssl:default [Connect call failed ('127.0.0.1',
    44777)]" (which filled the incident's line and said "refused" nowhere)."""
    err = exc.os_error
    if isinstance(err, socket.gaierror):
        what = err.strerror or str(err)
    elif err.errno is not None and err.errno > 0:
        what = os.strerror(err.errno)
    else:
        what = str(err) or type(err).__name__
    return f"{what[:1].lower()}{what[1:160]} ({exc.host}:{exc.port})"


class HealthChecker:
    """Checks one device's health and topology under a deadline."""

    def __init__(
        self,
        session: HttpClient,
        *,
        actor_id: str,
        timeout_s: float = 2.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._actor_id = actor_id
        self.timeout_s = timeout_s
        """Deadline for both GETs together."""
        self._wall = wall

    async def check(self, device_id: str, base_url: str, stage: str, seq: int) -> ds.DeviceState:
        """What the device says about itself now; never raises."""
        state = ds.DeviceState(
            device_id=device_id,
            time_unix_ms=int(self._wall() * 1000),
            seq=seq,
            stage=stage,
            actor_id=self._actor_id,
        )
        base = base_url.rstrip("/")
        start = asyncio.get_running_loop().time()
        health = await _get_json(self._session, f"{base}/health", self.timeout_s)
        if health.body is None:
            if health.down:
                state.state, state.health = ds.STATE_ERROR, ds.HEALTH_FAILING
            else:
                state.state, state.health = ds.STATE_UNKNOWN, ds.HEALTH_UNKNOWN
            state.reason = f"health: {health.reason}"
            return state
        try:
            apply_health(state, health.body)
        except BodyError as exc:
            del state.checks[:]
            state.state, state.health = ds.STATE_UNKNOWN, ds.HEALTH_UNKNOWN
            state.reason = f"health: bad body: {exc}"
            return state
        left = self.timeout_s - (asyncio.get_running_loop().time() - start)
        if left <= 0:
            state.reason = "topology: no time left"
            return state
        topo = await _get_json(self._session, f"{base}/topology", left)
        if topo.body is None:
            state.reason = f"topology: {topo.reason}"
            return state
        try:
            apply_topology(state, topo.body)
        except BodyError as exc:
            del state.links[:]
            state.reason = f"topology: bad body: {exc}"
        return state
