"""Probe now: a direct ``GET /health`` of one device, beside what the telemetry says.

Answers "is it the device or the telemetry path?". The device is untrusted: the request has
a total timeout, the body is read in chunks and cut at :data:`MAX_BODY` bytes, the JSON is
parsed only when complete, and every failure is returned as a :class:`ProbeResult` with an
``error`` (never raised). Text in the result is raw; the UI shows it through ``safe_text``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import httpx

__all__ = ["MAX_BODY", "TIMEOUT_S", "ProbeCheck", "ProbeResult", "probe_health"]

MAX_BODY = 64 * 1024
"""Bytes of the /health body read at most."""
TIMEOUT_S = 3.0
"""Connect + read budget for one probe."""


@dataclass(frozen=True, slots=True)
class ProbeCheck:
    name: str
    status: str
    detail: str


@dataclass(frozen=True, slots=True)
class ProbeResult:
    url: str
    ok: bool
    """True when the device answered 200 with a readable health document."""
    status_code: int = 0
    elapsed_ms: float = 0.0
    health: str = ""
    state: str = ""
    checks: tuple[ProbeCheck, ...] = field(default=())
    error: str = ""
    """Why the probe failed (timeout, refused, too large, bad JSON, HTTP status)."""
    truncated: bool = False


def _text(value: object, limit: int = 512) -> str:
    return (
        value[:limit] if isinstance(value, str) else ("" if value is None else str(value)[:limit])
    )


async def probe_health(client: httpx.AsyncClient, base_url: str) -> ProbeResult:
    """GET ``{base_url}/health`` with a timeout and a body cap; never raises for the network."""
    url = base_url.rstrip("/") + "/health"
    if not url.startswith(("http://", "https://")):
        return ProbeResult(url=url, ok=False, error="device has no http(s) address")
    started = time.perf_counter()
    body = bytearray()
    truncated = False
    try:
        async with client.stream("GET", url, timeout=TIMEOUT_S) as resp:
            async for chunk in resp.aiter_bytes():
                body.extend(chunk)
                if len(body) > MAX_BODY:
                    truncated = True
                    break
            status = resp.status_code
    except httpx.TimeoutException:
        return ProbeResult(url=url, ok=False, error=f"timed out after {TIMEOUT_S:.0f} s")
    except httpx.HTTPError as exc:
        return ProbeResult(url=url, ok=False, error=f"{type(exc).__name__}: {exc}")
    elapsed = (time.perf_counter() - started) * 1000
    if truncated:
        return ProbeResult(
            url, False, status, elapsed, error=f"body larger than {MAX_BODY} bytes", truncated=True
        )
    if status != 200:
        return ProbeResult(url, False, status, elapsed, error=f"HTTP {status}")
    try:
        doc = json.loads(bytes(body).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return ProbeResult(url, False, status, elapsed, error=f"unreadable JSON: {exc}")
    if not isinstance(doc, dict):
        return ProbeResult(url, False, status, elapsed, error="health is not a JSON object")
    checks_raw = doc.get("checks")
    checks = tuple(
        ProbeCheck(_text(c.get("name"), 64), _text(c.get("status"), 16), _text(c.get("detail")))
        for c in (checks_raw if isinstance(checks_raw, list) else [])[:50]
        if isinstance(c, dict)
    )
    return ProbeResult(
        url,
        True,
        status,
        elapsed,
        health=_text(doc.get("health"), 16),
        state=_text(doc.get("state"), 16),
        checks=checks,
    )
